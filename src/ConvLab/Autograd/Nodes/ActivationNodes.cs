using ConvLab.Kernels;

namespace ConvLab.Autograd.Nodes;

/// <summary>Backward of an element-wise activation from its saved (contiguous) input and output.</summary>
internal sealed class ActivationBackward(ActSpec spec, Tensor x, Tensor y) : Node
{
    private Tensor? _x = x, _y = y;

    public override string Name => spec.Kind + "Backward";

    protected internal override Tensor?[] Apply(Tensor g)
    {
        var x = _x!; var y = _y!; var gy = g.Contiguous();
        var gx = Tensor.Zeros(x.Shape, x.DType);
        if (spec.Kind == ActKind.Relu && GuidedRelu.IsActive)
        {
            if (x.DType == DType.Float32) Activation.GuidedReluBackward(x.Span<float>(), gy.Span<float>(), gx.Span<float>());
            else Activation.GuidedReluBackward(x.Span<double>(), gy.Span<double>(), gx.Span<double>());
            return [gx];
        }
        if (x.DType == DType.Float32) Activation.Backward(spec, x.Span<float>(), y.Span<float>(), gy.Span<float>(), gx.Span<float>());
        else Activation.Backward(spec, x.Span<double>(), y.Span<double>(), gy.Span<double>(), gx.Span<double>());
        return [gx];
    }

    protected override void ReleaseSaved() => (_x, _y) = (null, null);
}

/// <summary>Backward of softmax / log-softmax along the middle axis of [outer, D, inner], from the saved output.</summary>
internal sealed class SoftmaxBackward(Tensor y, int outer, int d, int inner, bool log) : Node
{
    private Tensor? _y = y;

    public override string Name => log ? "LogSoftmaxBackward" : "SoftmaxBackward";

    protected internal override Tensor?[] Apply(Tensor g)
    {
        var y = _y!; var gy = g.Contiguous();
        var gx = Tensor.Zeros(y.Shape, y.DType);
        if (y.DType == DType.Float32) Activation.SoftmaxBackward(y.Span<float>(), gy.Span<float>(), outer, d, inner, gx.Span<float>(), log);
        else Activation.SoftmaxBackward(y.Span<double>(), gy.Span<double>(), outer, d, inner, gx.Span<double>(), log);
        return [gx];
    }

    protected override void ReleaseSaved() => _y = null;
}
