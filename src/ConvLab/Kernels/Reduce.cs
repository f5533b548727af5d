using System.Numerics;
using System.Numerics.Tensors;

namespace ConvLab.Kernels;

/// <summary>Reductions over a tensor viewed as [outer, reduce, inner].</summary>
internal static class Reduce
{
    /// <summary>dst[o, i] = Σ_r src[o, r, i].</summary>
    public static void Sum<T>(ReadOnlySpan<T> src, int outer, int reduce, int inner, Span<T> dst)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (inner == 1)
        {
            for (int o = 0; o < outer; o++) dst[o] = TensorPrimitives.Sum(src.Slice(o * reduce, reduce));
            return;
        }
        dst.Clear();
        for (int o = 0; o < outer; o++)
        {
            var d = dst.Slice(o * inner, inner);
            for (int r = 0; r < reduce; r++) TensorPrimitives.Add(d, src.Slice((o * reduce + r) * inner, inner), d);
        }
    }

    /// <summary>Max (or min) along the middle axis with the index of the first extreme; NaN wins, as in PyTorch.</summary>
    public static void ArgExtreme<T>(ReadOnlySpan<T> src, int outer, int reduce, int inner, Span<T> values, Span<long> indices, bool max)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                int baseIdx = o * reduce * inner + i;
                T best = src[baseIdx]; int bi = 0;
                for (int r = 1; r < reduce && !T.IsNaN(best); r++)
                {
                    T v = src[baseIdx + r * inner];
                    if (T.IsNaN(v) || (max ? v > best : v < best)) { best = v; bi = r; }
                }
                values[o * inner + i] = best;
                indices[o * inner + i] = bi;
            }
    }
}
