using ConvLab.NN.Functional;
using Xunit;

namespace ConvLab.Tests;

/// <summary>
/// Float32 batch/instance norm against float64 on the same (float-representable) data with a large mean
/// offset: the statistics must not cancel (E[x²] - E[x]²) nor lose the mean's low digits in float.
/// </summary>
public class BatchNormPrecisionTests
{
    private static Tensor[] Run(Func<Tensor, Tensor, Tensor, Tensor> norm, Tensor x, Tensor w, Tensor b, Tensor gy)
    {
        x = x.Detach().RequiresGrad_(); w = w.Detach().RequiresGrad_(); b = b.Detach().RequiresGrad_();
        var y = norm(x, w, b);
        y.Backward(gy);
        return [y, x.Grad!, w.Grad!, b.Grad!];
    }

    private static void AssertFloatMatchesDouble(Func<Tensor, Tensor, Tensor, Tensor> norm, int[] shape, uint seed)
    {
        var g = new Generator(seed);
        int c = shape[1];
        var x = Tensor.Randn(shape, g, mean: 1000, std: 1);
        var w = Tensor.Rand([c], g, 0.5, 2); var b = Tensor.Randn([c], g);
        var gy = Tensor.Randn(shape, g);
        var r32 = Run(norm, x, w, b, gy);
        var r64 = Run(norm, x.Double(), w.Double(), b.Double(), gy.Double());
        string[] names = ["y", "grad_input", "grad_weight", "grad_bias"];
        for (int i = 0; i < r32.Length; i++)
        {
            // Parameter gradients are float sums of ~10⁴ unit terms, good to ~1e-6·√M absolutely; a mean off in
            // its low digits would shift them by ~1e-2.
            double atol = i < 2 ? 1e-5 : 3e-4;
            double err = r32[i].Double().Sub(r64[i]).Abs().Max().Item();
            Assert.True(r32[i].Double().AllClose(r64[i], 1e-5, atol), $"{names[i]}: max |float32 - float64| = {err:G3}");
        }
    }

    [Fact]
    public void BatchNormTrainingFloat32MatchesFloat64WithLargeMean()
    {
        var rm = Tensor.Zeros(4); var rv = Tensor.Ones(4);
        var rm64 = Tensor.Zeros([4], DType.Float64); var rv64 = Tensor.Ones([4], DType.Float64);
        AssertFloatMatchesDouble((x, w, b) => x.DType == DType.Float32 ? F.BatchNorm(x, rm, rv, w, b, training: true)
            : F.BatchNorm(x, rm64, rv64, w, b, training: true), [8, 4, 48, 48], 1);
        Assert.True(rm.Double().AllClose(rm64, 1e-6, 1e-6) && rv.Double().AllClose(rv64, 1e-5, 1e-6), "batch_norm running statistics");
    }

    [Fact]
    public void BatchNormEvalAndInstanceNormFloat32MatchFloat64WithLargeMean()
    {
        var rm = Tensor.Full([3], 1000.25); var rv = Tensor.Full([3], 0.9);
        AssertFloatMatchesDouble((x, w, b) => F.BatchNorm(x, rm.To(x.DType), rv.To(x.DType), w, b), [4, 3, 40, 40], 2);
        AssertFloatMatchesDouble((x, w, b) => F.InstanceNorm(x, weight: w, bias: b), [3, 3, 64, 64], 3);
    }
}
