using ConvLab.Kernels;

namespace ConvLab.Analysis;

/// <summary>
/// The meta branch of each functional op: called after the op's own validation (which already computed the output
/// shape) when an input is a <see cref="Tensor.IsMeta">meta tensor</see>. Returns a meta result without touching a
/// kernel and reports the op's cost and geometry to the active <see cref="Tracer"/> (if any). Costs are per sample.
/// </summary>
internal static class MetaOps
{
    private static Tracer? T => Tracer.Current;

    private static string[] DimNames(int nd) => nd switch { 1 => [""], 2 => ["_h", "_w"], 3 => ["_d", "_h", "_w"], _ => Enumerable.Range(0, nd).Select(i => $"_{i}").ToArray() };

    /// <summary>
    /// The input's receptive-field geometry after a sliding-window op: <paramref name="step"/> gives (rf, jump, start) of
    /// spatial dimension i; a global field, or one of another rank, passes through unchanged.
    /// </summary>
    private static Geometry? Slide(Tensor input, int nd, Func<int, Geometry, (double Rf, double Jump, double Start)> step)
    {
        if (T?.GeometryOf(input) is not { } gin) return null;
        if (gin.Global || gin.Dims != nd) return gin;
        var rf = new double[nd]; var j = new double[nd]; var st = new double[nd];
        for (int i = 0; i < nd; i++) (rf[i], j[i], st[i]) = step(i, gin);
        return new(rf, j, st);
    }

    /// <summary>Records the three per-dimension quantities in <paramref name="explain"/> and returns their values.</summary>
    private static (double, double, double) Explained(List<Quantity> explain, string[] names, int i, Quantity rf, Quantity jump, Quantity start)
    {
        explain.Add(Dim(rf, names, i)); explain.Add(Dim(jump, names, i)); explain.Add(Dim(start, names, i));
        return (rf.Value, jump.Value, start.Value);
    }

    private static Quantity Dim(Quantity q, string[] names, int i) => q with { Symbol = q.Symbol + names[i] };

    private static long PerSample(long total) => T is { } t ? total / t.Batch : total;

    /// <summary>A new meta tensor kept alive by the graph, with the given geometry.</summary>
    internal static Tensor Output(string op, ReadOnlySpan<int> shape, DType dtype, Tensor? geometrySource, Geometry? geometry = null)
    {
        var y = Tensor.Meta(shape, dtype);
        if (T is { } t)
        {
            t.Keep(y);
            t.SetGeometry(y, geometry ?? (geometrySource != null ? t.GeometryOf(geometrySource) : null));
        }
        return y;
    }

    private static void Report(string op, Tensor output, long macs, long flops, IEnumerable<Quantity> explain) =>
        T?.Op(op, output, macs, flops, explain);

    /// <summary>Element-wise ops (arithmetic, unary maths): one op per output element; a merge takes the union of receptive fields.</summary>
    internal static Tensor Elementwise(string op, ReadOnlySpan<int> shape, DType dtype, params Tensor[] inputs)
    {
        var geo = T == null ? null : Geometry.Union(inputs.Select(i => T.GeometryOf(i)));
        var y = Output(op, shape, dtype, null, geo);
        long n = PerSample(y.Numel);
        Report(op, y, 0, n, [Formulas.ElementwiseFlops(n, 1, op)]);
        return y;
    }

    /// <summary>Reductions: one add per input element; the reduced map has seen everything.</summary>
    internal static Tensor Reduce(string op, ReadOnlySpan<int> shape, DType dtype, Tensor input)
    {
        var g = T?.GeometryOf(input);
        var y = Output(op, shape, dtype, null, g == null ? null : g.Collapse(input.Rank >= g.Dims ? input.Shape[^g.Dims..] : []));
        long n = PerSample(input.Numel);
        Report(op, y, 0, n, [Formulas.ElementwiseFlops(n, 1, op)]);
        return y;
    }

    /// <summary>Concatenation: data movement only; the receptive field is the union over the inputs.</summary>
    internal static Tensor Cat(ReadOnlySpan<int> shape, DType dtype, IReadOnlyList<Tensor> inputs)
    {
        var geo = T == null ? null : Geometry.Union(inputs.Select(i => T.GeometryOf(i)));
        var y = Output("cat", shape, dtype, null, geo);
        Report("cat", y, 0, 0, []);
        return y;
    }

    /// <summary>Convolution and transposed convolution (geometry as the kernel sees it: for a transposed conv the adjoint's).</summary>
    internal static Tensor Conv(string op, Tensor x, Tensor? bias, ConvGeometry g, bool transposed, int[] outShape, bool deformable = false)
    {
        int nd = g.Kernel.Length;
        var names = DimNames(nd);
        var explain = new List<Quantity>();
        // The op's own view: input -> output sizes and channels.
        int[] inSize = transposed ? g.OutSize : g.InSize, outSize = transposed ? g.InSize : g.OutSize;
        int cin = transposed ? g.OutChannels : g.InChannels, cout = transposed ? g.InChannels : g.OutChannels;
        for (int i = 0; i < nd; i++)
        {
            var o = transposed
                ? Formulas.ConvTransposeOutput(inSize[i], g.Kernel[i], g.Stride[i], g.Pad[i], outSize[i] - (int)Formulas.ConvTransposeOutput(inSize[i], g.Kernel[i], g.Stride[i], g.Pad[i], 0, g.Dilation[i]).Value, g.Dilation[i])
                : Formulas.ConvOutput(inSize[i], g.Kernel[i], g.Stride[i], g.Pad[i], g.Dilation[i]);
            // Asymmetric 'same' padding does not fit the symmetric formula; the shape check already ran, so skip its line.
            if (o.Value == outSize[i]) explain.Add(Dim(o, names, i));
        }
        var kernel = g.Kernel;
        if (nd <= 2) explain.Add(Formulas.ConvParams(cin, cout, kernel[0], nd > 1 ? kernel[1] : 1, g.Groups, bias != null));
        var macs = transposed
            ? Formulas.ConvTransposeMacs(inSize, cin, cout, g.Groups, kernel)
            : Formulas.ConvMacs(outSize, cout, cin, g.Groups, kernel);
        long biasAdds = bias != null ? (long)cout * ShapeUtil.Numel(outSize) : 0;
        if (deformable)
        {
            explain.Add(macs);
            macs = Formulas.DeformConvMacs(macs.Int, cin, kernel[0], kernel[1], outSize[0], outSize[1]);
        }
        var flops = Formulas.ConvFlops(macs.Int, biasAdds);
        explain.Add(macs); explain.Add(flops);

        var geo = Slide(x, nd, (i, gin) => transposed
            ? Explained(explain, names, i,
                Formulas.ReceptiveFieldTransposed(gin.Rf[i], gin.Jump[i], kernel[i], g.Stride[i], g.Dilation[i]),
                Formulas.JumpTransposed(gin.Jump[i], g.Stride[i]),
                Formulas.StartTransposed(gin.Start[i], gin.Jump[i], kernel[i], g.Stride[i], g.Pad[i], g.Dilation[i]))
            : Explained(explain, names, i,
                Formulas.ReceptiveField(gin.Rf[i], gin.Jump[i], kernel[i], g.Dilation[i]),
                Formulas.Jump(gin.Jump[i], g.Stride[i]),
                Formulas.Start(gin.Start[i], gin.Jump[i], kernel[i], g.Pad[i], g.Dilation[i])));
        var y = Output(op, outShape, x.DType, null, geo);
        if (T is { } t)
        {
            // The dispatcher knows what the algorithm it would pick allocates for this shape; training runs all three passes.
            foreach (var pass in new[] { Kernels.ConvPass.Forward, Kernels.ConvPass.BackwardInput, Kernels.ConvPass.BackwardWeight })
                t.Workspace(x.DType == DType.Float64
                    ? Kernels.ConvDispatch.WorkspaceBytes<double>(ConvAlgorithm.Auto, pass, g)
                    : Kernels.ConvDispatch.WorkspaceBytes<float>(ConvAlgorithm.Auto, pass, g));
        }
        Report(op, y, macs.Int, flops.Int, explain);
        return y;
    }

    /// <summary>Max / average pooling over prepared windows; sliding attributes (kernel, stride, padding, dilation) when not adaptive.</summary>
    internal static Tensor Pool(string op, Tensor input, int[] outShape, PoolWindows w, int nd, bool max, int[]? k, int[]? s, int[]? p, int[]? d)
    {
        var names = DimNames(nd);
        var explain = new List<Quantity>();
        long planes = PerSample(ShapeUtil.Numel(input.Shape[..^nd]));
        long window = planes, outputs = planes;
        for (int i = 0; i < nd; i++)
        {
            window *= w.Count[3 - nd + i].Sum(c => (long)c);
            outputs *= w.Out[3 - nd + i];
            if (k != null) explain.Add(Dim(Formulas.PoolOutput(w.In[3 - nd + i], k[i], s![i], p![i], d![i]), names, i));
        }
        var flops = max ? Formulas.MaxPoolFlops(window, outputs) : Formulas.AvgPoolFlops(window);
        explain.Add(flops);
        var geo = Slide(input, nd, (i, gin) =>
        {
            if (k != null)
                return Explained(explain, names, i,
                    Formulas.ReceptiveField(gin.Rf[i], gin.Jump[i], k[i], d![i]),
                    Formulas.Jump(gin.Jump[i], s![i]),
                    Formulas.Start(gin.Start[i], gin.Jump[i], k[i], p![i], d[i]));
            // Adaptive windows vary in size; the largest bounds the field, the mean step is in/out.
            var counts = w.Count[3 - nd + i];
            return Explained(explain, names, i,
                Formulas.ReceptiveField(gin.Rf[i], gin.Jump[i], counts.Max()),
                Formulas.Jump(gin.Jump[i], (double)w.In[3 - nd + i] / w.Out[3 - nd + i]),
                Formulas.Start(gin.Start[i], gin.Jump[i], counts[0], 0));
        });
        var y = Output(op, outShape, input.DType, null, geo);
        Report(op, y, 0, flops.Int, explain);
        return y;
    }

    /// <summary>The int64 argmax indices max pooling saves for backward.</summary>
    internal static Tensor Indices(ReadOnlySpan<int> shape)
    {
        var idx = Tensor.Meta(shape, DType.Int64);
        T?.Keep(idx);
        return idx;
    }

    /// <summary>Normalisation: 2 ops per element (x·scale + shift); with an affine the normalised input is kept as well as the output.</summary>
    internal static Tensor Norm(string op, Tensor input, bool affine)
    {
        var y = Output(op, input.Shape, input.DType, input);
        if (affine) T?.Keep(Tensor.Meta(input.Shape, input.DType));
        long n = PerSample(input.Numel);
        Report(op, y, 0, 2 * n, [Formulas.ElementwiseFlops(n, 2, op)]);
        return y;
    }

    /// <summary>Activations, softmax and dropout: <paramref name="opsPerElement"/> per element, shape and geometry unchanged.</summary>
    internal static Tensor Activation(string op, Tensor input, int opsPerElement, bool keepsMask = false)
    {
        var y = Output(op, input.Shape, input.DType, input);
        if (keepsMask) T?.Keep(Tensor.Meta(input.Shape, input.DType));
        long n = PerSample(input.Numel);
        Report(op, y, 0, opsPerElement * n, [Formulas.ElementwiseFlops(n, opsPerElement, op)]);
        return y;
    }

    /// <summary>Fully connected: MACs rows·in·out; each output has seen the whole input map.</summary>
    internal static Tensor Linear(Tensor input, int[] outShape, int inF, int outF, bool bias)
    {
        long rows = PerSample(input.Numel / Math.Max(inF, 1));
        var macs = Formulas.LinearMacs(inF, outF, rows);
        var flops = Formulas.ConvFlops(macs.Int, bias ? rows * outF : 0);
        var g = T?.GeometryOf(input);
        var y = Output("linear", outShape, input.DType, null, g?.Collapse(g.Global || input.Rank < g.Dims ? [] : input.Shape[^g.Dims..]));
        Report("linear", y, macs.Int, flops.Int, [Formulas.LinearParams(inF, outF, bias), macs, flops]);
        return y;
    }

    /// <summary>Interpolation: nearest copies (0 ops); linear modes weigh 2^d neighbours (2·2^d ops per output) and widen the field by one input step.</summary>
    internal static Tensor Interpolate(Tensor input, int[] outShape, bool linear)
    {
        int nd = outShape.Length - 2;
        var geo = Slide(input, nd, (i, gin) =>
        {
            double scale = (double)input.Shape[2 + i] / outShape[2 + i];
            return (gin.Rf[i] + (linear ? gin.Jump[i] : 0), gin.Jump[i] * scale, gin.Start[i] + (linear ? (scale - 1) / 2 * gin.Jump[i] : 0));
        });
        var y = Output("interpolate", outShape, input.DType, null, geo);
        long n = PerSample(y.Numel);
        int ops = linear ? 2 << nd : 0;
        Report("interpolate", y, 0, ops * n, [Formulas.ElementwiseFlops(n, ops, linear ? "interpolate (linear)" : "interpolate (nearest)")]);
        return y;
    }

    /// <summary>Padding: data movement; output index 0 now sits <c>left</c> pixels before the old first one.</summary>
    internal static Tensor Pad(Tensor input, int[] outShape, int[] pad)
    {
        Geometry? geo = null;
        if (T?.GeometryOf(input) is { } gin)
        {
            geo = gin;
            int m = pad.Length / 2;
            if (!gin.Global && m <= gin.Dims)
            {
                var st = (double[])gin.Start.Clone();
                for (int j = 0; j < m; j++)
                {
                    int dim = gin.Dims - 1 - j;
                    st[dim] -= pad[2 * j] * gin.Jump[dim];
                }
                geo = gin with { Start = st };
            }
        }
        var y = Output("pad", outShape, input.DType, null, geo);
        Report("pad", y, 0, 0, []);
        return y;
    }
}
