using ConvLab.Autograd;
using ConvLab.Autograd.Nodes;
using ConvLab.Kernels;

namespace ConvLab.NN.Functional;

public static partial class F
{
    /// <summary>max(x, 0) (gradient 0 at 0, as PyTorch).</summary>
    public static Tensor Relu(Tensor input) => Activate(input, "relu", new ActSpec(ActKind.Relu));

    /// <summary>x for x &gt; 0, else negative_slope·x.</summary>
    public static Tensor LeakyRelu(Tensor input, double negativeSlope = 0.01) => Activate(input, "leaky_relu", new ActSpec(ActKind.LeakyRelu, negativeSlope));

    /// <summary>1 / (1 + e^-x).</summary>
    public static Tensor Sigmoid(Tensor input) => Activate(input, "sigmoid", new ActSpec(ActKind.Sigmoid));

    /// <summary>Hyperbolic tangent.</summary>
    public static Tensor Tanh(Tensor input) => Activate(input, "tanh", new ActSpec(ActKind.Tanh));

    /// <summary>x·Φ(x) with the exact normal CDF (<paramref name="approximate"/> "none") or its tanh approximation ("tanh").</summary>
    public static Tensor Gelu(Tensor input, string approximate = "none") => approximate switch
    {
        "none" => Activate(input, "gelu", new ActSpec(ActKind.Gelu)),
        "tanh" => Activate(input, "gelu", new ActSpec(ActKind.GeluTanh)),
        _ => throw new ArgumentException($"gelu: approximate argument must be either none or tanh, got '{approximate}'"),
    };

    /// <summary>x·sigmoid(x) (a.k.a. swish).</summary>
    public static Tensor Silu(Tensor input) => Activate(input, "silu", new ActSpec(ActKind.Silu));

    /// <summary>x for x &gt; 0, else alpha·(e^x - 1).</summary>
    public static Tensor Elu(Tensor input, double alpha = 1.0) => Activate(input, "elu", new ActSpec(ActKind.Elu, alpha));

    /// <summary>x·relu6(x + 3)/6.</summary>
    public static Tensor Hardswish(Tensor input) => Activate(input, "hardswish", new ActSpec(ActKind.Hardswish));

    /// <summary>min(max(x, 0), 6).</summary>
    public static Tensor Relu6(Tensor input) => Activate(input, "relu6", new ActSpec(ActKind.Relu6));

    /// <summary>log(1 + e^(βx))/β, and x where βx &gt; threshold.</summary>
    public static Tensor Softplus(Tensor input, double beta = 1, double threshold = 20) => Activate(input, "softplus", new ActSpec(ActKind.Softplus, beta, threshold));

    /// <summary>relu6(x + 3)/6.</summary>
    public static Tensor Hardsigmoid(Tensor input) => Activate(input, "hardsigmoid", new ActSpec(ActKind.Hardsigmoid));

    private static Tensor Activate(Tensor input, string op, ActSpec spec)
    {
        input.RequireFloat(op);
        if (input.IsMeta) return Analysis.MetaOps.Activation(op, input, 1);
        var x = input.Detach().Contiguous();
        var y = Tensor.Zeros(x.Shape, x.DType);
        if (x.DType == DType.Float32) Activation.Forward(spec, x.Span<float>(), y.Span<float>());
        else Activation.Forward(spec, x.Span<double>(), y.Span<double>());
        Analysis.OpRecorder.Record(y, op, [input], ("spec", spec));
        if (!Engine.WillRecord(input)) return y;
        return Engine.Record(y, new ActivationBackward(spec, x, y.Detach()), input);
    }

    /// <summary>Softmax along <paramref name="dim"/> (negative counts from the end), computed stably.</summary>
    public static Tensor Softmax(Tensor input, int dim) => SoftmaxCore(input, dim, "softmax", log: false);

    /// <summary>log(softmax(x)) along <paramref name="dim"/>, computed stably without forming the softmax.</summary>
    public static Tensor LogSoftmax(Tensor input, int dim) => SoftmaxCore(input, dim, "log_softmax", log: true);

    private static Tensor SoftmaxCore(Tensor input, int dim, string op, bool log)
    {
        input.RequireFloat(op);
        int dd = ShapeUtil.NormDim(dim, input.Rank, op);
        int d = input.Rank == 0 ? 1 : input.Shape[dd];
        int outer = input.Rank == 0 ? 1 : ShapeUtil.Numel(input.Shape[..dd]);
        int inner = input.Rank == 0 ? 1 : ShapeUtil.Numel(input.Shape[(dd + 1)..]);
        if (input.IsMeta) return Analysis.MetaOps.Activation(op, input, 3);
        var x = input.Detach().Contiguous();
        var y = Tensor.Zeros(x.Shape, x.DType);
        if (x.DType == DType.Float32) Activation.Softmax(x.Span<float>(), outer, d, inner, y.Span<float>(), log);
        else Activation.Softmax(x.Span<double>(), outer, d, inner, y.Span<double>(), log);
        Analysis.OpRecorder.Record(y, op, [input], ("dim", dd));
        if (!Engine.WillRecord(input)) return y;
        return Engine.Record(y, new SoftmaxBackward(y.Detach(), outer, d, inner, log), input);
    }

    /// <summary>
    /// Inverted dropout (PyTorch's <c>F.dropout</c>): in training each element is zeroed with probability
    /// <paramref name="p"/> and the rest are scaled by 1/(1-p); otherwise the input is returned unchanged.
    /// The mask comes from <paramref name="generator"/> (or <see cref="Generator.Default"/>), so a seed reproduces it.
    /// </summary>
    public static Tensor Dropout(Tensor input, double p = 0.5, bool training = true, Generator? generator = null) =>
        DropoutCore(input, p, training, generator, "dropout", input.Shape.ToArray());

    /// <summary>
    /// Channel dropout (PyTorch's <c>F.dropout2d</c>) over (N, C, *): whole channels are zeroed with probability
    /// <paramref name="p"/> and the rest scaled by 1/(1-p).
    /// </summary>
    public static Tensor Dropout2d(Tensor input, double p = 0.5, bool training = true, Generator? generator = null)
    {
        if (input.Rank < 2)
            throw new ArgumentException($"dropout2d: expected input of shape (N, C, *) with at least 2 dimensions, got {ShapeUtil.Format(input.Shape)}");
        var maskShape = input.Shape.ToArray();
        for (int i = 2; i < maskShape.Length; i++) maskShape[i] = 1;
        return DropoutCore(input, p, training, generator, "dropout2d", maskShape);
    }

    private static Tensor DropoutCore(Tensor input, double p, bool training, Generator? generator, string op, int[] maskShape)
    {
        input.RequireFloat(op);
        if (!(p >= 0 && p <= 1))
            throw new ArgumentException($"{op}: dropout probability has to be between 0 and 1, but got {p}");
        if (!training || p == 0) return input;
        if (input.IsMeta) return Analysis.MetaOps.Activation(op, input, 1, keepsMask: true);
        var g = generator ?? Generator.Default;
        var mask = Tensor.Zeros(maskShape, input.DType);
        // p = 1 drops everything; the scale would be infinite, so the mask is all zeros instead.
        double scale = p < 1 ? 1 / (1 - p) : 0;
        lock (g) for (int i = 0; i < mask.Numel; i++) mask.SetFlat(i, g.NextDouble() >= p ? scale : 0);
        return input.Mul(mask);
    }
}
