namespace ConvLab;

/// <summary>
/// How many threads ConvLab's kernels use (PyTorch's <c>torch.set_num_threads</c>). Defaults to the
/// <c>CONVLAB_THREADS</c> environment variable when set, else <see cref="Environment.ProcessorCount"/>.
/// </summary>
public static class Threads
{
    private static int _count = FromEnvironment();

    /// <summary>Threads a kernel may use at once; 1 runs everything on the calling thread.</summary>
    /// <exception cref="ArgumentOutOfRangeException">When set below 1.</exception>
    public static int Count
    {
        get => _count;
        set
        {
            if (value < 1) throw new ArgumentOutOfRangeException(nameof(value), value, "Threads.Count: must be at least 1");
            _count = value;
        }
    }

    /// <summary>
    /// Below this much work (roughly multiply-adds or elements touched) a job runs serially: handing
    /// tiny jobs to the thread pool costs more than it saves.
    /// </summary>
    internal const long MinParallelWork = 1 << 16;

    /// <summary>Options that cap <see cref="Parallel"/> at <see cref="Count"/> threads.</summary>
    internal static ParallelOptions Options => new() { MaxDegreeOfParallelism = _count };

    /// <summary>Runs body(i) for i in [from, to), in parallel only when there is enough work and more than one thread.</summary>
    internal static void For(int from, int to, long work, Action<int> body)
    {
        if (_count > 1 && to - from > 1 && work >= MinParallelWork) Parallel.For(from, to, Options, body);
        else for (int i = from; i < to; i++) body(i);
    }

    private static int FromEnvironment() =>
        int.TryParse(Environment.GetEnvironmentVariable("CONVLAB_THREADS"), out int n) && n >= 1 ? n : Environment.ProcessorCount;
}
