using ConvLab.Kernels;

namespace ConvLab.Autograd.Nodes;

/// <summary>
/// Backward of deform_conv2d. Inputs in order: input, offset, weight, bias, mask. The column matrix is
/// recomputed per image (as torchvision does) instead of being saved for the whole batch.
/// </summary>
internal sealed class DeformConv2dBackward(Tensor x, Tensor offset, Tensor w, Tensor? mask, DeformConvShape shape, bool hasBias) : Node
{
    private Tensor? _x = x, _offset = offset, _w = w, _mask = mask;

    protected internal override Tensor?[] Apply(Tensor g)
    {
        var gy = g.Contiguous();
        var x = _x!; var off = _offset!; var w = _w!; var m = _mask;
        var gx = NeedsGrad(0) ? x.ZerosLike() : null;
        var gOff = NeedsGrad(1) ? off.ZerosLike() : null;
        var gw = NeedsGrad(2) ? w.ZerosLike() : null;
        var gb = hasBias && NeedsGrad(3) ? gy.Sum([0, 2, 3]) : null;
        var gMask = m != null && NeedsGrad(4) ? m.ZerosLike() : null;
        if (gx != null || gOff != null || gw != null || gMask != null)
        {
            if (x.DType == DType.Float32)
                DeformIm2col.Backward(shape, x.Buffer<float>(), x.StorageOffset, off.Buffer<float>(), off.StorageOffset, m?.Buffer<float>(), m?.StorageOffset ?? 0,
                    w.Buffer<float>(), w.StorageOffset, gy.Buffer<float>(), gy.StorageOffset,
                    gx?.Buffer<float>(), gOff?.Buffer<float>(), gMask?.Buffer<float>(), gw?.Buffer<float>());
            else
                DeformIm2col.Backward(shape, x.Buffer<double>(), x.StorageOffset, off.Buffer<double>(), off.StorageOffset, m?.Buffer<double>(), m?.StorageOffset ?? 0,
                    w.Buffer<double>(), w.StorageOffset, gy.Buffer<double>(), gy.StorageOffset,
                    gx?.Buffer<double>(), gOff?.Buffer<double>(), gMask?.Buffer<double>(), gw?.Buffer<double>());
        }
        return [gx, gOff, gw, gb, gMask];
    }

    protected override void ReleaseSaved() => (_x, _offset, _w, _mask) = (null, null, null, null);
}
