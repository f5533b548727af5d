using ConvLab.NN;
using ConvLab.NN.Functional;
using Xunit;

namespace ConvLab.Tests;

/// <summary>The README's example and the example error messages, verbatim.</summary>
public class ExamplesTests
{
    [Fact]
    public void ReadmeTasteRunsAsWritten()
    {
        var x = Tensor.Randn([8, 3, 32, 32]);
        var conv = new Conv2d(3, 16, kernelSize: 3, padding: 1);
        var y = F.Relu(conv.Forward(x));
        var loss = F.CrossEntropy(F.AdaptiveAvgPool2d(y, [1, 1]).Flatten(1), Tensor.RandInt(0, 16, [8]));
        loss.Backward();
        Assert.Equal(conv.Weight.Shape.ToArray(), conv.Weight.Grad!.Shape.ToArray());
    }

    [Fact]
    public void ErrorMessagesNameTheOpAndStateExpectedVersusActual()
    {
        var e1 = TestUtil.AssertOpError("conv2d", () => F.Conv2d(Tensor.Zeros(1, 3, 8, 8), Tensor.Zeros(2, 4, 3, 3)));
        Assert.Equal("conv2d: input has 3 channels but weight expects 4 (groups=1; weight shape [2, 4, 3, 3])", e1.Message);
        var e2 = TestUtil.AssertOpError("max_pool2d", () => F.MaxPool2d(Tensor.Zeros(1, 1, 4, 4), [5]));
        Assert.Equal("max_pool2d: kernel 5 is larger than padded input 4 in spatial dim 0", e2.Message);
    }
}
