using System.Numerics;
using ConvLab.Kernels;

namespace ConvLab.Autograd.Nodes;

/// <summary>Backward of interpolate: the per-axis adjoint passes in reverse order.</summary>
internal sealed class InterpolateBackward(AxisTaps?[] taps) : Node
{
    protected internal override Tensor?[] Apply(Tensor g) => [Run(g.Contiguous(), taps, adjoint: true)];

    /// <summary>
    /// Resamples spatial axis d (tensor dim 2+d) with taps[d] for every non-null entry, first to last
    /// (forward) or, with <paramref name="adjoint"/>, last to first scattering gradients back.
    /// </summary>
    internal static Tensor Run(Tensor x, AxisTaps?[] taps, bool adjoint) =>
        x.DType == DType.Float32 ? Run<float>(x, taps, adjoint) : Run<double>(x, taps, adjoint);

    private static Tensor Run<T>(Tensor x, AxisTaps?[] taps, bool adjoint) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var cur = x;
        for (int step = 0; step < taps.Length; step++)
        {
            int d = adjoint ? taps.Length - 1 - step : step;
            if (taps[d] is not { } t) continue;
            int axis = 2 + d;
            var shape = cur.Shape.ToArray();
            int outer = ShapeUtil.Numel(shape.AsSpan(0, axis)), inner = ShapeUtil.Numel(shape.AsSpan(axis + 1));
            shape[axis] = adjoint ? t.InSize : t.OutSize;
            var next = Tensor.Zeros(shape, x.DType);
            if (adjoint) Resample.Backward<T>(t, cur.Read<T>(), outer, inner, next.Span<T>());
            else Resample.Forward<T>(t, cur.Read<T>(), outer, inner, next.Span<T>());
            cur = next;
        }
        return cur;
    }
}
