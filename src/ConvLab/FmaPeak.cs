using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using ConvLab.Kernels;

namespace ConvLab;

/// <summary>
/// Measures this machine's float32 FMA peak, the yardstick for "% of peak" in `convlab bench conv` and the TorchSharp
/// bench: every thread runs 12 independent chains of vector FMAs (enough to cover FMA latency times the number of FMA
/// pipes, few enough to stay in registers on every ISA), all threads start together, and the best of several runs counts.
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
            best = Math.Max(best, 2.0 * ChainCount * Lanes * iters * threads / Run(threads, iters) / 1e9);
        return best;
    }

    private const int ChainCount = 12;

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
                float s = Chains(iters);
                lock (workers) _sink += s;
            }) { IsBackground = true };
            workers[t].Start();
        }
        start.SignalAndWait();
        var sw = Stopwatch.StartNew();
        foreach (var w in workers) w.Join();
        return sw.Elapsed.TotalSeconds;
    }

    private static float Chains(long iters) =>
        Vector512.IsHardwareAccelerated ? Chains<Vector512<float>, Ops512<float>>(iters)
        : Vector256.IsHardwareAccelerated ? Chains<Vector256<float>, Ops256<float>>(iters)
        : Chains<Vector128<float>, Ops128<float>>(iters);

    // Twelve chains: FMA latency (4-5 cycles) times two FMA pipes needs 8-10 in flight, and 12 accumulators plus the
    // two constants fit the 16 registers of AVX2/SSE without spilling (16 accumulators did spill on AVX2 and measured
    // half the peak); AVX-512's 32 registers would hold more, but 12 already saturate its pipes.
    // acc = acc * a + b converges to b / (1 - a): no overflow, no denormals, and the JIT cannot fold it away.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chains<TV, TOps>(long iters) where TV : unmanaged where TOps : IGemmOps<float, TV>
    {
        TV a = TOps.Broadcast(0.999f), b = TOps.Broadcast(1e-3f);
        TV c0 = TOps.Broadcast(0.0f), c1 = TOps.Broadcast(0.1f), c2 = TOps.Broadcast(0.2f), c3 = TOps.Broadcast(0.3f),
            c4 = TOps.Broadcast(0.4f), c5 = TOps.Broadcast(0.5f), c6 = TOps.Broadcast(0.6f), c7 = TOps.Broadcast(0.7f),
            c8 = TOps.Broadcast(0.8f), c9 = TOps.Broadcast(0.9f), c10 = TOps.Broadcast(1.0f), c11 = TOps.Broadcast(1.1f);
        for (long i = 0; i < iters; i++)
        {
            c0 = TOps.Fma(c0, a, b); c1 = TOps.Fma(c1, a, b); c2 = TOps.Fma(c2, a, b); c3 = TOps.Fma(c3, a, b);
            c4 = TOps.Fma(c4, a, b); c5 = TOps.Fma(c5, a, b); c6 = TOps.Fma(c6, a, b); c7 = TOps.Fma(c7, a, b);
            c8 = TOps.Fma(c8, a, b); c9 = TOps.Fma(c9, a, b); c10 = TOps.Fma(c10, a, b); c11 = TOps.Fma(c11, a, b);
        }
        TV sum = TOps.Add(TOps.Add(TOps.Add(TOps.Add(c0, c1), TOps.Add(c2, c3)), TOps.Add(TOps.Add(c4, c5), TOps.Add(c6, c7))),
            TOps.Add(TOps.Add(c8, c9), TOps.Add(c10, c11)));
        Span<float> lanes = stackalloc float[TOps.Width];
        TOps.Store(sum, ref lanes[0]);
        float total = 0;
        foreach (float x in lanes) total += x;
        return total;
    }
}
