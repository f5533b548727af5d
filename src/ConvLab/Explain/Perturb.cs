using ConvLab.Autograd;
using ConvLab.NN.Functional;

namespace ConvLab.Explain;

/// <summary>Image perturbations shared by baselines and metrics.</summary>
internal static class Perturb
{
    /// <summary>
    /// Gaussian blur of an (N, C, H, W) batch: two depthwise 1-d convolutions with a kernel of radius ⌈3σ⌉ (normalised to
    /// sum 1), edges replicated. Detached result.
    /// </summary>
    public static Tensor GaussianBlur(Tensor input, double sigma, string op)
    {
        if (input.Rank != 4) throw new ArgumentException($"{op}: a blurred baseline needs an image batch (N, C, H, W), got {ShapeUtil.Format(input.Shape)}");
        int c = input.Shape[1], r = (int)Math.Ceiling(3 * sigma), k = 2 * r + 1;
        var taps = new double[k];
        double sum = 0;
        for (int i = 0; i < k; i++) sum += taps[i] = Math.Exp(-0.5 * (i - r) * (i - r) / (sigma * sigma));
        var weight = new double[c * k];
        for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < k; i++) weight[ch * k + i] = taps[i] / sum;
        using var _ = new NoGrad();
        var x = input.Detach();
        // Replicate padding reads one edge pixel r times, so the radius may exceed the image.
        var vertical = Tensor.FromArray(weight, c, 1, k, 1).To(x.DType);
        var horizontal = Tensor.FromArray(weight, c, 1, 1, k).To(x.DType);
        x = F.Conv2d(F.Pad(x, [0, 0, r, r], "replicate"), vertical, groups: c);
        return F.Conv2d(F.Pad(x, [r, r, 0, 0], "replicate"), horizontal, groups: c);
    }
}
