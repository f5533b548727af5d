using ConvLab.Autograd;
using ConvLab.NN;
using ConvLab.NN.Functional;
using ConvLab.Training;
using Xunit;

namespace ConvLab.Tests;

/// <summary>The whole engine together: a small CNN learns a task it can only solve by seeing where things are.</summary>
public class TrainingIntegrationTests
{
    /// <summary>12x12 images of noise with one bright 4x4 blob; the label is the quadrant of the blob.</summary>
    private static (Tensor X, Tensor Y) QuadrantData(int n, ulong seed)
    {
        var g = new Generator(seed);
        var x = Tensor.Randn([n, 1, 12, 12], g, std: 0.3);
        var y = new long[n];
        using (new NoGrad())
            for (int i = 0; i < n; i++)
            {
                int q = g.NextInt(4);
                y[i] = q;
                int r0 = (q / 2) * 6 + g.NextInt(3), c0 = (q % 2) * 6 + g.NextInt(3);
                for (int r = r0; r < r0 + 4; r++)
                    for (int c = c0; c < c0 + 4; c++) x[i, 0, r, c] = x[i, 0, r, c] + 1.5;
            }
        return (x, Tensor.FromArray(y, n));
    }

    [Fact]
    public void SmallCnnWithAdamLearnsQuadrants()
    {
        var (xTrain, yTrain) = QuadrantData(256, 1);
        var (xTest, yTest) = QuadrantData(128, 2);
        var gen = new Generator(3);
        var model = new Sequential(
            new Conv2d(1, 8, 3, padding: 1, generator: gen), new BatchNorm2d(8), new ReLU(), new MaxPool2d(2),
            new Conv2d(8, 8, 3, padding: 1, generator: gen), new ReLU(), new MaxPool2d(2),
            new Flatten(), new Linear(8 * 3 * 3, 4, generator: gen));
        var opt = new Adam(model.Parameters(), lr: 0.01);
        double firstLoss = 0, lastLoss = 0;
        for (int epoch = 0; epoch < 6; epoch++)
            for (int b = 0; b < 256; b += 32)
            {
                opt.ZeroGrad();
                var loss = F.CrossEntropy(model.Forward(xTrain.Narrow(0, b, 32)), yTrain.Narrow(0, b, 32));
                loss.Backward();
                opt.Step();
                if (epoch == 0 && b == 0) firstLoss = loss.Item();
                lastLoss = loss.Item();
            }
        model.Eval();
        Tensor pred;
        using (new NoGrad()) pred = model.Forward(xTest).ArgMax(1);
        var p = pred.ToInt64Array(); var t = yTest.ToInt64Array();
        double accuracy = p.Zip(t, (a, b) => a == b ? 1.0 : 0.0).Average();
        Assert.True(lastLoss < firstLoss / 3, $"loss went from {firstLoss:F3} to {lastLoss:F3}");
        Assert.True(accuracy >= 0.9, $"test accuracy {accuracy:P1}");
    }
}
