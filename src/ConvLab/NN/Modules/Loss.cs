using ConvLab.NN.Functional;

namespace ConvLab.NN;

/// <summary>
/// Base of the loss modules (PyTorch's <c>_Loss</c>): a loss compares an input with a target, so it is
/// applied with <see cref="Forward(Tensor, Tensor)"/>; the single-argument <see cref="Forward(Tensor)"/>
/// throws. Holds the reduction (<c>none</c> | <c>mean</c> | <c>sum</c>).
/// </summary>
public abstract class LossModule : Module
{
    /// <summary>Validates and stores the reduction; <paramref name="name"/> prefixes error messages.</summary>
    protected LossModule(string name, string reduction)
    {
        if (reduction is not ("none" or "mean" or "sum"))
            throw new ArgumentException($"{name}: reduction must be 'none', 'mean' or 'sum', got '{reduction}'");
        Reduction = reduction;
    }

    /// <summary>How per-element losses are combined: <c>none</c>, <c>mean</c> or <c>sum</c>.</summary>
    public string Reduction { get; }

    /// <summary>The loss of <paramref name="input"/> against <paramref name="target"/>.</summary>
    public abstract Tensor Forward(Tensor input, Tensor target);

    /// <summary>Same as <see cref="Forward(Tensor, Tensor)"/>.</summary>
    public Tensor Call(Tensor input, Tensor target) => Forward(input, target);

    /// <summary>Always throws: a loss needs a target; call <see cref="Forward(Tensor, Tensor)"/>.</summary>
    public override Tensor Forward(Tensor input) =>
        throw new InvalidOperationException($"{GetType().Name}: a loss needs a target; call Forward(input, target)");

    /// <inheritdoc/>
    protected override string ExtraRepr() => Reduction == "mean" ? "" : $"reduction={Reduction}";
}

/// <summary>Cross entropy on logits (PyTorch's <c>nn.CrossEntropyLoss</c>); the class weight is registered as buffer <c>weight</c>. See <see cref="F.CrossEntropy"/>.</summary>
public sealed class CrossEntropyLoss : LossModule
{
    /// <summary>Creates the loss; <paramref name="weight"/> (C) is stored as a buffer.</summary>
    public CrossEntropyLoss(Tensor? weight = null, long ignoreIndex = -100, string reduction = "mean", double labelSmoothing = 0.0)
        : base("CrossEntropyLoss", reduction)
    {
        if (weight is { Rank: not 1 })
            throw new ArgumentException($"CrossEntropyLoss: weight must be 1-D (one entry per class), got shape {ShapeUtil.Format(weight.Shape)}");
        if (!(labelSmoothing >= 0 && labelSmoothing <= 1))
            throw new ArgumentException($"CrossEntropyLoss: label_smoothing must be between 0.0 and 1.0, got {labelSmoothing}");
        RegisterBuffer("weight", weight);
        IgnoreIndex = ignoreIndex; LabelSmoothing = labelSmoothing;
    }

    /// <summary>Class weights (C) or null.</summary>
    public Tensor? Weight => GetBuffer("weight");
    /// <summary>Target index that contributes nothing.</summary>
    public long IgnoreIndex { get; }
    /// <summary>Label smoothing ε in [0, 1].</summary>
    public double LabelSmoothing { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input, Tensor target) => F.CrossEntropy(input, target, Weight, IgnoreIndex, Reduction, LabelSmoothing);
}

/// <summary>Negative log-likelihood of log-probabilities (PyTorch's <c>nn.NLLLoss</c>); class weight buffer <c>weight</c>. See <see cref="F.NllLoss"/>.</summary>
public sealed class NLLLoss : LossModule
{
    /// <summary>Creates the loss; <paramref name="weight"/> (C) is stored as a buffer.</summary>
    public NLLLoss(Tensor? weight = null, long ignoreIndex = -100, string reduction = "mean") : base("NLLLoss", reduction)
    {
        if (weight is { Rank: not 1 })
            throw new ArgumentException($"NLLLoss: weight must be 1-D (one entry per class), got shape {ShapeUtil.Format(weight.Shape)}");
        RegisterBuffer("weight", weight);
        IgnoreIndex = ignoreIndex;
    }

    /// <summary>Class weights (C) or null.</summary>
    public Tensor? Weight => GetBuffer("weight");
    /// <summary>Target index that contributes nothing.</summary>
    public long IgnoreIndex { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input, Tensor target) => F.NllLoss(input, target, Weight, IgnoreIndex, Reduction);
}

/// <summary>Binary cross entropy on logits (PyTorch's <c>nn.BCEWithLogitsLoss</c>); buffers <c>weight</c> and <c>pos_weight</c>. See <see cref="F.BinaryCrossEntropyWithLogits"/>.</summary>
public sealed class BCEWithLogitsLoss : LossModule
{
    /// <summary>Creates the loss; <paramref name="weight"/> and <paramref name="posWeight"/> are stored as buffers.</summary>
    public BCEWithLogitsLoss(Tensor? weight = null, string reduction = "mean", Tensor? posWeight = null) : base("BCEWithLogitsLoss", reduction)
    {
        RegisterBuffer("weight", weight);
        RegisterBuffer("pos_weight", posWeight);
    }

    /// <summary>Per-element weight (broadcast to the input) or null.</summary>
    public Tensor? Weight => GetBuffer("weight");
    /// <summary>Weight of positive examples per class (broadcast along the last dimension) or null.</summary>
    public Tensor? PosWeight => GetBuffer("pos_weight");

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input, Tensor target) => F.BinaryCrossEntropyWithLogits(input, target, Weight, PosWeight, Reduction);
}

/// <summary>Mean squared error (PyTorch's <c>nn.MSELoss</c>). See <see cref="F.MseLoss"/>.</summary>
public sealed class MSELoss(string reduction = "mean") : LossModule("MSELoss", reduction)
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input, Tensor target) => F.MseLoss(input, target, Reduction);
}

/// <summary>Mean absolute error (PyTorch's <c>nn.L1Loss</c>). See <see cref="F.L1Loss"/>.</summary>
public sealed class L1Loss(string reduction = "mean") : LossModule("L1Loss", reduction)
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input, Tensor target) => F.L1Loss(input, target, Reduction);
}

/// <summary>Smooth L1 loss (PyTorch's <c>nn.SmoothL1Loss</c>). See <see cref="F.SmoothL1Loss"/>.</summary>
public sealed class SmoothL1Loss : LossModule
{
    /// <summary>Creates the loss; <paramref name="beta"/> must be non-negative.</summary>
    public SmoothL1Loss(string reduction = "mean", double beta = 1.0) : base("SmoothL1Loss", reduction)
    {
        if (!(beta >= 0)) throw new ArgumentException($"SmoothL1Loss: beta must be non-negative, got {beta}");
        Beta = beta;
    }

    /// <summary>Threshold between the quadratic and linear parts.</summary>
    public double Beta { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input, Tensor target) => F.SmoothL1Loss(input, target, Reduction, Beta);
}

/// <summary>Huber loss (PyTorch's <c>nn.HuberLoss</c>). See <see cref="F.HuberLoss"/>.</summary>
public sealed class HuberLoss : LossModule
{
    /// <summary>Creates the loss; <paramref name="delta"/> must be positive.</summary>
    public HuberLoss(string reduction = "mean", double delta = 1.0) : base("HuberLoss", reduction)
    {
        if (!(delta > 0)) throw new ArgumentException($"HuberLoss: delta must be positive, got {delta}");
        Delta = delta;
    }

    /// <summary>Threshold between the quadratic and linear parts.</summary>
    public double Delta { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input, Tensor target) => F.HuberLoss(input, target, Reduction, Delta);
}
