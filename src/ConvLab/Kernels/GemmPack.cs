using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace ConvLab.Kernels;

internal static class GemmPack
{
    private const int Ahead = 4;

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
        // p contiguous: read runs along K, write them strided; K in chunks keeps the written part of a panel in L1.
        const int Chunk = 64;
        for (int x0 = 0; x0 < count; x0 += width)
        {
            int xs = Math.Min(width, count - x0);
            ref T panel = ref Unsafe.Add(ref dst, x0 * kc);
            for (int p0 = 0; p0 < kc; p0 += Chunk)
            {
                int p1 = Math.Min(kc, p0 + Chunk);
                for (int x = 0; x < width; x++)
                {
                    ref T to = ref Unsafe.Add(ref panel, x);
                    if (x >= xs) { for (int p = p0; p < p1; p++) Unsafe.Add(ref to, p * width) = default; continue; }
                    ref T from = ref Unsafe.Add(ref s0, (x0 + x) * sx);
                    for (int p = p0; p < p1; p++) Unsafe.Add(ref to, p * width) = Unsafe.Add(ref from, p * sk);
                }
            }
        }
    }
}
