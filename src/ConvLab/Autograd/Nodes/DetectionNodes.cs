using ConvLab.Kernels;

namespace ConvLab.Autograd.Nodes;

/// <summary>Backward of roi_align w.r.t. its input: the bins' gradients scattered through the same bilinear samples (boxes get none, as torchvision).</summary>
internal sealed class RoiAlignBackward(Tensor rois, RoiAlignShape shape) : Node
{
    private Tensor? _rois = rois;

    protected internal override Tensor?[] Apply(Tensor g)
    {
        var gy = g.Contiguous();
        var gx = Tensor.Zeros([shape.N, shape.C, shape.H, shape.W], gy.DType);
        if (gy.DType == DType.Float32) RoiAlign.Backward(shape, gy.Read<float>(), _rois!.Read<float>(), gx.Span<float>());
        else RoiAlign.Backward(shape, gy.Read<double>(), _rois!.Read<double>(), gx.Span<double>());
        return [gx];
    }

    protected override void ReleaseSaved() => _rois = null;
}
