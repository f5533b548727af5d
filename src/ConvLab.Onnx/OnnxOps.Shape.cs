using ConvLab.NN.Functional;

namespace ConvLab.Onnx;

internal static partial class OnnxOps
{
    /// <summary>Elements <paramref name="idx"/> along <paramref name="axis"/>, as views joined by cat (differentiable for float data).</summary>
    private static Tensor Take(Tensor x, int axis, int[] idx)
    {
        if (idx.Length == 0)
        {
            var shape = x.Shape.ToArray(); shape[axis] = 0;
            return Tensor.Zeros(shape, x.DType);
        }
        var parts = new List<Tensor>();
        int start = idx[0], len = 1;
        for (int i = 1; i <= idx.Length; i++)
        {
            if (i < idx.Length && idx[i] == start + len) { len++; continue; }
            parts.Add(x.Narrow(axis, start, len));
            if (i < idx.Length) { start = idx[i]; len = 1; }
        }
        return parts.Count == 1 ? parts[0].Contiguous() : Tensor.Cat(parts, axis);
    }

    private static Tensor?[] Constant(OnnxNode n, Tensor?[] x, bool training, long limit)
    {
        if (n.TensorAttr("value") is { } t) return [OnnxTensor.ToTensor(t, $"{n.File}: node '{n.Name}'")];
        if (n.Has("value_float")) return [Tensor.Scalar(n.Float("value_float", 0))];
        if (n.Floats("value_floats") is { } fs) return [Tensor.FromArray(fs, fs.Length)];
        if (n.Has("value_int")) return [Tensor.FromArray([n.Int("value_int", 0)])];
        if (n.Ints("value_ints") is { } ls) return [Tensor.FromArray(ls, ls.Length)];
        throw n.Error("no value attribute ConvLab reads (value, value_float(s), value_int(s))");
    }

    private static Tensor?[] Shape(OnnxNode n, Tensor?[] x, bool training, long limit)
    {
        var t = In(n, x, 0);
        int r = t.Rank;
        long s = n.Int("start", 0), e = n.Int("end", r);
        s = Math.Clamp(s < 0 ? s + r : s, 0, r); e = Math.Clamp(e < 0 ? e + r : e, 0, r);
        var dims = t.Shape.ToArray().Select(v => (long)v).Skip((int)s).Take((int)Math.Max(0, e - s)).ToArray();
        return [Tensor.FromArray(dims, dims.Length)];
    }

    private static Tensor?[] Gather(OnnxNode n, Tensor?[] x, bool training, long limit)
    {
        var data = In(n, x, 0); var ind = In(n, x, 1);
        if (ind.IsFloatingPoint) throw n.Error("indices must be integers");
        int axis = Axis(n, n.Int("axis", 0), data.Rank);
        int size = data.Shape[axis];
        var idx = ind.ToInt64Array().Select(i => i < -size || i >= size ? throw n.Error($"index {i} is out of range for size {size}") : (int)(i < 0 ? i + size : i)).ToArray();
        var y = Take(data, axis, idx);
        var shape = data.Shape[..axis].ToArray().Concat(ind.Shape.ToArray()).Concat(data.Shape[(axis + 1)..].ToArray()).ToArray();
        return [y.Reshape(shape)];
    }

    private static Tensor?[] Slice(OnnxNode n, Tensor?[] x, bool training, long limit)
    {
        var t = In(n, x, 0);
        long[] starts, ends;
        long[]? axes, steps = null;
        if (n.Opset < 10)
        {
            starts = n.Ints("starts") ?? throw n.Error("starts is required");
            ends = n.Ints("ends") ?? throw n.Error("ends is required");
            axes = n.Ints("axes");
        }
        else
        {
            starts = Longs(In(n, x, 1)); ends = Longs(In(n, x, 2));
            axes = Opt(x, 3) is { } a ? Longs(a) : null;
            steps = Opt(x, 4) is { } st ? Longs(st) : null;
        }
        axes ??= Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray();
        if (ends.Length != starts.Length || axes.Length != starts.Length || (steps != null && steps.Length != starts.Length))
            throw n.Error("starts, ends, axes and steps must have the same length");
        var y = t;
        for (int i = 0; i < starts.Length; i++)
        {
            int ax = Axis(n, axes[i], t.Rank);
            long dim = t.Shape[ax], step = steps?[i] ?? 1;
            if (step == 0) throw n.Error("steps must be non-zero");
            long s = starts[i] < 0 ? starts[i] + dim : starts[i], e = ends[i] < 0 ? ends[i] + dim : ends[i];
            if (step > 0) { s = Math.Clamp(s, 0, dim); e = Math.Clamp(e, 0, dim); }
            else { s = Math.Clamp(s, -1, dim - 1); e = Math.Clamp(e, -1, dim - 1); }
            var idx = new List<int>();
            for (long j = s; step > 0 ? j < e : j > e; j += step) idx.Add((int)j);
            y = step == 1 && idx.Count > 0 ? y.Narrow(ax, (int)s, idx.Count) : Take(y, ax, [.. idx]);
        }
        return [y.Contiguous()];
    }

    private static int[] ShapeArg(OnnxNode n, Tensor shape, long limit)
    {
        var v = Longs(shape);
        long total = 1;
        foreach (var d in v)
        {
            if (d < 0 || d > int.MaxValue) throw n.Error($"shape value {d} is invalid");
            total *= Math.Max(d, 1);
            CheckSize(n, total, limit);
        }
        return v.Select(d => (int)d).ToArray();
    }

    private static Tensor?[] ConstantOfShape(OnnxNode n, Tensor?[] x, bool training, long limit)
    {
        var shape = ShapeArg(n, In(n, x, 0), limit);
        var value = n.TensorAttr("value") is { } t ? OnnxTensor.ToTensor(t, $"{n.File}: node '{n.Name}'") : Tensor.Scalar(0);
        if (value.Numel != 1) throw n.Error("value must hold one element");
        return [Tensor.Full(shape, value.ToDoubleArray()[0], value.DType)];
    }

    private static Tensor?[] Cast(OnnxNode n, Tensor?[] x, bool training, long limit)
    {
        var t = In(n, x, 0);
        int to = (int)n.Int("to", 1);
        if (to == (int)Proto.TensorProto.Types.DataType.Double) return [t.To(DType.Float64)];
        if (OnnxTensor.IsFloat(to)) return [t.To(DType.Float32)];
        if (to == (int)Proto.TensorProto.Types.DataType.Bool)
            return [Tensor.FromArray(t.ToDoubleArray().Select(v => v != 0 ? 1L : 0L).ToArray(), t.Shape.ToArray())];
        if (OnnxTensor.ElementSize(to) == 0) throw n.Error($"cast to data type {to} is not supported");
        return [t.To(DType.Int64)];
    }

    private static long[] AxesArg(OnnxNode n, Tensor?[] x) =>
        n.Opset >= 13 ? (Opt(x, 1) is { } a ? Longs(a) : []) : n.Ints("axes") ?? [];

    private static Tensor?[] Unsqueeze(OnnxNode n, Tensor?[] x, bool training, long limit)
    {
        var t = In(n, x, 0);
        var axes = AxesArg(n, x);
        int r = t.Rank + axes.Length;
        var set = axes.Select(a => Axis(n, a, r)).ToHashSet();
        if (set.Count != axes.Length) throw n.Error("axes repeat a dimension");
        var shape = new int[r];
        for (int i = 0, j = 0; i < r; i++) shape[i] = set.Contains(i) ? 1 : t.Shape[j++];
        return [t.Reshape(shape)];
    }

    private static Tensor?[] Squeeze(OnnxNode n, Tensor?[] x, bool training, long limit)
    {
        var t = In(n, x, 0);
        var axes = AxesArg(n, x);
        var set = axes.Length == 0
            ? Enumerable.Range(0, t.Rank).Where(i => t.Shape[i] == 1).ToHashSet()
            : axes.Select(a => Axis(n, a, t.Rank)).ToHashSet();
        foreach (var a in set)
            if (t.Shape[a] != 1) throw n.Error($"cannot squeeze dimension {a} of size {t.Shape[a]}");
        return [t.Reshape(Enumerable.Range(0, t.Rank).Where(i => !set.Contains(i)).Select(i => t.Shape[i]).ToArray())];
    }

    private static Tensor?[] Reshape(OnnxNode n, Tensor?[] x, bool training, long limit)
    {
        var t = In(n, x, 0);
        var req = n.Opset < 5 ? n.Ints("shape") ?? throw n.Error("shape is required") : Longs(In(n, x, 1));
        bool allowZero = n.Int("allowzero", 0) != 0;
        var shape = new int[req.Length];
        for (int i = 0; i < req.Length; i++)
        {
            long v = req[i];
            if (v == 0 && !allowZero)
            {
                if (i >= t.Rank) throw n.Error($"shape entry {i} is 0 (copy) but the input has rank {t.Rank}");
                v = t.Shape[i];
            }
            if (v < -1 || v > int.MaxValue) throw n.Error($"shape entry {v} is invalid");
            shape[i] = (int)v;
        }
        if (shape.Count(v => v == -1) > 1) throw n.Error("shape has more than one -1");
        try { return [t.Reshape(shape)]; }
        catch (ArgumentException e) { throw n.Error(e.Message); }
    }

    private static Tensor?[] Transpose(OnnxNode n, Tensor?[] x, bool training, long limit)
    {
        var t = In(n, x, 0);
        var perm = n.IntArray("perm", 0) ?? Enumerable.Range(0, t.Rank).Reverse().ToArray();
        if (perm.Length != t.Rank || perm.Any(p => p >= t.Rank)) throw n.Error($"perm [{string.Join(", ", perm)}] does not fit rank {t.Rank}");
        return [t.Permute(perm)];
    }

    private static Tensor?[] Expand(OnnxNode n, Tensor?[] x, bool training, long limit)
    {
        var t = In(n, x, 0);
        var target = ShapeArg(n, In(n, x, 1), limit);
        var shape = ShapeUtil.Broadcast(t.Shape, target, "onnx Expand");
        CheckSize(n, ShapeUtil.Numel(shape), limit);
        return [t.Expand(shape).Contiguous()];
    }

    private static Tensor?[] Concat(OnnxNode n, Tensor?[] x, bool training, long limit)
    {
        var parts = x.Where(t => t != null).Select(t => t!).ToList();
        if (parts.Count == 0) throw n.Error("no inputs");
        int axis = Axis(n, n.Int("axis", 0), parts[0].Rank);
        if (parts.Any(p => p.IsFloatingPoint != parts[0].IsFloatingPoint)) throw n.Error("inputs mix integer and floating-point types");
        return [parts.Count == 1 ? parts[0] : Tensor.Cat(parts, axis)];
    }

    // ---------------------------------------------------------------- Resize / Upsample

    private static Tensor?[] Resize(OnnxNode n, Tensor?[] x, bool training, long limit)
    {
        var t = FloatIn(n, x, 0);
        int r = t.Rank;
        string mode = n.Str("mode", "nearest");
        bool upsample = n.OpType == "Upsample";
        string ctm = upsample || n.Opset < 11 ? "asymmetric" : n.Str("coordinate_transformation_mode", "half_pixel");
        string nearestMode = upsample || n.Opset < 11 ? "floor" : n.Str("nearest_mode", "round_prefer_floor");
        if (mode == "bilinear" || mode == "trilinear") mode = "linear";
        if (mode is not ("nearest" or "linear")) throw n.Error($"mode '{mode}' is not supported (ConvLab resizes with nearest and linear)");
        if (ctm is not ("half_pixel" or "pytorch_half_pixel" or "align_corners" or "asymmetric" or "tf_half_pixel_for_nn"))
            throw n.Error($"coordinate_transformation_mode '{ctm}' is not supported");
        if (n.Has("axes")) throw n.Error("the axes attribute is not supported");
        if (n.Str("keep_aspect_ratio_policy", "stretch") != "stretch") throw n.Error("keep_aspect_ratio_policy other than stretch is not supported");

        Tensor? scalesT, sizesT = null;
        if (upsample) scalesT = n.Opset < 9 ? (n.Floats("scales") is { } f ? Tensor.FromArray(f, f.Length) : null) : Opt(x, 1);
        else if (n.Opset < 11) scalesT = Opt(x, 1);
        else { scalesT = Opt(x, 2); sizesT = Opt(x, 3); }
        if (scalesT is { Numel: 0 }) scalesT = null;
        if (sizesT is { Numel: 0 }) sizesT = null;
        var outSize = new int[r]; var scale = new double[r];
        if (sizesT != null)
        {
            var sz = ShapeArg(n, sizesT, limit);
            if (sz.Length != r) throw n.Error($"sizes has {sz.Length} values for rank {r}");
            for (int i = 0; i < r; i++) { outSize[i] = sz[i]; scale[i] = (double)sz[i] / t.Shape[i]; }
        }
        else if (scalesT != null)
        {
            var sc = scalesT.ToDoubleArray();
            if (sc.Length != r) throw n.Error($"scales has {sc.Length} values for rank {r}");
            long total = 1;
            for (int i = 0; i < r; i++)
            {
                if (!(sc[i] > 0) || double.IsInfinity(sc[i])) throw n.Error($"scale {sc[i]} must be positive");
                double o = Math.Floor(t.Shape[i] * (double)(float)sc[i]);
                if (o < 1 || o > int.MaxValue) throw n.Error($"output size {o} is invalid");
                outSize[i] = (int)o; scale[i] = sc[i];
                total *= outSize[i];
                CheckSize(n, total, limit);
            }
        }
        else throw n.Error("one of scales and sizes is required");

        // ConvLab's interpolate is PyTorch's: nearest = asymmetric/floor, linear = half_pixel or align_corners over the spatial dims.
        bool batchKept = r >= 3 && outSize[0] == t.Shape[0] && outSize[1] == t.Shape[1];
        if (batchKept && r <= 5)
        {
            var spatialScale = sizesT == null ? scale[2..] : null;
            int[]? spatialSize = sizesT == null ? null : outSize[2..];
            if (mode == "nearest" && ctm == "asymmetric" && nearestMode == "floor")
                return [F.Interpolate(t, spatialSize, spatialScale, "nearest")];
            bool halfPixel = ctm == "half_pixel" || (ctm == "pytorch_half_pixel" && outSize.Skip(2).All(o => o > 1));
            // With scales, ONNX's align_corners divides by in·scale − 1 (unrounded), which interpolate does not.
            bool corners = ctm == "align_corners" && (sizesT != null || Enumerable.Range(2, r - 2).All(i => t.Shape[i] * scale[i] == outSize[i]));
            if (mode == "linear" && (halfPixel || corners))
                return [F.Interpolate(t, ctm == "align_corners" ? outSize[2..] : spatialSize, ctm == "align_corners" ? null : spatialScale, r switch { 3 => "linear", 4 => "bilinear", _ => "trilinear" }, ctm == "align_corners")];
        }
        // Any other combination: gather along each resized axis (linear = two gathers weighed by the fractional position).
        var y = t;
        for (int ax = 0; ax < r; ax++)
        {
            int inLen = t.Shape[ax], outLen = outSize[ax];
            if (inLen == outLen && scale[ax] == 1 && ctm != "tf_half_pixel_for_nn" && ctm != "align_corners") continue;
            var i0 = new int[outLen]; var i1 = new int[outLen]; var w = new double[outLen];
            for (int o = 0; o < outLen; o++)
            {
                double src = ctm switch
                {
                    "half_pixel" => (o + 0.5) / scale[ax] - 0.5,
                    "pytorch_half_pixel" => outLen > 1 ? (o + 0.5) / scale[ax] - 0.5 : 0,
                    "align_corners" => outLen == 1 ? 0 : o * (inLen - 1.0) / (inLen * scale[ax] - 1),
                    "asymmetric" => o / scale[ax],
                    _ => (o + 0.5) / scale[ax],
                };
                double fl = Math.Floor(src), frac = src - fl;
                if (mode == "nearest")
                {
                    double pick = nearestMode switch
                    {
                        "round_prefer_floor" => frac <= 0.5 ? fl : fl + 1,
                        "round_prefer_ceil" => frac < 0.5 ? fl : fl + 1,
                        "floor" => fl,
                        "ceil" => Math.Ceiling(src),
                        var m => throw n.Error($"nearest_mode '{m}' is not supported"),
                    };
                    i0[o] = (int)Math.Clamp(pick, 0, inLen - 1);
                }
                else
                {
                    i0[o] = (int)Math.Clamp(fl, 0, inLen - 1);
                    i1[o] = (int)Math.Clamp(fl + 1, 0, inLen - 1);
                    w[o] = frac;
                }
            }
            if (mode == "nearest") y = Take(y, ax, i0);
            else
            {
                var shape = Enumerable.Repeat(1, r).ToArray(); shape[ax] = outLen;
                var wt = Tensor.FromArray(w, shape).To(t.DType);
                var a = Take(y, ax, i0); var b = Take(y, ax, i1);
                y = a.Add(b.Sub(a).Mul(wt));
            }
        }
        return [y];
    }
}
