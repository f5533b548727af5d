using System.Numerics;
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
        where T : unmanaged, IFloatingPointIeee754<T> => ForEachWindow(planes, w, new AvgOp<T>(x, xOff, y, 0, w, divisorOverride, false));

    /// <summary>gx[window] += gy / divisor.</summary>
    public static void AvgBackward<T>(T[] gy, int gyOff, T[] gx, int planes, PoolWindows w, int divisorOverride)
        where T : unmanaged, IFloatingPointIeee754<T> => ForEachWindow(planes, w, new AvgOp<T>(gx, 0, gy, gyOff, w, divisorOverride, true));

    /// <summary>Forward sums each window's rows of the input planes into <c>pooled</c>; backward spreads <c>pooled</c> back over them.</summary>
    private readonly struct AvgOp<T>(T[] planes, int planesOff, T[] pooled, int pooledOff, PoolWindows w, int divisorOverride, bool backward) : IWindowOp
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        public void Apply(int p, int o, int od, int oh, int ow)
        {
            int H = w.In[1], W = w.In[2], pb = planesOff + p * w.InPlane, po = pooledOff + o;
            T div = T.CreateChecked(divisorOverride != 0 ? divisorOverride : (long)w.Div[0][od] * w.Div[1][oh] * w.Div[2][ow]);
            T g = backward ? pooled[po] / div : T.Zero, sum = T.Zero;
            for (int jd = 0, id = w.Lo[0][od]; jd < w.Count[0][od]; jd++, id++)
                for (int jh = 0, ih = w.Lo[1][oh]; jh < w.Count[1][oh]; jh++, ih++)
                {
                    var row = new Span<T>(planes, pb + (id * H + ih) * W + w.Lo[2][ow], w.Count[2][ow]);
                    if (backward) TensorPrimitives.Add(row, g, row);
                    else sum += TensorPrimitives.Sum<T>(row);
                }
            if (!backward) pooled[po] = sum / div;
        }
    }
}
