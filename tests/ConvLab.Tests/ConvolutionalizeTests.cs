using ConvLab.Autograd;
using ConvLab.Models;
using ConvLab.NN;
using Xunit;

namespace ConvLab.Tests;

public class ConvolutionalizeTests
{
    private static double MaxRelDiff(float[] a, float[] b)
    {
        double scale = b.Max(v => Math.Abs((double)v)), diff = 0;
        for (int i = 0; i < a.Length; i++) diff = Math.Max(diff, Math.Abs((double)a[i] - b[i]));
        return diff / scale;
    }

    private static Tensor Logits(Module m, Tensor x)
    {
        using var _ = new NoGrad();
        return m.Call(x);
    }

    [Fact]
    public void SimpleCnnGivesTheSameLogitsAndADenseMapOfItsWindows()
    {
        var g = new Generator(3);
        var model = new SimpleCnn(generator: g);
        var fcn = new SimpleCnn(generator: new Generator(99));
        fcn.LoadStateDict(model.StateDict());
        model.Eval(); fcn.Eval();

        var replaced = Fusion.Convolutionalize(fcn, [1, 28, 28]);
        Assert.Equal(["classifier.0", "classifier.1", "classifier.3"], replaced.Select(r => r.Path));
        Assert.Equal([128, 64, 7, 7], fcn.StateDict()["classifier.1.weight"].Shape.ToArray());

        var x = Tensor.Rand([3, 1, 28, 28], g);
        var same = Logits(fcn, x);
        Assert.Equal([3, 10, 1, 1], same.Shape.ToArray());
        Assert.True(MaxRelDiff(same.ToArray(), Logits(model, x).ToArray()) < 1e-5);

        Assert.Equal([1, 10, 4, 4], Logits(fcn, Tensor.Rand([1, 1, 40, 40], g)).Shape.ToArray());
    }

    [Fact]
    public void WithoutPaddingEachMapEntryIsTheClassifierOnItsWindow()
    {
        var g = new Generator(4);
        var model = new Sequential(new Conv2d(1, 4, 3, generator: g), new ReLU(), new MaxPool2d(2), new Conv2d(4, 8, 3, generator: g), new ReLU(),
            new MaxPool2d(2), new Flatten(), new Linear(8 * 16, 16, generator: g), new ReLU(), new Linear(16, 5, generator: g));
        var fcn = new Sequential(new Conv2d(1, 4, 3), new ReLU(), new MaxPool2d(2), new Conv2d(4, 8, 3), new ReLU(),
            new MaxPool2d(2), new Flatten(), new Linear(8 * 16, 16), new ReLU(), new Linear(16, 5));
        fcn.LoadStateDict(model.StateDict());
        Fusion.Convolutionalize(fcn, [1, 22, 22]);

        // 30x30 canvas: a 3x3 map whose entry (i, j) is the classifier on the 22x22 crop at (4i, 4j), 4 being the product
        // of the pooling strides.
        var canvas = Tensor.Rand([1, 1, 30, 30], g);
        var map = Logits(fcn, canvas);
        Assert.Equal([1, 5, 3, 3], map.Shape.ToArray());
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
            {
                var crop = canvas.Narrow(2, 4 * i, 22).Narrow(3, 4 * j, 22).Contiguous();
                var window = map.Select(3, j).Select(2, i).Contiguous();
                Assert.True(MaxRelDiff(window.ToArray(), Logits(model, crop).ToArray()) < 1e-5, $"window ({i}, {j})");
            }
    }

    [Fact]
    public void AdaptivePoolThatIsTheIdentityIsRemoved()
    {
        var g = new Generator(5);
        var head = new Sequential(new Conv2d(1, 4, 3, generator: g), new ReLU(), new AdaptiveAvgPool2d(6, 6), new Flatten(),
            new Dropout(0.5), new Linear(4 * 36, 8, generator: g), new ReLU(), new Linear(8, 3, generator: g));
        head.Eval();
        var x = Tensor.Rand([2, 1, 8, 8], g);
        var before = Logits(head, x).ToArray();
        var replaced = Fusion.Convolutionalize(head, [1, 8, 8]);
        Assert.Equal(["3", "2", "5", "7"], replaced.Select(r => r.Path));
        Assert.True(MaxRelDiff(Logits(head, x).ToArray(), before) < 1e-5);
        Assert.Equal([1, 3, 3, 3], Logits(head, Tensor.Rand([1, 1, 10, 10], g)).Shape.ToArray());
    }

    [Fact]
    public void ModelsWithoutAFlattenLinearHeadAreRefused()
    {
        // ResNet flattens with a tensor op, not a Flatten module.
        TestUtil.AssertOpError("convolutionalize", () => Fusion.Convolutionalize(Zoo.Create("resnet18", 10), [3, 64, 64]));
        var withNorm = new Sequential(new Conv2d(1, 2, 3), new Flatten(), new BatchNorm1d(2 * 36), new Linear(2 * 36, 3));
        var e = TestUtil.AssertOpError("convolutionalize", () => Fusion.Convolutionalize(withNorm, [1, 8, 8]));
        Assert.Contains("BatchNorm1d", e.Message);
        TestUtil.AssertOpError("convolutionalize", () => Fusion.Convolutionalize(new SimpleCnn(), [1, 28]));
        TestUtil.AssertOpError("convolutionalize", () => Fusion.Convolutionalize(new Sequential(new Conv2d(1, 2, 3), new Flatten()), [1, 8, 8]));
    }
}
