using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ConvLab.Kernels;

/// <summary>
/// General matrix multiply C = op(A)·op(B) (+ C when accumulating), row-major, over float or double.
/// A register-blocked micro-kernel (4 rows x 2 vectors) over a packed, K-blocked B panel; rows are
/// split across threads for large products. The packed, AVX-512-tuned SGEMM belongs to the kernels issue.
/// </summary>
internal static class Gemm
{
    private const int KBlock = 256;
    private const long ParallelThreshold = 1 << 18; // M*N*K below this runs on the calling thread

    // transA: A is stored K x M (read as its transpose); transB: B is stored N x K.
    public static void Run<T>(bool transA, bool transB, int m, int n, int k,
        T[] a, int aOff, int lda, T[] b, int bOff, int ldb, T[] c, int cOff, int ldc, bool accumulate)
        where T : unmanaged, INumber<T>
    {
        if (m == 0 || n == 0) return;
        if (!accumulate)
            for (int i = 0; i < m; i++) c.AsSpan(cOff + i * ldc, n).Clear();
        if (k == 0) return;

        // Pack A as M x K row-major and B as K x N row-major so the micro-kernel reads both densely.
        T[] ap; int apOff, apLd;
        if (transA || lda != k)
        {
            ap = new T[m * k]; apOff = 0; apLd = k;
            for (int i = 0; i < m; i++)
                for (int p = 0; p < k; p++)
                    ap[i * k + p] = transA ? a[aOff + p * lda + i] : a[aOff + i * lda + p];
        }
        else { ap = a; apOff = aOff; apLd = lda; }

        T[] bp; int bpOff, bpLd;
        if (transB || ldb != n)
        {
            bp = new T[k * n]; bpOff = 0; bpLd = n;
            for (int p = 0; p < k; p++)
                for (int j = 0; j < n; j++)
                    bp[p * n + j] = transB ? b[bOff + j * ldb + p] : b[bOff + p * ldb + j];
        }
        else { bp = b; bpOff = bOff; bpLd = ldb; }

        int rowBlocks = (m + 3) / 4;
        if ((long)m * n * k >= ParallelThreshold && rowBlocks > 1 && Threads.Count > 1)
        {
            int chunks = Math.Min(rowBlocks, Threads.Count * 4);
            Parallel.For(0, chunks, Threads.Options, ch =>
            {
                int r0 = (int)((long)rowBlocks * ch / chunks) * 4;
                int r1 = Math.Min(m, (int)((long)rowBlocks * (ch + 1) / chunks) * 4);
                Rows(r0, r1, n, k, ap, apOff, apLd, bp, bpOff, bpLd, c, cOff, ldc);
            });
        }
        else Rows(0, m, n, k, ap, apOff, apLd, bp, bpOff, bpLd, c, cOff, ldc);
    }

    private static void Rows<T>(int r0, int r1, int n, int k, T[] a, int aOff, int lda, T[] b, int bOff, int ldb, T[] c, int cOff, int ldc)
        where T : unmanaged, INumber<T>
    {
        for (int p0 = 0; p0 < k; p0 += KBlock)
        {
            int kb = Math.Min(KBlock, k - p0);
            int i = r0;
            for (; i + 4 <= r1; i += 4) Block4(i, n, p0, kb, a, aOff, lda, b, bOff, ldb, c, cOff, ldc);
            for (; i < r1; i++) Block1(i, n, p0, kb, a, aOff, lda, b, bOff, ldb, c, cOff, ldc);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Block4<T>(int i, int n, int p0, int kb, T[] a, int aOff, int lda, T[] b, int bOff, int ldb, T[] c, int cOff, int ldc)
        where T : unmanaged, INumber<T>
    {
        ref T a0 = ref a[aOff + i * lda + p0];
        ref T a1 = ref a[aOff + (i + 1) * lda + p0];
        ref T a2 = ref a[aOff + (i + 2) * lda + p0];
        ref T a3 = ref a[aOff + (i + 3) * lda + p0];
        ref T bBase = ref MemoryMarshal.GetArrayDataReference(b);
        ref T cBase = ref MemoryMarshal.GetArrayDataReference(c);
        int vc = Vector<T>.Count;
        int j = 0;
        if (Vector.IsHardwareAccelerated)
        {
            for (; j + 2 * vc <= n; j += 2 * vc)
            {
                Vector<T> c00 = default, c01 = default, c10 = default, c11 = default,
                          c20 = default, c21 = default, c30 = default, c31 = default;
                for (int p = 0; p < kb; p++)
                {
                    ref T brow = ref Unsafe.Add(ref bBase, bOff + (p0 + p) * ldb + j);
                    var b0 = Vector.LoadUnsafe(ref brow);
                    var b1 = Vector.LoadUnsafe(ref brow, (nuint)vc);
                    var v = new Vector<T>(Unsafe.Add(ref a0, p)); c00 += v * b0; c01 += v * b1;
                    v = new Vector<T>(Unsafe.Add(ref a1, p)); c10 += v * b0; c11 += v * b1;
                    v = new Vector<T>(Unsafe.Add(ref a2, p)); c20 += v * b0; c21 += v * b1;
                    v = new Vector<T>(Unsafe.Add(ref a3, p)); c30 += v * b0; c31 += v * b1;
                }
                AddTo(ref cBase, cOff + i * ldc + j, vc, c00, c01);
                AddTo(ref cBase, cOff + (i + 1) * ldc + j, vc, c10, c11);
                AddTo(ref cBase, cOff + (i + 2) * ldc + j, vc, c20, c21);
                AddTo(ref cBase, cOff + (i + 3) * ldc + j, vc, c30, c31);
            }
        }
        for (; j < n; j++)
        {
            T s0 = T.Zero, s1 = T.Zero, s2 = T.Zero, s3 = T.Zero;
            for (int p = 0; p < kb; p++)
            {
                T bv = Unsafe.Add(ref bBase, bOff + (p0 + p) * ldb + j);
                s0 += Unsafe.Add(ref a0, p) * bv; s1 += Unsafe.Add(ref a1, p) * bv;
                s2 += Unsafe.Add(ref a2, p) * bv; s3 += Unsafe.Add(ref a3, p) * bv;
            }
            c[cOff + i * ldc + j] += s0; c[cOff + (i + 1) * ldc + j] += s1;
            c[cOff + (i + 2) * ldc + j] += s2; c[cOff + (i + 3) * ldc + j] += s3;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddTo<T>(ref T cBase, int off, int vc, Vector<T> v0, Vector<T> v1) where T : unmanaged, INumber<T>
    {
        ref T dst = ref Unsafe.Add(ref cBase, off);
        (Vector.LoadUnsafe(ref dst) + v0).StoreUnsafe(ref dst);
        (Vector.LoadUnsafe(ref dst, (nuint)vc) + v1).StoreUnsafe(ref dst, (nuint)vc);
    }

    private static void Block1<T>(int i, int n, int p0, int kb, T[] a, int aOff, int lda, T[] b, int bOff, int ldb, T[] c, int cOff, int ldc)
        where T : unmanaged, INumber<T>
    {
        var crow = c.AsSpan(cOff + i * ldc, n);
        int vc = Vector<T>.Count;
        for (int p = 0; p < kb; p++)
        {
            T av = a[aOff + i * lda + p0 + p];
            var brow = b.AsSpan(bOff + (p0 + p) * ldb, n);
            int j = 0;
            if (Vector.IsHardwareAccelerated)
            {
                var va = new Vector<T>(av);
                for (; j + vc <= n; j += vc)
                    (new Vector<T>(crow.Slice(j)) + va * new Vector<T>(brow.Slice(j))).CopyTo(crow.Slice(j));
            }
            for (; j < n; j++) crow[j] += av * brow[j];
        }
    }
}
