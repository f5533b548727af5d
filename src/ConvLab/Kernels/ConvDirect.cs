using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ConvLab.Kernels;

/// <summary>
/// Direct 1-d/2-d convolution, vectorised along the output row, with no im2col: the kernel behind both
/// <see cref="ConvAlgorithm.Direct"/> (small-channel layers such as the 3 → 64 7x7/2 ResNet stem) and
/// <see cref="ConvAlgorithm.Depthwise"/> (groups == in_channels, any channel multiplier).
/// <para>
/// Each input plane is first copied into a zero-padded, phase-split buffer: row ih holds stride_w phases
/// of length Lp, phase r at index j holding padded column j·stride_w + r. Output column ow of kernel
/// column kw then reads phase (kw·dil_w) mod stride_w at index ow + (kw·dil_w) div stride_w, so every
/// kernel tap is a contiguous run along the output row whatever the stride, dilation and padding; rows
/// outside the input are skipped. Rows are rounded up to whole vectors (the slack reads zeros or unused
/// columns and is never stored). The backward passes are exact adjoints over the same buffers:
/// backward-data scatters gy rows into a buffer and unpacks it, backward-weight dots gy rows with it.
/// </para>
/// Parallel work items: forward (image, output-channel block), backward-data (image, input channel),
/// backward-weight (output-channel block, over all images), so no two workers write the same element.
/// </summary>
internal static class ConvDirect
{
    /// <summary>The 2-d view of a 1-d or 2-d geometry and the buffer layout.</summary>
    private readonly record struct View(int IH, int IW, int OH, int OW, int KH, int KW, int SH, int SW, int PT, int PL, int DH, int DW, int OWr, int Lp)
    {
        public int RowLen => SW * Lp;
        public int PlaneLen => IH * RowLen;
        public int K => KH * KW;
        /// <summary>Buffer offset of kernel column kw within a row.</summary>
        public int TapOff(int kw) => kw * DW % SW * Lp + kw * DW / SW;
    }

    private static View Make<T>(ConvGeometry g)
    {
        int h = g.Dims - 2, w = g.Dims - 1; // h < 0 for 1-d
        int vc = Vector<T>.Count;
        int ow = g.OutSize[w], owr = (ow + vc - 1) / vc * vc;
        int lp = owr + (g.Kernel[w] - 1) * g.Dilation[w] / g.Stride[w];
        return h < 0
            ? new View(1, g.InSize[w], 1, ow, 1, g.Kernel[w], 1, g.Stride[w], 0, g.Pad[w], 1, g.Dilation[w], owr, lp)
            : new View(g.InSize[h], g.InSize[w], g.OutSize[h], ow, g.Kernel[h], g.Kernel[w], g.Stride[h], g.Stride[w], g.Pad[h], g.Pad[w], g.Dilation[h], g.Dilation[w], owr, lp);
    }

    /// <summary>Output channels a forward work item computes together (<see cref="Row4"/> when the block is full).</summary>
    private const int RowBlock = 4;

    private static int Block(ConvGeometry g) => Math.Min(g.OutPerGroup, RowBlock);

    /// <summary>Workspace elements one worker holds for a pass.</summary>
    public static long Workspace<T>(ConvPass pass, ConvGeometry g)
    {
        var v = Make<T>(g);
        long planes = pass == ConvPass.BackwardInput ? 1 : g.InPerGroup;
        long rows = pass == ConvPass.Forward ? RowBlock * v.OWr : v.OWr;
        return planes * v.PlaneLen + rows + (pass == ConvPass.BackwardWeight ? (long)g.InPerGroup * v.K * Vector<T>.Count : 0);
    }

    /// <summary>Runs one pass; dst is overwritten.</summary>
    public static void Run<T>(ConvPass pass, T[] a, int aOff, T[] b, int bOff, T[] dst, int dstOff, ConvGeometry g)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        dst.AsSpan(dstOff, Conv.DstLength(pass, g)).Clear();
        if (g.Batch == 0 || g.OutPlane == 0 || g.InChannels == 0 || g.OutChannels == 0) return;
        var v = Make<T>(g);
        int blocks = (g.OutPerGroup + Block(g) - 1) / Block(g);
        long work = g.Macs;
        switch (pass)
        {
            case ConvPass.Forward:
            {
                // Each item packs its image's input planes once, so it takes as many channel blocks as still leaves
                // enough items to spread over the threads (the stem's 3 planes were packed 16 times per image).
                int perItem = Math.Clamp(g.Batch * g.Groups * blocks / (8 * Threads.Count), 1, Math.Max(1, blocks));
                int chunks = (blocks + perItem - 1) / perItem;
                Threads.For(0, g.Batch * g.Groups * chunks, work, item => Forward(item, chunks, perItem, a, aOff, b, bOff, dst, dstOff, g, v));
            }
                break;
            case ConvPass.BackwardInput:
                Threads.For(0, g.Batch * g.InChannels, work, item => BackwardInput(item, a, aOff, b, bOff, dst, dstOff, g, v));
                break;
            default:
                Threads.For(0, g.Groups * blocks, work, item => BackwardWeight(item, a, aOff, b, bOff, dst, dstOff, g, v));
                break;
        }
    }

    /// <summary>Copies one input plane into the padded, phase-split layout (zeros elsewhere).</summary>
    private static void Pack<T>(T[] x, int xOff, T[] buf, int bufOff, in View v) where T : unmanaged, IFloatingPointIeee754<T>
    {
        buf.AsSpan(bufOff, v.PlaneLen).Clear();
        for (int ih = 0; ih < v.IH; ih++)
        {
            int src = xOff + ih * v.IW, row = bufOff + ih * v.RowLen;
            if (v.SW == 1)
            {
                int n = Math.Min(v.IW, v.Lp - v.PL);
                if (n > 0) x.AsSpan(src, n).CopyTo(buf.AsSpan(row + v.PL, n));
                continue;
            }
            // Phase r holds columns iw ≡ r - PL (mod SW): a strided copy per phase.
            for (int r = 0; r < v.SW; r++)
            {
                int iw = ((r - v.PL) % v.SW + v.SW) % v.SW, j = (iw + v.PL) / v.SW, to = row + r * v.Lp;
                for (; iw < v.IW && j < v.Lp; iw += v.SW, j++) buf[to + j] = x[src + iw];
            }
        }
    }

    /// <summary>Inverse of <see cref="Pack"/> for the input gradient: reads every real column back.</summary>
    private static void Unpack<T>(T[] buf, int bufOff, T[] x, int xOff, in View v) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int ih = 0; ih < v.IH; ih++)
        {
            int dst = xOff + ih * v.IW, row = bufOff + ih * v.RowLen;
            if (v.SW == 1)
            {
                int n = Math.Min(v.IW, v.Lp - v.PL);
                if (n > 0) buf.AsSpan(row + v.PL, n).CopyTo(x.AsSpan(dst, n));
                continue;
            }
            // Phase by phase, as Pack wrote them: no division per element.
            for (int r = 0; r < v.SW; r++)
            {
                int iw = ((r - v.PL) % v.SW + v.SW) % v.SW, j = (iw + v.PL) / v.SW, from = row + r * v.Lp;
                for (; iw < v.IW && j < v.Lp; iw += v.SW, j++) x[dst + iw] = buf[from + j];
            }
        }
    }

    private static int InputRow(in View v, int oh, int kh) => oh * v.SH - v.PT + kh * v.DH;

    private static void Forward<T>(int item, int chunks, int perItem, T[] x, int xOff, T[] w, int wOff, T[] y, int yOff, ConvGeometry g, View v)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int bs = Block(g), blocks = (g.OutPerGroup + bs - 1) / bs, cinG = g.InPerGroup, K = v.K;
        int n = item / (g.Groups * chunks), gi = item / chunks % g.Groups, b0 = item % chunks * perItem, b1 = Math.Min(blocks, b0 + perItem);
        var buf = ArrayPool<T>.Shared.Rent(cinG * v.PlaneLen + RowBlock * v.OWr);
        var taps = ArrayPool<int>.Shared.Rent(cinG * K);
        var wts = ArrayPool<T>.Shared.Rent(RowBlock * cinG * K);
        int tmp = cinG * v.PlaneLen;
        for (int ci = 0; ci < cinG; ci++)
            Pack(x, xOff + (n * g.InChannels + gi * cinG + ci) * g.InPlane, buf, ci * v.PlaneLen, v);
        // Output row outer: the few input rows it reads stay in L1 across the block's channels.
        for (int oh = 0; oh < v.OH; oh++)
        for (int blk = b0; blk < b1; blk++)
        {
            int c0 = gi * g.OutPerGroup + blk * bs, c1 = Math.Min(c0 + bs, (gi + 1) * g.OutPerGroup);
            if (c1 - c0 == RowBlock)
            {
                // A full block: each loaded input vector feeds all its channels (the stem's 147 taps would
                // otherwise be loaded once per output channel, leaving the loop bound by loads, not FMAs).
                int nt4 = 0;
                for (int ci = 0; ci < cinG; ci++)
                    for (int kh = 0; kh < v.KH; kh++)
                    {
                        int ih = InputRow(v, oh, kh);
                        if ((uint)ih >= (uint)v.IH) continue;
                        for (int kw = 0; kw < v.KW; kw++, nt4++)
                        {
                            taps[nt4] = ci * v.PlaneLen + ih * v.RowLen + v.TapOff(kw);
                            for (int c = 0; c < RowBlock; c++)
                                wts[nt4 * RowBlock + c] = w[wOff + ((c0 + c) * cinG + ci) * K + kh * v.KW + kw];
                        }
                    }
                Row4(buf, taps, wts, nt4, buf, tmp, v.OWr);
                for (int c = 0; c < RowBlock; c++)
                    buf.AsSpan(tmp + c * v.OWr, v.OW).CopyTo(y.AsSpan(yOff + (n * g.OutChannels + c0 + c) * g.OutPlane + oh * v.OW, v.OW));
                continue;
            }
            for (int co = c0; co < c1; co++)
            {
                int nt = 0;
                for (int ci = 0; ci < cinG; ci++)
                    for (int kh = 0; kh < v.KH; kh++)
                    {
                        int ih = InputRow(v, oh, kh);
                        if ((uint)ih >= (uint)v.IH) continue;
                        for (int kw = 0; kw < v.KW; kw++)
                        {
                            taps[nt] = ci * v.PlaneLen + ih * v.RowLen + v.TapOff(kw);
                            wts[nt++] = w[wOff + (co * cinG + ci) * K + kh * v.KW + kw];
                        }
                    }
                Row(buf, taps, wts, nt, buf, tmp, v.OWr);
                buf.AsSpan(tmp, v.OW).CopyTo(y.AsSpan(yOff + (n * g.OutChannels + co) * g.OutPlane + oh * v.OW, v.OW));
            }
        }
        ArrayPool<T>.Shared.Return(buf); ArrayPool<int>.Shared.Return(taps); ArrayPool<T>.Shared.Return(wts);
    }

    /// <summary>a·b + c fused where the element type has a hardware FMA (the generic Vector API has none).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector<T> Fma<T>(Vector<T> a, Vector<T> b, Vector<T> c) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float)) return Vector.FusedMultiplyAdd(a.As<T, float>(), b.As<T, float>(), c.As<T, float>()).As<float, T>();
        if (typeof(T) == typeof(double)) return Vector.FusedMultiplyAdd(a.As<T, double>(), b.As<T, double>(), c.As<T, double>()).As<double, T>();
        return a * b + c;
    }

    /// <summary>
    /// Four output channels at once: out[c·len + 0..len) = Σ_t wts[4t + c] · src[taps[t] + 0..len) for c &lt; 4,
    /// two vectors of the row at a time (8 accumulators; each loaded input vector feeds 4 FMAs).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Row4<T>(T[] src, int[] taps, T[] wts, int nt, T[] outBuf, int outOff, int len) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int vc = Vector<T>.Count;
        ref T s = ref MemoryMarshal.GetArrayDataReference(src);
        ref T w = ref MemoryMarshal.GetArrayDataReference(wts);
        ref T o = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(outBuf), outOff);
        int j = 0;
        for (; j + 2 * vc <= len; j += 2 * vc)
        {
            Vector<T> a00 = default, a01 = default, a10 = default, a11 = default, a20 = default, a21 = default, a30 = default, a31 = default;
            for (int t = 0; t < nt; t++)
            {
                ref T p = ref Unsafe.Add(ref s, taps[t] + j);
                var x0 = Vector.LoadUnsafe(ref p);
                var x1 = Vector.LoadUnsafe(ref p, (nuint)vc);
                ref T wt = ref Unsafe.Add(ref w, 4 * t);
                var w0 = new Vector<T>(wt);
                a00 = Fma(x0, w0, a00); a01 = Fma(x1, w0, a01);
                var w1 = new Vector<T>(Unsafe.Add(ref wt, 1));
                a10 = Fma(x0, w1, a10); a11 = Fma(x1, w1, a11);
                var w2 = new Vector<T>(Unsafe.Add(ref wt, 2));
                a20 = Fma(x0, w2, a20); a21 = Fma(x1, w2, a21);
                var w3 = new Vector<T>(Unsafe.Add(ref wt, 3));
                a30 = Fma(x0, w3, a30); a31 = Fma(x1, w3, a31);
            }
            a00.StoreUnsafe(ref o, (nuint)j); a01.StoreUnsafe(ref o, (nuint)(j + vc));
            a10.StoreUnsafe(ref o, (nuint)(len + j)); a11.StoreUnsafe(ref o, (nuint)(len + j + vc));
            a20.StoreUnsafe(ref o, (nuint)(2 * len + j)); a21.StoreUnsafe(ref o, (nuint)(2 * len + j + vc));
            a30.StoreUnsafe(ref o, (nuint)(3 * len + j)); a31.StoreUnsafe(ref o, (nuint)(3 * len + j + vc));
        }
        for (; j < len; j += vc)
        {
            Vector<T> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int t = 0; t < nt; t++)
            {
                var x0 = Vector.LoadUnsafe(ref Unsafe.Add(ref s, taps[t] + j));
                ref T wt = ref Unsafe.Add(ref w, 4 * t);
                a0 = Fma(x0, new Vector<T>(wt), a0);
                a1 = Fma(x0, new Vector<T>(Unsafe.Add(ref wt, 1)), a1);
                a2 = Fma(x0, new Vector<T>(Unsafe.Add(ref wt, 2)), a2);
                a3 = Fma(x0, new Vector<T>(Unsafe.Add(ref wt, 3)), a3);
            }
            a0.StoreUnsafe(ref o, (nuint)j); a1.StoreUnsafe(ref o, (nuint)(len + j));
            a2.StoreUnsafe(ref o, (nuint)(2 * len + j)); a3.StoreUnsafe(ref o, (nuint)(3 * len + j));
        }
    }

    /// <summary>out[0..len) = Σ_t wts[t] · src[taps[t] + 0..len), four vectors of the row at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Row<T>(T[] src, int[] taps, T[] wts, int nt, T[] outBuf, int outOff, int len) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int vc = Vector<T>.Count;
        ref T s = ref MemoryMarshal.GetArrayDataReference(src);
        ref T o = ref MemoryMarshal.GetArrayDataReference(outBuf);
        int j = 0;
        for (; j + 4 * vc <= len; j += 4 * vc)
        {
            Vector<T> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int t = 0; t < nt; t++)
            {
                ref T p = ref Unsafe.Add(ref s, taps[t] + j);
                var wv = new Vector<T>(wts[t]);
                a0 = Fma(Vector.LoadUnsafe(ref p), wv, a0);
                a1 = Fma(Vector.LoadUnsafe(ref p, (nuint)vc), wv, a1);
                a2 = Fma(Vector.LoadUnsafe(ref p, (nuint)(2 * vc)), wv, a2);
                a3 = Fma(Vector.LoadUnsafe(ref p, (nuint)(3 * vc)), wv, a3);
            }
            ref T d = ref Unsafe.Add(ref o, outOff + j);
            a0.StoreUnsafe(ref d); a1.StoreUnsafe(ref d, (nuint)vc); a2.StoreUnsafe(ref d, (nuint)(2 * vc)); a3.StoreUnsafe(ref d, (nuint)(3 * vc));
        }
        for (; j < len; j += vc)
        {
            Vector<T> a0 = default;
            for (int t = 0; t < nt; t++)
                a0 = Fma(Vector.LoadUnsafe(ref Unsafe.Add(ref s, taps[t] + j)), new Vector<T>(wts[t]), a0);
            a0.StoreUnsafe(ref Unsafe.Add(ref o, outOff + j));
        }
    }

    private static void BackwardInput<T>(int item, T[] gy, int gyOff, T[] w, int wOff, T[] gx, int gxOff, ConvGeometry g, View v)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = item / g.InChannels, c = item % g.InChannels, cinG = g.InPerGroup, gi = c / cinG, ci = c % cinG, K = v.K, vc = Vector<T>.Count;
        var buf = ArrayPool<T>.Shared.Rent(v.PlaneLen + v.OWr);
        int tmp = v.PlaneLen;
        buf.AsSpan(0, v.PlaneLen).Clear();
        buf.AsSpan(tmp + v.OW, v.OWr - v.OW).Clear(); // the slack of the gy row must scatter zeros
        ref T bref = ref MemoryMarshal.GetArrayDataReference(buf);
        for (int co = gi * g.OutPerGroup; co < (gi + 1) * g.OutPerGroup; co++)
            for (int oh = 0; oh < v.OH; oh++)
            {
                gy.AsSpan(gyOff + (n * g.OutChannels + co) * g.OutPlane + oh * v.OW, v.OW).CopyTo(buf.AsSpan(tmp, v.OW));
                for (int kh = 0; kh < v.KH; kh++)
                {
                    int ih = InputRow(v, oh, kh);
                    if ((uint)ih >= (uint)v.IH) continue;
                    for (int kw = 0; kw < v.KW; kw++)
                    {
                        var wv = new Vector<T>(w[wOff + (co * cinG + ci) * K + kh * v.KW + kw]);
                        int dst = ih * v.RowLen + v.TapOff(kw);
                        for (int j = 0; j < v.OWr; j += vc)
                        {
                            ref T d = ref Unsafe.Add(ref bref, dst + j);
                            Fma(Vector.LoadUnsafe(ref bref, (nuint)(tmp + j)), wv, Vector.LoadUnsafe(ref d)).StoreUnsafe(ref d);
                        }
                    }
                }
            }
        Unpack(buf, 0, gx, gxOff + (n * g.InChannels + c) * g.InPlane, v);
        ArrayPool<T>.Shared.Return(buf);
    }

    private static void BackwardWeight<T>(int item, T[] x, int xOff, T[] gy, int gyOff, T[] gw, int gwOff, ConvGeometry g, View v)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int bs = Block(g), blocks = (g.OutPerGroup + bs - 1) / bs, cinG = g.InPerGroup, K = v.K, vc = Vector<T>.Count;
        int gi = item / blocks, c0 = gi * g.OutPerGroup + item % blocks * bs, c1 = Math.Min(c0 + bs, (gi + 1) * g.OutPerGroup);
        int tmp = cinG * v.PlaneLen;
        var buf = ArrayPool<T>.Shared.Rent(tmp + v.OWr);
        var acc = ArrayPool<Vector<T>>.Shared.Rent(cinG * K);
        buf.AsSpan(tmp + v.OW, v.OWr - v.OW).Clear(); // zero gy slack: the buffer there may hold real columns
        ref T bref = ref MemoryMarshal.GetArrayDataReference(buf);
        for (int n = 0; n < g.Batch; n++)
        {
            for (int ci = 0; ci < cinG; ci++)
                Pack(x, xOff + (n * g.InChannels + gi * cinG + ci) * g.InPlane, buf, ci * v.PlaneLen, v);
            for (int co = c0; co < c1; co++)
            {
                acc.AsSpan(0, cinG * K).Clear();
                for (int oh = 0; oh < v.OH; oh++)
                {
                    gy.AsSpan(gyOff + (n * g.OutChannels + co) * g.OutPlane + oh * v.OW, v.OW).CopyTo(buf.AsSpan(tmp, v.OW));
                    for (int ci = 0; ci < cinG; ci++)
                        for (int kh = 0; kh < v.KH; kh++)
                        {
                            int ih = InputRow(v, oh, kh);
                            if ((uint)ih >= (uint)v.IH) continue;
                            for (int kw = 0; kw < v.KW; kw++)
                            {
                                int src = ci * v.PlaneLen + ih * v.RowLen + v.TapOff(kw);
                                ref var a = ref acc[ci * K + kh * v.KW + kw];
                                for (int j = 0; j < v.OWr; j += vc)
                                    a = Fma(Vector.LoadUnsafe(ref bref, (nuint)(tmp + j)), Vector.LoadUnsafe(ref bref, (nuint)(src + j)), a);
                            }
                        }
                }
                for (int t = 0; t < cinG * K; t++) gw[gwOff + co * cinG * K + t] += Vector.Sum(acc[t]);
            }
        }
        ArrayPool<T>.Shared.Return(buf); ArrayPool<Vector<T>>.Shared.Return(acc);
    }
}
