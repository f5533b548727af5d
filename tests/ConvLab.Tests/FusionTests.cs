using ConvLab.Models;
using ConvLab.NN;
using ConvLab.NN.Functional;
using Xunit;

namespace ConvLab.Tests;

public class FusionTests
{
    /// <summary>Running statistics far from the 0/1 defaults, so a wrong fold cannot go unnoticed.</summary>
    private static void RandomStatistics(Module model, Generator g)
    {
        using var _ = new Autograd.NoGrad();
        foreach (var (_, m) in model.NamedModules())
            if (m is BatchNormNd bn)
            {
                bn.RunningMean!.Copy_(Tensor.Randn([bn.NumFeatures], g) * 0.3);
                bn.RunningVar!.Copy_(Tensor.Rand([bn.NumFeatures], g) + 0.5);
                bn.Weight!.Copy_(Tensor.Rand([bn.NumFeatures], g) + 0.5);
                bn.Bias!.Copy_(Tensor.Randn([bn.NumFeatures], g) * 0.2);
            }
    }

    private static double MaxRelDiff(Tensor a, Tensor b)
    {
        var x = a.ToDoubleArray(); var y = b.ToDoubleArray();
        double scale = y.Max(Math.Abs), diff = 0;
        for (int i = 0; i < x.Length; i++) diff = Math.Max(diff, Math.Abs(x[i] - y[i]));
        return diff / scale;
    }

    [Fact]
    public void FoldingEveryBatchNormOfResNet18KeepsItsOutput()
    {
        var g = new Generator(11);
        var model = Zoo.Create("resnet18", 10, g);
        RandomStatistics(model, g);
        model.Eval();
        var x = Tensor.Randn([2, 3, 64, 64], g);
        Tensor before;
        using (new Autograd.NoGrad()) before = model.Call(x);

        var pairs = Fusion.FoldBatchNorm(model, [3, 64, 64]);

        int batchNorms = model.NamedModules().Count(m => m.Module is BatchNormNd);
        Assert.Equal(20, batchNorms);
        Assert.Equal(batchNorms, pairs.Count);
        Assert.Contains(("conv1", "bn1"), pairs);
        Assert.Contains(("layer2.0.downsample.0", "layer2.0.downsample.1"), pairs);
        Assert.True(model.StateDict().ContainsKey("layer1.0.conv1.bias"));
        Tensor after;
        using (new Autograd.NoGrad()) after = model.Call(x);
        Assert.True(MaxRelDiff(after, before) < 1e-5, $"max relative difference {MaxRelDiff(after, before)}");
    }

    /// <summary>y = conv(x); bn(y) + y: the conv output has a second consumer, so folding would change the sum.</summary>
    private sealed class SharedOutput : Module
    {
        private readonly Conv2d _conv;
        private readonly BatchNorm2d _bn;

        public SharedOutput(Generator g)
        {
            _conv = RegisterModule("conv", new Conv2d(2, 4, 3, padding: 1, generator: g));
            _bn = RegisterModule("bn", new BatchNorm2d(4));
        }

        public override Tensor Forward(Tensor input)
        {
            var y = _conv.Call(input);
            return _bn.Call(y).Add(y);
        }
    }

    [Fact]
    public void AConvOutputWithAnotherConsumerIsNotFolded()
    {
        var g = new Generator(5);
        var model = new SharedOutput(g);
        RandomStatistics(model, g);
        model.Eval();
        var x = Tensor.Randn([1, 2, 6, 6], g);
        var before = model.Call(x).Detach();
        Assert.Empty(Fusion.FoldBatchNorm(model, [2, 6, 6]));
        Assert.Equal(before.ToArray(), model.Call(x).Detach().ToArray());
    }

    [Fact]
    public void FoldingNeedsEvaluationModeAndAFoldedModelRefusesToTrain()
    {
        var g = new Generator(7);
        var model = new Sequential(new Conv2d(1, 3, 3, bias: false, generator: g), new BatchNorm2d(3), new ReLU());
        var e = Assert.Throws<ArgumentException>(() => Fusion.FoldBatchNorm(model, [1, 8, 8]));
        Assert.Contains("Eval()", e.Message);
        model.Eval();
        using (new Autograd.NoGrad()) Assert.Single(Fusion.FoldBatchNorm(model, [1, 8, 8])); // works inside NoGrad too
        model.Train();
        var t = Assert.Throws<InvalidOperationException>(() => model.Call(Tensor.Randn([1, 1, 8, 8], g)));
        Assert.Contains("folded into the convolution '0'", t.Message);
    }
}
