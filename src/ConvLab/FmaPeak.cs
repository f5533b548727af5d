using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ConvLab;

/// <summary>
/// Measures this machine's float32 FMA peak, the yardstick for "% of peak" in `convlab bench conv` and the TorchSharp
/// bench: every thread runs 16 independent chains of vector FMAs (enough to cover FMA latency times the number of FMA
/// pipes), all threads start together, and the best of several runs counts.
/// </summary>
public static class FmaPeak
{
    private static float _sink;

    /// <summary>The widest vector the FMA loop uses ("Vector512", "Vector256" or "Vector128").</summary>
    public static string Isa => Vector512.IsHardwareAccelerated ? "Vector512" : Vector256.IsHardwareAccelerated ? "Vector256" : "Vector128";

    /// <summary>Peak GFLOP/s (2 flops per FMA lane) on <paramref name="threads"/> threads.</summary>
    public static double Measure(int threads, int runs = 5)
    {
        long iters = 1 << 16;
        while (Run(threads, iters) < 0.05) iters *= 2; // calibrates and warms the JIT
        iters = (long)(iters * 0.2 / Run(threads, iters)); // ~0.2 s per run
        double best = 0;
        for (int r = 0; r < runs; r++)
            best = Math.Max(best, 2.0 * 16 * Lanes * iters * threads / Run(threads, iters) / 1e9);
        return best;
    }

    private static int Lanes => Vector512.IsHardwareAccelerated ? 16 : Vector256.IsHardwareAccelerated ? 8 : 4;

    private static double Run(int threads, long iters)
    {
        using var start = new Barrier(threads + 1);
        var workers = new Thread[threads];
        for (int t = 0; t < threads; t++)
        {
            workers[t] = new Thread(() =>
            {
                start.SignalAndWait();
                float s = Vector512.IsHardwareAccelerated ? Fma512(iters) : Vector256.IsHardwareAccelerated ? Fma256(iters) : Fma128(iters);
                lock (workers) _sink += s;
            }) { IsBackground = true };
            workers[t].Start();
        }
        start.SignalAndWait();
        var sw = Stopwatch.StartNew();
        foreach (var w in workers) w.Join();
        return sw.Elapsed.TotalSeconds;
    }

    // acc = acc * a + b converges to b / (1 - a): no overflow, no denormals, and the JIT cannot fold it away.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Fma512(long iters)
    {
        var a = Vector512.Create(0.999f); var b = Vector512.Create(1e-3f);
        Vector512<float> c0 = Vector512.Create(0.0f), c1 = Vector512.Create(0.1f), c2 = Vector512.Create(0.2f), c3 = Vector512.Create(0.3f),
            c4 = Vector512.Create(0.4f), c5 = Vector512.Create(0.5f), c6 = Vector512.Create(0.6f), c7 = Vector512.Create(0.7f),
            c8 = Vector512.Create(0.8f), c9 = Vector512.Create(0.9f), c10 = Vector512.Create(1.0f), c11 = Vector512.Create(1.1f),
            c12 = Vector512.Create(1.2f), c13 = Vector512.Create(1.3f), c14 = Vector512.Create(1.4f), c15 = Vector512.Create(1.5f);
        for (long i = 0; i < iters; i++)
        {
            c0 = Vector512.FusedMultiplyAdd(c0, a, b); c1 = Vector512.FusedMultiplyAdd(c1, a, b);
            c2 = Vector512.FusedMultiplyAdd(c2, a, b); c3 = Vector512.FusedMultiplyAdd(c3, a, b);
            c4 = Vector512.FusedMultiplyAdd(c4, a, b); c5 = Vector512.FusedMultiplyAdd(c5, a, b);
            c6 = Vector512.FusedMultiplyAdd(c6, a, b); c7 = Vector512.FusedMultiplyAdd(c7, a, b);
            c8 = Vector512.FusedMultiplyAdd(c8, a, b); c9 = Vector512.FusedMultiplyAdd(c9, a, b);
            c10 = Vector512.FusedMultiplyAdd(c10, a, b); c11 = Vector512.FusedMultiplyAdd(c11, a, b);
            c12 = Vector512.FusedMultiplyAdd(c12, a, b); c13 = Vector512.FusedMultiplyAdd(c13, a, b);
            c14 = Vector512.FusedMultiplyAdd(c14, a, b); c15 = Vector512.FusedMultiplyAdd(c15, a, b);
        }
        return Vector512.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11 + c12 + c13 + c14 + c15);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Fma256(long iters)
    {
        var a = Vector256.Create(0.999f); var b = Vector256.Create(1e-3f);
        Vector256<float> c0 = Vector256.Create(0.0f), c1 = Vector256.Create(0.1f), c2 = Vector256.Create(0.2f), c3 = Vector256.Create(0.3f),
            c4 = Vector256.Create(0.4f), c5 = Vector256.Create(0.5f), c6 = Vector256.Create(0.6f), c7 = Vector256.Create(0.7f),
            c8 = Vector256.Create(0.8f), c9 = Vector256.Create(0.9f), c10 = Vector256.Create(1.0f), c11 = Vector256.Create(1.1f),
            c12 = Vector256.Create(1.2f), c13 = Vector256.Create(1.3f), c14 = Vector256.Create(1.4f), c15 = Vector256.Create(1.5f);
        for (long i = 0; i < iters; i++)
        {
            c0 = Vector256.FusedMultiplyAdd(c0, a, b); c1 = Vector256.FusedMultiplyAdd(c1, a, b);
            c2 = Vector256.FusedMultiplyAdd(c2, a, b); c3 = Vector256.FusedMultiplyAdd(c3, a, b);
            c4 = Vector256.FusedMultiplyAdd(c4, a, b); c5 = Vector256.FusedMultiplyAdd(c5, a, b);
            c6 = Vector256.FusedMultiplyAdd(c6, a, b); c7 = Vector256.FusedMultiplyAdd(c7, a, b);
            c8 = Vector256.FusedMultiplyAdd(c8, a, b); c9 = Vector256.FusedMultiplyAdd(c9, a, b);
            c10 = Vector256.FusedMultiplyAdd(c10, a, b); c11 = Vector256.FusedMultiplyAdd(c11, a, b);
            c12 = Vector256.FusedMultiplyAdd(c12, a, b); c13 = Vector256.FusedMultiplyAdd(c13, a, b);
            c14 = Vector256.FusedMultiplyAdd(c14, a, b); c15 = Vector256.FusedMultiplyAdd(c15, a, b);
        }
        return Vector256.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11 + c12 + c13 + c14 + c15);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Fma128(long iters)
    {
        var a = Vector128.Create(0.999f); var b = Vector128.Create(1e-3f);
        Vector128<float> c0 = Vector128.Create(0.0f), c1 = Vector128.Create(0.1f), c2 = Vector128.Create(0.2f), c3 = Vector128.Create(0.3f),
            c4 = Vector128.Create(0.4f), c5 = Vector128.Create(0.5f), c6 = Vector128.Create(0.6f), c7 = Vector128.Create(0.7f);
        for (long i = 0; i < iters; i++)
        {
            c0 = Vector128.FusedMultiplyAdd(c0, a, b); c1 = Vector128.FusedMultiplyAdd(c1, a, b);
            c2 = Vector128.FusedMultiplyAdd(c2, a, b); c3 = Vector128.FusedMultiplyAdd(c3, a, b);
            c4 = Vector128.FusedMultiplyAdd(c4, a, b); c5 = Vector128.FusedMultiplyAdd(c5, a, b);
            c6 = Vector128.FusedMultiplyAdd(c6, a, b); c7 = Vector128.FusedMultiplyAdd(c7, a, b);
            c0 = Vector128.FusedMultiplyAdd(c0, a, b); c1 = Vector128.FusedMultiplyAdd(c1, a, b);
            c2 = Vector128.FusedMultiplyAdd(c2, a, b); c3 = Vector128.FusedMultiplyAdd(c3, a, b);
            c4 = Vector128.FusedMultiplyAdd(c4, a, b); c5 = Vector128.FusedMultiplyAdd(c5, a, b);
            c6 = Vector128.FusedMultiplyAdd(c6, a, b); c7 = Vector128.FusedMultiplyAdd(c7, a, b);
        }
        return Vector128.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7);
    }
}
