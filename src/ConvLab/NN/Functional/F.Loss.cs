using System.Numerics;
using ConvLab.Autograd;
using ConvLab.Autograd.Nodes;
using ConvLab.Kernels;

namespace ConvLab.NN.Functional;

public static partial class F
{
    /// <summary>
    /// Cross entropy between logits and targets (PyTorch 1.13's <c>F.cross_entropy</c>), with a stable
    /// log-softmax over the class dimension. <paramref name="input"/> is (C), (N, C) or (N, C, d1, ...);
    /// <paramref name="target"/> is either int64 class indices of shape (), (N) or (N, d1, ...) or
    /// floating-point class probabilities of the input's shape. <paramref name="weight"/> (C) weights the
    /// classes; elements whose index target equals <paramref name="ignoreIndex"/> contribute nothing.
    /// Label smoothing mixes the target with the uniform distribution: for index targets the loss is
    /// (1-ε)·w[t]·(-logp[t]) + ε/C·Σ_c w_c·(-logp_c) and "mean" divides by the sum of w[t] over
    /// non-ignored elements; for probability targets "mean" divides by the number of elements (N·d1·...).
    /// Differentiable w.r.t. input and probability targets (not w.r.t. weight).
    /// </summary>
    public static Tensor CrossEntropy(Tensor input, Tensor target, Tensor? weight = null, long ignoreIndex = -100, string reduction = "mean", double labelSmoothing = 0.0)
        => ClassLoss("cross_entropy", input, target, weight, ignoreIndex, reduction, labelSmoothing, logits: true);

    /// <summary>
    /// Negative log-likelihood of log-probabilities (PyTorch's <c>F.nll_loss</c>): loss = -w[t]·input[t].
    /// Shapes as <see cref="CrossEntropy"/> with int64 class-index targets only; "mean" divides by the sum
    /// of w[t] over non-ignored elements. Differentiable w.r.t. input.
    /// </summary>
    public static Tensor NllLoss(Tensor input, Tensor target, Tensor? weight = null, long ignoreIndex = -100, string reduction = "mean")
        => ClassLoss("nll_loss", input, target, weight, ignoreIndex, reduction, 0.0, logits: false);

    /// <summary>
    /// Binary cross entropy on logits (PyTorch's <c>F.binary_cross_entropy_with_logits</c>), in the stable
    /// form (1-y)·x + (1 + (pos_weight-1)·y)·log(1 + e^(-x)), times weight. <paramref name="target"/> must
    /// have the input's shape; <paramref name="weight"/> and <paramref name="posWeight"/> broadcast to it
    /// (pos_weight of shape (C) weights the positives of each class along the last dimension).
    /// Differentiable w.r.t. input and target.
    /// </summary>
    public static Tensor BinaryCrossEntropyWithLogits(Tensor input, Tensor target, Tensor? weight = null, Tensor? posWeight = null, string reduction = "mean")
    {
        const string op = "binary_cross_entropy_with_logits";
        CheckReduction(op, reduction);
        input.RequireFloat(op); target.RequireFloat(op);
        if (!target.Shape.SequenceEqual(input.Shape))
            throw new ArgumentException($"{op}: target shape {ShapeUtil.Format(target.Shape)} must equal input shape {ShapeUtil.Format(input.Shape)}");
        target = target.To(input.DType);
        var w = weight == null ? null : BroadcastConstant(op, "weight", weight, input);
        var pw = posWeight == null ? null : BroadcastConstant(op, "pos_weight", posWeight, input);
        var x = input.Detach().Contiguous(); var y = target.Detach().Contiguous();
        var loss = Tensor.Zeros(input.Shape, input.DType);
        bool record = Engine.WillRecord(input, target);
        Tensor? dx = record ? Tensor.Zeros(input.Shape, input.DType) : null, dy = record ? Tensor.Zeros(input.Shape, input.DType) : null;
        if (input.DType == DType.Float32)
            Kernels.Loss.BceWithLogits<float>(x.Read<float>(), y.Read<float>(), w == null ? default : w.Read<float>(), pw == null ? default : pw.Read<float>(),
                loss.Span<float>(), dx == null ? default : dx.Span<float>(), dy == null ? default : dy.Span<float>());
        else
            Kernels.Loss.BceWithLogits<double>(x.Read<double>(), y.Read<double>(), w == null ? default : w.Read<double>(), pw == null ? default : pw.Read<double>(),
                loss.Span<double>(), dx == null ? default : dx.Span<double>(), dy == null ? default : dy.Span<double>());
        if (record) loss = Engine.Record(loss, new ElementwiseLossBackward("BinaryCrossEntropyWithLogitsBackward", dx!, dy, false), input, target);
        return Reduce(loss, reduction, null);
    }

    /// <summary>Mean squared error (PyTorch's <c>F.mse_loss</c>): (input - target)². The shapes must match (see <see cref="CheckSameSize"/>). Differentiable w.r.t. input and target.</summary>
    public static Tensor MseLoss(Tensor input, Tensor target, string reduction = "mean")
        => RegressionLoss("mse_loss", RegressionKind.Mse, 0, input, target, reduction);

    /// <summary>Mean absolute error (PyTorch's <c>F.l1_loss</c>): |input - target| (gradient 0 at 0). The shapes must match. Differentiable w.r.t. input and target.</summary>
    public static Tensor L1Loss(Tensor input, Tensor target, string reduction = "mean")
        => RegressionLoss("l1_loss", RegressionKind.L1, 0, input, target, reduction);

    /// <summary>
    /// Smooth L1 (PyTorch's <c>F.smooth_l1_loss</c>): 0.5·d²/β where |d| &lt; β, else |d| - 0.5·β, with
    /// d = input - target; β = 0 is plain L1, negative β is refused. The shapes must match. Differentiable w.r.t. input and target.
    /// </summary>
    public static Tensor SmoothL1Loss(Tensor input, Tensor target, string reduction = "mean", double beta = 1.0)
    {
        if (!(beta >= 0)) throw new ArgumentException($"smooth_l1_loss: beta must be non-negative, got {beta}");
        return RegressionLoss("smooth_l1_loss", RegressionKind.SmoothL1, beta, input, target, reduction);
    }

    /// <summary>
    /// Huber loss (PyTorch's <c>F.huber_loss</c>): 0.5·d² where |d| ≤ δ, else δ·(|d| - 0.5·δ); δ must be
    /// positive. The shapes must match. Differentiable w.r.t. input and target.
    /// </summary>
    public static Tensor HuberLoss(Tensor input, Tensor target, string reduction = "mean", double delta = 1.0)
    {
        if (!(delta > 0)) throw new ArgumentException($"huber_loss: delta must be positive, got {delta}");
        return RegressionLoss("huber_loss", RegressionKind.Huber, delta, input, target, reduction);
    }

    private static void CheckReduction(string op, string reduction)
    {
        if (reduction is not ("none" or "mean" or "sum"))
            throw new ArgumentException($"{op}: reduction must be 'none', 'mean' or 'sum', got '{reduction}'");
    }

    /// <summary>Applies the reduction to per-element losses; "mean" divides by <paramref name="denominator"/> when given (0/0 gives NaN, as PyTorch).</summary>
    private static Tensor Reduce(Tensor perElement, string reduction, double? denominator) => reduction switch
    {
        "none" => perElement,
        "sum" => perElement.Sum(),
        _ => denominator is double d ? perElement.Sum().MulScalar(1.0 / d) : perElement.Mean(),
    };

    /// <summary>A non-differentiable per-element factor (weight, pos_weight) broadcast to the input's shape and dtype, densely stored.</summary>
    private static Tensor BroadcastConstant(string op, string name, Tensor t, Tensor input)
    {
        t.RequireFloat(op);
        int[] shape;
        try { shape = ShapeUtil.Broadcast(t.Shape, input.Shape, op); }
        catch (ArgumentException) { shape = []; }
        if (!shape.AsSpan().SequenceEqual(input.Shape))
            throw new ArgumentException($"{op}: {name} of shape {ShapeUtil.Format(t.Shape)} cannot be broadcast to input shape {ShapeUtil.Format(input.Shape)}");
        return t.Detach().To(input.DType).Expand(shape).ContiguousCopy();
    }

    /// <summary>
    /// PyTorch broadcasts a target of another size with the warning "Using a target size that is different to the input
    /// size"; the classic case, a [N, 1] output against an [N] target, silently becomes an [N, N] loss. ConvLab refuses
    /// instead; callers who mean to broadcast say so with <c>target.Expand(input.Shape)</c>.
    /// </summary>
    private static void CheckSameSize(string op, Tensor input, Tensor target)
    {
        if (input.Shape.SequenceEqual(target.Shape)) return;
        throw new ArgumentException($"{op}: Using a target size ({ShapeUtil.Format(target.Shape)}) that is different to the input size ({ShapeUtil.Format(input.Shape)}) " +
            "would broadcast and likely give incorrect results (PyTorch warns; ConvLab refuses). Please ensure they have the same size, or expand the target explicitly.");
    }

    private static Tensor RegressionLoss(string op, RegressionKind kind, double param, Tensor input, Tensor target, string reduction)
    {
        CheckReduction(op, reduction);
        input.RequireFloat(op); target.RequireFloat(op);
        CheckSameSize(op, input, target);
        target = target.To(input.DType);
        var x = input.Detach().Contiguous(); var y = target.Detach().Contiguous();
        var loss = Tensor.Zeros(input.Shape, input.DType);
        bool record = Engine.WillRecord(input, target);
        var dx = record ? Tensor.Zeros(input.Shape, input.DType) : null;
        if (input.DType == DType.Float32)
            Kernels.Loss.Regression<float>(kind, param, x.Read<float>(), y.Read<float>(), loss.Span<float>(), dx == null ? default : dx.Span<float>());
        else
            Kernels.Loss.Regression<double>(kind, param, x.Read<double>(), y.Read<double>(), loss.Span<double>(), dx == null ? default : dx.Span<double>());
        if (record) loss = Engine.Record(loss, new ElementwiseLossBackward(kind + "LossBackward", dx!, null, true), input, target);
        return Reduce(loss, reduction, null);
    }

    private static Tensor ClassLoss(string op, Tensor input, Tensor target, Tensor? weight, long ignoreIndex, string reduction, double smoothing, bool logits)
    {
        CheckReduction(op, reduction);
        input.RequireFloat(op);
        if (input.Rank < 1)
            throw new ArgumentException($"{op}: input must be (C), (N, C) or (N, C, d1, ...), got a 0-D tensor");
        bool unbatched = input.Rank == 1;
        int n = unbatched ? 1 : input.Shape[0], c = unbatched ? input.Shape[0] : input.Shape[1];
        int s = unbatched ? 1 : ShapeUtil.Numel(input.Shape[2..]);
        int[] elemShape = unbatched ? [] : [n, .. input.Shape[2..]];
        bool byIndex = target.DType == DType.Int64;
        if (byIndex)
        {
            if (!target.Shape.SequenceEqual(elemShape))
            {
                if (!unbatched && target.Rank == 1 && input.Rank == 2)
                    throw new ArgumentException($"{op}: target has {target.Shape[0]} elements but input batch is {n}");
                throw new ArgumentException($"{op}: target shape {ShapeUtil.Format(target.Shape)} does not match input shape {ShapeUtil.Format(input.Shape)} (class-index target must have shape {ShapeUtil.Format(elemShape)})");
            }
        }
        else
        {
            if (!logits)
                throw new ArgumentException($"{op}: target must hold int64 class indices, got {target.DType}");
            if (!target.Shape.SequenceEqual(input.Shape))
                throw new ArgumentException($"{op}: probability target shape {ShapeUtil.Format(target.Shape)} must equal input shape {ShapeUtil.Format(input.Shape)} (or pass int64 class indices of shape {ShapeUtil.Format(elemShape)})");
            if (ignoreIndex >= 0)
                throw new ArgumentException($"{op}: ignore_index ({ignoreIndex}) is not supported for probability targets");
            target = target.To(input.DType);
        }
        if (weight != null)
        {
            weight.RequireFloat(op);
            if (weight.Rank != 1 || weight.Shape[0] != c)
                throw new ArgumentException($"{op}: weight must have {c} entries (one per class), got {(weight.Rank == 1 ? weight.Shape[0].ToString() : "shape " + ShapeUtil.Format(weight.Shape))}");
        }
        if (!(smoothing >= 0 && smoothing <= 1))
            throw new ArgumentException($"{op}: label_smoothing must be between 0.0 and 1.0, got {smoothing}");
        if (byIndex)
            foreach (long t in target.Read<long>())
                if (t != ignoreIndex && (t < 0 || t >= c))
                    throw new ArgumentException($"{op}: target class {t} is out of range for {c} classes (ignore_index={ignoreIndex})");

        return input.DType == DType.Float32
            ? ClassLossCore<float>(input, target, weight, ignoreIndex, reduction, smoothing, logits, n, c, s, elemShape, unbatched)
            : ClassLossCore<double>(input, target, weight, ignoreIndex, reduction, smoothing, logits, n, c, s, elemShape, unbatched);
    }

    private static Tensor ClassLossCore<T>(Tensor input, Tensor target, Tensor? weight, long ignoreIndex, string reduction, double smoothing, bool logits,
        int n, int c, int s, int[] elemShape, bool unbatched) where T : unmanaged, IFloatingPointIeee754<T>
    {
        bool byIndex = target.DType == DType.Int64;
        var dtype = input.DType;
        var x = input.Detach().Contiguous();
        var w = weight?.Detach().To(dtype).Contiguous();
        var coef = Tensor.Zeros(input.Shape, dtype);
        double weightSum = Kernels.Loss.Coefficients<T>(n, c, s, byIndex, byIndex ? target.Read<long>() : default, byIndex ? default : target.Detach().Read<T>(),
            w == null ? default : w.Read<T>(), ignoreIndex, smoothing, coef.Span<T>());
        var logp = x;
        if (logits)
        {
            logp = Tensor.Zeros(input.Shape, dtype);
            Kernels.Loss.LogSoftmax<T>(x.Read<T>(), n, c, s, logp.Span<T>());
        }
        var loss = Tensor.Zeros(elemShape, dtype);
        Kernels.Loss.ClassLoss<T>(logp.Read<T>(), coef.Read<T>(), n, c, s, loss.Span<T>());
        if (Engine.WillRecord(input, target))
        {
            Tensor? dTarget = null;
            if (!byIndex && target.RequiresGrad)
                using (new NoGrad())
                {
                    // ∂loss/∂target_k = -(1-ε)·w_k·logp_k
                    dTarget = logp.MulScalar(-(1 - smoothing));
                    if (w != null) dTarget = dTarget.Mul(w.Reshape([c, .. Enumerable.Repeat(1, unbatched ? 0 : input.Rank - 2)]));
                }
            loss = Engine.Record(loss, new ClassLossBackward(logp, coef, n, c, s, logits, dTarget, unbatched), input, target);
        }
        return Reduce(loss, reduction, byIndex ? weightSum : null);
    }
}
