using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ConvLab.Kernels;

internal static class GemmPack
{
    private const int Ahead = 4, TransposeAhead = 64;

    /// <summary>
    /// Packs a count x kc block of an operand whose element (x, p) sits at src[off + x·sx + p·sk] into
    /// panels of <paramref name="width"/> x-values per K step: dst[(x / width)·width·kc + p·width + x % width].
    /// The same routine packs A (x = row) and B (x = column) in either storage order, so transposed
    /// operands cost no extra copy; the last panel is zero-padded to full width.
    /// </summary>
    public static void Pack<T, TV, TOps>(T[] src, int off, int sx, int sk, int count, int kc, int width, ref T dst)
        where T : unmanaged where TV : unmanaged where TOps : IGemmOps<T, TV>
    {
        ref T s0 = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(src), off);
        int full = count / width * width;
        if (sx == 1)
        {
            // x contiguous: walk each K step's run of x once, left to right (one stream through memory
            // instead of one page per K step per panel), scattering it into the panels.
            bool vec = width % TOps.Width == 0;
            for (int p = 0; p < kc; p++)
            {
                ref T from = ref Unsafe.Add(ref s0, p * sk);
                ref T to = ref Unsafe.Add(ref dst, p * width);
                // Rows are far apart (the whole of B's width): ask for a later row early, as the stream prefetcher restarts at each one.
                if (Sse.IsSupported && p + Ahead < kc)
                    for (int x = 0; x < count; x += 64 / Unsafe.SizeOf<T>()) GemmKernel.Prefetch(ref Unsafe.Add(ref from, Ahead * sk + x));
                int x0 = 0;
                for (; x0 < full; x0 += width)
                {
                    ref T f = ref Unsafe.Add(ref from, x0);
                    ref T t = ref Unsafe.Add(ref to, x0 * kc);
                    if (vec)
                        for (int x = 0; x < width; x += TOps.Width) TOps.Store(TOps.Load(ref Unsafe.Add(ref f, x)), ref Unsafe.Add(ref t, x));
                    else
                        for (int x = 0; x < width; x++) Unsafe.Add(ref t, x) = Unsafe.Add(ref f, x);
                }
                if (x0 < count)
                {
                    ref T t = ref Unsafe.Add(ref to, x0 * kc);
                    for (int x = 0; x < width; x++) Unsafe.Add(ref t, x) = x0 + x < count ? Unsafe.Add(ref from, x0 + x) : default;
                }
            }
            return;
        }
        // p contiguous (A stored M x K, B stored N x K): a transpose. Float on AVX goes in 8 x 8 register
        // blocks; the rest element by element, K in chunks so the written part of a panel stays in L1.
        bool blocks = typeof(T) == typeof(float) && Avx.IsSupported && sk == 1;
        const int Chunk = 64;
        for (int x0 = 0; x0 < count; x0 += width)
        {
            int xs = Math.Min(width, count - x0);
            ref T panel = ref Unsafe.Add(ref dst, x0 * kc);
            int x8 = blocks ? xs / 8 * 8 : 0, p8 = blocks ? kc / 8 * 8 : 0;
            for (int p = 0; p < p8; p += 8)
                for (int xb = 0; xb < x8; xb += 8)
                {
                    // Up to 32 rows are read side by side, more streams than the hardware prefetcher follows.
                    if ((p & 15) == 0 && p + TransposeAhead < kc)
                        for (int x = xb; x < xb + 8; x++) GemmKernel.Prefetch(ref Unsafe.Add(ref s0, (x0 + x) * sx + p + TransposeAhead));
                    Transpose8x8(ref Unsafe.As<T, float>(ref Unsafe.Add(ref s0, (x0 + xb) * sx + p)), sx,
                        ref Unsafe.As<T, float>(ref Unsafe.Add(ref panel, p * width + xb)), width);
                }
            for (int p0 = 0; p0 < kc; p0 += Chunk)
            {
                int p1 = Math.Min(kc, p0 + Chunk);
                for (int x = 0; x < width; x++)
                {
                    ref T to = ref Unsafe.Add(ref panel, x);
                    int from0 = x < x8 ? Math.Max(p0, p8) : p0;
                    if (x >= xs) { for (int p = from0; p < p1; p++) Unsafe.Add(ref to, p * width) = default; continue; }
                    ref T from = ref Unsafe.Add(ref s0, (x0 + x) * sx);
                    for (int p = from0; p < p1; p++) Unsafe.Add(ref to, p * width) = Unsafe.Add(ref from, p * sk);
                }
            }
        }
    }

    /// <summary>dst[j·ldd + i] = src[i·lds + j] for an 8 x 8 block: unpack pairs, then quads, then swap 128-bit halves.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8(ref float src, int lds, ref float dst, int ldd)
    {
        var r0 = Vector256.LoadUnsafe(ref src); var r1 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, lds));
        var r2 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, 2 * lds)); var r3 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, 3 * lds));
        var r4 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, 4 * lds)); var r5 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, 5 * lds));
        var r6 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, 6 * lds)); var r7 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, 7 * lds));
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1); var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5); var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var q0 = Avx.Shuffle(t0, t2, 0x44); var q1 = Avx.Shuffle(t0, t2, 0xEE); var q2 = Avx.Shuffle(t1, t3, 0x44); var q3 = Avx.Shuffle(t1, t3, 0xEE);
        var q4 = Avx.Shuffle(t4, t6, 0x44); var q5 = Avx.Shuffle(t4, t6, 0xEE); var q6 = Avx.Shuffle(t5, t7, 0x44); var q7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Permute2x128(q0, q4, 0x20).StoreUnsafe(ref dst);
        Avx.Permute2x128(q1, q5, 0x20).StoreUnsafe(ref Unsafe.Add(ref dst, ldd));
        Avx.Permute2x128(q2, q6, 0x20).StoreUnsafe(ref Unsafe.Add(ref dst, 2 * ldd));
        Avx.Permute2x128(q3, q7, 0x20).StoreUnsafe(ref Unsafe.Add(ref dst, 3 * ldd));
        Avx.Permute2x128(q0, q4, 0x31).StoreUnsafe(ref Unsafe.Add(ref dst, 4 * ldd));
        Avx.Permute2x128(q1, q5, 0x31).StoreUnsafe(ref Unsafe.Add(ref dst, 5 * ldd));
        Avx.Permute2x128(q2, q6, 0x31).StoreUnsafe(ref Unsafe.Add(ref dst, 6 * ldd));
        Avx.Permute2x128(q3, q7, 0x31).StoreUnsafe(ref Unsafe.Add(ref dst, 7 * ldd));
    }
}
