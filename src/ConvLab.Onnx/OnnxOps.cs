using ConvLab.NN.Functional;

namespace ConvLab.Onnx;

/// <summary>
/// ONNX operators (default domain) on ConvLab tensors: float data goes through the functional API (so autograd
/// sees it); int64 data (shapes, indices) is computed directly. Each op validates what the functional layer would not
/// and throws an <see cref="ArgumentException"/> starting with "onnx" that names the node.
/// </summary>
internal static partial class OnnxOps
{
    private delegate Tensor?[] Op(OnnxNode n, Tensor?[] x, bool training, long limit);

    private static readonly Dictionary<string, Op> Ops = new()
    {
        ["Conv"] = Conv,
        ["ConvTranspose"] = ConvTranspose,
        ["MaxPool"] = MaxPool,
        ["AveragePool"] = AveragePool,
        ["GlobalAveragePool"] = (n, x, _, _) => [GlobalPool(n, In(n, x, 0), max: false)],
        ["GlobalMaxPool"] = (n, x, _, _) => [GlobalPool(n, In(n, x, 0), max: true)],
        ["BatchNormalization"] = BatchNorm,
        ["Relu"] = (n, x, _, _) => [F.Relu(FloatIn(n, x, 0))],
        ["LeakyRelu"] = (n, x, _, _) => [F.LeakyRelu(FloatIn(n, x, 0), n.Float("alpha", 0.01f))],
        ["Sigmoid"] = (n, x, _, _) => [F.Sigmoid(FloatIn(n, x, 0))],
        ["Tanh"] = (n, x, _, _) => [F.Tanh(FloatIn(n, x, 0))],
        ["HardSwish"] = (n, x, _, _) => [F.Hardswish(FloatIn(n, x, 0))],
        ["HardSigmoid"] = HardSigmoid,
        ["Elu"] = (n, x, _, _) => [F.Elu(FloatIn(n, x, 0), n.Float("alpha", 1f))],
        ["Softplus"] = (n, x, _, _) => [F.Softplus(FloatIn(n, x, 0))],
        ["Softmax"] = (n, x, _, _) => [SoftmaxOp(n, FloatIn(n, x, 0), log: false)],
        ["LogSoftmax"] = (n, x, _, _) => [SoftmaxOp(n, FloatIn(n, x, 0), log: true)],
        ["Clip"] = Clip,
        ["Gemm"] = Gemm,
        ["MatMul"] = (n, x, _, _) => [FloatIn(n, x, 0).Matmul(FloatIn(n, x, 1))],
        ["Flatten"] = Flatten,
        ["Add"] = (n, x, _, _) => [Binary(n, x, '+')],
        ["Sub"] = (n, x, _, _) => [Binary(n, x, '-')],
        ["Mul"] = (n, x, _, _) => [Binary(n, x, '*')],
        ["Div"] = (n, x, _, _) => [Binary(n, x, '/')],
        ["Sum"] = (n, x, _, _) => [Variadic(n, x, '+')],
        ["Neg"] = (n, x, _, _) => [Unary(n, In(n, x, 0), t => t.Neg(), v => -v)],
        ["Abs"] = (n, x, _, _) => [Unary(n, In(n, x, 0), t => t.Abs(), Math.Abs)],
        ["Sqrt"] = (n, x, _, _) => [FloatIn(n, x, 0).Sqrt()],
        ["Exp"] = (n, x, _, _) => [FloatIn(n, x, 0).Exp()],
        ["Erf"] = (n, x, _, _) => [Erf(FloatIn(n, x, 0))],
        ["Log"] = (n, x, _, _) => [FloatIn(n, x, 0).Log()],
        ["Pow"] = (n, x, _, _) => [FloatIn(n, x, 0).Pow(In(n, x, 1) is { Numel: 1 } e ? e.Item() : throw n.Error("only a scalar exponent is supported"))],
        ["Concat"] = Concat,
        ["Pad"] = Pad,
        ["Resize"] = Resize,
        ["Upsample"] = Resize,
        ["Dropout"] = Dropout,
        ["Identity"] = (n, x, _, _) => [In(n, x, 0)],
        ["Constant"] = Constant,
        ["Shape"] = Shape,
        ["Gather"] = Gather,
        ["Slice"] = Slice,
        ["ConstantOfShape"] = ConstantOfShape,
        ["Cast"] = Cast,
        ["Unsqueeze"] = Unsqueeze,
        ["Squeeze"] = Squeeze,
        ["Reshape"] = Reshape,
        ["Transpose"] = Transpose,
        ["Expand"] = Expand,
        ["ReduceMean"] = (n, x, _, _) => [Reduce(n, x, (t, d, k) => t.Mean(d, k))],
        ["ReduceSum"] = (n, x, _, _) => [Reduce(n, x, (t, d, k) => t.Sum(d, k))],
        ["ReduceMax"] = (n, x, _, _) => [Reduce(n, x, (t, d, k) => d.OrderDescending().Aggregate(t, (acc, a) => acc.Max(a, k).Values))],
        ["ConvInteger"] = (n, x, t, l) => [Integer(n, x, 2, 3, ys => Conv(n, ys, t, l)[0]!)],
        ["MatMulInteger"] = (n, x, _, _) => [Integer(n, x, 2, 3, ys => ys[0]!.Matmul(ys[1]!))],
        ["DeformConv"] = DeformConv,
    };

    /// <summary>True when ConvLab imports <paramref name="opType"/>.</summary>
    internal static bool Supports(string opType) => Ops.ContainsKey(opType);

    /// <summary>Every op ConvLab imports, sorted.</summary>
    internal static IEnumerable<string> Supported => Ops.Keys.Order(StringComparer.Ordinal);

    /// <summary>
    /// Whether input <paramref name="index"/> of <paramref name="opType"/> holds a learned weight when it is a float
    /// initializer: true for a parameter, false for a buffer (batch-norm statistics), null for data/constants.
    /// </summary>
    internal static bool? WeightRole(string opType, int index) => opType switch
    {
        "Conv" or "ConvTranspose" when index is 1 or 2 => true,
        "DeformConv" when index is 1 or 3 => true,
        "Gemm" or "MatMul" when index is 0 or 1 or 2 => true,
        "BatchNormalization" when index is 1 or 2 => true,
        "BatchNormalization" when index is 3 or 4 => false,
        "Add" or "Sub" or "Mul" or "Div" or "PRelu" => true,
        _ => null,
    };

    /// <summary>
    /// erf, which ConvLab's own GELU export writes (0.5·x·(1 + erf(x/√2))): values from the kernel GELU uses, gradient
    /// 2/√π·e^(−x²).
    /// </summary>
    private static Tensor Erf(Tensor x)
    {
        var y = Tensor.FromArray(x.Contiguous().ToDoubleArray().Select(Kernels.Activation.Erf).ToArray(), x.Shape.ToArray()).To(x.DType);
        if (!Autograd.Engine.WillRecord(x)) return y;
        return Autograd.Engine.Record(y, new Autograd.FuncNode("ErfBackward", g => [g.Mul(x.Pow(2).Neg().Exp().MulScalar(2 / Math.Sqrt(Math.PI)))]), x);
    }

    /// <summary>Runs one node.</summary>
    internal static Tensor?[] Run(OnnxNode n, Tensor?[] inputs, bool training, long limit) => Ops[n.OpType](n, inputs, training, limit);

    private static Tensor In(OnnxNode n, Tensor?[] x, int i) =>
        i < x.Length && x[i] is { } t ? t : throw n.Error($"input {i} is missing");

    private static Tensor? Opt(Tensor?[] x, int i) => i < x.Length ? x[i] : null;

    private static Tensor FloatIn(OnnxNode n, Tensor?[] x, int i)
    {
        var t = In(n, x, i);
        if (!t.IsFloatingPoint) throw n.Error($"input {i} must be floating point (ConvLab runs this op on float32/float64)");
        return t;
    }

    /// <summary>The values of an int64 (or float) tensor as longs.</summary>
    internal static long[] Longs(Tensor t) => t.DType == DType.Int64 ? t.ToInt64Array() : t.ToDoubleArray().Select(v => (long)v).ToArray();

    private static int CheckedInt(OnnxNode n, long v, string what) =>
        v is < int.MinValue or > int.MaxValue ? throw n.Error($"{what} {v} is out of range") : (int)v;

    private static int Axis(OnnxNode n, long axis, int rank, string what = "axis")
    {
        long a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= Math.Max(rank, 1)) throw n.Error($"{what} {axis} is out of range for rank {rank}");
        return (int)a;
    }

    private static void CheckSize(OnnxNode n, long elements, long limit)
    {
        if (elements > limit) throw n.Error($"would create {elements} elements, more than this file can describe");
    }

    // ---------------------------------------------------------------- element-wise

    private static Tensor Unary(OnnxNode n, Tensor t, Func<Tensor, Tensor> f, Func<long, long> g) =>
        t.IsFloatingPoint ? f(t) : Tensor.FromArray(t.ToInt64Array().Select(g).ToArray(), t.Shape.ToArray());

    private static Tensor Binary(OnnxNode n, Tensor?[] x, char op)
    {
        var a = In(n, x, 0); var b = In(n, x, 1);
        if (a.IsFloatingPoint != b.IsFloatingPoint) throw n.Error($"inputs mix integer and floating-point types");
        if (a.IsFloatingPoint)
            return op switch { '+' => a.Add(b), '-' => a.Sub(b), '*' => a.Mul(b), _ => a.Div(b) };
        return IntBroadcast(n, a, b, op switch
        {
            '+' => (p, q) => p + q,
            '-' => (p, q) => p - q,
            '*' => (p, q) => p * q,
            _ => (p, q) => q == 0 ? throw n.Error("integer division by zero") : p / q,
        });
    }

    private static Tensor Variadic(OnnxNode n, Tensor?[] x, char op)
    {
        var acc = In(n, x, 0);
        for (int i = 1; i < x.Length; i++) acc = Binary(n, [acc, In(n, x, i)], op);
        return acc;
    }

    private static Tensor IntBroadcast(OnnxNode n, Tensor a, Tensor b, Func<long, long, long> f)
    {
        var shape = ShapeUtil.Broadcast(a.Shape, b.Shape, "onnx " + n.OpType);
        var ea = a.Expand(shape).Contiguous().ToInt64Array();
        var eb = b.Expand(shape).Contiguous().ToInt64Array();
        var y = new long[ea.Length];
        for (int i = 0; i < y.Length; i++) y[i] = f(ea[i], eb[i]);
        return Tensor.FromArray(y, shape);
    }

    private static Tensor?[] HardSigmoid(OnnxNode n, Tensor?[] x, bool training, long limit)
    {
        var t = FloatIn(n, x, 0);
        float alpha = n.Float("alpha", 0.2f), beta = n.Float("beta", 0.5f);
        if (Math.Abs(alpha - 1.0 / 6) < 1e-7 && beta == 0.5f) return [F.Hardsigmoid(t)];
        // clip(αx + β, 0, 1) as relu6(6(αx + β)) / 6 keeps one differentiable path.
        return [F.Relu6(t.MulScalar(6 * alpha).AddScalar(6 * beta)).MulScalar(1.0 / 6)];
    }

    private static Tensor SoftmaxOp(OnnxNode n, Tensor t, bool log)
    {
        if (n.Opset >= 13)
        {
            int axis = Axis(n, n.Int("axis", -1), t.Rank);
            return log ? F.LogSoftmax(t, axis) : F.Softmax(t, axis);
        }
        // Before opset 13 softmax ran over the input flattened to 2-D at axis.
        int a = Axis(n, n.Int("axis", 1), t.Rank);
        var shape = t.Shape.ToArray();
        var flat = t.Reshape(ShapeUtil.Numel(shape.AsSpan(0, a)), ShapeUtil.Numel(shape.AsSpan(a)));
        return (log ? F.LogSoftmax(flat, 1) : F.Softmax(flat, 1)).Reshape(shape);
    }

    private static Tensor?[] Clip(OnnxNode n, Tensor?[] x, bool training, long limit)
    {
        var t = In(n, x, 0);
        double? lo, hi;
        if (n.Opset < 11) { lo = n.Has("min") ? n.Float("min", 0) : null; hi = n.Has("max") ? n.Float("max", 0) : null; }
        else
        {
            lo = Opt(x, 1) is { } a ? (a.Numel == 1 ? a.Item() : throw n.Error("min must be a scalar")) : null;
            hi = Opt(x, 2) is { } b ? (b.Numel == 1 ? b.Item() : throw n.Error("max must be a scalar")) : null;
        }
        if (!t.IsFloatingPoint)
            return [Tensor.FromArray(t.ToInt64Array().Select(v => Math.Min(Math.Max(v, lo is { } l ? (long)l : long.MinValue), hi is { } h ? (long)h : long.MaxValue)).ToArray(), t.Shape.ToArray())];
        if (lo == 0 && hi == 6) return [F.Relu6(t)];
        if (lo == 0 && hi == null) return [F.Relu(t)];
        var y = t;
        if (lo is { } low) y = y.Maximum(Tensor.Scalar(low, t.DType));
        if (hi is { } high) y = y.Neg().Maximum(Tensor.Scalar(-high, t.DType)).Neg();
        if (lo is { } l2 && hi is { } h2 && l2 > h2) y = Tensor.Full(t.Shape, h2, t.DType);
        return [y];
    }

    private static Tensor?[] Dropout(OnnxNode n, Tensor?[] x, bool training, long limit)
    {
        var t = In(n, x, 0);
        bool train = Opt(x, 2) is { } tm && tm.Item() != 0;
        if (train) throw n.Error("training_mode dropout is not supported (ConvLab imports dropout for inference)");
        // Inference: the data passes through and the mask keeps everything.
        return [t, Tensor.Ones(t.Shape, DType.Int64)];
    }

    // ---------------------------------------------------------------- linear algebra

    private static Tensor?[] Gemm(OnnxNode n, Tensor?[] x, bool training, long limit)
    {
        var a = FloatIn(n, x, 0); var b = FloatIn(n, x, 1); var c = Opt(x, 2);
        if (a.Rank != 2 || b.Rank != 2) throw n.Error($"A and B must be 2-D, got {ShapeUtil.Format(a.Shape)} and {ShapeUtil.Format(b.Shape)}");
        double alpha = n.Float("alpha", 1), beta = n.Float("beta", 1);
        bool ta = n.Int("transA", 0) != 0, tb = n.Int("transB", 0) != 0;
        // PyTorch's nn.Linear exports as Gemm(transB=1) with a 1-D bias: the functional linear op is exactly that.
        if (!ta && tb && alpha == 1 && (c == null || (beta == 1 && c.Rank == 1 && c.Shape[0] == b.Shape[0] && c.IsFloatingPoint)))
            return [F.Linear(a, b, c)];
        var y = (ta ? a.T : a).Matmul(tb ? b.T : b);
        if (alpha != 1) y = y.MulScalar(alpha);
        if (c != null) y = y.Add(beta == 1 ? c.To(y.DType) : c.To(y.DType).MulScalar(beta));
        return [y];
    }

    private static Tensor?[] Flatten(OnnxNode n, Tensor?[] x, bool training, long limit)
    {
        var t = In(n, x, 0);
        long axis = n.Int("axis", 1);
        int a = (int)(axis < 0 ? axis + t.Rank : axis);
        if (a < 0 || a > t.Rank) throw n.Error($"axis {axis} is out of range for rank {t.Rank}");
        return [t.Reshape(ShapeUtil.Numel(t.Shape[..a]), ShapeUtil.Numel(t.Shape[a..]))];
    }

    private static Tensor Reduce(OnnxNode n, Tensor?[] x, Func<Tensor, int[], bool, Tensor> f)
    {
        var t = FloatIn(n, x, 0);
        // Axes moved from attribute to input in opset 13 for ReduceSum and in opset 18 for the others.
        bool axesInput = n.Opset >= (n.OpType == "ReduceSum" ? 13 : 18);
        long[]? axes = axesInput ? (Opt(x, 1) is { } ax ? Longs(ax) : null) : n.Ints("axes");
        bool keep = n.Int("keepdims", 1) != 0;
        if ((axes == null || axes.Length == 0) && n.Int("noop_with_empty_axes", 0) != 0) return t;
        var dims = axes == null || axes.Length == 0 ? Enumerable.Range(0, t.Rank).ToArray() : axes.Select(a => Axis(n, a, t.Rank)).Distinct().ToArray();
        return f(t, dims, keep);
    }

    /// <summary>
    /// ConvInteger / MatMulInteger: the operands minus their zero points, multiplied in float64 (exact for 8-bit
    /// operands and the sums these ops produce) and returned as integers.
    /// </summary>
    private static Tensor Integer(OnnxNode n, Tensor?[] x, int zeroA, int zeroB, Func<Tensor?[], Tensor> op)
    {
        var a = In(n, x, 0).To(DType.Float64); var b = In(n, x, 1).To(DType.Float64);
        if (Opt(x, zeroA) is { } za) a = a.Sub(za.To(DType.Float64));
        if (Opt(x, zeroB) is { } zb) b = b.Sub(zb.To(DType.Float64));
        var y = op([a, b]);
        return Tensor.FromArray(y.ToDoubleArray().Select(v => (long)Math.Round(v)).ToArray(), y.Shape.ToArray());
    }
}
