using ConvLab.NN.Functional;
using Xunit;

namespace ConvLab.Tests;

/// <summary>
/// float32 results against the same computation in float64: a correct float32 kernel stays near float32 rounding
/// (~1e-7 relative per element, a few 1e-7 after a long reduction). Larger errors flip ReLUs of near-zero
/// activations and turn into 1e-2 gradient differences in deep networks (cifar_resnet18 training step).
/// </summary>
public class Float32PrecisionTests
{
    private static (double Max, double Rms) RelErr(Tensor actual, Tensor expected)
    {
        var a = actual.To(DType.Float64).ToDoubleArray(); var e = expected.ToDoubleArray();
        double dmax = 0, emax = 0, se = 0, ee = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double d = a[i] - e[i];
            dmax = Math.Max(dmax, Math.Abs(d)); emax = Math.Max(emax, Math.Abs(e[i]));
            se += d * d; ee += e[i] * e[i];
        }
        return (dmax / emax, Math.Sqrt(se / ee));
    }

    /// <summary>
    /// 3x3 stride-1 conv at a ResNet layer shape (which Auto and a forced Winograd run as Winograd): forward and
    /// input gradient within float32 rounding of float64. im2col gives rms 3e-7; Winograd F(4x4,3x3) gave 3e-6.
    /// </summary>
    [Theory]
    [InlineData(ConvAlgorithm.Auto)]
    [InlineData(ConvAlgorithm.Winograd)]
    [InlineData(ConvAlgorithm.Im2colGemm)]
    public void Conv3x3ForwardAndInputGradStayNearFloat32Rounding(ConvAlgorithm algorithm)
    {
        var g = new Generator(11);
        var x = F.Relu(Tensor.Randn([8, 256, 8, 8], g, dtype: DType.Float64));
        var w = Tensor.Randn([256, 256, 3, 3], g, std: Math.Sqrt(2.0 / (9 * 256)), dtype: DType.Float64);
        var gy = Tensor.Randn([8, 256, 8, 8], g, dtype: DType.Float64);
        var x64 = x.Detach().RequiresGrad_();
        var y64 = F.Conv2d(x64, w, padding: [1, 1]);
        y64.Backward(gy);
        var x32 = x.To(DType.Float32).Detach().RequiresGrad_();
        var y32 = F.Conv2d(x32, w.To(DType.Float32), padding: [1, 1], algorithm: algorithm);
        y32.Backward(gy.To(DType.Float32));
        foreach (var (what, (max, rms)) in new[] { ("forward", RelErr(y32, y64)), ("input grad", RelErr(x32.Grad!, x64.Grad!)) })
        {
            Assert.True(rms < 1e-6, $"{algorithm} {what}: rms relative error {rms:E2} (float32 rounding ~3e-7)");
            Assert.True(max < 3e-6, $"{algorithm} {what}: max relative error {max:E2} (float32 rounding ~5e-7)");
        }
    }
}
