using ConvLab.Autograd;
using ConvLab.Autograd.Nodes;
using ConvLab.Kernels;

namespace ConvLab.NN.Functional;

public static partial class F
{
    // ------------------------------------------------------------------ max pooling

    /// <summary>1-D max pooling of (N, C, L) or (C, L); stride defaults to the kernel size.</summary>
    public static Tensor MaxPool1d(Tensor input, int[] kernelSize, int[]? stride = null, int[]? padding = null, int[]? dilation = null, bool ceilMode = false) =>
        MaxPoolNd("max_pool1d", 1, input, kernelSize, stride, padding, dilation, ceilMode, false).Output;

    /// <summary>2-D max pooling of (N, C, H, W) or (C, H, W); stride defaults to the kernel size.</summary>
    public static Tensor MaxPool2d(Tensor input, int[] kernelSize, int[]? stride = null, int[]? padding = null, int[]? dilation = null, bool ceilMode = false) =>
        MaxPoolNd("max_pool2d", 2, input, kernelSize, stride, padding, dilation, ceilMode, false).Output;

    /// <summary>3-D max pooling of (N, C, D, H, W) or (C, D, H, W); stride defaults to the kernel size.</summary>
    public static Tensor MaxPool3d(Tensor input, int[] kernelSize, int[]? stride = null, int[]? padding = null, int[]? dilation = null, bool ceilMode = false) =>
        MaxPoolNd("max_pool3d", 3, input, kernelSize, stride, padding, dilation, ceilMode, false).Output;

    /// <summary>1-D max pooling that also returns the int64 argmax indices (flat within each (N, C) plane).</summary>
    public static (Tensor Output, Tensor Indices) MaxPool1dWithIndices(Tensor input, int[] kernelSize, int[]? stride = null, int[]? padding = null, int[]? dilation = null, bool ceilMode = false) =>
        MaxPoolNd("max_pool1d", 1, input, kernelSize, stride, padding, dilation, ceilMode);

    /// <summary>2-D max pooling that also returns the int64 argmax indices (flat within each (N, C) plane).</summary>
    public static (Tensor Output, Tensor Indices) MaxPool2dWithIndices(Tensor input, int[] kernelSize, int[]? stride = null, int[]? padding = null, int[]? dilation = null, bool ceilMode = false) =>
        MaxPoolNd("max_pool2d", 2, input, kernelSize, stride, padding, dilation, ceilMode);

    /// <summary>3-D max pooling that also returns the int64 argmax indices (flat within each (N, C) plane).</summary>
    public static (Tensor Output, Tensor Indices) MaxPool3dWithIndices(Tensor input, int[] kernelSize, int[]? stride = null, int[]? padding = null, int[]? dilation = null, bool ceilMode = false) =>
        MaxPoolNd("max_pool3d", 3, input, kernelSize, stride, padding, dilation, ceilMode);

    // ------------------------------------------------------------------ average pooling

    /// <summary>1-D average pooling of (N, C, L) or (C, L) with PyTorch's divisor rules.</summary>
    public static Tensor AvgPool1d(Tensor input, int[] kernelSize, int[]? stride = null, int[]? padding = null, bool ceilMode = false, bool countIncludePad = true) =>
        AvgPoolNd("avg_pool1d", 1, input, kernelSize, stride, padding, ceilMode, countIncludePad, null);

    /// <summary>2-D average pooling of (N, C, H, W) or (C, H, W) with PyTorch's divisor rules; a non-null <paramref name="divisorOverride"/> replaces the window size.</summary>
    public static Tensor AvgPool2d(Tensor input, int[] kernelSize, int[]? stride = null, int[]? padding = null, bool ceilMode = false, bool countIncludePad = true, int? divisorOverride = null) =>
        AvgPoolNd("avg_pool2d", 2, input, kernelSize, stride, padding, ceilMode, countIncludePad, divisorOverride);

    /// <summary>3-D average pooling of (N, C, D, H, W) or (C, D, H, W) with PyTorch's divisor rules; a non-null <paramref name="divisorOverride"/> replaces the window size.</summary>
    public static Tensor AvgPool3d(Tensor input, int[] kernelSize, int[]? stride = null, int[]? padding = null, bool ceilMode = false, bool countIncludePad = true, int? divisorOverride = null) =>
        AvgPoolNd("avg_pool3d", 3, input, kernelSize, stride, padding, ceilMode, countIncludePad, divisorOverride);

    // ------------------------------------------------------------------ adaptive pooling

    /// <summary>Adaptive 1-D average pooling to <paramref name="outputSize"/> (null entry = keep the input size).</summary>
    public static Tensor AdaptiveAvgPool1d(Tensor input, int?[] outputSize) => AdaptiveAvgPoolNd("adaptive_avg_pool1d", 1, input, outputSize);

    /// <summary>Adaptive 2-D average pooling to <paramref name="outputSize"/> (one entry for both dims; null entry = keep the input size).</summary>
    public static Tensor AdaptiveAvgPool2d(Tensor input, int?[] outputSize) => AdaptiveAvgPoolNd("adaptive_avg_pool2d", 2, input, outputSize);

    /// <summary>Adaptive 3-D average pooling to <paramref name="outputSize"/> (one entry for all dims; null entry = keep the input size).</summary>
    public static Tensor AdaptiveAvgPool3d(Tensor input, int?[] outputSize) => AdaptiveAvgPoolNd("adaptive_avg_pool3d", 3, input, outputSize);

    /// <summary>Adaptive 1-D max pooling to <paramref name="outputSize"/>.</summary>
    public static Tensor AdaptiveMaxPool1d(Tensor input, int?[] outputSize) => AdaptiveMaxPoolNd("adaptive_max_pool1d", 1, input, outputSize, false).Output;

    /// <summary>Adaptive 2-D max pooling to <paramref name="outputSize"/>.</summary>
    public static Tensor AdaptiveMaxPool2d(Tensor input, int?[] outputSize) => AdaptiveMaxPoolNd("adaptive_max_pool2d", 2, input, outputSize, false).Output;

    /// <summary>Adaptive 3-D max pooling to <paramref name="outputSize"/>.</summary>
    public static Tensor AdaptiveMaxPool3d(Tensor input, int?[] outputSize) => AdaptiveMaxPoolNd("adaptive_max_pool3d", 3, input, outputSize, false).Output;

    /// <summary>Adaptive 1-D max pooling with int64 argmax indices (flat within each plane).</summary>
    public static (Tensor Output, Tensor Indices) AdaptiveMaxPool1dWithIndices(Tensor input, int?[] outputSize) => AdaptiveMaxPoolNd("adaptive_max_pool1d", 1, input, outputSize);

    /// <summary>Adaptive 2-D max pooling with int64 argmax indices (flat within each plane).</summary>
    public static (Tensor Output, Tensor Indices) AdaptiveMaxPool2dWithIndices(Tensor input, int?[] outputSize) => AdaptiveMaxPoolNd("adaptive_max_pool2d", 2, input, outputSize);

    /// <summary>Adaptive 3-D max pooling with int64 argmax indices (flat within each plane).</summary>
    public static (Tensor Output, Tensor Indices) AdaptiveMaxPool3dWithIndices(Tensor input, int?[] outputSize) => AdaptiveMaxPoolNd("adaptive_max_pool3d", 3, input, outputSize);

    /// <summary>Global average pooling: (N, C, H, W) → (N, C, 1, 1), or (C, H, W) → (C, 1, 1).</summary>
    public static Tensor GlobalAvgPool2d(Tensor input) => AdaptiveAvgPoolNd("adaptive_avg_pool2d", 2, input, [1, 1]);

    // ------------------------------------------------------------------ shared machinery

    /// <summary>
    /// Expands a per-dimension size list to <paramref name="nd"/> entries (one entry = every dim; null or
    /// empty = <paramref name="fallback"/>) and checks each entry is at least <paramref name="min"/>.
    /// </summary>
    internal static int[] PoolSizes(string op, string name, int nd, int[]? values, int[]? fallback, int min)
    {
        if (values == null || values.Length == 0)
            values = fallback ?? throw new ArgumentException($"{op}: {name} must be given");
        if (values.Length != 1 && values.Length != nd)
            throw new ArgumentException($"{op}: {name} must have 1 or {nd} entries, got {values.Length} ({ShapeUtil.Format(values)})");
        var r = values.Length == 1 ? Enumerable.Repeat(values[0], nd).ToArray() : values.ToArray();
        if (r.Any(v => v < min))
            throw new ArgumentException($"{op}: {name} must be {(min > 0 ? "positive" : "non-negative")}, got {ShapeUtil.Format(r)}");
        return r;
    }

    /// <summary>Validates input-independent sliding-pool attributes (also used by the modules' constructors).</summary>
    internal static (int[] Kernel, int[] Stride, int[] Padding, int[] Dilation) PoolAttrs(string op, int nd, int[] kernelSize, int[]? stride, int[]? padding, int[]? dilation)
    {
        var k = PoolSizes(op, "kernel_size", nd, kernelSize, null, 1);
        var s = PoolSizes(op, "stride", nd, stride, k, 1);
        var p = PoolSizes(op, "padding", nd, padding, [0], 0);
        var d = PoolSizes(op, "dilation", nd, dilation, [1], 1);
        for (int i = 0; i < nd; i++)
            if (p[i] > k[i] / 2)
                throw new ArgumentException($"{op}: padding {p[i]} should be at most half of kernel size {k[i]}");
        return (k, s, p, d);
    }

    /// <summary>Checks the rank ((C, *) or (N, C, *)) and returns the detached contiguous input, the leading shape and the spatial sizes.</summary>
    private static (Tensor X, int[] Lead, int[] Spatial, int Planes) PoolInput(string op, int nd, Tensor input)
    {
        input.RequireFloat(op);
        if (input.Rank != nd + 1 && input.Rank != nd + 2)
            throw new ArgumentException($"{op}: expected a {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, got shape {ShapeUtil.Format(input.Shape)}");
        var spatial = input.Shape[^nd..].ToArray();
        if (spatial.Any(v => v <= 0))
            throw new ArgumentException($"{op}: spatial sizes must be positive, got input shape {ShapeUtil.Format(input.Shape)}");
        var lead = input.Shape[..^nd].ToArray();
        return (input.Detach().Contiguous(), lead, spatial, ShapeUtil.Numel(lead));
    }

    /// <summary>PyTorch's pooling output sizes, after checking that every window fits the padded input.</summary>
    private static PoolWindows SlidingWindows(string op, int[] spatial, int[] k, int[] s, int[] p, int[] d, bool ceilMode, bool countIncludePad)
    {
        int nd = spatial.Length;
        var outSize = new int[nd];
        for (int i = 0; i < nd; i++)
        {
            long effective = (long)(k[i] - 1) * d[i] + 1, padded = spatial[i] + 2L * p[i];
            if (effective > padded)
                throw new ArgumentException($"{op}: kernel {effective} is larger than padded input {padded}" +
                    (d[i] > 1 ? $" (kernel_size {k[i]}, dilation {d[i]})" : "") + $" in spatial dim {i}");
            long o = (padded - effective + (ceilMode ? s[i] - 1 : 0)) / s[i] + 1;
            // With ceil_mode the last window must start inside the input or the left padding.
            if (ceilMode && (o - 1) * s[i] >= spatial[i] + (long)p[i]) o--;
            outSize[i] = (int)o;
        }
        return PoolWindows.Sliding(spatial, outSize, k, s, p, d, countIncludePad);
    }

    private static int[] PoolOutShape(int[] lead, PoolWindows w, int nd) => [.. lead, .. w.Out[(3 - nd)..]];

    private static (Tensor Output, Tensor Indices) MaxPoolNd(string op, int nd, Tensor input, int[] kernelSize, int[]? stride, int[]? padding, int[]? dilation, bool ceilMode, bool wantIndices = true)
    {
        var (k, s, p, d) = PoolAttrs(op, nd, kernelSize, stride, padding, dilation);
        var (x, lead, spatial, planes) = PoolInput(op, nd, input);
        var w = SlidingWindows(op, spatial, k, s, p, d, ceilMode, true);
        for (int i = 0; i < nd; i++)
        {
            int c = Array.IndexOf(w.Count[3 - nd + i], 0);
            if (c >= 0)
                throw new ArgumentException($"{op}: window {c} of spatial dim {i} covers only padding (kernel_size {k[i]}, dilation {d[i]}, padding {p[i]}, input {spatial[i]})");
        }
        if (input.IsMeta) return MetaMaxPool(op, input, lead, w, nd, k, s, p, d);
        var padded = nd == 2 && d[0] == 1 && d[1] == 1 ? PaddedPlain2d(w, k, s, p) : null;
        var r = MaxPoolRun(op, input, x, lead, planes, w, nd, wantIndices, padded);
        Analysis.OpRecorder.Record(r.Output, op, [input], ("kernel_size", k), ("stride", s), ("padding", p), ("dilation", d), ("ceil_mode", ceilMode));
        return r;
    }

    private static (Tensor Output, Tensor Indices) MetaMaxPool(string op, Tensor input, int[] lead, PoolWindows w, int nd, int[]? k, int[]? s, int[]? p, int[]? d)
    {
        var shape = PoolOutShape(lead, w, nd);
        return (Analysis.MetaOps.Pool(op, input, shape, w, nd, true, k, s, p, d), Analysis.MetaOps.Indices(shape));
    }

    private static (Tensor Output, Tensor Indices) AdaptiveMaxPoolNd(string op, int nd, Tensor input, int?[] outputSize, bool wantIndices = true)
    {
        var (x, lead, spatial, planes) = PoolInput(op, nd, input);
        var w = PoolWindows.Adaptive(spatial, AdaptiveSizes(op, nd, spatial, outputSize));
        if (input.IsMeta) return MetaMaxPool(op, input, lead, w, nd, null, null, null, null);
        var r = MaxPoolRun(op, input, x, lead, planes, w, nd, wantIndices);
        Analysis.OpRecorder.Record(r.Output, op, [input], ("output_size", w.Out[(3 - nd)..]));
        return r;
    }

    /// <summary>
    /// For 2-d windows clipped by padding or by ceil_mode's partial last window: the windows of the same pooling over
    /// the input surrounded by −∞, which are all full blocks, so the plain SIMD kernel serves them. Null when the plain
    /// kernel applies as it is or not even then.
    /// </summary>
    private static MaxPadding? PaddedPlain2d(PoolWindows w, int[] k, int[] s, int[] p)
    {
        if (Pool.Plain2d(w) != null) return null;
        int h2 = (w.Out[1] - 1) * s[0] + k[0], w2 = (w.Out[2] - 1) * s[1] + k[1];
        var full = PoolWindows.Sliding([h2, w2], [w.Out[1], w.Out[2]], k, s, [0, 0], [1, 1], true);
        return Pool.Plain2d(full) is { } g
            ? new(full, g, Kernels.Pad.IndexMap(w.In[1], p[0], h2 - p[0] - w.In[1], PadMode.Constant), Kernels.Pad.IndexMap(w.In[2], p[1], w2 - p[1] - w.In[2], PadMode.Constant), p[0], p[1])
            : null;
    }

    private static (Tensor Output, Tensor Indices) MaxPoolRun(string op, Tensor input, Tensor x, int[] lead, int planes, PoolWindows w, int nd, bool wantIndices, MaxPadding? padded = null)
    {
        var outShape = PoolOutShape(lead, w, nd);
        var y = Tensor.Zeros(outShape, x.DType);
        if (padded != null && PaddedMaxPool(x, y, planes, w, padded, wantIndices) is { } taps2)
        {
            var ind = wantIndices ? Tensor.Zeros(outShape, DType.Int64) : null;
            if (ind != null) Pool.PaddedTapIndices(taps2, ind.Buffer<long>(), planes, w, padded.Geometry, padded.Top, padded.Left);
            if (Engine.WillRecord(input))
                Engine.Record(y, new MaxPool2dTapsBackward(PoolNodeName(op), taps2, input.Shape.ToArray(), planes, padded.Full, padded.Geometry, padded), input);
            return (y, ind!);
        }
        if (Pool.Plain2d(w) is { } g)
        {
            // Byte taps within the window are all the backward needs: 1/8 of the int64 indices' traffic.
            var taps = StorageRecycler.Take<byte>(y.Numel);
            var ind = wantIndices ? Tensor.Zeros(outShape, DType.Int64) : null;
            if (x.DType == DType.Float32)
                Pool.MaxForward2d(x.Buffer<float>(), x.StorageOffset, y.Buffer<float>(), taps, ind?.Buffer<long>(), planes, w, g);
            else
                Pool.MaxForward2d(x.Buffer<double>(), x.StorageOffset, y.Buffer<double>(), taps, ind?.Buffer<long>(), planes, w, g);
            if (Engine.WillRecord(input))
                Engine.Record(y, new MaxPool2dTapsBackward(PoolNodeName(op), taps, input.Shape.ToArray(), planes, w, g), input);
            return (y, ind!);
        }
        var idx = Tensor.Zeros(outShape, DType.Int64);
        if (x.DType == DType.Float32)
            Pool.MaxForward(x.Buffer<float>(), x.StorageOffset, y.Buffer<float>(), idx.Buffer<long>(), planes, w);
        else
            Pool.MaxForward(x.Buffer<double>(), x.StorageOffset, y.Buffer<double>(), idx.Buffer<long>(), planes, w);
        if (Engine.WillRecord(input))
            Engine.Record(y, new MaxPoolBackward(PoolNodeName(op), idx, input.Shape.ToArray(), planes, w), input);
        return (y, idx);
    }

    /// <summary>
    /// Max pooling through the −∞-padded copy of <paramref name="x"/> (<see cref="PaddedPlain2d"/>); the window taps, or
    /// null when some output is −∞: such a window may hold only −∞ inputs, whose argmax PyTorch puts on the first real
    /// tap while the padded copy would put it on padding, so the caller takes the generic loop instead.
    /// </summary>
    private static byte[]? PaddedMaxPool(Tensor x, Tensor y, int planes, PoolWindows w, MaxPadding pad, bool wantIndices)
    {
        int plane2 = pad.Full.InPlane;
        var taps = StorageRecycler.Take<byte>(y.Numel);
        int[] inSize = [w.In[1], w.In[2]];
        if (x.DType == DType.Float32)
        {
            var xp = StorageRecycler.Take<float>(planes * plane2, clear: false);
            Kernels.Pad.Transfer(false, x.Buffer<float>(), x.StorageOffset, xp, 0, planes, inSize, [pad.RowMap, pad.ColMap], float.NegativeInfinity);
            Pool.MaxForward2d(xp, 0, y.Buffer<float>(), taps, null, planes, pad.Full, pad.Geometry);
            if (Array.IndexOf(y.Buffer<float>(), float.NegativeInfinity, 0, y.Numel) >= 0) return null;
        }
        else
        {
            var xp = StorageRecycler.Take<double>(planes * plane2, clear: false);
            Kernels.Pad.Transfer(false, x.Buffer<double>(), x.StorageOffset, xp, 0, planes, inSize, [pad.RowMap, pad.ColMap], double.NegativeInfinity);
            Pool.MaxForward2d(xp, 0, y.Buffer<double>(), taps, null, planes, pad.Full, pad.Geometry);
            if (Array.IndexOf(y.Buffer<double>(), double.NegativeInfinity, 0, y.Numel) >= 0) return null;
        }
        return taps;
    }

    private static Tensor AvgPoolNd(string op, int nd, Tensor input, int[] kernelSize, int[]? stride, int[]? padding, bool ceilMode, bool countIncludePad, int? divisorOverride)
    {
        var (k, s, p, d) = PoolAttrs(op, nd, kernelSize, stride, padding, null);
        if (divisorOverride == 0) throw new ArgumentException($"{op}: divisor_override must be non-zero, got 0");
        var (x, lead, spatial, planes) = PoolInput(op, nd, input);
        var w = SlidingWindows(op, spatial, k, s, p, d, ceilMode, countIncludePad);
        if (input.IsMeta) return Analysis.MetaOps.Pool(op, input, PoolOutShape(lead, w, nd), w, nd, false, k, s, p, d);
        return Analysis.OpRecorder.Record(AvgPoolRun(op, input, x, lead, planes, w, nd, divisorOverride ?? 0), op, [input],
            ("kernel_size", k), ("stride", s), ("padding", p), ("ceil_mode", ceilMode), ("count_include_pad", countIncludePad), ("divisor_override", divisorOverride));
    }

    private static Tensor AdaptiveAvgPoolNd(string op, int nd, Tensor input, int?[] outputSize)
    {
        var (x, lead, spatial, planes) = PoolInput(op, nd, input);
        var w = PoolWindows.Adaptive(spatial, AdaptiveSizes(op, nd, spatial, outputSize));
        if (input.IsMeta) return Analysis.MetaOps.Pool(op, input, PoolOutShape(lead, w, nd), w, nd, false, null, null, null, null);
        return Analysis.OpRecorder.Record(AvgPoolRun(op, input, x, lead, planes, w, nd, 0), op, [input], ("output_size", w.Out[(3 - nd)..]), ("input_size", spatial));
    }

    private static Tensor AvgPoolRun(string op, Tensor input, Tensor x, int[] lead, int planes, PoolWindows w, int nd, int divisorOverride)
    {
        var y = Tensor.Zeros(PoolOutShape(lead, w, nd), x.DType);
        if (x.DType == DType.Float32)
            Pool.AvgForward(x.Buffer<float>(), x.StorageOffset, y.Buffer<float>(), planes, w, divisorOverride);
        else
            Pool.AvgForward(x.Buffer<double>(), x.StorageOffset, y.Buffer<double>(), planes, w, divisorOverride);
        if (!Engine.WillRecord(input)) return y;
        return Engine.Record(y, new AvgPoolBackward(PoolNodeName(op), input.Shape.ToArray(), planes, w, divisorOverride), input);
    }

    /// <summary>Output sizes of adaptive pooling: one entry for every dim or one per dim, null = keep the input size.</summary>
    internal static int[] AdaptiveSizes(string op, int nd, int[]? spatial, int?[] outputSize)
    {
        if (outputSize == null || (outputSize.Length != 1 && outputSize.Length != nd))
            throw new ArgumentException($"{op}: output_size must have 1 or {nd} entries, got {outputSize?.Length ?? 0}");
        var r = new int[nd];
        for (int i = 0; i < nd; i++)
        {
            var v = outputSize[outputSize.Length == 1 ? 0 : i];
            if (v is <= 0)
                throw new ArgumentException($"{op}: output_size must be positive, got [{string.Join(", ", outputSize.Select(e => e?.ToString() ?? "None"))}]");
            r[i] = v ?? spatial?[i] ?? 0;
        }
        return r;
    }

    /// <summary>max_pool2d → MaxPool2DBackward, as PyTorch names its grad_fn.</summary>
    private static string PoolNodeName(string op) =>
        string.Concat(op[..^1].Split('_').Select(part => char.ToUpperInvariant(part[0]) + part[1..])) + "DBackward";
}
