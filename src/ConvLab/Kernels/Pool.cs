using System.Numerics;
using System.Runtime.Intrinsics;
using System.Numerics.Tensors;

namespace ConvLab.Kernels;

/// <summary>
/// The pooling windows of a (D, H, W) plane, one table per spatial dimension: output position o of
/// dimension k reads the input positions <c>Lo[k][o] + j·Step[k]</c> for <c>j &lt; Count[k][o]</c> (only
/// positions inside the input; padding never takes part), and averages divide by the product of
/// <c>Div[k][o]</c>. 1-d and 2-d pooling are the 3-d case with size-1 leading dimensions, and adaptive
/// pooling is the same tables with PyTorch's floor/ceil windows, so one max and one avg kernel serve all.
/// </summary>
internal sealed class PoolWindows
{
    public readonly int[] In = new int[3], Out = new int[3], Step = [1, 1, 1];
    public readonly int[][] Lo = new int[3][], Count = new int[3][], Div = new int[3][];

    public int InPlane => In[0] * In[1] * In[2];
    public int OutPlane => Out[0] * Out[1] * Out[2];
    public int MaxWindow => Count.Select(c => c.Length == 0 ? 0 : c.Max()).Aggregate(1, (a, b) => a * b);

    private PoolWindows() { }

    /// <summary>Index of the first spatial dimension (0..2) that the trailing <paramref name="nd"/> dims map to.</summary>
    private static int Lead(int nd) => 3 - nd;

    /// <summary>
    /// Sliding windows: window o starts at o·stride − padding and spans (kernel−1)·dilation+1. The
    /// average divisor is the window clipped to input+padding (<paramref name="countIncludePad"/>) or to the input.
    /// </summary>
    public static PoolWindows Sliding(int[] inSize, int[] outSize, int[] kernel, int[] stride, int[] padding, int[] dilation, bool countIncludePad)
    {
        var w = new PoolWindows();
        int lead = Lead(inSize.Length);
        for (int k = 0; k < 3; k++)
        {
            int a = k - lead;
            int n = a < 0 ? 1 : inSize[a], o = a < 0 ? 1 : outSize[a];
            int ks = a < 0 ? 1 : kernel[a], s = a < 0 ? 1 : stride[a], p = a < 0 ? 0 : padding[a], d = a < 0 ? 1 : dilation[a];
            w.In[k] = n; w.Out[k] = o; w.Step[k] = d;
            w.Lo[k] = new int[o]; w.Count[k] = new int[o]; w.Div[k] = new int[o];
            for (int i = 0; i < o; i++)
            {
                long start = (long)i * s - p;
                long first = start < 0 ? (-start + d - 1) / d : 0;                  // first tap inside the input
                long last = Math.Min(ks - 1, start >= n ? -1 : (n - 1 - start) / d); // last tap inside the input
                w.Lo[k][i] = (int)(start + first * d);
                w.Count[k][i] = (int)Math.Max(0, last - first + 1);
                w.Div[k][i] = countIncludePad ? (int)(Math.Min(start + ks, (long)n + p) - start) : w.Count[k][i];
            }
        }
        return w;
    }

    /// <summary>Adaptive windows: output o of n→m covers [floor(o·n/m), ceil((o+1)·n/m)).</summary>
    public static PoolWindows Adaptive(int[] inSize, int[] outSize)
    {
        var w = new PoolWindows();
        int lead = Lead(inSize.Length);
        for (int k = 0; k < 3; k++)
        {
            int a = k - lead;
            int n = a < 0 ? 1 : inSize[a], m = a < 0 ? 1 : outSize[a];
            w.In[k] = n; w.Out[k] = m;
            w.Lo[k] = new int[m]; w.Count[k] = new int[m];
            for (int i = 0; i < m; i++)
            {
                long start = (long)i * n / m, end = ((long)(i + 1) * n + m - 1) / m;
                w.Lo[k][i] = (int)start; w.Count[k][i] = (int)(end - start);
            }
            w.Div[k] = w.Count[k];
        }
        return w;
    }
}

/// <summary>Max and average pooling over (planes, D, H, W) buffers described by <see cref="PoolWindows"/>.</summary>
internal static class Pool
{
    private static void ForPlanes(int planes, long work, Action<int> body) => Threads.For(0, planes, work, body);

    /// <summary>The work done for one output window; a struct so that the JIT specialises and inlines it.</summary>
    private interface IWindowOp
    {
        /// <summary>Handles output element <paramref name="o"/> (flat over planes) of plane <paramref name="plane"/> at (od, oh, ow).</summary>
        void Apply(int plane, int o, int od, int oh, int ow);
    }

    private static void ForEachWindow<TOp>(int planes, PoolWindows w, TOp op) where TOp : struct, IWindowOp
    {
        int outPlane = w.OutPlane;
        ForPlanes(planes, (long)planes * outPlane * w.MaxWindow, p =>
        {
            int o = p * outPlane;
            for (int od = 0; od < w.Out[0]; od++)
                for (int oh = 0; oh < w.Out[1]; oh++)
                    for (int ow = 0; ow < w.Out[2]; ow++, o++)
                        op.Apply(p, o, od, oh, ow);
        });
    }

    /// <summary>
    /// y = max over each window, idx = its flat index in the input plane. As PyTorch: a NaN always wins
    /// (the last one), otherwise the first maximum; an all −∞ window reports its first tap.
    /// </summary>
    public static void MaxForward<T>(T[] x, int xOff, T[] y, long[] idx, int planes, PoolWindows w)
        where T : unmanaged, IFloatingPointIeee754<T> => ForEachWindow(planes, w, new MaxOp<T>(x, xOff, y, idx, w));

    private readonly struct MaxOp<T>(T[] x, int xOff, T[] y, long[] idx, PoolWindows w) : IWindowOp
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        public void Apply(int plane, int o, int od, int oh, int ow)
        {
            int H = w.In[1], W = w.In[2], xb = xOff + plane * w.InPlane;
            T best = T.NegativeInfinity;
            long bi = ((long)w.Lo[0][od] * H + w.Lo[1][oh]) * W + w.Lo[2][ow];
            for (int jd = 0, id = w.Lo[0][od]; jd < w.Count[0][od]; jd++, id += w.Step[0])
                for (int jh = 0, ih = w.Lo[1][oh]; jh < w.Count[1][oh]; jh++, ih += w.Step[1])
                {
                    int row = (id * H + ih) * W;
                    for (int jw = 0, iw = w.Lo[2][ow]; jw < w.Count[2][ow]; jw++, iw += w.Step[2])
                    {
                        T v = x[xb + row + iw];
                        if (v > best || T.IsNaN(v)) { best = v; bi = row + iw; }
                    }
                }
            y[o] = best; idx[o] = bi;
        }
    }

    /// <summary>Tests set this to force the generic window loop where the plain 2-d path would apply; per thread, because
    /// property tests run their cases on several threads at once.</summary>
    [ThreadStatic] internal static bool ForceGeneralPath;

    /// <summary>
    /// (kh, kw, sh, sw) when every window of <paramref name="w"/> is a full kh×kw block at (o·sh, o·sw) of a
    /// 2-d plane (unit dilation, no padding tap clipped, at most 256 taps), else null.
    /// </summary>
    public static (int Kh, int Kw, int Sh, int Sw)? Plain2d(PoolWindows w)
    {
        if (ForceGeneralPath || w.In[0] != 1 || w.Out[0] != 1 || w.Step[1] != 1 || w.Step[2] != 1) return null;
        int? Uniform(int k, out int stride)
        {
            var lo = w.Lo[k]; var cnt = w.Count[k];
            stride = lo.Length > 1 ? lo[1] - lo[0] : 1;
            if (lo[0] != 0 || stride < 1) return null;
            for (int o = 0; o < lo.Length; o++)
                if (lo[o] != o * stride || cnt[o] != cnt[0]) return null;
            return cnt[0];
        }
        if (Uniform(1, out int sh) is not int kh || Uniform(2, out int sw) is not int kw || kh * kw > 256) return null;
        return (kh, kw, sh, sw);
    }

    /// <summary>
    /// Max pooling over plain 2-d windows (<see cref="Plain2d"/>), a row of outputs per SIMD step: taps[o] is
    /// the argmax's position within its window (row-major), idx (when given) its flat index in the plane.
    /// Same NaN and tie rules as <see cref="MaxForward{T}"/>, which taking taps in window order preserves.
    /// </summary>
    public static void MaxForward2d<T>(T[] x, int xOff, T[] y, byte[] taps, long[]? idx, int planes, PoolWindows w, (int Kh, int Kw, int Sh, int Sw) g)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int H = w.In[1], W = w.In[2], OH = w.Out[1], OW = w.Out[2], V = Vector256<T>.Count;
        var (kh, kw, sh, sw) = g;
        // Contiguous loads of 2V elements (stride 2) read one element past the last tap; stay inside x.
        int lastRead = (kh - 1) * W + kw - 1 + (sw == 2 ? V * 2 - 1 : (V - 1) * sw);
        bool simd = Vector256.IsHardwareAccelerated;
        ForPlanes(planes, (long)planes * H * W, p =>
        {
            int xb = xOff + p * H * W;
            Span<T> yTail = stackalloc T[V];
            Span<byte> tapTail = stackalloc byte[32];
            for (int oh = 0; oh < OH; oh++)
            {
                int rb = xb + oh * sh * W, o = (p * OH + oh) * OW, ow = 0;
                // Rows are often shorter than a vector (7 or 14 outputs): a partial last vector computes
                // lanes past the row (reading the next row, never past x) and stores only the valid ones.
                if (simd)
                    for (; ow < OW && rb + ow * sw + lastRead < x.Length; ow += V)
                    {
                        int b = rb + ow * sw, n = Math.Min(V, OW - ow);
                        var best = Strided(x, b, sw);
                        var tap = Vector256<T>.Zero;
                        for (int t = 1; t < kh * kw; t++)
                        {
                            var v = Strided(x, b + t / kw * W + t % kw, sw);
                            var take = Vector256.GreaterThan(v, best) | ~Vector256.Equals(v, v);
                            best = Vector256.ConditionalSelect(take, v, best);
                            tap = Vector256.ConditionalSelect(take, Vector256.Create(T.CreateTruncating(t)), tap);
                        }
                        if (n == V)
                        {
                            best.CopyTo(y.AsSpan(o + ow));
                            StoreTaps(tap, taps.AsSpan(o + ow));
                        }
                        else
                        {
                            best.CopyTo(yTail);
                            StoreTaps(tap, tapTail);
                            yTail[..n].CopyTo(y.AsSpan(o + ow));
                            tapTail[..n].CopyTo(taps.AsSpan(o + ow));
                        }
                    }
                for (; ow < OW; ow++)
                {
                    int b = rb + ow * sw, bt = 0;
                    T best = x[b];
                    for (int t = 1; t < kh * kw; t++)
                    {
                        T v = x[b + t / kw * W + t % kw];
                        if (v > best || T.IsNaN(v)) { best = v; bt = t; }
                    }
                    y[o + ow] = best; taps[o + ow] = (byte)bt;
                }
                if (idx != null)
                    for (ow = 0; ow < OW; ow++)
                    {
                        int t = taps[o + ow];
                        idx[o + ow] = (long)(oh * sh + t / kw) * W + ow * sw + t % kw;
                    }
            }
        });
    }

    /// <summary>
    /// Flat input-plane indices from <see cref="MaxForward2d{T}"/>'s taps over a plane padded by (top, left):
    /// <paramref name="w"/> is the unpadded pooling, whose input plane the indices address.
    /// </summary>
    public static void PaddedTapIndices(byte[] taps, long[] idx, int planes, PoolWindows w, (int Kh, int Kw, int Sh, int Sw) g, int top, int left)
    {
        int OH = w.Out[1], OW = w.Out[2], W = w.In[2];
        for (int p = 0, o = 0; p < planes; p++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++, o++)
                {
                    int t = taps[o];
                    idx[o] = (long)(oh * g.Sh + t / g.Kw - top) * W + ow * g.Sw + t % g.Kw - left;
                }
    }

    private static void StoreTaps<T>(Vector256<T> tap, Span<byte> taps) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float))
        {
            var t16 = Vector256.Narrow(Vector256.ConvertToInt32(tap.As<T, float>()), Vector256<int>.Zero).AsUInt16();
            System.Runtime.InteropServices.MemoryMarshal.Write(taps, Vector256.Narrow(t16, t16).AsUInt64().GetElement(0));
        }
        else
            for (int l = 0; l < Vector256<T>.Count; l++) taps[l] = byte.CreateTruncating(tap.GetElement(l));
    }

    /// <summary>x[i], x[i+s], … as one vector; stride 2 of float32 takes the even lanes of two contiguous loads.</summary>
    private static Vector256<T> Strided<T>(T[] x, int i, int s) where T : unmanaged
    {
        if (s == 1) return Vector256.Create<T>(x.AsSpan(i));
        if (s == 2 && typeof(T) == typeof(float))
        {
            var a = Vector256.Create<T>(x.AsSpan(i)).AsUInt64();
            var b = Vector256.Create<T>(x.AsSpan(i + Vector256<T>.Count)).AsUInt64();
            return Vector256.Narrow(a, b).As<uint, T>();
        }
        Span<T> buf = stackalloc T[Vector256<T>.Count];
        for (int l = 0; l < buf.Length; l++) buf[l] = x[i + l * s];
        return Vector256.Create<T>(buf);
    }

    /// <summary>gx[argmax] += gy for <see cref="MaxForward2d{T}"/>'s taps (plain assignment when windows do not overlap).</summary>
    public static void MaxBackward2d<T>(T[] gy, int gyOff, byte[] taps, T[] gx, int planes, PoolWindows w, (int Kh, int Kw, int Sh, int Sw) g)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int H = w.In[1], W = w.In[2], OH = w.Out[1], OW = w.Out[2];
        var (kh, kw, sh, sw) = g;
        var tapOff = new int[kh * kw];
        for (int t = 0; t < tapOff.Length; t++) tapOff[t] = t / kw * W + t % kw;
        bool overlap = sh < kh || sw < kw;
        ForPlanes(planes, (long)planes * H * W, p =>
        {
            for (int oh = 0; oh < OH; oh++)
            {
                int gb = (p * H + oh * sh) * W, o = (p * OH + oh) * OW;
                if (overlap)
                    for (int ow = 0; ow < OW; ow++, o++) gx[gb + ow * sw + tapOff[taps[o]]] += gy[gyOff + o];
                else
                    for (int ow = 0; ow < OW; ow++, o++) gx[gb + ow * sw + tapOff[taps[o]]] = gy[gyOff + o];
            }
        });
    }

    /// <summary>gx[idx] += gy per plane (windows may overlap, so gradients accumulate).</summary>
    public static void MaxBackward<T>(T[] gy, int gyOff, long[] idx, T[] gx, int planes, int inPlane, int outPlane)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ForPlanes(planes, (long)planes * outPlane, p =>
        {
            int gb = p * inPlane, o = p * outPlane;
            for (int i = 0; i < outPlane; i++, o++) gx[gb + idx[o]] += gy[gyOff + o];
        });
    }

    /// <summary>y = Σ window / divisor (<paramref name="divisorOverride"/> when non-zero). Avg windows have unit step.</summary>
    public static void AvgForward<T>(T[] x, int xOff, T[] y, int planes, PoolWindows w, int divisorOverride)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (PlainAvg2d(w, divisorOverride) is { } g) Avg2d(x, xOff, y, 0, planes, w, g, divisorOverride, backward: false);
        else ForEachWindow(planes, w, new AvgOp<T>(x, xOff, y, 0, w, divisorOverride, false));
    }

    /// <summary>gx[window] += gy / divisor.</summary>
    public static void AvgBackward<T>(T[] gy, int gyOff, T[] gx, int planes, PoolWindows w, int divisorOverride)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (PlainAvg2d(w, divisorOverride) is { } g) Avg2d(gx, 0, gy, gyOff, planes, w, g, divisorOverride, backward: true);
        else ForEachWindow(planes, w, new AvgOp<T>(gx, 0, gy, gyOff, w, divisorOverride, true));
    }

    /// <summary>
    /// <see cref="Plain2d"/> windows whose divisor is the same for all (the override, or kh·kw when no window's divisor
    /// counts padding or clipped taps), else null.
    /// </summary>
    private static (int Kh, int Kw, int Sh, int Sw)? PlainAvg2d(PoolWindows w, int divisorOverride)
    {
        if (Plain2d(w) is not { } g) return null;
        if (divisorOverride != 0) return g;
        return w.Div[1].All(d => d == g.Kh) && w.Div[2].All(d => d == g.Kw) ? g : null;
    }

    /// <summary>
    /// Average pooling over plain 2-d windows (<see cref="Plain2d"/>: every window a full kh×kw block, divisor kh·kw
    /// or the override): the window sums run as straight loops over the plane instead of through per-window tables
    /// (LeNet's 2x2 pools spent 7-8 % of a training step in the general path). Sums in window order, as PyTorch.
    /// </summary>
    private static void Avg2d<T>(T[] planes, int planesOff, T[] pooled, int pooledOff, int count, PoolWindows w, (int Kh, int Kw, int Sh, int Sw) g,
        int divisorOverride, bool backward) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int W = w.In[2], inPlane = w.InPlane, OH = w.Out[1], OW = w.Out[2], outPlane = OH * OW;
        T div = T.CreateChecked(divisorOverride != 0 ? divisorOverride : g.Kh * g.Kw);
        ForPlanes(count, (long)count * outPlane * g.Kh * g.Kw, p =>
        {
            int pb = planesOff + p * inPlane, po = pooledOff + p * outPlane;
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++)
                {
                    int corner = pb + oh * g.Sh * W + ow * g.Sw;
                    if (backward)
                    {
                        T v = pooled[po + oh * OW + ow] / div;
                        for (int kh = 0; kh < g.Kh; kh++)
                            for (int kw = 0, i = corner + kh * W; kw < g.Kw; kw++, i++) planes[i] += v;
                    }
                    else
                    {
                        T sum = T.Zero;
                        for (int kh = 0; kh < g.Kh; kh++)
                            for (int kw = 0, i = corner + kh * W; kw < g.Kw; kw++, i++) sum += planes[i];
                        pooled[po + oh * OW + ow] = sum / div;
                    }
                }
        });
    }

    /// <summary>Forward sums each window's rows of the input planes into <c>pooled</c>; backward spreads <c>pooled</c> back over them.</summary>
    private readonly struct AvgOp<T>(T[] planes, int planesOff, T[] pooled, int pooledOff, PoolWindows w, int divisorOverride, bool backward) : IWindowOp
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        private const int ShortRow = 8;

        public void Apply(int p, int o, int od, int oh, int ow)
        {
            int H = w.In[1], W = w.In[2], pb = planesOff + p * w.InPlane, po = pooledOff + o;
            T div = T.CreateChecked(divisorOverride != 0 ? divisorOverride : (long)w.Div[0][od] * w.Div[1][oh] * w.Div[2][ow]);
            T g = backward ? pooled[po] / div : T.Zero, sum = T.Zero;
            for (int jd = 0, id = w.Lo[0][od]; jd < w.Count[0][od]; jd++, id++)
                for (int jh = 0, ih = w.Lo[1][oh]; jh < w.Count[1][oh]; jh++, ih++)
                {
                    int start = pb + (id * H + ih) * W + w.Lo[2][ow], n = w.Count[2][ow];
                    // Short rows (2x2, 3x3 windows) cost less as a plain loop than as a span call.
                    if (n <= ShortRow)
                    {
                        if (backward) for (int j = 0; j < n; j++) planes[start + j] += g;
                        else for (int j = 0; j < n; j++) sum += planes[start + j];
                        continue;
                    }
                    var row = new Span<T>(planes, start, n);
                    if (backward) TensorPrimitives.Add(row, g, row);
                    else sum += TensorPrimitives.Sum<T>(row);
                }
            if (!backward) pooled[po] = sum / div;
        }
    }
}
