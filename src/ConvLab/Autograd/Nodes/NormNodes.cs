using System.Numerics;

namespace ConvLab.Autograd.Nodes;

/// <summary>Layout of one normalisation: statistics over [P, G, Q], affine over [Outer, C, Inner].</summary>
internal readonly record struct NormLayout(int P, int G, int Q, int Outer, int C, int Inner);

/// <summary>
/// Backward of batch/layer/group/instance norm (inputs: input, weight, bias). Saves the normalised input
/// xhat and 1/σ per group rather than the input; <paramref name="fixedStats"/> marks running statistics,
/// which do not depend on the input.
/// </summary>
internal sealed class NormBackward(string op, Tensor xhat, Tensor rstd, NormLayout l, Tensor? weight, int[] affineShape, bool fixedStats) : Node
{
    private Tensor? _xhat = xhat, _rstd = rstd, _w = weight;

    public override string Name => op;

    protected internal override Tensor?[] Apply(Tensor g)
    {
        var gy = g.Contiguous();
        return gy.DType == DType.Float32 ? Run<float>(gy) : Run<double>(gy);
    }

    private Tensor?[] Run<T>(Tensor gy) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var xhat = _xhat!; var dtype = xhat.DType;
        T[] gyArr = gy.StorageOffset == 0 && gy.Buffer<T>().Length == gy.Numel ? gy.Buffer<T>() : gy.Span<T>().ToArray();
        Tensor? gx = null, gw = null, gb = null;
        if (NeedsGrad(1)) gw = Tensor.Zeros(affineShape, dtype);
        if (NeedsGrad(2)) gb = Tensor.Zeros(affineShape, dtype);
        if (gw != null || gb != null)
            Kernels.Norm.ScaleShiftBackward(gyArr, xhat.Buffer<T>(), l.Outer, l.C, l.Inner, gw?.Buffer<T>(), gb?.Buffer<T>());
        if (NeedsGrad(0))
        {
            var gxhat = gyArr;
            if (_w != null)
            {
                gxhat = new T[gyArr.Length];
                Kernels.Norm.ScaleShift(gyArr, l.Outer, l.C, l.Inner, _w.Buffer<T>(), _w.StorageOffset, null, 0, gxhat);
            }
            gx = Tensor.Zeros(xhat.Shape, dtype);
            Kernels.Norm.NormalizeBackward(gxhat, xhat.Buffer<T>(), l.P, l.G, l.Q, _rstd!.Buffer<T>(), fixedStats, gx.Buffer<T>());
        }
        return [gx, gw, gb];
    }

    protected override void ReleaseSaved() => (_xhat, _rstd, _w) = (null, null, null);
}
