using System.Numerics;
using ConvLab.Kernels;
using CsCheck;
using Xunit;

namespace ConvLab.Tests;

public class GemmTests
{
    private static readonly GemmIsa[] Isas = [GemmIsa.Vector512, GemmIsa.Vector256, GemmIsa.Vector128, GemmIsa.Scalar];

    // Small shapes hit every edge (1, odd, primes, partial micro-tiles); the long-one-dimension shapes
    // cross the K, N and M cache blocks and the parallel threshold while staying cheap to check.
    private static readonly Gen<(int M, int N, int K)> Shape = Gen.OneOf(
        Gen.Select(Gen.Int[1, 40], Gen.Int[1, 70], Gen.Int[1, 50]),
        Gen.Select(Gen.Int[1, 30], Gen.Int[1, 40], Gen.Int[380, 900]),
        Gen.Select(Gen.Int[1, 20], Gen.Int[500, 1100], Gen.Int[1, 40]),
        Gen.Select(Gen.Int[2030, 2300], Gen.Int[1, 20], Gen.Int[1, 20]),
        Gen.Select(Gen.Int[50, 90], Gen.Int[150, 260], Gen.Int[90, 130]));

    private sealed record Case(int M, int N, int K, bool TransA, bool TransB, int PadA, int PadB, int PadC,
        int OffA, int OffB, int OffC, bool Accumulate, ulong Seed);

    private static readonly Gen<Case> Cases =
        Gen.Select(Shape, Gen.Bool, Gen.Bool, Gen.Select(Gen.Int[0, 5], Gen.Int[0, 5], Gen.Int[0, 5]), Gen.Int[0, 9], Gen.Bool, Gen.ULong)
           .Select((s, ta, tb, pad, off, acc, seed) =>
               new Case(s.M, s.N, s.K, ta, tb, pad.Item1, pad.Item2, pad.Item3, off, off + 1, 2 * off, acc, seed));

    /// <summary>The packed GEMM against a double-accumulating product, on every ISA path and both element types.</summary>
    [Fact]
    public void MatchesReferenceOnEveryIsaTransposeAndLayout()
    {
        Gen.Select(Cases, Gen.Int[0, Isas.Length - 1], Gen.Bool).Sample((cs, isa, dbl) =>
        {
            if (dbl) Check<double>(cs, Isas[isa], 1);
            else Check<float>(cs, Isas[isa], 1);
        }, iter: 120);
    }

    /// <summary>Two threads split the work but must give the single-threaded answer.</summary>
    [Fact]
    public void TwoThreadsMatchOne()
    {
        Gen.Select(Cases, Gen.Int[0, Isas.Length - 1], Gen.Bool).Sample((cs, isa, dbl) =>
        {
            var one = dbl ? Check<double>(cs, Isas[isa], 1).Select(x => (double)x).ToArray() : Check<float>(cs, Isas[isa], 1).Select(x => (double)x).ToArray();
            var two = dbl ? Check<double>(cs, Isas[isa], 2).Select(x => (double)x).ToArray() : Check<float>(cs, Isas[isa], 2).Select(x => (double)x).ToArray();
            for (int i = 0; i < one.Length; i++)
                Assert.True(Math.Abs(one[i] - two[i]) <= 1e-5 * (1 + Math.Abs(one[i])), $"element {i}: 1 thread {one[i]}, 2 threads {two[i]}");
        }, iter: 30);
    }

    [Fact]
    public void KZeroClearsOrKeepsC()
    {
        var c = new float[] { 1, 2, 3, 4 };
        Gemm.Run(false, false, 2, 2, 0, [], 0, 0, [], 0, 2, c, 0, 2, true);
        Assert.Equal([1f, 2, 3, 4], c);
        Gemm.Run(false, false, 2, 2, 0, [], 0, 0, [], 0, 2, c, 0, 2, false);
        Assert.Equal([0f, 0, 0, 0], c);
    }

    [Fact]
    public void TooSmallBufferIsRejected()
    {
        var ex = Assert.Throws<ArgumentException>(() => Gemm.Run(false, false, 3, 3, 3, new float[8], 0, 3, new float[9], 0, 3, new float[9], 0, 3, false));
        Assert.StartsWith("gemm: A", ex.Message);
    }

    /// <summary>Runs one case on the given ISA and thread count, asserts it against the reference, returns C.</summary>
    private static T[] Check<T>(Case cs, GemmIsa isa, int threads) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (m, n, k) = (cs.M, cs.N, cs.K);
        int lda = (cs.TransA ? m : k) + cs.PadA, ldb = (cs.TransB ? k : n) + cs.PadB, ldc = n + cs.PadC;
        var rng = new Random((int)cs.Seed);
        T[] Fill(int len) { var x = new T[len]; for (int i = 0; i < len; i++) x[i] = T.CreateTruncating(rng.NextDouble() * 2 - 1); return x; }
        var a = Fill(cs.OffA + (cs.TransA ? k : m) * lda);
        var b = Fill(cs.OffB + (cs.TransB ? n : k) * ldb);
        var c = Fill(cs.OffC + m * ldc);
        var before = (T[])c.Clone();

        int savedThreads = Threads.Count;
        Threads.Count = threads;
        Gemm.ForcedIsa = isa;
        try { Gemm.Run(cs.TransA, cs.TransB, m, n, k, a, cs.OffA, lda, b, cs.OffB, ldb, c, cs.OffC, ldc, cs.Accumulate); }
        finally { Gemm.ForcedIsa = null; Threads.Count = savedThreads; }

        double eps = typeof(T) == typeof(float) ? 1.2e-7 : 2.3e-16;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0, sAbs = 0;
                for (int p = 0; p < k; p++)
                {
                    double x = double.CreateTruncating(cs.TransA ? a[cs.OffA + p * lda + i] : a[cs.OffA + i * lda + p]);
                    double y = double.CreateTruncating(cs.TransB ? b[cs.OffB + j * ldb + p] : b[cs.OffB + p * ldb + j]);
                    s += x * y; sAbs += Math.Abs(x * y);
                }
                double old = double.CreateTruncating(before[cs.OffC + i * ldc + j]);
                if (cs.Accumulate) { s += old; sAbs += Math.Abs(old); }
                double got = double.CreateTruncating(c[cs.OffC + i * ldc + j]);
                Assert.True(Math.Abs(got - s) <= 2 * (k + 1) * eps * sAbs + 1e-30,
                    $"{isa} {typeof(T).Name} {cs} threads={threads}: C[{i},{j}] = {got}, expected {s}");
            }
        // Padding between rows of C and anything outside it stay untouched.
        for (int i = 0; i < c.Length; i++)
        {
            int r = i - cs.OffC;
            bool inside = r >= 0 && r / ldc < m && r % ldc < n;
            if (!inside) Assert.Equal(before[i], c[i]);
        }
        return c;
    }
}
