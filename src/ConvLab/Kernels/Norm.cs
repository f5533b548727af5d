using System.Numerics;
using System.Numerics.Tensors;

namespace ConvLab.Kernels;

/// <summary>
/// The one normalisation kernel behind batch, layer, group and instance norm. Data is viewed as
/// [P, G, Q]: statistics are taken per g over its P×Q elements (P·contiguous rows of Q). Batch norm is
/// P=N, G=C, Q=spatial; layer norm P=1, G=rows, Q=normalised size; group norm P=1, G=N·groups,
/// Q=(C/groups)·spatial; instance norm P=1, G=N·C, Q=spatial. The affine part is a separate per-channel
/// scale/shift over [outer, C, inner] because its channel axis differs from the statistics axis.
/// </summary>
internal static class Norm
{
    private static void ForEachGroup(int groups, long work, Action<int> body) => Threads.For(0, groups, work, body);

    /// <summary>Per-group mean and biased variance (two passes, so large means do not cancel the variance).</summary>
    public static void Moments<T>(T[] x, int xOff, int p, int g, int q, T[] mean, T[] var)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T count = T.CreateChecked((long)p * q);
        ForEachGroup(g, (long)p * g * q, gi =>
        {
            T s = T.Zero;
            for (int pi = 0; pi < p; pi++) s += TensorPrimitives.Sum<T>(x.AsSpan(xOff + (pi * g + gi) * q, q));
            T m = s / count;
            T ss = T.Zero;
            for (int pi = 0; pi < p; pi++) ss += SumSquaredDeviation<T>(x.AsSpan(xOff + (pi * g + gi) * q, q), m);
            mean[gi] = m;
            var[gi] = ss / count;
        });
    }

    private static T SumSquaredDeviation<T>(ReadOnlySpan<T> x, T m) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0, vc = Vector<T>.Count;
        T s = T.Zero;
        if (Vector.IsHardwareAccelerated && x.Length >= vc)
        {
            var vm = new Vector<T>(m); var acc = Vector<T>.Zero;
            for (; i + vc <= x.Length; i += vc) { var d = new Vector<T>(x.Slice(i)) - vm; acc += d * d; }
            s = Vector.Sum(acc);
        }
        for (; i < x.Length; i++) { T d = x[i] - m; s += d * d; }
        return s;
    }

    /// <summary>dst = x·scale + shift (TensorPrimitives has no scalar-scalar fused form).</summary>
    private static void Affine<T>(ReadOnlySpan<T> x, T scale, T shift, Span<T> dst) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0, vc = Vector<T>.Count;
        if (Vector.IsHardwareAccelerated)
        {
            Vector<T> vs = new(scale), vb = new(shift);
            for (; i + vc <= x.Length; i += vc) (new Vector<T>(x.Slice(i)) * vs + vb).CopyTo(dst.Slice(i));
        }
        for (; i < x.Length; i++) dst[i] = x[i] * scale + shift;
    }

    /// <summary>xhat = (x - mean[g]) · rstd[g] over the [P, G, Q] view.</summary>
    public static void Normalize<T>(T[] x, int xOff, int p, int g, int q, T[] mean, T[] rstd, T[] xhat)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ForEachGroup(g, (long)p * g * q, gi =>
        {
            for (int pi = 0; pi < p; pi++)
            {
                int o = (pi * g + gi) * q;
                Affine<T>(x.AsSpan(xOff + o, q), rstd[gi], -mean[gi] * rstd[gi], xhat.AsSpan(o, q));
            }
        });
    }

    /// <summary>
    /// Backward of <see cref="Normalize{T}"/> given dL/dxhat. With batch statistics the mean and variance
    /// depend on x: dx = rstd·(dxhat - mean(dxhat) - xhat·mean(dxhat·xhat)); with fixed statistics
    /// (running estimates) dx = rstd·dxhat.
    /// </summary>
    public static void NormalizeBackward<T>(T[] gxhat, T[] xhat, int p, int g, int q, T[] rstd, bool fixedStats, T[] gx)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T count = T.CreateChecked((long)p * q);
        ForEachGroup(g, (long)p * g * q, gi =>
        {
            T a = T.Zero, b = T.Zero;
            if (!fixedStats)
            {
                for (int pi = 0; pi < p; pi++)
                {
                    int o = (pi * g + gi) * q;
                    a += TensorPrimitives.Sum<T>(gxhat.AsSpan(o, q));
                    b += TensorPrimitives.Dot<T>(gxhat.AsSpan(o, q), xhat.AsSpan(o, q));
                }
                a /= count; b /= count;
            }
            for (int pi = 0; pi < p; pi++)
            {
                int o = (pi * g + gi) * q;
                var dst = gx.AsSpan(o, q);
                TensorPrimitives.MultiplyAdd<T>(xhat.AsSpan(o, q), -b, gxhat.AsSpan(o, q), dst);
                Affine<T>(dst, rstd[gi], -a * rstd[gi], dst);
            }
        });
    }

    /// <summary>dst = src·w[c] + b[c] over [outer, C, inner] (missing w means 1, missing b means 0).</summary>
    public static void ScaleShift<T>(T[] src, int outer, int c, int inner, T[]? w, int wOff, T[]? b, int bOff, T[] dst)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int o = 0; o < outer; o++)
        {
            if (inner == 1)
            {
                // Layer norm: the affine is element-wise over each row.
                var s = src.AsSpan(o * c, c); var d = dst.AsSpan(o * c, c);
                if (w != null && b != null) TensorPrimitives.MultiplyAdd<T>(s, w.AsSpan(wOff, c), b.AsSpan(bOff, c), d);
                else if (w != null) TensorPrimitives.Multiply<T>(s, w.AsSpan(wOff, c), d);
                else if (b != null) TensorPrimitives.Add<T>(s, b.AsSpan(bOff, c), d);
                else s.CopyTo(d);
                continue;
            }
            for (int ci = 0; ci < c; ci++)
            {
                int off = (o * c + ci) * inner;
                T scale = w != null ? w[wOff + ci] : T.One, shift = b != null ? b[bOff + ci] : T.Zero;
                Affine<T>(src.AsSpan(off, inner), scale, shift, dst.AsSpan(off, inner));
            }
        }
    }

    /// <summary>Affine parameter gradients: gw[c] = Σ gy·xhat, gb[c] = Σ gy over [outer, C, inner] (either may be null).</summary>
    public static void ScaleShiftBackward<T>(T[] gy, T[] xhat, int outer, int c, int inner, T[]? gw, T[]? gb)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int o = 0; o < outer; o++)
        {
            if (inner == 1)
            {
                var g = gy.AsSpan(o * c, c);
                if (gw != null) TensorPrimitives.MultiplyAdd<T>(g, xhat.AsSpan(o * c, c), gw, gw);
                if (gb != null) TensorPrimitives.Add<T>(gb, g, gb);
                continue;
            }
            for (int ci = 0; ci < c; ci++)
            {
                int off = (o * c + ci) * inner;
                var g = gy.AsSpan(off, inner);
                if (gw != null) gw[ci] += TensorPrimitives.Dot<T>(g, xhat.AsSpan(off, inner));
                if (gb != null) gb[ci] += TensorPrimitives.Sum<T>(g);
            }
        }
    }
}
