using System.Numerics;
using System.Numerics.Tensors;

namespace ConvLab.Kernels;

/// <summary>
/// The source taps of one resampled axis: output position o reads src[I0[o]]·(1-L1[o]) + src[I1[o]]·L1[o]
/// (nearest: a single tap, <see cref="L1"/> null).
/// </summary>
internal sealed record AxisTaps(int InSize, int OutSize, int[] I0, int[] I1, double[]? L1);

/// <summary>
/// Separable resampling (interpolate): nearest and (bi/tri)linear are tensor products of per-axis
/// one- or two-tap maps, so an N-d resize is a sequence of 1-d passes over an (outer, axis, inner) layout.
/// Coordinate rules follow PyTorch 1.13's upsample kernels.
/// </summary>
internal static class Resample
{
    /// <summary>PyTorch's legacy "nearest": src = min(floor(dst·scale), in-1) in float32 arithmetic, scale = 1/scale_factor if given else in/out.</summary>
    public static AxisTaps Nearest(int inSize, int outSize, double? scaleFactor)
    {
        var i0 = new int[outSize];
        float scale = scaleFactor is > 0 ? (float)(1.0 / scaleFactor.Value) : (float)inSize / outSize;
        for (int o = 0; o < outSize; o++)
            // PyTorch special-cases these two ratios to avoid float rounding (nearest_idx).
            i0[o] = outSize == inSize ? o : outSize == 2 * inSize ? o >> 1 : Math.Min((int)MathF.Floor(o * scale), inSize - 1);
        return new(inSize, outSize, i0, i0, null);
    }

    /// <summary>Linear taps (area_pixel_compute_source_index): align_corners maps corners onto corners; otherwise pixel centres, with 1/scale_factor when given, clamped at 0.</summary>
    public static AxisTaps Linear(int inSize, int outSize, bool alignCorners, double? scaleFactor)
    {
        double scale = alignCorners
            ? (outSize > 1 ? (double)(inSize - 1) / (outSize - 1) : 0)
            : scaleFactor is > 0 ? 1.0 / scaleFactor.Value : (double)inSize / outSize;
        var i0 = new int[outSize]; var i1 = new int[outSize]; var l1 = new double[outSize];
        for (int o = 0; o < outSize; o++)
        {
            double src = alignCorners ? scale * o : Math.Max(scale * (o + 0.5) - 0.5, 0);
            int lo = Math.Min((int)src, inSize - 1);
            i0[o] = lo;
            i1[o] = lo + (lo < inSize - 1 ? 1 : 0);
            l1[o] = Math.Clamp(src - lo, 0, 1);
        }
        return new(inSize, outSize, i0, i1, l1);
    }

    /// <summary>dst (outer, OutSize, inner) from src (outer, InSize, inner) along one axis.</summary>
    public static void Forward<T>(AxisTaps taps, ReadOnlySpan<T> src, int outer, int inner, Span<T> dst) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int inSize = taps.InSize, outSize = taps.OutSize;
        for (int b = 0; b < outer; b++)
            for (int o = 0; o < outSize; o++)
            {
                var d = dst.Slice((b * outSize + o) * inner, inner);
                var s0 = src.Slice((b * inSize + taps.I0[o]) * inner, inner);
                if (taps.L1 == null) { s0.CopyTo(d); continue; }
                T w1 = T.CreateChecked(taps.L1[o]), w0 = T.One - w1;
                var s1 = src.Slice((b * inSize + taps.I1[o]) * inner, inner);
                if (inner == 1) { d[0] = w0 * s0[0] + w1 * s1[0]; continue; }
                TensorPrimitives.Multiply(s0, w0, d);
                TensorPrimitives.MultiplyAdd(s1, w1, d, d);
            }
    }

    /// <summary>The adjoint of <see cref="Forward{T}"/>: scatters gDst (outer, OutSize, inner) into gSrc (outer, InSize, inner), which is overwritten.</summary>
    public static void Backward<T>(AxisTaps taps, ReadOnlySpan<T> gDst, int outer, int inner, Span<T> gSrc) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int inSize = taps.InSize, outSize = taps.OutSize;
        gSrc.Clear();
        for (int b = 0; b < outer; b++)
            for (int o = 0; o < outSize; o++)
            {
                var g = gDst.Slice((b * outSize + o) * inner, inner);
                var s0 = gSrc.Slice((b * inSize + taps.I0[o]) * inner, inner);
                if (taps.L1 == null) { TensorPrimitives.Add(s0, g, s0); continue; }
                T w1 = T.CreateChecked(taps.L1[o]), w0 = T.One - w1;
                var s1 = gSrc.Slice((b * inSize + taps.I1[o]) * inner, inner);
                if (inner == 1) { s0[0] += w0 * g[0]; s1[0] += w1 * g[0]; continue; }
                TensorPrimitives.MultiplyAdd(g, w0, s0, s0);
                TensorPrimitives.MultiplyAdd(g, w1, s1, s1);
            }
    }
}
