using System.Diagnostics;

namespace ConvLab.Bench;

/// <summary>
/// One benchmark case: the same job for ConvLab and for the peer. <paramref name="Flops"/> counts one call
/// (multiply-add = 2); <paramref name="Images"/> is the batch for images/s (0 = not an image job).
/// <paramref name="Check"/> runs both once and returns their relative disagreement (max |a - b| / max |b|).
/// </summary>
sealed record Case(string Suite, string Name, double Flops, int Images, Action ConvLab, Action Peer, Func<double>? Check = null)
{
    /// <summary>The target for this case, if it has one.</summary>
    public Target? Target { get; init; }

    /// <summary>What the peer is (TorchSharp unless a suite compares with something else).</summary>
    public string PeerName { get; init; } = "TorchSharp";
}

/// <summary>
/// A target of the issue: ConvLab's speed relative to TorchSharp (TorchSharp time / ConvLab time) at least
/// <paramref name="Min"/>, or (<paramref name="OfPeak"/>) ConvLab's fraction of the FMA peak at least <paramref name="Min"/>.
/// </summary>
sealed record Target(double Min, bool OfPeak = false)
{
    public double Value(Result r, double peak) => OfPeak ? r.GFlops / peak : 1 / r.Ratio;

    public bool Met(Result r, double peak) => Value(r, peak) >= Min;

    public override string ToString() => OfPeak ? $">= {Min * 100:F0}% of peak" : $">= {Min:0.0#}x TorchSharp";

    /// <summary>"met", or how many times faster ConvLab must get to meet it.</summary>
    public string Status(Result r, double peak) => Met(r, peak) ? "met" : $"missed: needs {Min / Value(r, peak):F2}x faster";
}

/// <summary>Timings of one case: per-call seconds of each repeat, per side.</summary>
sealed record Result(Case Case, double[] ConvLabSeconds, double[] PeerSeconds, int CallsPerSample, double? RelErr)
{
    public double ConvLabMs => Median(ConvLabSeconds) * 1e3;
    public double PeerMs => Median(PeerSeconds) * 1e3;
    public double Ratio => ConvLabMs / PeerMs;
    public double GFlops => Case.Flops / (ConvLabMs * 1e6);
    public double PeerGFlops => Case.Flops / (PeerMs * 1e6);

    public static double Median(double[] xs)
    {
        var s = xs.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : 0.5 * (s[s.Length / 2 - 1] + s[s.Length / 2]);
    }
}

/// <summary>
/// Times cases side by side: warm-up of both, then <c>repeats</c> samples per side, alternating which side
/// goes first (ABBA) so drift and the other side's leftover work hit both equally. A sample is as many
/// back-to-back calls as fill ~50 ms of the faster side (same count for both sides, capped so the slower
/// side's sample stays under ~2 s), so tiny jobs are not lost in timer noise.
/// </summary>
static class Runner
{
    private const double SampleSeconds = 0.05, MaxSampleSeconds = 2;

    // Between samples both sides' worker threads (.NET pool, libtorch's OpenMP) stop spinning, so neither
    // side's idle-wait steals a core from the other's timed calls.
    private const int QuietMs = 15;

    public static Result Run(Case c, int repeats)
    {
        double? err = c.Check?.Invoke();
        // Warm-up: at least two calls per side (JIT tiers, buffer pools, libtorch's first-call setup), more for
        // fast jobs until each side has run ~0.3 s.
        double tc = 0, tp = 0, warmC = 0, warmP = 0;
        for (int w = 0; w < 2 || (w < 100 && Math.Min(warmC, warmP) < 0.3); w++)
        {
            tc = Time(c.ConvLab, 1); tp = Time(c.Peer, 1);
            warmC += tc; warmP += tp;
        }
        int calls = (int)Math.Clamp(Math.Ceiling(SampleSeconds / Math.Max(Math.Min(tc, tp), 1e-9)), 1, 10_000);
        // ...but a sample of the slower side stays under ~2 s when the two are far apart.
        calls = Math.Max(1, Math.Min(calls, (int)(MaxSampleSeconds / Math.Max(tc, tp))));
        var cl = new double[repeats];
        var pe = new double[repeats];
        for (int r = 0; r < repeats; r++)
        {
            if (r % 2 == 0) { cl[r] = Time(c.ConvLab, calls); pe[r] = Time(c.Peer, calls); }
            else { pe[r] = Time(c.Peer, calls); cl[r] = Time(c.ConvLab, calls); }
        }
        return new Result(c, cl, pe, calls, err);
    }

    private static double Time(Action a, int calls)
    {
        Thread.Sleep(QuietMs);
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < calls; i++) a();
        return sw.Elapsed.TotalSeconds / calls;
    }

    /// <summary>max |a - b| / max |b|: how far ConvLab's result is from the peer's, relative to its scale.</summary>
    public static double RelErr(float[] a, float[] b)
    {
        if (a.Length != b.Length) return double.PositiveInfinity;
        double d = 0, s = 0;
        for (int i = 0; i < a.Length; i++) { d = Math.Max(d, Math.Abs((double)a[i] - b[i])); s = Math.Max(s, Math.Abs((double)b[i])); }
        return s == 0 ? d : d / s;
    }
}
