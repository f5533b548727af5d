namespace ConvLab.Autograd.Nodes;

/// <summary>
/// Backward of the per-element classification loss (cross_entropy / nll_loss before reduction):
/// dX from the saved log-probabilities and coefficients (see <c>Kernels.Loss</c>), and for probability
/// targets dT = g·∂loss/∂target, with ∂loss/∂target precomputed in the target's shape.
/// </summary>
internal sealed class ClassLossBackward(Tensor logp, Tensor coef, int n, int c, int s, bool logits, Tensor? dTarget, bool unbatched) : Node
{
    private Tensor? _logp = logp, _coef = coef, _dTarget = dTarget;

    protected internal override Tensor?[] Apply(Tensor g)
    {
        var logp = _logp!; var coef = _coef!;
        Tensor? gx = null, gt = null;
        if (NeedsGrad(0))
        {
            var gd = g.To(logp.DType).Contiguous();
            gx = Tensor.Zeros(logp.Shape, logp.DType);
            if (logp.DType == DType.Float32)
                Kernels.Loss.ClassLossBackward<float>(logp.Read<float>(), coef.Read<float>(), gd.Read<float>(), n, c, s, logits, gx.Span<float>());
            else
                Kernels.Loss.ClassLossBackward<double>(logp.Read<double>(), coef.Read<double>(), gd.Read<double>(), n, c, s, logits, gx.Span<double>());
        }
        if (NeedsGrad(1) && _dTarget != null)
            gt = (unbatched ? g : g.Unsqueeze(1)).Mul(_dTarget);
        return [gx, gt];
    }

    protected override void ReleaseSaved() => (_logp, _coef, _dTarget) = (null, null, null);
}

/// <summary>Backward of an element-wise loss whose local derivatives were computed in the forward pass: dX = g·∂loss/∂x, dT = g·∂loss/∂t.</summary>
internal sealed class ElementwiseLossBackward(string name, Tensor dInput, Tensor? dTarget, bool targetIsNegatedInput) : Node
{
    private Tensor? _dInput = dInput, _dTarget = dTarget;

    public override string Name => name;

    protected internal override Tensor?[] Apply(Tensor g)
    {
        Tensor? gx = null, gt = null;
        if (NeedsGrad(0)) gx = g.Mul(_dInput!);
        if (NeedsGrad(1))
            gt = targetIsNegatedInput ? (gx ?? g.Mul(_dInput!)).Neg() : _dTarget != null ? g.Mul(_dTarget) : null;
        return [gx, gt];
    }

    protected override void ReleaseSaved() => (_dInput, _dTarget) = (null, null);
}
