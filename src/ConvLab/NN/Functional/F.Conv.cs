using ConvLab.Autograd;
using ConvLab.Autograd.Nodes;
using ConvLab.Kernels;

namespace ConvLab.NN.Functional;

public static partial class F
{
    /// <summary>1-d convolution (PyTorch's <c>F.conv1d</c>, plus <c>nn.Conv1d</c>'s padding modes). Input (N, C_in, L) or (C_in, L), weight (C_out, C_in/groups, k).</summary>
    public static Tensor Conv1d(Tensor input, Tensor weight, Tensor? bias = null, int[]? stride = null, int[]? padding = null, int[]? dilation = null, int groups = 1, string paddingMode = "zeros", ConvAlgorithm algorithm = ConvAlgorithm.Auto)
        => ConvNd("conv1d", 1, input, weight, bias, stride, padding, null, dilation, groups, paddingMode, algorithm);

    /// <summary>1-d convolution with padding "same" (stride 1 only) or "valid".</summary>
    public static Tensor Conv1d(Tensor input, Tensor weight, string padding, Tensor? bias = null, int[]? stride = null, int[]? dilation = null, int groups = 1, string paddingMode = "zeros", ConvAlgorithm algorithm = ConvAlgorithm.Auto)
        => ConvNd("conv1d", 1, input, weight, bias, stride, null, padding, dilation, groups, paddingMode, algorithm);

    /// <summary>
    /// 2-d convolution (PyTorch's <c>F.conv2d</c>, plus <c>nn.Conv2d</c>'s padding modes: with
    /// <paramref name="paddingMode"/> reflect/replicate/circular the input is padded with that mode and
    /// convolved without padding). Input (N, C_in, H, W) or (C_in, H, W), weight (C_out, C_in/groups, kH, kW).
    /// Sizes take one entry per spatial dimension or a single entry for all. <c>algorithm</c> forces how it is
    /// computed (<see cref="ConvAlgorithm"/>; every pass the algorithm has, the others on Auto's choice); forcing one
    /// that cannot run the shape throws an <see cref="ArgumentException"/> saying why.
    /// </summary>
    public static Tensor Conv2d(Tensor input, Tensor weight, Tensor? bias = null, int[]? stride = null, int[]? padding = null, int[]? dilation = null, int groups = 1, string paddingMode = "zeros", ConvAlgorithm algorithm = ConvAlgorithm.Auto)
        => ConvNd("conv2d", 2, input, weight, bias, stride, padding, null, dilation, groups, paddingMode, algorithm);

    /// <summary>2-d convolution with padding "same" (stride 1 only; odd totals put the extra row/column at the end, as PyTorch) or "valid".</summary>
    public static Tensor Conv2d(Tensor input, Tensor weight, string padding, Tensor? bias = null, int[]? stride = null, int[]? dilation = null, int groups = 1, string paddingMode = "zeros", ConvAlgorithm algorithm = ConvAlgorithm.Auto)
        => ConvNd("conv2d", 2, input, weight, bias, stride, null, padding, dilation, groups, paddingMode, algorithm);

    /// <summary>3-d convolution (PyTorch's <c>F.conv3d</c>). Input (N, C_in, D, H, W) or unbatched, weight (C_out, C_in/groups, kD, kH, kW).</summary>
    public static Tensor Conv3d(Tensor input, Tensor weight, Tensor? bias = null, int[]? stride = null, int[]? padding = null, int[]? dilation = null, int groups = 1, string paddingMode = "zeros", ConvAlgorithm algorithm = ConvAlgorithm.Auto)
        => ConvNd("conv3d", 3, input, weight, bias, stride, padding, null, dilation, groups, paddingMode, algorithm);

    /// <summary>3-d convolution with padding "same" (stride 1 only) or "valid".</summary>
    public static Tensor Conv3d(Tensor input, Tensor weight, string padding, Tensor? bias = null, int[]? stride = null, int[]? dilation = null, int groups = 1, string paddingMode = "zeros", ConvAlgorithm algorithm = ConvAlgorithm.Auto)
        => ConvNd("conv3d", 3, input, weight, bias, stride, null, padding, dilation, groups, paddingMode, algorithm);

    /// <summary>1-d transposed convolution (PyTorch's <c>F.conv_transpose1d</c>); weight (C_in, C_out/groups, k).</summary>
    public static Tensor ConvTranspose1d(Tensor input, Tensor weight, Tensor? bias = null, int[]? stride = null, int[]? padding = null, int[]? outputPadding = null, int groups = 1, int[]? dilation = null, ConvAlgorithm algorithm = ConvAlgorithm.Auto)
        => ConvTransposeNd("conv_transpose1d", 1, input, weight, bias, stride, padding, outputPadding, groups, dilation, algorithm);

    /// <summary>
    /// 2-d transposed convolution (PyTorch's <c>F.conv_transpose2d</c>), the adjoint of conv2d; weight
    /// (C_in, C_out/groups, kH, kW). Output size (in-1)·stride - 2·padding + dilation·(k-1) + outputPadding + 1.
    /// </summary>
    public static Tensor ConvTranspose2d(Tensor input, Tensor weight, Tensor? bias = null, int[]? stride = null, int[]? padding = null, int[]? outputPadding = null, int groups = 1, int[]? dilation = null, ConvAlgorithm algorithm = ConvAlgorithm.Auto)
        => ConvTransposeNd("conv_transpose2d", 2, input, weight, bias, stride, padding, outputPadding, groups, dilation, algorithm);

    /// <summary>3-d transposed convolution (PyTorch's <c>F.conv_transpose3d</c>); weight (C_in, C_out/groups, kD, kH, kW).</summary>
    public static Tensor ConvTranspose3d(Tensor input, Tensor weight, Tensor? bias = null, int[]? stride = null, int[]? padding = null, int[]? outputPadding = null, int groups = 1, int[]? dilation = null, ConvAlgorithm algorithm = ConvAlgorithm.Auto)
        => ConvTransposeNd("conv_transpose3d", 3, input, weight, bias, stride, padding, outputPadding, groups, dilation, algorithm);

    /// <summary>
    /// CoordConv: appends channels yy (linspace(-1, 1, H) along H), xx (along W) and, with
    /// <paramref name="withR"/>, sqrt(yy² + xx²), then applies conv2d with <paramref name="weight"/>
    /// (C_out, (C_in + 2 or 3)/groups, kH, kW).
    /// </summary>
    public static Tensor CoordConv2d(Tensor input, Tensor weight, Tensor? bias = null, int[]? stride = null, int[]? padding = null, int[]? dilation = null, int groups = 1, bool withR = false,
        ConvAlgorithm algorithm = ConvAlgorithm.Auto)
    {
        const string op = "coord_conv2d";
        input.RequireFloat(op);
        if (input.Rank is not (3 or 4))
            throw new ArgumentException($"{op}: expected 3-D (unbatched) or 4-D (batched) input, got shape {ShapeUtil.Format(input.Shape)}");
        bool batched = input.Rank == 4;
        var x = batched ? input : input.Unsqueeze(0);
        int n = x.Shape[0], h = x.Shape[2], w = x.Shape[3];
        Tensor yy, xx;
        using (new NoGrad())
        {
            yy = Tensor.Linspace(-1, 1, h, x.DType).Reshape(1, 1, h, 1).Expand(n, 1, h, w);
            xx = Tensor.Linspace(-1, 1, w, x.DType).Reshape(1, 1, 1, w).Expand(n, 1, h, w);
        }
        var parts = new List<Tensor> { x, yy, xx };
        if (withR) using (new NoGrad()) parts.Add(yy.Mul(yy).Add(xx.Mul(xx)).Sqrt());
        var y = ConvNd(op, 2, Tensor.Cat(parts, 1), weight, bias, stride, padding, null, dilation, groups, "zeros", algorithm);
        return batched ? y : y.Squeeze(0);
    }

    /// <summary>Expands a per-dimension size list: null → default, one entry → every dimension; checks the minimum.</summary>
    internal static int[] ConvSizes(string op, string name, int[]? v, int d, int fallback, int min)
    {
        int[] r = v == null ? Enumerable.Repeat(fallback, d).ToArray()
            : v.Length == 1 ? Enumerable.Repeat(v[0], d).ToArray()
            : v.Length == d ? (int[])v.Clone()
            : throw new ArgumentException($"{op}: {name} must have 1 or {d} entries, got {v.Length} ([{string.Join(", ", v)}])");
        if (r.Any(x => x < min))
            throw new ArgumentException($"{op}: {name} must be {(min > 0 ? "positive" : "non-negative")}, got [{string.Join(", ", r)}]");
        return r;
    }

    /// <summary>Rank, dtype, group and bias checks shared by convolutions; returns the batched input.</summary>
    private static Tensor ConvCommonChecks(string op, int d, Tensor input, Tensor weight, Tensor? bias, int groups, int outChannels, string weightLayout)
    {
        input.RequireFloat(op); weight.RequireFloat(op);
        if (input.Rank != d + 1 && input.Rank != d + 2)
            throw new ArgumentException($"{op}: expected {d + 1}-D (unbatched) or {d + 2}-D (batched) input, got shape {ShapeUtil.Format(input.Shape)}");
        if (weight.Rank != d + 2)
            throw new ArgumentException($"{op}: weight must be {d + 2}-D {weightLayout}, got shape {ShapeUtil.Format(weight.Shape)}");
        for (int i = 2; i < weight.Rank; i++)
            if (weight.Shape[i] < 1)
                throw new ArgumentException($"{op}: kernel sizes must be positive, got weight shape {ShapeUtil.Format(weight.Shape)}");
        if (groups < 1)
            throw new ArgumentException($"{op}: groups must be positive, got {groups}");
        if (bias != null && (bias.Rank != 1 || bias.Shape[0] != outChannels))
            throw new ArgumentException($"{op}: bias must have shape [{outChannels}], got {ShapeUtil.Format(bias.Shape)}");
        if (weight.DType != input.DType || (bias != null && bias.DType != input.DType))
            throw new ArgumentException($"{op}: input ({input.DType}), weight ({weight.DType}) and bias{(bias != null ? $" ({bias.DType})" : "")} must have the same dtype");
        return input.Rank == d + 2 ? input : input.Unsqueeze(0);
    }

    internal static Tensor ConvNd(string op, int d, Tensor input, Tensor weight, Tensor? bias, int[]? stride, int[]? padding, string? padString,
        int[]? dilation, int groups, string paddingMode, ConvAlgorithm algorithm = ConvAlgorithm.Auto)
    {
        int cout = weight.Rank > 0 ? weight.Shape[0] : 0;
        string layout = d switch { 1 => "(out_channels, in_channels/groups, k)", 2 => "(out_channels, in_channels/groups, kH, kW)", _ => "(out_channels, in_channels/groups, kD, kH, kW)" };
        var x = ConvCommonChecks(op, d, input, weight, bias, groups, cout, layout);
        bool batched = input.Rank == d + 2;
        var s = ConvSizes(op, "stride", stride, d, 1, 1);
        var dil = ConvSizes(op, "dilation", dilation, d, 1, 1);
        int cin = x.Shape[1];
        if (cout % groups != 0)
            throw new ArgumentException($"{op}: out_channels {cout} (weight shape {ShapeUtil.Format(weight.Shape)}) must be divisible by groups {groups}");
        if (cin != weight.Shape[1] * groups)
            throw new ArgumentException($"{op}: input has {cin} channels but weight expects {weight.Shape[1] * groups} (groups={groups}; weight shape {ShapeUtil.Format(weight.Shape)})");
        if (paddingMode is not ("zeros" or "reflect" or "replicate" or "circular"))
            throw new ArgumentException($"{op}: padding_mode must be 'zeros', 'reflect', 'replicate' or 'circular', got '{paddingMode}'");
        var kernel = weight.Shape[2..].ToArray();

        int[] padL, padR;
        if (padString != null)
        {
            if (padString == "valid") padL = padR = new int[d];
            else if (padString == "same")
            {
                if (s.Any(v => v != 1))
                    throw new ArgumentException($"{op}: padding='same' is not supported for strided convolutions (stride [{string.Join(", ", s)}])");
                padL = new int[d]; padR = new int[d];
                for (int i = 0; i < d; i++)
                {
                    int total = dil[i] * (kernel[i] - 1);
                    padL[i] = total / 2; padR[i] = total - padL[i];
                }
            }
            else throw new ArgumentException($"{op}: padding must be 'same', 'valid' or a list of sizes, got '{padString}'");
        }
        else padL = padR = ConvSizes(op, "padding", padding, d, 0, 0);

        if (paddingMode != "zeros" && (padL.Any(p => p > 0) || padR.Any(p => p > 0)))
        {
            var fpad = new int[2 * d];
            for (int i = 0; i < d; i++) { fpad[2 * (d - 1 - i)] = padL[i]; fpad[2 * (d - 1 - i) + 1] = padR[i]; }
            CheckPad(op, x.Shape, fpad, paddingMode);
            x = Pad(x, fpad, paddingMode);
            padL = padR = new int[d];
        }

        var inSize = x.Shape[2..].ToArray();
        var outSize = new int[d];
        for (int i = 0; i < d; i++)
        {
            long padded = (long)inSize[i] + padL[i] + padR[i], span = (long)dil[i] * (kernel[i] - 1) + 1;
            if (padded < span)
                throw new ArgumentException($"{op}: kernel size {kernel[i]} (dilation {dil[i]}, spanning {span}) is larger than the padded input size {padded} in spatial dimension {i} (input {ShapeUtil.Format(input.Shape)})");
            outSize[i] = (int)((padded - span) / s[i] + 1);
        }

        var geo = new ConvGeometry(x.Shape[0], cin, cout, groups, inSize, outSize, kernel, s, padL, dil);
        return Analysis.OpRecorder.Record(RunConv(op, x, weight, bias, geo, false, [x.Shape[0], cout, .. outSize], batched, algorithm), op, [x, weight, bias],
            ("stride", s), ("pad_begin", padL), ("pad_end", padR), ("dilation", dil), ("groups", groups));
    }

    internal static Tensor ConvTransposeNd(string op, int d, Tensor input, Tensor weight, Tensor? bias, int[]? stride, int[]? padding, int[]? outputPadding, int groups, int[]? dilation,
        ConvAlgorithm algorithm = ConvAlgorithm.Auto)
    {
        int coutG = weight.Rank > 1 ? weight.Shape[1] : 0;
        string layout = d switch { 1 => "(in_channels, out_channels/groups, k)", 2 => "(in_channels, out_channels/groups, kH, kW)", _ => "(in_channels, out_channels/groups, kD, kH, kW)" };
        var x = ConvCommonChecks(op, d, input, weight, bias, groups, coutG * Math.Max(groups, 1), layout);
        bool batched = input.Rank == d + 2;
        int cout = coutG * groups;
        var s = ConvSizes(op, "stride", stride, d, 1, 1);
        var pad = ConvSizes(op, "padding", padding, d, 0, 0);
        var opad = ConvSizes(op, "output_padding", outputPadding, d, 0, 0);
        var dil = ConvSizes(op, "dilation", dilation, d, 1, 1);
        int cin = x.Shape[1];
        if (cin != weight.Shape[0])
            throw new ArgumentException($"{op}: input has {cin} channels but weight expects {weight.Shape[0]} (weight shape {ShapeUtil.Format(weight.Shape)})");
        if (cin % groups != 0)
            throw new ArgumentException($"{op}: in_channels {cin} must be divisible by groups {groups}");
        for (int i = 0; i < d; i++)
            if (opad[i] >= s[i] && opad[i] >= dil[i])
                throw new ArgumentException($"{op}: output_padding must be smaller than either stride or dilation, got output_padding [{string.Join(", ", opad)}], stride [{string.Join(", ", s)}], dilation [{string.Join(", ", dil)}]");
        var kernel = weight.Shape[2..].ToArray();
        var inSize = x.Shape[2..].ToArray();
        var outSize = new int[d];
        for (int i = 0; i < d; i++)
        {
            long o = ((long)inSize[i] - 1) * s[i] - 2L * pad[i] + (long)dil[i] * (kernel[i] - 1) + opad[i] + 1;
            if (inSize[i] < 1 || o < 1 || o > int.MaxValue)
                throw new ArgumentException($"{op}: input size {inSize[i]} in spatial dimension {i} gives output size {o}, which must be positive (input {ShapeUtil.Format(input.Shape)}, padding {pad[i]}, kernel {kernel[i]})");
            outSize[i] = (int)o;
        }

        // The geometry of the convolution this op is the adjoint of: from the output back to the input.
        var geo = new ConvGeometry(x.Shape[0], cout, cin, groups, outSize, inSize, kernel, s, pad, dil);
        return Analysis.OpRecorder.Record(RunConv(op, x, weight, bias, geo, true, [x.Shape[0], cout, .. outSize], batched, algorithm), op, [x, weight, bias],
            ("stride", s), ("padding", pad), ("output_padding", opad), ("dilation", dil), ("groups", groups));
    }

    /// <summary>Runs a validated (transposed) convolution on the batched input, adds the bias, records the node.</summary>
    private static Tensor RunConv(string op, Tensor x, Tensor weight, Tensor? bias, ConvGeometry geo, bool transposed, int[] outShape, bool batched, ConvAlgorithm algorithm)
    {
        if (!Enum.IsDefined(algorithm))
            throw new ArgumentException($"{op}: algorithm must be one of {string.Join(", ", Enum.GetNames<ConvAlgorithm>())}, got {(int)algorithm}");
        if (ConvDispatch.WhyNot(algorithm, geo) is { } why)
            throw new ArgumentException($"{op}: algorithm {algorithm} cannot run this convolution: {why}");
        if (x.IsMeta)
        {
            var m = Analysis.MetaOps.Conv(op, x, bias, geo, transposed, outShape);
            return batched ? m : m.Squeeze(0);
        }
        var xc = x.Detach().Contiguous(); var wc = weight.Detach().Contiguous();
        var y = Tensor.Uninitialized(outShape, x.DType); // every algorithm writes all of dst
        ConvBackward.Run(transposed ? ConvPass.BackwardInput : ConvPass.Forward, xc, wc, y, geo, algorithm);
        if (bias != null)
        {
            var b = bias.Detach().Contiguous();
            int plane = ShapeUtil.Numel(outShape.AsSpan(2));
            if (y.DType == DType.Float32) Kernels.Conv.AddBias(y.Buffer<float>(), outShape[0], outShape[1], plane, b.Buffer<float>(), b.StorageOffset);
            else Kernels.Conv.AddBias(y.Buffer<double>(), outShape[0], outShape[1], plane, b.Buffer<double>(), b.StorageOffset);
        }
        if (Engine.WillRecord(x, weight, bias))
            y = Engine.Record(y, new ConvBackward(xc, wc, geo, transposed, bias != null, op, algorithm), x, weight, bias);
        return batched ? y : y.Squeeze(0);
    }
}
