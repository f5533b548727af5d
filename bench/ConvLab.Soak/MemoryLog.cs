using System.Diagnostics;
using ConvLab.Stats;

namespace ConvLab.Soak;

/// <summary>Memory of the process at one point of a loop.</summary>
/// <param name="Step">Steps (or iterations) done.</param>
/// <param name="Seconds">Wall time since the loop started.</param>
/// <param name="HeapBytes">Live managed heap after a full blocking collection (<c>GC.GetTotalMemory(true)</c>).</param>
/// <param name="HeapBeforeCollectBytes">Managed heap as found, before that collection.</param>
/// <param name="CommittedBytes">Memory the GC has committed (<c>GCMemoryInfo.TotalCommittedBytes</c>) after the collection.</param>
/// <param name="FragmentedBytes">Free space inside the GC heap after the collection.</param>
/// <param name="WorkingSetBytes">Resident set of the process.</param>
/// <param name="PrivateBytes">Private memory of the process.</param>
/// <param name="AllocatedBytes">Managed bytes allocated since the process started (all threads, precise).</param>
/// <param name="Gen2Collections">Full collections so far (including the soak's own).</param>
public sealed record MemorySample(long Step, double Seconds, long HeapBytes, long HeapBeforeCollectBytes, long CommittedBytes, long FragmentedBytes,
    long WorkingSetBytes, long PrivateBytes, long AllocatedBytes, int Gen2Collections);

/// <summary>A least-squares slope over the samples after warm-up, per 1,000 steps.</summary>
/// <param name="PerThousandSteps">Slope in bytes per 1,000 steps.</param>
/// <param name="StandardError">Its standard error (bytes per 1,000 steps).</param>
/// <param name="First">Value at the first sample after warm-up.</param>
/// <param name="Last">Value at the last sample.</param>
public sealed record Slope(double PerThousandSteps, double StandardError, long First, long Last);

/// <summary>Memory samples of one soak loop and their slopes after warm-up.</summary>
public sealed class MemoryLog(string name, string unit, long warmup)
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly List<MemorySample> _samples = [];

    /// <summary>Loop name (train, explain, detect-train, detect-predict).</summary>
    public string Name { get; } = name;

    /// <summary>What one step is ("training step", "explanation of every method", ...).</summary>
    public string Unit { get; } = unit;

    /// <summary>Samples at steps before this are warm-up and left out of the slopes.</summary>
    public long Warmup { get; } = warmup;

    /// <summary>Called after each sample (the soak rewrites its report, so a run stopped early still leaves its figures).</summary>
    public static event Action<MemoryLog>? Sampled;

    /// <summary>The samples in order.</summary>
    public IReadOnlyList<MemorySample> Samples => _samples;

    /// <summary>Records the process's memory after <paramref name="step"/> steps (forces a full collection first).</summary>
    public MemorySample Sample(long step)
    {
        long before = GC.GetTotalMemory(false);
        long heap = GC.GetTotalMemory(true);
        var info = GC.GetGCMemoryInfo(GCKind.Any);
        using var self = Process.GetCurrentProcess();
        var s = new MemorySample(step, _clock.Elapsed.TotalSeconds, heap, before, info.TotalCommittedBytes, info.FragmentedBytes,
            self.WorkingSet64, self.PrivateMemorySize64, GC.GetTotalAllocatedBytes(true), GC.CollectionCount(2));
        _samples.Add(s);
        Sampled?.Invoke(this);
        return s;
    }

    /// <summary>Slope of <paramref name="value"/> over the samples at or after <see cref="Warmup"/>; null with fewer than three.</summary>
    public Slope? SlopeOf(Func<MemorySample, long> value)
    {
        var after = _samples.Where(s => s.Step >= Warmup).ToArray();
        if (after.Length < 3) return null;
        var fit = LinearFit.Of([.. after.Select(s => (double)s.Step)], [.. after.Select(s => (double)value(s))]);
        return new Slope(fit.Slope * 1000, fit.SlopeStandardError * 1000, value(after[0]), value(after[^1]));
    }

    /// <summary>Managed bytes allocated per step after warm-up (a rate, not a leak: the collector takes them back).</summary>
    public double AllocatedPerStep => SlopeOf(s => s.AllocatedBytes) is { } a ? a.PerThousandSteps / 1000 : double.NaN;
}
