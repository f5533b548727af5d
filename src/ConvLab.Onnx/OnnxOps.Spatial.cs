using ConvLab.NN.Functional;

namespace ConvLab.Onnx;

internal static partial class OnnxOps
{
    private static int[] Spatial(Tensor t) => t.Shape[2..].ToArray();

    private static int[] Fill(OnnxNode n, string name, int nd, int fallback, long min)
    {
        var v = n.IntArray(name, min);
        if (v == null || v.Length == 0) return Enumerable.Repeat(fallback, nd).ToArray();
        if (v.Length != nd) throw n.Error($"attribute {name} has {v.Length} values for {nd} spatial dimensions");
        return v;
    }

    /// <summary>Begin/end padding per spatial dimension from pads or auto_pad (as ONNX defines SAME_UPPER/SAME_LOWER/VALID).</summary>
    private static (int[] Begin, int[] End) Pads(OnnxNode n, int[] inSize, int[] k, int[] s, int[] d)
    {
        int nd = inSize.Length;
        var b = new int[nd]; var e = new int[nd];
        string auto = n.Str("auto_pad", "NOTSET");
        switch (auto)
        {
            case "NOTSET" or "":
                var p = n.IntArray("pads", 0);
                if (p != null && p.Length > 0)
                {
                    if (p.Length != 2 * nd) throw n.Error($"pads has {p.Length} values, expected {2 * nd}");
                    for (int i = 0; i < nd; i++) { b[i] = p[i]; e[i] = p[nd + i]; }
                }
                break;
            case "VALID": break;
            case "SAME_UPPER" or "SAME_LOWER":
                for (int i = 0; i < nd; i++)
                {
                    long o = (inSize[i] + s[i] - 1) / s[i];
                    long total = Math.Max(0, (o - 1) * s[i] + (long)(k[i] - 1) * d[i] + 1 - inSize[i]);
                    int small = (int)(total / 2), big = (int)(total - total / 2);
                    (b[i], e[i]) = auto == "SAME_UPPER" ? (small, big) : (big, small);
                }
                break;
            default: throw n.Error($"auto_pad '{auto}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID");
        }
        return (b, e);
    }

    /// <summary>F.pad's list (pairs from the last dimension) for begin/end pads of the trailing spatial dimensions.</summary>
    private static int[] FPad(int[] begin, int[] end)
    {
        int nd = begin.Length;
        var f = new int[2 * nd];
        for (int i = 0; i < nd; i++) { f[2 * (nd - 1 - i)] = begin[i]; f[2 * (nd - 1 - i) + 1] = end[i]; }
        return f;
    }

    private static void CheckSpatial(OnnxNode n, Tensor x, int min = 1, int max = 3)
    {
        if (x.Rank - 2 < min || x.Rank - 2 > max) throw n.Error($"expected an input with {min + 2} to {max + 2} dimensions (N, C, spatial...), got {ShapeUtil.Format(x.Shape)}");
    }

    /// <summary>The operands and attributes Conv and ConvTranspose share: input, weight, bias, spatial rank, kernel, strides, dilations, groups.</summary>
    private static (Tensor Input, Tensor W, Tensor? Bias, int Nd, int[] K, int[] S, int[] D, int Groups) ConvOperands(OnnxNode n, Tensor?[] x)
    {
        var input = FloatIn(n, x, 0); var w = FloatIn(n, x, 1);
        CheckSpatial(n, input);
        int nd = input.Rank - 2;
        if (w.Rank != nd + 2) throw n.Error($"weight has shape {ShapeUtil.Format(w.Shape)}, expected {nd + 2} dimensions");
        return (input, w, Opt(x, 2), nd, w.Shape[2..].ToArray(), Fill(n, "strides", nd, 1, 1), Fill(n, "dilations", nd, 1, 1),
            CheckedInt(n, n.Int("group", 1), "group"));
    }

    private static Tensor?[] Conv(OnnxNode n, Tensor?[] x, bool training, long limit)
    {
        var (input, w, bias, nd, k, s, d, groups) = ConvOperands(n, x);
        var (pb, pe) = Pads(n, Spatial(input), k, s, d);
        if (!pb.SequenceEqual(pe)) { input = F.Pad(input, FPad(pb, pe)); pb = new int[nd]; }
        return [nd switch
        {
            1 => F.Conv1d(input, w, bias, s, pb, d, groups),
            2 => F.Conv2d(input, w, bias, s, pb, d, groups),
            _ => F.Conv3d(input, w, bias, s, pb, d, groups),
        }];
    }

    private static Tensor?[] ConvTranspose(OnnxNode n, Tensor?[] x, bool training, long limit)
    {
        var (input, w, bias, nd, k, s, d, groups) = ConvOperands(n, x);
        var inSize = Spatial(input);
        var opad = Fill(n, "output_padding", nd, 0, 0);
        string auto = n.Str("auto_pad", "NOTSET");
        var outShape = n.IntArray("output_shape", 1);
        if (outShape is { Length: > 0 } && outShape.Length == nd + 2) outShape = outShape[2..];
        var full = new int[nd]; var pb = new int[nd]; var outSize = new int[nd];
        for (int i = 0; i < nd; i++) full[i] = (inSize[i] - 1) * s[i] + (k[i] - 1) * d[i] + 1;
        if (outShape is { Length: > 0 } || auto is "SAME_UPPER" or "SAME_LOWER")
        {
            if (outShape is { Length: > 0 } && outShape.Length != nd) throw n.Error($"output_shape has {outShape.Length} values for {nd} spatial dimensions");
            for (int i = 0; i < nd; i++)
            {
                outSize[i] = outShape is { Length: > 0 } ? outShape[i] : inSize[i] * s[i];
                int total = full[i] + opad[i] - outSize[i];
                pb[i] = auto == "SAME_LOWER" ? total - total / 2 : total / 2;
            }
        }
        else
        {
            var p = Fill(n, "pads", 2 * nd, 0, 0);
            for (int i = 0; i < nd; i++) { pb[i] = p[i]; outSize[i] = full[i] + opad[i] - p[i] - p[nd + i]; }
            bool symmetric = Enumerable.Range(0, nd).All(i => p[i] == p[nd + i] && (opad[i] < s[i] || opad[i] < d[i]));
            if (symmetric) return [TransposedConv(nd, input, w, bias, s, p[..nd], opad, groups, d)];
        }
        if (outSize.Any(o => o < 1)) throw n.Error($"output size {ShapeUtil.Format(outSize)} is not positive");
        // The full adjoint output, then a crop (negative pads) or zero extension to the requested window; the bias covers all of it.
        var y = TransposedConv(nd, input, w, null, s, new int[nd], new int[nd], groups, d);
        var end = new int[nd];
        for (int i = 0; i < nd; i++) end[i] = outSize[i] - (full[i] - pb[i]);
        y = F.Pad(y, FPad(pb.Select(v => -v).ToArray(), end));
        if (bias != null) y = y.Add(bias.Reshape([1, bias.Numel, .. Enumerable.Repeat(1, nd)]));
        return [y];
    }

    private static Tensor TransposedConv(int nd, Tensor x, Tensor w, Tensor? b, int[] s, int[] p, int[] op, int g, int[] d) => nd switch
    {
        1 => F.ConvTranspose1d(x, w, b, s, p, op, g, d),
        2 => F.ConvTranspose2d(x, w, b, s, p, op, g, d),
        _ => F.ConvTranspose3d(x, w, b, s, p, op, g, d),
    };

    private static Tensor?[] MaxPool(OnnxNode n, Tensor?[] x, bool training, long limit)
    {
        // Integer data pools exactly in float64 (ConvLab's kernels are floating point).
        if (In(n, x, 0) is { IsFloatingPoint: false } ints)
            return [MaxPool(n, [ints.To(DType.Float64)], training, limit)[0]!.To(DType.Int64)];
        var input = FloatIn(n, x, 0);
        CheckSpatial(n, input);
        bool indices = n.Outputs.Length > 1 && n.Outputs[1] != "";
        bool columnMajor = n.Int("storage_order", 0) != 0;
        int nd = input.Rank - 2;
        var k = n.IntArray("kernel_shape", 1) ?? throw n.Error("kernel_shape is required");
        if (k.Length != nd) throw n.Error($"kernel_shape has {k.Length} values for {nd} spatial dimensions");
        var s = Fill(n, "strides", nd, 1, 1); var d = Fill(n, "dilations", nd, 1, 1);
        bool ceil = n.Int("ceil_mode", 0) != 0;
        var (pb, pe) = Pads(n, Spatial(input), k, s, d);
        if (!pb.SequenceEqual(pe) || pb.Where((p, i) => p > k[i] / 2).Any())
        {
            // Indices would then point into the padded copy, not the input ONNX numbers.
            if (indices) throw n.Error("the Indices output with asymmetric or wide pads is not supported");
            input = F.Pad(input, FPad(pb, pe), "constant", double.NegativeInfinity);
            pb = new int[nd];
        }
        if (!indices)
            return [nd switch
            {
                1 => F.MaxPool1d(input, k, s, pb, d, ceil),
                2 => F.MaxPool2d(input, k, s, pb, d, ceil),
                _ => F.MaxPool3d(input, k, s, pb, d, ceil),
            }];
        var (y, local) = nd switch
        {
            1 => F.MaxPool1dWithIndices(input, k, s, pb, d, ceil),
            2 => F.MaxPool2dWithIndices(input, k, s, pb, d, ceil),
            _ => F.MaxPool3dWithIndices(input, k, s, pb, d, ceil),
        };
        return [y, FlatIndices(local, input, columnMajor)];
    }

    /// <summary>
    /// ConvLab's (and PyTorch's) pooling indices count row-major within each (batch, channel) plane; ONNX's count over
    /// the whole input, and with <c>storage_order</c> 1 the plane is numbered column-major (first spatial axis fastest).
    /// </summary>
    private static Tensor FlatIndices(Tensor local, Tensor input, bool columnMajor)
    {
        var idx = local.ToInt64Array();
        var dims = Enumerable.Range(2, input.Rank - 2).Select(input.Size).ToArray();
        long plane = dims.Aggregate(1L, (a, b) => a * b);
        int planes = input.Size(0) * input.Size(1), perPlane = planes == 0 ? 0 : idx.Length / planes;
        for (int i = 0; i < idx.Length; i++)
        {
            long p = idx[i];
            if (columnMajor)
            {
                long q = 0, scale = 1;
                var coord = new long[dims.Length];
                for (int a = dims.Length - 1; a >= 0; a--) { coord[a] = p % dims[a]; p /= dims[a]; }
                for (int a = 0; a < dims.Length; a++) { q += coord[a] * scale; scale *= dims[a]; }
                p = q;
            }
            idx[i] = p + i / perPlane * plane;
        }
        return Tensor.FromArray(idx, local.Shape.ToArray());
    }

    private static Tensor?[] AveragePool(OnnxNode n, Tensor?[] x, bool training, long limit)
    {
        var input = FloatIn(n, x, 0);
        CheckSpatial(n, input);
        int nd = input.Rank - 2;
        var k = n.IntArray("kernel_shape", 1) ?? throw n.Error("kernel_shape is required");
        if (k.Length != nd) throw n.Error($"kernel_shape has {k.Length} values for {nd} spatial dimensions");
        var s = Fill(n, "strides", nd, 1, 1);
        if (Fill(n, "dilations", nd, 1, 1).Any(v => v != 1)) throw n.Error("dilated average pooling is not supported");
        bool ceil = n.Int("ceil_mode", 0) != 0, include = n.Int("count_include_pad", 0) != 0;
        var (pb, pe) = Pads(n, Spatial(input), k, s, Enumerable.Repeat(1, nd).ToArray());
        if (pb.SequenceEqual(pe) && !pb.Where((p, i) => p > k[i] / 2).Any())
            return [Avg(nd, input, k, s, pb, ceil, include)];
        // Uneven or large pads: pad with zeros and pool; without count_include_pad divide by the pooled mask of real pixels.
        var fp = FPad(pb, pe);
        var zero = new int[nd];
        var sum = Avg(nd, F.Pad(input, fp), k, s, zero, ceil, true);
        if (include) return [sum];
        Tensor mask;
        using (new Autograd.NoGrad())
            mask = Avg(nd, F.Pad(Tensor.Ones([1, 1, .. Spatial(input)], input.DType), fp), k, s, zero, ceil, true);
        return [sum.Div(mask)];
    }

    private static Tensor Avg(int nd, Tensor x, int[] k, int[] s, int[] p, bool ceil, bool include) => nd switch
    {
        1 => F.AvgPool1d(x, k, s, p, ceil, include),
        2 => F.AvgPool2d(x, k, s, p, ceil, include),
        _ => F.AvgPool3d(x, k, s, p, ceil, include),
    };

    private static Tensor GlobalPool(OnnxNode n, Tensor x, bool max)
    {
        if (!x.IsFloatingPoint || x.Rank < 3) throw n.Error($"expected a floating-point input (N, C, spatial...), got {ShapeUtil.Format(x.Shape)}");
        int nd = x.Rank - 2;
        if (!max) return nd == 2 ? F.GlobalAvgPool2d(x) : x.Mean(Enumerable.Range(2, nd).ToArray(), keepdim: true);
        var ones = Enumerable.Repeat((int?)1, nd).ToArray();
        return nd switch
        {
            1 => F.AdaptiveMaxPool1d(x, ones),
            2 => F.AdaptiveMaxPool2d(x, ones),
            3 => F.AdaptiveMaxPool3d(x, ones),
            _ => throw n.Error($"global max pooling over {nd} spatial dimensions is not supported"),
        };
    }

    private static Tensor?[] BatchNorm(OnnxNode n, Tensor?[] x, bool training, long limit)
    {
        var input = FloatIn(n, x, 0);
        var scale = FloatIn(n, x, 1); var b = FloatIn(n, x, 2); var mean = FloatIn(n, x, 3); var variance = FloatIn(n, x, 4);
        if (input.Rank < 2) throw n.Error($"input must be (N, C, ...), got {ShapeUtil.Format(input.Shape)}");
        double eps = n.Float("epsilon", 1e-5f);
        if (n.Int("training_mode", 0) != 0 || (n.Opset < 14 && n.Outputs.Skip(1).Any(o => o != "")))
        {
            // ONNX's training mode: batch statistics normalise; the running outputs mix in the biased batch variance.
            float m = n.Float("momentum", 0.9f);
            var dims = Enumerable.Range(0, input.Rank).Where(i => i != 1).ToArray();
            var shape = Enumerable.Range(0, input.Rank).Select(i => i == 1 ? input.Shape[1] : 1).ToArray();
            var bm = input.Mean(dims);
            var bv = input.Sub(bm.Reshape(shape)).Pow(2).Mean(dims);
            var y = F.BatchNorm(input, null, null, scale, b, training: true, eps: eps);
            return [y, mean.MulScalar(m).Add(bm.MulScalar(1 - m)), variance.MulScalar(m).Add(bv.MulScalar(1 - m))];
        }
        // ONNX's momentum weighs the running value, PyTorch's the batch value.
        double momentum = 1 - n.Float("momentum", 0.9f);
        bool train = training && input.Shape[0] * ShapeUtil.Numel(input.Shape[2..]) > 1;
        return [F.BatchNorm(input, mean, variance, scale, b, train, momentum, eps)];
    }

    private static Tensor?[] DeformConv(OnnxNode n, Tensor?[] x, bool training, long limit)
    {
        var input = FloatIn(n, x, 0); var w = FloatIn(n, x, 1); var offset = FloatIn(n, x, 2);
        var bias = Opt(x, 3); var mask = Opt(x, 4);
        if (input.Rank != 4) throw n.Error($"only 2-d deformable convolution is supported, got input {ShapeUtil.Format(input.Shape)}");
        var s = Fill(n, "strides", 2, 1, 1); var d = Fill(n, "dilations", 2, 1, 1);
        var p = Fill(n, "pads", 4, 0, 0);
        if (p[0] != p[2] || p[1] != p[3]) throw n.Error("asymmetric pads are not supported for DeformConv");
        return [F.DeformConv2d(input, offset, w, bias, s, p[..2], d, mask)];
    }

    private static Tensor?[] Pad(OnnxNode n, Tensor?[] x, bool training, long limit)
    {
        var t = In(n, x, 0);
        int r = t.Rank;
        long[] pads;
        double value = 0;
        if (n.Opset < 11)
        {
            pads = n.Ints("pads") ?? throw n.Error("pads is required");
            value = n.Float("value", 0);
        }
        else
        {
            pads = Longs(In(n, x, 1));
            if (Opt(x, 2) is { Numel: > 0 } cv) value = cv.ToDoubleArray()[0];
        }
        var axes = Opt(x, 3) is { } ax ? Longs(ax).Select(a => Axis(n, a, r)).ToArray() : Enumerable.Range(0, r).ToArray();
        if (pads.Length != 2 * axes.Length) throw n.Error($"pads has {pads.Length} values, expected {2 * axes.Length}");
        var begin = new int[r]; var end = new int[r];
        long total = 1;
        for (int i = 0; i < axes.Length; i++)
        {
            begin[axes[i]] = CheckedInt(n, pads[i], "pad");
            end[axes[i]] = CheckedInt(n, pads[axes.Length + i], "pad");
        }
        for (int i = 0; i < r; i++) total *= Math.Max(0, (long)t.Shape[i] + begin[i] + end[i]);
        CheckSize(n, total, limit);
        string mode = n.Str("mode", "constant") switch
        {
            "constant" => "constant",
            "reflect" => "reflect",
            "edge" => "replicate",
            "wrap" => "circular",
            var m => throw n.Error($"mode '{m}' is not one of constant, reflect, edge, wrap"),
        };
        int first = 0;
        while (first < r && begin[first] == 0 && end[first] == 0) first++;
        if (first == r) return [t];
        var fpad = FPad(begin[first..], end[first..]);
        if (t.IsFloatingPoint) return [F.Pad(t, fpad, mode, value)];
        return [F.Pad(t.To(DType.Float64), fpad, mode, value).To(DType.Int64)];
    }
}
