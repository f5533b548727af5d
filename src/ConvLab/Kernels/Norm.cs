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
        where T : unmanaged, IFloatingPointIeee754<T> =>
        ForEachGroup(g, (long)p * g * q, gi =>
        {
            var (m, v) = GroupMoments(x, xOff, p, g, q, gi);
            mean[gi] = T.CreateTruncating(m); var[gi] = T.CreateTruncating(v);
        });

    /// <summary>
    /// Mean and biased variance of group gi in double: each contiguous row is summed vectorised in T and rows
    /// are accumulated in double (float32 sums over ~10⁵ elements would otherwise lose digits); the variance is
    /// a second pass over deviations from the mean rounded to T (exact differences for nearby values), corrected
    /// for that rounding — never E[x²] - E[x]².
    /// </summary>
    private static (double Mean, double Var) GroupMoments<T>(T[] x, int xOff, int p, int g, int q, int gi)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        double count = (double)p * q, s = 0, ss = 0;
        if (count == 0) return (double.NaN, double.NaN);
        // Rows are summed as deviations from one of their values: a float sum of values near 1000 loses the
        // digits that make up the variance.
        T k = x[xOff + gi * q];
        for (int pi = 0; pi < p; pi++) s += SumDeviation<T>(x.AsSpan(xOff + (pi * g + gi) * q, q), k);
        double m = double.CreateTruncating(k) + s / count;
        T mt = T.CreateTruncating(m);
        for (int pi = 0; pi < p; pi++) ss += SumSquaredDeviation<T>(x.AsSpan(xOff + (pi * g + gi) * q, q), mt);
        double dm = m - double.CreateTruncating(mt);
        return (m, Math.Max(0, ss / count - dm * dm));
    }

    /// <summary>
    /// Fused forward for norms whose affine channel is constant within a statistics group (batch and instance
    /// norm, where channel = g mod C): per group, while its rows are cache-hot, the batch moments (unless
    /// <paramref name="fixedStats"/>, when <paramref name="mean"/> and <paramref name="rstd"/> are given) and then
    /// y = (x - mean)·(w·rstd) + b in one pass, so no normalised copy of the input is materialised. The statistics
    /// stay in double; the part of the mean that T cannot hold is folded into the shift. The T copies of the batch
    /// mean and biased variance go to <paramref name="meanOut"/>/<paramref name="varOut"/> when given.
    /// </summary>
    public static void GroupAffineForward<T>(T[] x, int xOff, int p, int g, int q, int c, T[]? w, int wOff, T[]? b, int bOff,
        double eps, bool fixedStats, double[] mean, double[] rstd, T[]? meanOut, T[]? varOut, T[] y)
        where T : unmanaged, IFloatingPointIeee754<T> =>
        ForEachGroup(g, (long)p * g * q, gi =>
        {
            if (!fixedStats)
            {
                var (m, v) = GroupMoments(x, xOff, p, g, q, gi);
                mean[gi] = m; rstd[gi] = 1 / Math.Sqrt(v + eps);
                if (meanOut != null) meanOut[gi] = T.CreateTruncating(m);
                if (varOut != null) varOut[gi] = T.CreateTruncating(v);
            }
            int ch = gi % c;
            T mt = T.CreateTruncating(mean[gi]);
            double scale = (w != null ? double.CreateTruncating(w[wOff + ch]) : 1) * rstd[gi];
            double shift = (b != null ? double.CreateTruncating(b[bOff + ch]) : 0) - (mean[gi] - double.CreateTruncating(mt)) * scale;
            for (int pi = 0; pi < p; pi++)
            {
                int o = (pi * g + gi) * q;
                Affine<T>(x.AsSpan(xOff + o, q), mt, T.CreateTruncating(scale), T.CreateTruncating(shift), y.AsSpan(o, q));
            }
        });

    /// <summary>
    /// Backward of <see cref="GroupAffineForward{T}"/> from the saved input, mean and 1/σ (nothing else is kept).
    /// Per group it sums gy and gy·(x - mean) (rows in T, across rows in double), then writes
    /// gx = k·gy - k·rstd²·Σgy(x-mean)/M·(x - mean) - k·Σgy/M with k = w·rstd in one pass (with fixed statistics
    /// gx = k·gy). gw[c] += rstd·Σgy(x-mean), gb[c] += Σgy; any of gx, gw, gb may be null.
    /// </summary>
    public static void GroupAffineBackward<T>(T[] gy, int gyOff, T[] x, int xOff, int p, int g, int q, int c, double[] mean, double[] rstd,
        T[]? w, int wOff, bool fixedStats, T[]? gx, T[]? gw, T[]? gb) where T : unmanaged, IFloatingPointIeee754<T>
    {
        double count = (double)p * q;
        bool sums = gw != null || gb != null || (gx != null && !fixedStats);
        var sgy = sums ? StorageRecycler.Take<double>(g) : null;
        var sgd = sums ? StorageRecycler.Take<double>(g) : null;
        ForEachGroup(g, (long)p * g * q, gi =>
        {
            // Rows work with x - mt (exact for nearby values); dm is the part of the mean T cannot hold.
            T mt = T.CreateTruncating(mean[gi]);
            double dm = mean[gi] - double.CreateTruncating(mt), a = 0, d = 0;
            if (sums)
            {
                for (int pi = 0; pi < p; pi++)
                {
                    int o = (pi * g + gi) * q;
                    SumAndDeviationDot<T>(gy.AsSpan(gyOff + o, q), x.AsSpan(xOff + o, q), mt, out double rs, out double rd);
                    a += rs; d += rd;
                }
                d -= dm * a;
                sgy![gi] = a; sgd![gi] = d;
            }
            if (gx == null) return;
            double r = rstd[gi];
            double k = (w != null ? double.CreateTruncating(w[wOff + gi % c]) : 1) * r;
            double beta = fixedStats ? 0 : -k * r * r * d / count, gamma = fixedStats ? 0 : -k * a / count - beta * dm;
            for (int pi = 0; pi < p; pi++)
            {
                int o = (pi * g + gi) * q;
                InputGradRow<T>(gy.AsSpan(gyOff + o, q), x.AsSpan(xOff + o, q), mt, T.CreateTruncating(k), T.CreateTruncating(beta),
                    T.CreateTruncating(gamma), gx.AsSpan(o, q));
            }
        });
        if (gw == null && gb == null) return;
        // Instance norm maps several groups onto one channel, so the parameter sums are reduced serially.
        for (int gi = 0; gi < g; gi++)
        {
            if (gw != null) gw[gi % c] += T.CreateTruncating(sgd![gi] * rstd[gi]);
            if (gb != null) gb[gi % c] += T.CreateTruncating(sgy![gi]);
        }
    }

    /// <summary>
    /// Length of the pieces a row is summed in before the piece sums are added in double: a float32 sum of 2¹⁶
    /// terms (a layer/group norm group, a large plane) loses ~3 digits, one of 2¹² keeps all but the last.
    /// </summary>
    private const int Piece = 4096;

    /// <summary>s = Σ gy, d = Σ gy·(x - m) over one row (vectorised in T per piece, pieces added in double).</summary>
    private static void SumAndDeviationDot<T>(ReadOnlySpan<T> gy, ReadOnlySpan<T> x, T m, out double s, out double d)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        s = 0; d = 0;
        for (int c0 = 0; c0 < x.Length; c0 += Piece)
        {
            int n = Math.Min(Piece, x.Length - c0);
            PieceSumAndDeviationDot<T>(gy.Slice(c0, n), x.Slice(c0, n), m, out T ps, out T pd);
            s += double.CreateTruncating(ps); d += double.CreateTruncating(pd);
        }
    }

    private static void PieceSumAndDeviationDot<T>(ReadOnlySpan<T> gy, ReadOnlySpan<T> x, T m, out T s, out T d)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0, vc = Vector<T>.Count;
        s = T.Zero; d = T.Zero;
        if (Vector.IsHardwareAccelerated && x.Length >= vc)
        {
            var vm = new Vector<T>(m); Vector<T> vs = Vector<T>.Zero, vd = Vector<T>.Zero;
            for (; i + vc <= x.Length; i += vc)
            {
                var vg = new Vector<T>(gy.Slice(i));
                vs += vg; vd += vg * (new Vector<T>(x.Slice(i)) - vm);
            }
            s = Vector.Sum(vs); d = Vector.Sum(vd);
        }
        for (; i < x.Length; i++) { s += gy[i]; d += gy[i] * (x[i] - m); }
    }

    /// <summary>Σ a (b null) or Σ a·b over a row, per piece in T and across pieces in double.</summary>
    private static double SumOrDot<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b) where T : unmanaged, IFloatingPointIeee754<T>
    {
        double s = 0;
        for (int c0 = 0; c0 < a.Length; c0 += Piece)
        {
            int n = Math.Min(Piece, a.Length - c0);
            s += double.CreateTruncating(b.IsEmpty ? TensorPrimitives.Sum<T>(a.Slice(c0, n)) : TensorPrimitives.Dot<T>(a.Slice(c0, n), b.Slice(c0, n)));
        }
        return s;
    }

    /// <summary>dst = alpha·gy + beta·(x - m) + gamma over one row.</summary>
    private static void InputGradRow<T>(ReadOnlySpan<T> gy, ReadOnlySpan<T> x, T m, T alpha, T beta, T gamma, Span<T> dst)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0, vc = Vector<T>.Count;
        if (Vector.IsHardwareAccelerated)
        {
            Vector<T> vm = new(m), va = new(alpha), vb = new(beta), vc0 = new(gamma);
            for (; i + vc <= x.Length; i += vc)
                (new Vector<T>(gy.Slice(i)) * va + (new Vector<T>(x.Slice(i)) - vm) * vb + vc0).CopyTo(dst.Slice(i));
        }
        for (; i < x.Length; i++) dst[i] = gy[i] * alpha + (x[i] - m) * beta + gamma;
    }

    /// <summary>Σ (x - m) over a row, per piece in T and across pieces in double.</summary>
    private static double SumDeviation<T>(ReadOnlySpan<T> x, T m) where T : unmanaged, IFloatingPointIeee754<T>
    {
        double s = 0;
        for (int c0 = 0; c0 < x.Length; c0 += Piece) s += double.CreateTruncating(PieceDeviationSum(x.Slice(c0, Math.Min(Piece, x.Length - c0)), m, squared: false));
        return s;
    }

    /// <summary>Σ (x - m)² over a row, per piece in T and across pieces in double.</summary>
    private static double SumSquaredDeviation<T>(ReadOnlySpan<T> x, T m) where T : unmanaged, IFloatingPointIeee754<T>
    {
        double s = 0;
        for (int c0 = 0; c0 < x.Length; c0 += Piece) s += double.CreateTruncating(PieceDeviationSum(x.Slice(c0, Math.Min(Piece, x.Length - c0)), m, squared: true));
        return s;
    }

    private static T PieceDeviationSum<T>(ReadOnlySpan<T> x, T m, bool squared) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0, vc = Vector<T>.Count;
        T s = T.Zero;
        if (Vector.IsHardwareAccelerated && x.Length >= vc)
        {
            var vm = new Vector<T>(m); var acc = Vector<T>.Zero;
            for (; i + vc <= x.Length; i += vc) { var d = new Vector<T>(x.Slice(i)) - vm; acc += squared ? d * d : d; }
            s = Vector.Sum(acc);
        }
        for (; i < x.Length; i++) { T d = x[i] - m; s += squared ? d * d : d; }
        return s;
    }

    /// <summary>
    /// dst = (x - sub)·scale + shift (TensorPrimitives has no scalar-scalar fused form). Subtracting first keeps
    /// normalisation exact for data far from zero: x - mean is exact for nearby values, x·rstd - mean·rstd is not.
    /// </summary>
    private static void Affine<T>(ReadOnlySpan<T> x, T sub, T scale, T shift, Span<T> dst) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0, vc = Vector<T>.Count;
        if (Vector.IsHardwareAccelerated)
        {
            Vector<T> vm = new(sub), vs = new(scale), vb = new(shift);
            for (; i + vc <= x.Length; i += vc) ((new Vector<T>(x.Slice(i)) - vm) * vs + vb).CopyTo(dst.Slice(i));
        }
        for (; i < x.Length; i++) dst[i] = (x[i] - sub) * scale + shift;
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
                Affine<T>(x.AsSpan(xOff + o, q), mean[gi], rstd[gi], T.Zero, xhat.AsSpan(o, q));
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
        double count = (double)p * q;
        ForEachGroup(g, (long)p * g * q, gi =>
        {
            // Layer/group norm groups are one long row (p = 1): summed in T alone they would lose digits.
            double a = 0, b = 0;
            if (!fixedStats)
            {
                for (int pi = 0; pi < p; pi++)
                {
                    int o = (pi * g + gi) * q;
                    a += SumOrDot<T>(gxhat.AsSpan(o, q), default);
                    b += SumOrDot<T>(gxhat.AsSpan(o, q), xhat.AsSpan(o, q));
                }
                a /= count; b /= count;
            }
            for (int pi = 0; pi < p; pi++)
            {
                int o = (pi * g + gi) * q;
                var dst = gx.AsSpan(o, q);
                TensorPrimitives.MultiplyAdd<T>(xhat.AsSpan(o, q), T.CreateTruncating(-b), gxhat.AsSpan(o, q), dst);
                Affine<T>(dst, T.CreateTruncating(a), rstd[gi], T.Zero, dst);
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
                Affine<T>(src.AsSpan(off, inner), T.Zero, scale, shift, dst.AsSpan(off, inner));
            }
        }
    }

    /// <summary>
    /// Affine parameter gradients: gw[c] += Σ gy·xhat, gb[c] += Σ gy over [outer, C, inner] (either may be null). The sums
    /// run over every row (layer norm) or sample (group norm) and accumulate in double, as batch norm's do.
    /// </summary>
    public static void ScaleShiftBackward<T>(T[] gy, T[] xhat, int outer, int c, int inner, T[]? gw, T[]? gb)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var accW = gw != null ? StorageRecycler.Take<double>(c) : null;
        var accB = gb != null ? StorageRecycler.Take<double>(c) : null;
        if (inner == 1)
        {
            // Layer norm: the affine is element-wise over each row; blocks of rows are summed vectorised in T, then in double.
            const int rowsPerBlock = 32;
            var pw = gw != null ? StorageRecycler.Take<T>(c) : null;
            var pb = gb != null ? StorageRecycler.Take<T>(c) : null;
            for (int o0 = 0; o0 < outer; o0 += rowsPerBlock)
            {
                pw?.AsSpan(0, c).Clear(); pb?.AsSpan(0, c).Clear();
                for (int o = o0; o < Math.Min(outer, o0 + rowsPerBlock); o++)
                {
                    var g = gy.AsSpan(o * c, c);
                    if (pw != null) TensorPrimitives.MultiplyAdd<T>(g, xhat.AsSpan(o * c, c), pw.AsSpan(0, c), pw.AsSpan(0, c));
                    if (pb != null) TensorPrimitives.Add<T>(pb.AsSpan(0, c), g, pb.AsSpan(0, c));
                }
                for (int ci = 0; ci < c; ci++)
                {
                    if (pw != null) accW![ci] += double.CreateTruncating(pw[ci]);
                    if (pb != null) accB![ci] += double.CreateTruncating(pb[ci]);
                }
            }
        }
        else
        {
            for (int o = 0; o < outer; o++)
                for (int ci = 0; ci < c; ci++)
                {
                    int off = (o * c + ci) * inner;
                    var g = gy.AsSpan(off, inner);
                    if (accW != null) accW[ci] += SumOrDot<T>(g, xhat.AsSpan(off, inner));
                    if (accB != null) accB[ci] += SumOrDot<T>(g, default);
                }
        }
        for (int ci = 0; ci < c; ci++)
        {
            if (gw != null) gw[ci] += T.CreateTruncating(accW![ci]);
            if (gb != null) gb[ci] += T.CreateTruncating(accB![ci]);
        }
    }
}
