using System.Numerics.Tensors;
using TP = System.Numerics.Tensors.TensorPrimitives;

namespace ConvLab.Training;

/// <summary>
/// Element-wise steps that reproduce PyTorch's float32 rounding: one rounding per ATen op, Python-double scalars
/// cast to float, and a fused multiply-add where ATen's CPU kernels contract one (<c>add_(b, alpha)</c> and the
/// final add of <c>addcmul_</c>, but not <c>addcdiv_</c>); with this the test trajectories agree bit for bit.
/// </summary>
internal static class OptimMath
{
    /// <summary>a = a + alpha * b (ATen <c>add_(b, alpha)</c>).</summary>
    public static void AddScaled(Span<float> a, ReadOnlySpan<float> b, double alpha, Span<float> tmp)
    {
        TP.FusedMultiplyAdd(b, (float)alpha, a, a);
    }

    /// <summary>a = a + (value * t1) * t2 (ATen <c>addcmul_</c>).</summary>
    public static void AddCMul(Span<float> a, ReadOnlySpan<float> t1, ReadOnlySpan<float> t2, double value, Span<float> tmp)
    {
        TP.Multiply(t1, (float)value, tmp);
        TP.FusedMultiplyAdd(tmp, t2, a, a);
    }

    /// <summary>a = a + (value * t1) / t2 (ATen <c>addcdiv_</c>).</summary>
    public static void AddCDiv(Span<float> a, ReadOnlySpan<float> t1, ReadOnlySpan<float> t2, double value, Span<float> tmp)
    {
        TP.Multiply(t1, (float)value, tmp);
        TP.Divide(tmp, t2, tmp);
        TP.Add(a, tmp, a);
    }

    /// <summary>The effective gradient: -grad when maximising, plus weightDecay * param (L2), in <paramref name="dst"/>.</summary>
    public static ReadOnlySpan<float> EffectiveGrad(ReadOnlySpan<float> grad, ReadOnlySpan<float> param, bool maximize, double weightDecay, Span<float> dst, Span<float> tmp)
    {
        if (!maximize && weightDecay == 0) return grad;
        if (maximize) TP.Negate(grad, dst); else grad.CopyTo(dst);
        if (weightDecay != 0) AddScaled(dst, param, weightDecay, tmp);
        return dst;
    }
}

/// <summary>
/// Stochastic gradient descent with optional (Nesterov) momentum, as <c>torch.optim.SGD</c>: the momentum buffer
/// starts as the first gradient, then <c>buf = momentum * buf + (1 - dampening) * g</c>.
/// </summary>
public sealed class SGD : Optimizer
{
    /// <summary>SGD over parameter groups.</summary>
    public SGD(IEnumerable<ParamGroup> groups, double lr, double momentum = 0, double dampening = 0, double weightDecay = 0, bool nesterov = false, bool maximize = false)
        : base("SGD", groups, new ParamGroup([], lr, weightDecay) { Momentum = momentum, Dampening = dampening, Nesterov = nesterov, Maximize = maximize }) { }

    /// <summary>SGD over one group of parameters.</summary>
    public SGD(IEnumerable<Tensor> parameters, double lr, double momentum = 0, double dampening = 0, double weightDecay = 0, bool nesterov = false, bool maximize = false)
        : this(OneGroup(parameters), lr, momentum, dampening, weightDecay, nesterov, maximize) { }

    /// <inheritdoc/>
    protected override void Validate(ParamGroup g)
    {
        base.Validate(g);
        if (!(g.Momentum >= 0)) throw new ArgumentException($"SGD: invalid momentum value {g.Momentum} (expected >= 0)");
        if (g.Nesterov == true && (g.Momentum <= 0 || g.Dampening != 0))
            throw new ArgumentException($"SGD: nesterov momentum requires a momentum > 0 and zero dampening (got momentum={g.Momentum}, dampening={g.Dampening})");
    }

    /// <inheritdoc/>
    protected override void Update(ParamGroup g, Span<float> p, ReadOnlySpan<float> grad, ParamState s)
    {
        Span<float> a = Scratch(0, p.Length), tmp = Scratch(1, p.Length);
        var dp = OptimMath.EffectiveGrad(grad, p, g.Maximize!.Value, g.WeightDecay, a, tmp);
        double m = g.Momentum!.Value;
        if (m != 0)
        {
            var buf = s.Get("momentum_buffer");
            if (buf == null) s.Buffers["momentum_buffer"] = buf = dp.ToArray();
            else
            {
                TP.Multiply(buf, (float)m, buf);
                OptimMath.AddScaled(buf, dp, 1 - g.Dampening!.Value, tmp);
            }
            if (g.Nesterov!.Value)
            {
                if (!dp.Overlaps(a)) dp.CopyTo(a);
                OptimMath.AddScaled(a, buf, m, tmp);
                dp = a;
            }
            else dp = buf;
        }
        OptimMath.AddScaled(p, dp, -g.LearningRate, tmp);
    }
}

/// <summary>Adam and AdamW (shared update; they differ in how weight decay is applied).</summary>
public abstract class AdamBase : Optimizer
{
    private readonly bool _decoupled;

    private protected AdamBase(string name, bool decoupled, IEnumerable<ParamGroup> groups, double lr, (double, double) betas, double eps, double weightDecay, bool amsgrad, bool maximize)
        : base(name, groups, new ParamGroup([], lr, weightDecay) { Betas = betas, Eps = eps, Amsgrad = amsgrad, Maximize = maximize }) => _decoupled = decoupled;

    /// <inheritdoc/>
    protected override void Validate(ParamGroup g)
    {
        base.Validate(g);
        if (!(g.Eps >= 0)) throw new ArgumentException($"{Name}: invalid epsilon value {g.Eps} (expected >= 0)");
        var (b1, b2) = g.Betas!.Value;
        if (!(b1 >= 0 && b1 < 1)) throw new ArgumentException($"{Name}: invalid beta parameter at index 0: {b1} (expected in [0, 1))");
        if (!(b2 >= 0 && b2 < 1)) throw new ArgumentException($"{Name}: invalid beta parameter at index 1: {b2} (expected in [0, 1))");
    }

    /// <inheritdoc/>
    protected override void Update(ParamGroup g, Span<float> p, ReadOnlySpan<float> grad, ParamState s)
    {
        Span<float> a = Scratch(0, p.Length), tmp = Scratch(1, p.Length);
        var (b1, b2) = g.Betas!.Value;
        double lr = g.LearningRate;
        ReadOnlySpan<float> gr;
        if (_decoupled)
        {
            gr = OptimMath.EffectiveGrad(grad, p, g.Maximize!.Value, 0, a, tmp);
            TP.Multiply(p, (float)(1 - lr * g.WeightDecay), p);
        }
        else gr = OptimMath.EffectiveGrad(grad, p, g.Maximize!.Value, g.WeightDecay, a, tmp);
        var expAvg = s.Zeros("exp_avg", p.Length);
        var expAvgSq = s.Zeros("exp_avg_sq", p.Length);
        TP.Multiply(expAvg, (float)b1, expAvg);
        OptimMath.AddScaled(expAvg, gr, 1 - b1, tmp);
        TP.Multiply(expAvgSq, (float)b2, expAvgSq);
        OptimMath.AddCMul(expAvgSq, gr, gr, 1 - b2, tmp);

        double step = s.Step;
        double stepSize = lr / (1 - Math.Pow(b1, step));
        double bc2Sqrt = Math.Sqrt(1 - Math.Pow(b2, step));
        float[] second = expAvgSq;
        if (g.Amsgrad!.Value)
        {
            second = s.Zeros("max_exp_avg_sq", p.Length);
            TP.Max(second, expAvgSq, second);
        }
        // denom = sqrt(v) / sqrt(bias_correction2) + eps; `a` is free again once the moments are updated
        TP.Sqrt(second, a);
        TP.Divide(a, (float)bc2Sqrt, a);
        TP.Add(a, (float)g.Eps!.Value, a);
        OptimMath.AddCDiv(p, expAvg, a, -stepSize, tmp);
    }
}

/// <summary>Adam (<c>torch.optim.Adam</c>, PyTorch 1.13): weight decay is an L2 term added to the gradient.</summary>
public sealed class Adam : AdamBase
{
    /// <summary>Adam over parameter groups; betas default to (0.9, 0.999).</summary>
    public Adam(IEnumerable<ParamGroup> groups, double lr = 1e-3, (double, double)? betas = null, double eps = 1e-8, double weightDecay = 0, bool amsgrad = false, bool maximize = false)
        : base("Adam", false, groups, lr, betas ?? (0.9, 0.999), eps, weightDecay, amsgrad, maximize) { }

    /// <summary>Adam over one group of parameters.</summary>
    public Adam(IEnumerable<Tensor> parameters, double lr = 1e-3, (double, double)? betas = null, double eps = 1e-8, double weightDecay = 0, bool amsgrad = false, bool maximize = false)
        : this(OneGroup(parameters), lr, betas, eps, weightDecay, amsgrad, maximize) { }
}

/// <summary>AdamW (<c>torch.optim.AdamW</c>): decoupled weight decay <c>p *= 1 - lr * weight_decay</c> before the Adam step.</summary>
public sealed class AdamW : AdamBase
{
    /// <summary>AdamW over parameter groups; betas default to (0.9, 0.999).</summary>
    public AdamW(IEnumerable<ParamGroup> groups, double lr = 1e-3, (double, double)? betas = null, double eps = 1e-8, double weightDecay = 1e-2, bool amsgrad = false, bool maximize = false)
        : base("AdamW", true, groups, lr, betas ?? (0.9, 0.999), eps, weightDecay, amsgrad, maximize) { }

    /// <summary>AdamW over one group of parameters.</summary>
    public AdamW(IEnumerable<Tensor> parameters, double lr = 1e-3, (double, double)? betas = null, double eps = 1e-8, double weightDecay = 1e-2, bool amsgrad = false, bool maximize = false)
        : this(OneGroup(parameters), lr, betas, eps, weightDecay, amsgrad, maximize) { }
}

/// <summary>RMSprop (<c>torch.optim.RMSprop</c>): eps is added after the square root; optional momentum and centering.</summary>
public sealed class RMSprop : Optimizer
{
    /// <summary>RMSprop over parameter groups.</summary>
    public RMSprop(IEnumerable<ParamGroup> groups, double lr = 1e-2, double alpha = 0.99, double eps = 1e-8, double weightDecay = 0, double momentum = 0, bool centered = false, bool maximize = false)
        : base("RMSprop", groups, new ParamGroup([], lr, weightDecay) { Alpha = alpha, Eps = eps, Momentum = momentum, Centered = centered, Maximize = maximize }) { }

    /// <summary>RMSprop over one group of parameters.</summary>
    public RMSprop(IEnumerable<Tensor> parameters, double lr = 1e-2, double alpha = 0.99, double eps = 1e-8, double weightDecay = 0, double momentum = 0, bool centered = false, bool maximize = false)
        : this(OneGroup(parameters), lr, alpha, eps, weightDecay, momentum, centered, maximize) { }

    /// <inheritdoc/>
    protected override void Validate(ParamGroup g)
    {
        base.Validate(g);
        if (!(g.Eps >= 0)) throw new ArgumentException($"RMSprop: invalid epsilon value {g.Eps} (expected >= 0)");
        if (!(g.Momentum >= 0)) throw new ArgumentException($"RMSprop: invalid momentum value {g.Momentum} (expected >= 0)");
        if (!(g.Alpha >= 0)) throw new ArgumentException($"RMSprop: invalid alpha value {g.Alpha} (expected >= 0)");
    }

    /// <inheritdoc/>
    protected override void Update(ParamGroup g, Span<float> p, ReadOnlySpan<float> grad, ParamState s)
    {
        Span<float> a = Scratch(0, p.Length), tmp = Scratch(1, p.Length);
        double alpha = g.Alpha!.Value, m = g.Momentum!.Value;
        var gr = OptimMath.EffectiveGrad(grad, p, g.Maximize!.Value, g.WeightDecay, a, tmp);
        var sq = s.Zeros("square_avg", p.Length);
        TP.Multiply(sq, (float)alpha, sq);
        OptimMath.AddCMul(sq, gr, gr, 1 - alpha, tmp);
        var avg = Scratch(2, p.Length);
        if (g.Centered!.Value)
        {
            var ga = s.Zeros("grad_avg", p.Length);
            TP.Multiply(ga, (float)alpha, ga);
            OptimMath.AddScaled(ga, gr, 1 - alpha, tmp);
            sq.CopyTo(avg);
            OptimMath.AddCMul(avg, ga, ga, -1, tmp);
            TP.Sqrt(avg, avg);
        }
        else TP.Sqrt(sq, avg);
        TP.Add(avg, (float)g.Eps!.Value, avg);
        if (m > 0)
        {
            var buf = s.Zeros("momentum_buffer", p.Length);
            TP.Multiply(buf, (float)m, buf);
            OptimMath.AddCDiv(buf, gr, avg, 1, tmp);
            OptimMath.AddScaled(p, buf, -g.LearningRate, tmp);
        }
        else OptimMath.AddCDiv(p, gr, avg, -g.LearningRate, tmp);
    }
}
