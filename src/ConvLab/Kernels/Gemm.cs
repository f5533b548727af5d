using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ConvLab.Kernels;

/// <summary>
/// General matrix multiply C = op(A)·op(B) (+ C when accumulating), row-major, over float or double.
/// Goto/BLIS structure: A is packed in blocks of MC rows x KC steps (micro-panels of MR rows), B in
/// blocks of KC x NC (micro-panels of NR = 2 vectors, sized for L2), and a register-blocked
/// micro-kernel (<see cref="GemmKernel"/>) multiplies an MR x KC panel by a KC x NR panel with all
/// MR x NR accumulators in registers. The ISA (AVX-512, AVX2/FMA, Vector128, scalar) is chosen at
/// run time; threads take disjoint ranges of the larger of M and N, each packing into its own
/// per-thread buffers (the cores' L2 caches are private, so sharing a packed panel would only save
/// the pack of the smaller operand).
/// </summary>
internal static class Gemm
{
    // Block sizes in bytes of the element type, tuned on a Zen 5 core (48 KB L1D, 1 MB L2).
    private const int KcBytes = 512 * 4;       // K steps per block: an MR x KC A panel (28 KB) stays in L1
    private const int NcBytes = 384 * 4;       // B block columns: a KC x NC block (768 KB) stays in L2
    private const int McBytes = 2040 * 4;      // A block rows: an MC x KC block (4 MB) stays in L3 while B blocks stream past
    private const long ParallelWork = 1 << 20; // multiply-adds below which threads cost more than they save
    private const int ThinRows = 3;            // at most this many rows or columns: no packing (see Thin)

    [ThreadStatic] private static GemmIsa? t_forced;

    /// <summary>The best instruction set this machine runs the GEMM on.</summary>
    internal static readonly GemmIsa BestIsa =
        Vector512.IsHardwareAccelerated && Avx512F.IsSupported ? GemmIsa.Vector512
        : Vector256.IsHardwareAccelerated && Fma.IsSupported ? GemmIsa.Vector256
        : Vector128.IsHardwareAccelerated ? GemmIsa.Vector128 : GemmIsa.Scalar;

    /// <summary>Caps the ISA for GEMMs started on this thread (tests exercise each path); null = best.</summary>
    internal static GemmIsa? ForcedIsa { get => t_forced; set => t_forced = value; }

    // transA: A is stored K x M (read as its transpose); transB: B is stored N x K.
    public static void Run<T>(bool transA, bool transB, int m, int n, int k,
        T[] a, int aOff, int lda, T[] b, int bOff, int ldb, T[] c, int cOff, int ldc, bool accumulate)
        where T : unmanaged, INumber<T>
    {
        if (m == 0 || n == 0) return;
        CheckExtent("C", c, cOff, m, n, ldc);
        if (k == 0)
        {
            if (!accumulate) for (int i = 0; i < m; i++) c.AsSpan(cOff + i * ldc, n).Clear();
            return;
        }
        CheckExtent("A", a, aOff, transA ? k : m, transA ? m : k, lda);
        CheckExtent("B", b, bOff, transB ? n : k, transB ? k : n, ldb);
        if (Thin(transA, transB, m, n, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc, accumulate)) return;
        // Element (i, p) of op(A) is a[aOff + i·ars + p·acs]; element (p, j) of op(B) is b[bOff + p·brs + j·bcs].
        var s = new Strides(transA ? 1 : lda, transA ? lda : 1, transB ? 1 : ldb, transB ? ldb : 1, ldc);
        GemmIsa isa = typeof(T) == typeof(float) || typeof(T) == typeof(double) ? BestIsa : GemmIsa.Scalar;
        if (t_forced is { } cap && cap < isa) isa = cap;
        switch (isa)
        {
            case GemmIsa.Vector512: Split<T, Vector512<T>, Ops512<T>>(m, n, k, a, aOff, b, bOff, c, cOff, s, accumulate); break;
            case GemmIsa.Vector256: Split<T, Vector256<T>, Ops256<T>>(m, n, k, a, aOff, b, bOff, c, cOff, s, accumulate); break;
            case GemmIsa.Vector128: Split<T, Vector128<T>, Ops128<T>>(m, n, k, a, aOff, b, bOff, c, cOff, s, accumulate); break;
            default: Split<T, T, OpsScalar<T>>(m, n, k, a, aOff, b, bOff, c, cOff, s, accumulate); break;
        }
    }

    /// <summary>
    /// Products with at most <see cref="ThinRows"/> rows (or columns) use each element of the other operand
    /// that few times, so packing it would cost more than the multiply: linear layers at batch 1, GEMV.
    /// They run as dot products when both operands are K-contiguous (x·Wᵀ), or as row updates C_i += a_ip·B_p.
    /// </summary>
    private static bool Thin<T>(bool transA, bool transB, int m, int n, int k,
        T[] a, int aOff, int lda, T[] b, int bOff, int ldb, T[] c, int cOff, int ldc, bool accumulate)
        where T : unmanaged, INumber<T>
    {
        bool dots = !transA && transB && (m <= ThinRows || n <= ThinRows), rows = m <= ThinRows && !transB;
        if (!dots && !rows) return false;
        // Chunks of the longer side, whole rows or columns each, so threads never write the same element.
        bool alongN = n >= m;
        int extent = alongN ? n : m, chunks = Math.Min(extent, 4 * Threads.Count);
        Threads.For(0, chunks, (long)m * n * k, ch =>
        {
            int x0 = (int)((long)extent * ch / chunks), x1 = (int)((long)extent * (ch + 1) / chunks);
            int i0 = alongN ? 0 : x0, i1 = alongN ? m : x1, j0 = alongN ? x0 : 0, j1 = alongN ? x1 : n;
            if (dots)
            {
                // B row outermost: it is read from memory once and stays in L1 for the other rows of A.
                for (int j = j0; j < j1; j++)
                {
                    var bj = b.AsSpan(bOff + j * ldb, k);
                    for (int i = i0; i < i1; i++)
                    {
                        T d = TensorPrimitives.Dot<T>(a.AsSpan(aOff + i * lda, k), bj);
                        ref T cij = ref c[cOff + i * ldc + j];
                        cij = accumulate ? cij + d : d;
                    }
                }
                return;
            }
            for (int i = i0; i < i1; i++)
            {
                var ci = c.AsSpan(cOff + i * ldc + j0, j1 - j0);
                if (!accumulate) ci.Clear();
                for (int p = 0; p < k; p++)
                    TensorPrimitives.MultiplyAdd<T>(b.AsSpan(bOff + p * ldb + j0, j1 - j0), transA ? a[aOff + p * lda + i] : a[aOff + i * lda + p], ci, ci);
            }
        });
        return true;
    }

    private readonly record struct Strides(int Ars, int Acs, int Brs, int Bcs, int Ldc);

    // The kernels index through refs without bounds checks, so a wrong extent must fail here rather than corrupt memory.
    private static void CheckExtent<T>(string name, T[] x, int off, int rows, int cols, int ld)
    {
        if (off < 0 || ld < cols || (long)off + (long)(rows - 1) * ld + cols > x.Length)
            throw new ArgumentException($"gemm: {name} needs {rows}x{cols} elements with leading dimension {ld} from offset {off}, but its buffer holds {x.Length} (ld must be >= {cols})");
    }

    /// <summary>Splits the larger of M and N into one contiguous range per thread, in whole micro-tiles.</summary>
    private static void Split<T, TV, TOps>(int m, int n, int k, T[] a, int aOff, T[] b, int bOff, T[] c, int cOff, Strides s, bool accumulate)
        where T : unmanaged, INumber<T> where TV : unmanaged where TOps : IGemmOps<T, TV>
    {
        // Each thread packs all of the operand it does not split, so split the larger extent; on a tie M (measured 6-12 % faster at 1024^3 and 2048^3).
        var (alongN, unit, units, threads) = Partition(m, n, k, TOps.Rows, 2 * TOps.Width);
        int extent = alongN ? n : m;
        if (threads <= 1) { Serial<T, TV, TOps>(m, n, k, a, aOff, b, bOff, c, cOff, s, accumulate); return; }
        Parallel.For(0, threads, Threads.Options, t =>
        {
            int x0 = (int)((long)units * t / threads) * unit;
            int x1 = Math.Min(extent, (int)((long)units * (t + 1) / threads) * unit);
            if (x1 <= x0) return;
            if (alongN) Serial<T, TV, TOps>(m, x1 - x0, k, a, aOff, b, bOff + x0 * s.Bcs, c, cOff + x0, s, accumulate);
            else Serial<T, TV, TOps>(x1 - x0, n, k, a, aOff + x0 * s.Ars, b, bOff, c, cOff + x0 * s.Ldc, s, accumulate);
        });
    }

    private static void Serial<T, TV, TOps>(int m, int n, int k, T[] a, int aOff, T[] b, int bOff, T[] c, int cOff, Strides s, bool accumulate)
        where T : unmanaged, INumber<T> where TV : unmanaged where TOps : IGemmOps<T, TV>
    {
        int mr = TOps.Rows, nr = 2 * TOps.Width, size = Unsafe.SizeOf<T>();
        // Even blocks (K 576 -> 2 x 288, not 384 + 192; N 3136 -> 9 x 352, not 8 x 384 + 64) so no block is
        // a short one that costs a whole pass over the other operand.
        var (mcMax, ncMax, kcMax) = Blocks(m, n, k, mr, nr, size);
        // A product that throws leaves its buffers to the GC rather than returning them half-used.
        var ws = GemmWorkspace<T>.Take();
        ref T ap = ref ws.A(mcMax * kcMax);
        ref T bp = ref ws.B(ncMax * kcMax);
        ref T tile = ref ws.Tile(mr * nr);
        ref T c0 = ref MemoryMarshal.GetArrayDataReference(c);
        for (int i0 = 0; i0 < m; i0 += mcMax)
        {
            int mc = Math.Min(mcMax, m - i0);
            for (int p0 = 0; p0 < k; p0 += kcMax)
            {
                int kc = Math.Min(kcMax, k - p0);
                bool add = accumulate || p0 > 0;
                GemmPack.Pack<T, TV, TOps>(a, aOff + i0 * s.Ars + p0 * s.Acs, s.Ars, s.Acs, mc, kc, mr, ref ap);
                for (int j0 = 0; j0 < n; j0 += ncMax)
                {
                    int nc = Math.Min(ncMax, n - j0);
                    GemmPack.Pack<T, TV, TOps>(b, bOff + p0 * s.Brs + j0 * s.Bcs, s.Bcs, s.Brs, nc, kc, nr, ref bp);
                    for (int ir = 0; ir < mc; ir += mr)
                    {
                        int rows = Math.Min(mr, mc - ir);
                        ref T aPanel = ref Unsafe.Add(ref ap, ir * kc);
                        ref T cRow = ref Unsafe.Add(ref c0, cOff + (i0 + ir) * s.Ldc + j0);
                        for (int jr = 0; jr < nc; jr += nr)
                        {
                            ref T bPanel = ref Unsafe.Add(ref bp, jr * kc);
                            int cols = Math.Min(nr, nc - jr);
                            if (cols == nr)
                                GemmKernel.Tile<T, TV, TOps>(rows, kc, ref aPanel, ref bPanel, ref Unsafe.Add(ref cRow, jr), s.Ldc, add);
                            else
                            {
                                // Right edge: the kernel fills a full-width scratch tile; only the valid columns reach C.
                                GemmKernel.Tile<T, TV, TOps>(rows, kc, ref aPanel, ref bPanel, ref tile, nr, false);
                                for (int i = 0; i < rows; i++)
                                {
                                    ref T dst = ref Unsafe.Add(ref cRow, i * s.Ldc + jr);
                                    ref T src = ref Unsafe.Add(ref tile, i * nr);
                                    for (int j = 0; j < cols; j++)
                                        Unsafe.Add(ref dst, j) = add ? Unsafe.Add(ref dst, j) + Unsafe.Add(ref src, j) : Unsafe.Add(ref src, j);
                                }
                            }
                        }
                    }
                }
            }
        }
        GemmWorkspace<T>.Give(ws);
    }

    /// <summary>How <see cref="Split"/> divides a product: along N or M, in units of whole micro-tiles, over how many threads.</summary>
    private static (bool AlongN, int Unit, int Units, int Threads) Partition(int m, int n, int k, int mr, int nr)
    {
        bool alongN = n > m;
        int extent = alongN ? n : m, unit = alongN ? nr : mr;
        int units = (extent + unit - 1) / unit;
        return (alongN, unit, units, (long)m * n * k < ParallelWork ? 1 : Math.Min(Threads.Count, units));
    }

    /// <summary>Block sizes of one thread's share (MC, NC, KC): each packed block fits its cache level.</summary>
    private static (int Mc, int Nc, int Kc) Blocks(int m, int n, int k, int mr, int nr, int size) =>
        (Balanced(m, McBytes / size, mr), Balanced(n, NcBytes / size, nr), Balanced(k, KcBytes / size, 1));

    /// <summary>
    /// The packing buffers a product leaves allocated: how many threads pack, and the elements each holds (they are
    /// one set per GEMM running at once, see <see cref="GemmWorkspace{T}"/>). Zero for products that run without packing.
    /// </summary>
    internal static (int Threads, long ElementsPerThread) PackFootprint<T>(bool transA, bool transB, int m, int n, int k) where T : unmanaged, INumber<T>
    {
        bool thin = (!transA && transB && (m <= ThinRows || n <= ThinRows)) || (m <= ThinRows && !transB);
        if (m == 0 || n == 0 || k == 0 || thin) return (0, 0);
        int size = Unsafe.SizeOf<T>();
        var (mr, nr) = BestIsa switch
        {
            GemmIsa.Vector512 => MicroTile<T, Vector512<T>, Ops512<T>>(),
            GemmIsa.Vector256 => MicroTile<T, Vector256<T>, Ops256<T>>(),
            GemmIsa.Vector128 => MicroTile<T, Vector128<T>, Ops128<T>>(),
            _ => MicroTile<T, T, OpsScalar<T>>(),
        };
        var (alongN, unit, units, threads) = Partition(m, n, k, mr, nr);
        int share = (units + threads - 1) / threads * unit;
        var (mc, nc, kc) = Blocks(alongN ? m : Math.Min(m, share), alongN ? Math.Min(n, share) : n, k, mr, nr, size);
        int pad = 64 / size;
        return (threads, (long)mc * kc + (long)nc * kc + mr * nr + 3 * pad);
    }

    private static (int Mr, int Nr) MicroTile<T, TV, TOps>() where T : unmanaged, INumber<T> where TV : unmanaged where TOps : IGemmOps<T, TV> =>
        (TOps.Rows, 2 * TOps.Width);

    /// <summary>The block size that cuts <paramref name="extent"/> into the fewest blocks of at most about <paramref name="target"/>, rounded up to <paramref name="multiple"/>.</summary>
    private static int Balanced(int extent, int target, int multiple)
    {
        int blocks = (extent + target - 1) / target;
        int size = (extent + blocks - 1) / blocks;
        return (size + multiple - 1) / multiple * multiple;
    }
}

/// <summary>
/// Packing buffers, kept in a shared pool so a GEMM allocates nothing once warm. One set per GEMM running at the
/// same time (not per thread that ever ran one: the thread pool may cycle through more threads than run at once).
/// Pinned so they can be aligned to a cache line: packed panels are read with full-vector loads.
/// </summary>
internal sealed class GemmWorkspace<T> where T : unmanaged
{
    private static readonly System.Collections.Concurrent.ConcurrentBag<GemmWorkspace<T>> Free = [];

    public static GemmWorkspace<T> Take() => Free.TryTake(out var ws) ? ws : new GemmWorkspace<T>();

    public static void Give(GemmWorkspace<T> ws) => Free.Add(ws);

    private T[] _a = [], _b = [], _tile = [];
    private int _aStart, _bStart, _tileStart;

    public ref T A(int length) => ref Get(ref _a, ref _aStart, length);
    public ref T B(int length) => ref Get(ref _b, ref _bStart, length);
    public ref T Tile(int length) => ref Get(ref _tile, ref _tileStart, length);

    private static ref T Get(ref T[] buffer, ref int start, int length)
    {
        if (buffer.Length - start < length)
        {
            int pad = 64 / Unsafe.SizeOf<T>();
            buffer = GC.AllocateUninitializedArray<T>(length + pad, pinned: true);
            long address = Marshal.UnsafeAddrOfPinnedArrayElement(buffer, 0);
            start = (int)((64 - address % 64) % 64) / Unsafe.SizeOf<T>();
        }
        return ref buffer[start];
    }
}
