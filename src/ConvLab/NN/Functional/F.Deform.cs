using ConvLab.Autograd;
using ConvLab.Autograd.Nodes;
using ConvLab.Kernels;

namespace ConvLab.NN.Functional;

public static partial class F
{
    /// <summary>
    /// Deformable convolution (torchvision's <c>ops.deform_conv2d</c>; DCN v1, or v2 when <paramref name="mask"/> is given).
    /// Tap (i, j) of output pixel (h, w) samples the input bilinearly at
    /// (h·stride − pad + i·dil + dy, w·stride − pad + j·dil + dx); samples outside the image read 0.
    /// </summary>
    /// <param name="input">(N, C_in, H, W).</param>
    /// <param name="offset">(N, 2·offset_groups·kh·kw, H_out, W_out): (dy, dx) pairs per kernel tap, taps row-major, per offset group.</param>
    /// <param name="weight">(C_out, C_in / groups, kh, kw); groups = C_in / weight.shape[1].</param>
    /// <param name="bias">(C_out) or null.</param>
    /// <param name="stride">1 or 2 values, default 1.</param>
    /// <param name="padding">1 or 2 values, default 0.</param>
    /// <param name="dilation">1 or 2 values, default 1.</param>
    /// <param name="mask">(N, offset_groups·kh·kw, H_out, W_out) modulation (v2), or null (v1).</param>
    public static Tensor DeformConv2d(Tensor input, Tensor offset, Tensor weight, Tensor? bias = null,
        int[]? stride = null, int[]? padding = null, int[]? dilation = null, Tensor? mask = null)
    {
        var s = ValidateDeformConv2d(input, offset, weight, bias, stride, padding, dilation, mask);
        if (input.IsMeta || offset.IsMeta)
            return Analysis.MetaOps.Conv("deform_conv2d", input, bias, new ConvGeometry(s.N, s.C, s.COut, s.Groups, [s.H, s.W], [s.Ho, s.Wo],
                [s.Kh, s.Kw], [s.Sh, s.Sw], [s.Ph, s.Pw], [s.Dh, s.Dw]), false, [s.N, s.COut, s.Ho, s.Wo], deformable: true);
        var x = input.Detach().Contiguous();
        var off = offset.Detach().Contiguous();
        var w = weight.Detach().Contiguous();
        var m = mask?.Detach().Contiguous();
        var y = Tensor.Zeros([s.N, s.COut, s.Ho, s.Wo], input.DType);
        if (input.DType == DType.Float32)
            DeformIm2col.Forward(s, x.Buffer<float>(), x.StorageOffset, off.Buffer<float>(), off.StorageOffset, m?.Buffer<float>(), m?.StorageOffset ?? 0,
                w.Buffer<float>(), w.StorageOffset, y.Buffer<float>(), 0);
        else
            DeformIm2col.Forward(s, x.Buffer<double>(), x.StorageOffset, off.Buffer<double>(), off.StorageOffset, m?.Buffer<double>(), m?.StorageOffset ?? 0,
                w.Buffer<double>(), w.StorageOffset, y.Buffer<double>(), 0);
        if (bias != null)
            using (new NoGrad()) y = y.Add(bias.Detach().Reshape(1, s.COut, 1, 1));
        Analysis.OpRecorder.Record(y, "deform_conv2d", [input, offset, weight, bias, mask], ("shape", s));
        if (!Engine.WillRecord(input, offset, weight, bias, mask)) return y;
        return Engine.Record(y, new DeformConv2dBackward(x, off, w, m, s, bias != null), input, offset, weight, bias, mask);
    }

    private static DeformConvShape ValidateDeformConv2d(Tensor input, Tensor offset, Tensor weight, Tensor? bias,
        int[]? stride, int[]? padding, int[]? dilation, Tensor? mask)
    {
        const string op = "deform_conv2d";
        input.RequireFloat(op); offset.RequireFloat(op); weight.RequireFloat(op); mask?.RequireFloat(op); bias?.RequireFloat(op);
        RequireRank(input, 4, "input", "(N, C_in, H, W)");
        RequireRank(offset, 4, "offset", "(N, 2*offset_groups*kh*kw, H_out, W_out)");
        RequireRank(weight, 4, "weight", "(C_out, C_in/groups, kh, kw)");
        if (mask != null) RequireRank(mask, 4, "mask", "(N, offset_groups*kh*kw, H_out, W_out)");
        if (bias != null) RequireRank(bias, 1, "bias", "(C_out)");
        if (offset.DType != input.DType || weight.DType != input.DType || (mask != null && mask.DType != input.DType) || (bias != null && bias.DType != input.DType))
            throw new ArgumentException($"{op}: input ({input.DType}), offset ({offset.DType}), weight ({weight.DType}), mask and bias must have the same dtype");

        var (sh, sw) = DeformPair(stride, 1, "stride");
        var (ph, pw) = DeformPair(padding, 0, "padding");
        var (dh, dw) = DeformPair(dilation, 1, "dilation");
        if (sh <= 0 || sw <= 0) throw new ArgumentException($"{op}: stride must be positive, got [{sh}, {sw}]");
        if (ph < 0 || pw < 0) throw new ArgumentException($"{op}: padding must be non-negative, got [{ph}, {pw}]");
        if (dh <= 0 || dw <= 0) throw new ArgumentException($"{op}: dilation must be positive, got [{dh}, {dw}]");

        int n = input.Shape[0], c = input.Shape[1], h = input.Shape[2], w = input.Shape[3];
        int cOut = weight.Shape[0], cInG = weight.Shape[1], kh = weight.Shape[2], kw = weight.Shape[3];
        if (c == 0 || h == 0 || w == 0)
            throw new ArgumentException($"{op}: input must have non-zero channels and spatial size, got shape {ShapeUtil.Format(input.Shape)}");
        if (cInG == 0 || kh == 0 || kw == 0)
            throw new ArgumentException($"{op}: weight must have non-zero input channels and kernel size, got shape {ShapeUtil.Format(weight.Shape)}");
        if (c % cInG != 0)
            throw new ArgumentException($"{op}: input has {c} channels, which is not a multiple of weight.shape[1] = {cInG} (groups = C_in / weight.shape[1])");
        int groups = c / cInG;
        if (cOut % groups != 0)
            throw new ArgumentException($"{op}: weight has {cOut} output channels, which is not divisible by groups = {groups}");

        long extH = (long)dh * (kh - 1) + 1, extW = (long)dw * (kw - 1) + 1;
        long padH = h + 2L * ph, padW = w + 2L * pw;
        if (extH > padH || extW > padW)
            throw new ArgumentException($"{op}: dilated kernel {extH}x{extW} is larger than padded input {padH}x{padW}");
        long hoL = (padH - extH) / sh + 1, woL = (padW - extW) / sw + 1;
        int taps = kh * kw;
        // The column matrix and the sampling plan (4 corners per sample) must fit in one managed array.
        if ((long)c * taps * hoL * woL * 4 > Array.MaxLength || (long)n * cOut * hoL * woL > Array.MaxLength)
            throw new ArgumentException($"{op}: problem too large (C_in*kh*kw*H_out*W_out = {(long)c * taps * hoL * woL})");
        int ho = (int)hoL, wo = (int)woL;

        if (offset.Shape[0] != n)
            throw new ArgumentException($"{op}: offset has batch size {offset.Shape[0]} but input has {n}");
        if (offset.Shape[1] == 0 || offset.Shape[1] % (2 * taps) != 0)
            throw new ArgumentException($"{op}: offset has {offset.Shape[1]} channels, expected a positive multiple of 2*kh*kw = {2 * taps}");
        int offsetGroups = offset.Shape[1] / (2 * taps);
        if (c % offsetGroups != 0)
            throw new ArgumentException($"{op}: input has {c} channels, which is not divisible by offset_groups = {offsetGroups} (offset channels / (2*kh*kw))");
        if (offset.Shape[2] != ho || offset.Shape[3] != wo)
            throw new ArgumentException($"{op}: offset has spatial size [{offset.Shape[2]}, {offset.Shape[3]}] but the output size is [{ho}, {wo}]");
        if (mask != null && !mask.Shape.SequenceEqual([n, offsetGroups * taps, ho, wo]))
            throw new ArgumentException($"{op}: mask must have shape {ShapeUtil.Format([n, offsetGroups * taps, ho, wo])} (N, offset_groups*kh*kw, H_out, W_out), got {ShapeUtil.Format(mask.Shape)}");
        if (bias != null && bias.Shape[0] != cOut)
            throw new ArgumentException($"{op}: bias must have shape [{cOut}], got {ShapeUtil.Format(bias.Shape)}");
        return new DeformConvShape(n, c, h, w, cOut, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, groups, offsetGroups, mask != null);

        static void RequireRank(Tensor t, int rank, string name, string layout)
        {
            if (t.Rank != rank)
                throw new ArgumentException($"{op}: {name} must be {rank}-D {layout}, got shape {ShapeUtil.Format(t.Shape)}");
        }
    }

    private static (int, int) DeformPair(int[]? v, int fallback, string name) => v switch
    {
        null => (fallback, fallback),
        [var a] => (a, a),
        [var a, var b] => (a, b),
        _ => throw new ArgumentException($"deform_conv2d: {name} must have 1 or 2 values, got {v.Length}"),
    };
}
