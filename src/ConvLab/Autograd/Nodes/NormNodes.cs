using System.Numerics;

namespace ConvLab.Autograd.Nodes;

/// <summary>Layout of one normalisation: statistics over [P, G, Q], affine over [Outer, C, Inner].</summary>
internal readonly record struct NormLayout(int P, int G, int Q, int Outer, int C, int Inner);

/// <summary>
/// Backward of batch/layer/group/instance norm (inputs: input, weight, bias). With <paramref name="mean"/> given
/// (batch and instance norm) <paramref name="saved"/> is the input itself and the gradient is recomputed from it,
/// the float64 mean and 1/σ; otherwise (layer and group norm) it is the normalised input xhat. <paramref name="fixedStats"/>
/// marks running statistics, which do not depend on the input.
/// </summary>
internal sealed class NormBackward(string op, Tensor saved, Tensor? mean, Tensor rstd, NormLayout l, Tensor? weight, int[] affineShape,
    bool fixedStats) : Node
{
    private Tensor? _saved = saved, _mean = mean, _rstd = rstd, _w = weight;

    public override string Name => op;

    protected internal override Tensor?[] Apply(Tensor g)
    {
        var gy = g.Contiguous();
        return gy.DType == DType.Float32 ? Run<float>(gy) : Run<double>(gy);
    }

    private Tensor?[] Run<T>(Tensor gy) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var saved = _saved!; var dtype = saved.DType;
        Tensor? gx = NeedsGrad(0) ? Tensor.Zeros(saved.Shape, dtype) : null;
        Tensor? gw = NeedsGrad(1) ? Tensor.Zeros(affineShape, dtype) : null;
        Tensor? gb = NeedsGrad(2) ? Tensor.Zeros(affineShape, dtype) : null;
        T[]? wArr = _w?.Buffer<T>(); int wOff = _w?.StorageOffset ?? 0;
        if (_mean != null)
        {
            Kernels.Norm.GroupAffineBackward(gy.Buffer<T>(), gy.StorageOffset, saved.Buffer<T>(), saved.StorageOffset, l.P, l.G, l.Q, l.C,
                _mean.Buffer<double>(), _rstd!.Buffer<double>(), wArr, wOff, fixedStats, gx?.Buffer<T>(), gw?.Buffer<T>(), gb?.Buffer<T>());
            return [gx, gw, gb];
        }
        T[] gyArr = gy.Buffer<T>();
        if (gy.StorageOffset != 0 || gyArr.Length != gy.Numel)
        {
            gyArr = StorageRecycler.Take<T>(gy.Numel);
            gy.Span<T>().CopyTo(gyArr);
        }
        if (gw != null || gb != null)
            Kernels.Norm.ScaleShiftBackward(gyArr, saved.Buffer<T>(), l.Outer, l.C, l.Inner, gw?.Buffer<T>(), gb?.Buffer<T>());
        if (gx != null)
        {
            var gxhat = gyArr;
            if (wArr != null)
            {
                gxhat = StorageRecycler.Take<T>(gyArr.Length);
                Kernels.Norm.ScaleShift(gyArr, l.Outer, l.C, l.Inner, wArr, wOff, null, 0, gxhat);
            }
            Kernels.Norm.NormalizeBackward(gxhat, saved.Buffer<T>(), l.P, l.G, l.Q, _rstd!.Buffer<T>(), fixedStats, gx.Buffer<T>());
        }
        return [gx, gw, gb];
    }

    protected override void ReleaseSaved() => (_saved, _mean, _rstd, _w) = (null, null, null, null);
}
