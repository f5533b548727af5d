using ConvLab.NN.Functional;
using Xunit;
using Xunit.Abstractions;

namespace ConvLab.Tests;

/// <summary>Loose ends of wave 1 (issue 15, deliverable 4): each one a regression test.</summary>
public class LooseEndsTests(ITestOutputHelper output)
{
    private static Tensor[] NormGrads(Func<Tensor, Tensor, Tensor, Tensor> norm, Tensor x, Tensor w, Tensor b, Tensor gy)
    {
        x = x.Detach().RequiresGrad_(); w = w.Detach().RequiresGrad_(); b = b.Detach().RequiresGrad_();
        norm(x, w, b).Backward(gy);
        return [x.Grad!, w.Grad!, b.Grad!];
    }

    /// <summary>
    /// Layer and group norm backward on large planes in float32 against float64 on the same data. The upstream
    /// gradient has a large common part (1 + noise), so Σgy over a 2¹⁶-element group and the parameter sums over many
    /// rows are big: summed in float32 they lose digits that double accumulation (as batch norm has) keeps. Measured
    /// ratios of max error to max |value| (float32 sums → double accumulation): parameter gradients 1.6e-7..1.6e-5 →
    /// 2.3e-8..2.5e-7; group norm grad_input 2.0e-6 → 4.1e-7 (layer norm's 64-element groups: 5.9e-7 either way, the
    /// rounding of its terms).
    /// </summary>
    [Theory]
    [InlineData("group_norm")]
    [InlineData("layer_norm")]
    public void LayerAndGroupNormBackwardAccumulateInDouble(string op)
    {
        var g = new Generator(15);
        int[] shape = op == "group_norm" ? [2, 4, 128, 128] : [4096, 64];
        int[] affine = op == "group_norm" ? [4] : [64];
        Func<Tensor, Tensor, Tensor, Tensor> norm = op == "group_norm"
            ? (x, w, b) => F.GroupNorm(x, 1, w, b)
            : (x, w, b) => F.LayerNorm(x, [64], w, b);
        var x = Tensor.Randn(shape, g, mean: 3, std: 2);
        var w = Tensor.Rand(affine, g, 0.5, 2); var b = Tensor.Randn(affine, g);
        var gy = Tensor.Randn(shape, g, mean: 1, std: 0.1);
        var r32 = NormGrads(norm, x, w, b, gy);
        var r64 = NormGrads(norm, x.Double(), w.Double(), b.Double(), gy.Double());
        string[] names = ["grad_input", "grad_weight", "grad_bias"];
        var failures = new List<string>();
        for (int i = 0; i < 3; i++)
        {
            double err = r32[i].Double().Sub(r64[i]).Abs().Max().Item();
            double scale = r64[i].Abs().Max().Item();
            output.WriteLine($"{op} {names[i]}: max |float32 - float64| = {err:G3}, max |value| = {scale:G3}, ratio {err / scale:G3}");
            if (!(err <= (i == 0 ? 1.5e-6 : 6e-7) * scale)) failures.Add($"{op} {names[i]}: max |float32 - float64| = {err:G3} for values up to {scale:G3}");
        }
        Assert.Empty(failures);
    }
}
