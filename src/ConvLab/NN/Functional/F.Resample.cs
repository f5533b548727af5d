using ConvLab.Autograd;
using ConvLab.Autograd.Nodes;
using ConvLab.Kernels;

namespace ConvLab.NN.Functional;

public static partial class F
{
    /// <summary>
    /// Resizes the spatial dimensions of (N, C, L), (N, C, H, W) or (N, C, D, H, W) input (PyTorch 1.13's
    /// <c>F.interpolate</c>). Give exactly one of <paramref name="size"/> (output sizes) or
    /// <paramref name="scaleFactor"/> (output = floor(input·scale)); a single entry applies to every
    /// spatial dimension. Modes: <c>nearest</c> (PyTorch's legacy nearest: src = floor(dst·in/out), or
    /// floor(dst/scale) when a scale factor is given), <c>linear</c> (3-D input), <c>bilinear</c> (4-D),
    /// <c>trilinear</c> (5-D). <paramref name="alignCorners"/> (linear modes only, default false) maps the
    /// corner pixels onto each other; otherwise pixel centres are mapped, using 1/scale when a scale factor
    /// is given. Differentiable w.r.t. input.
    /// </summary>
    public static Tensor Interpolate(Tensor input, int[]? size = null, double[]? scaleFactor = null, string mode = "nearest", bool? alignCorners = null)
    {
        const string op = "interpolate";
        input.RequireFloat(op);
        if (input.Rank is < 3 or > 5)
            throw new ArgumentException($"{op}: expected a 3-D, 4-D or 5-D input (N, C, spatial...), got shape {ShapeUtil.Format(input.Shape)}");
        int k = input.Rank - 2;
        int linearRank = mode switch { "nearest" => 0, "linear" => 3, "bilinear" => 4, "trilinear" => 5, _ => -1 };
        if (linearRank < 0)
            throw new ArgumentException($"{op}: unsupported mode '{mode}' (expected nearest, linear, bilinear or trilinear)");
        if (linearRank > 0 && input.Rank != linearRank)
            throw new ArgumentException($"{op}: mode '{mode}' needs a {linearRank}-D input, got {input.Rank}-D (shape {ShapeUtil.Format(input.Shape)})");
        if (linearRank == 0 && alignCorners != null)
            throw new ArgumentException($"{op}: align_corners can only be set with the linear modes (linear, bilinear, trilinear), not '{mode}'");
        if ((size == null) == (scaleFactor == null))
            throw new ArgumentException($"{op}: exactly one of size and scale_factor must be given");
        for (int d = 0; d < k; d++)
            if (input.Shape[2 + d] <= 0)
                throw new ArgumentException($"{op}: input spatial sizes must be positive, got shape {ShapeUtil.Format(input.Shape)}");
        var outSize = new int[k];
        double?[] scales = new double?[k];
        if (size != null)
        {
            if (size.Length != 1 && size.Length != k)
                throw new ArgumentException($"{op}: size has {size.Length} entries but input has {k} spatial dimensions");
            for (int d = 0; d < k; d++) outSize[d] = size[size.Length == 1 ? 0 : d];
        }
        else
        {
            if (scaleFactor!.Length != 1 && scaleFactor.Length != k)
                throw new ArgumentException($"{op}: scale_factor has {scaleFactor.Length} entries but input has {k} spatial dimensions");
            for (int d = 0; d < k; d++)
            {
                double sf = scaleFactor[scaleFactor.Length == 1 ? 0 : d];
                if (!(sf > 0) || double.IsInfinity(sf))
                    throw new ArgumentException($"{op}: scale_factor must be positive and finite, got {sf}");
                double o = Math.Floor(input.Shape[2 + d] * sf);
                outSize[d] = o > int.MaxValue ? -1 : (int)o;
                scales[d] = sf;
            }
        }
        if (outSize.Any(o => o <= 0))
            throw new ArgumentException($"{op}: output size must be positive, got {ShapeUtil.Format(outSize)} for input shape {ShapeUtil.Format(input.Shape)}");
        ShapeUtil.Numel([.. input.Shape[..2], .. outSize]);
        if (input.IsMeta) return Analysis.MetaOps.Interpolate(input, [.. input.Shape[..2], .. outSize], linearRank > 0);

        var taps = new AxisTaps?[k];
        for (int d = 0; d < k; d++)
        {
            int inSize = input.Shape[2 + d];
            var t = linearRank == 0 ? Resample.Nearest(inSize, outSize[d], scales[d]) : Resample.Linear(inSize, outSize[d], alignCorners ?? false, scales[d]);
            // Identity axes (same size, no shift) are skipped rather than copied.
            bool identity = inSize == outSize[d];
            for (int o = 0; identity && o < outSize[d]; o++) identity = t.I0[o] == o && (t.L1 == null || t.L1[o] == 0);
            taps[d] = identity ? null : t;
        }
        var x = input.Detach().Contiguous();
        var y = InterpolateBackward.Run(x, taps, adjoint: false);
        if (ReferenceEquals(y, x)) y = x.ContiguousCopy();
        Analysis.OpRecorder.Record(y, op, [input], ("size", outSize), ("scale_factor", scaleFactor), ("mode", mode), ("align_corners", alignCorners ?? false));
        return Engine.Record(y, new InterpolateBackward(taps), input);
    }

    /// <summary>
    /// Rearranges (*, C·r², H, W) into (*, C, H·r, W·r) (PyTorch's <c>F.pixel_shuffle</c>, sub-pixel
    /// convolution upsampling). A reshape/permute, differentiable w.r.t. input.
    /// </summary>
    public static Tensor PixelShuffle(Tensor input, int upscaleFactor)
    {
        const string op = "pixel_shuffle";
        int r = upscaleFactor;
        if (input.Rank < 3)
            throw new ArgumentException($"{op}: expected an input with at least 3 dimensions (*, C·r², H, W), got shape {ShapeUtil.Format(input.Shape)}");
        if (r <= 0) throw new ArgumentException($"{op}: upscale_factor must be positive, got {r}");
        int rank = input.Rank, c = input.Shape[rank - 3], h = input.Shape[rank - 2], w = input.Shape[rank - 1];
        if (c % (r * r) != 0)
            throw new ArgumentException($"{op}: input has {c} channels, which is not divisible by upscale_factor² = {r * r}");
        var lead = input.Shape[..(rank - 3)].ToArray();
        int b = lead.Length;
        var perm = Enumerable.Range(0, b).Concat([b, b + 3, b + 1, b + 4, b + 2]).ToArray();
        return input.Reshape([.. lead, c / (r * r), r, r, h, w]).Permute(perm).Reshape([.. lead, c / (r * r), h * r, w * r]);
    }

    /// <summary>
    /// Rearranges (*, C, H·r, W·r) into (*, C·r², H, W), the inverse of <see cref="PixelShuffle"/>
    /// (PyTorch's <c>F.pixel_unshuffle</c>). Differentiable w.r.t. input.
    /// </summary>
    public static Tensor PixelUnshuffle(Tensor input, int downscaleFactor)
    {
        const string op = "pixel_unshuffle";
        int r = downscaleFactor;
        if (input.Rank < 3)
            throw new ArgumentException($"{op}: expected an input with at least 3 dimensions (*, C, H·r, W·r), got shape {ShapeUtil.Format(input.Shape)}");
        if (r <= 0) throw new ArgumentException($"{op}: downscale_factor must be positive, got {r}");
        int rank = input.Rank, c = input.Shape[rank - 3], h = input.Shape[rank - 2], w = input.Shape[rank - 1];
        if (h % r != 0 || w % r != 0)
            throw new ArgumentException($"{op}: spatial size {h}x{w} is not divisible by downscale_factor {r}");
        var lead = input.Shape[..(rank - 3)].ToArray();
        int b = lead.Length;
        var perm = Enumerable.Range(0, b).Concat([b, b + 2, b + 4, b + 1, b + 3]).ToArray();
        return input.Reshape([.. lead, c, h / r, r, w / r, r]).Permute(perm).Reshape([.. lead, c * r * r, h / r, w / r]);
    }

    /// <summary>
    /// Interleaves the channels of (N, C, *) across <paramref name="groups"/> (ShuffleNet's channel
    /// shuffle, PyTorch's <c>F.channel_shuffle</c>): view as (N, g, C/g, *), swap dims 1 and 2, flatten
    /// back. Differentiable w.r.t. input.
    /// </summary>
    public static Tensor ChannelShuffle(Tensor input, int groups)
    {
        const string op = "channel_shuffle";
        if (input.Rank < 3)
            throw new ArgumentException($"{op}: expected an input with at least 3 dimensions (N, C, *), got shape {ShapeUtil.Format(input.Shape)}");
        if (groups <= 0) throw new ArgumentException($"{op}: groups must be positive, got {groups}");
        int n = input.Shape[0], c = input.Shape[1];
        if (c % groups != 0)
            throw new ArgumentException($"{op}: input has {c} channels, which is not divisible by groups={groups}");
        var rest = input.Shape[2..].ToArray();
        return input.Reshape([n, groups, c / groups, .. rest]).Transpose(1, 2).Reshape([n, c, .. rest]);
    }
}
