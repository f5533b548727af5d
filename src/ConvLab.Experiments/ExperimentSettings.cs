using ConvLab.Data;

namespace ConvLab.Experiments;

/// <summary>Fashion-MNIST (or another IDX data set) as the caller found it, with a sentence saying where from.</summary>
/// <param name="Train">Training split.</param>
/// <param name="Test">Test split.</param>
/// <param name="Description">Where the data came from (for the report).</param>
/// <param name="ClassNames">Class names.</param>
public sealed record ExperimentData(IDataset Train, IDataset Test, string Description, IReadOnlyList<string> ClassNames);

/// <summary>How an experiment is run: the settings common to all, plus free-form options an experiment may read.</summary>
public sealed class ExperimentSettings
{
    /// <summary>The run folder (created if missing; an existing experiment's files in it are replaced).</summary>
    public required string OutDir { get; init; }

    /// <summary>The small setting for tests: same code paths, sizes cut so it runs in seconds.</summary>
    public bool Quick { get; init; }

    /// <summary>Seed of every random choice.</summary>
    public ulong Seed { get; init; }

    /// <summary>Threads the kernels may use (recorded in results.json).</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>
    /// Experiment-specific options by name (<c>image</c>, <c>data</c>, <c>run</c>, <c>budget</c> and every
    /// <c>--set key=value</c>); read them with <see cref="ExperimentContext.Option"/> and friends.
    /// </summary>
    public IReadOnlyDictionary<string, string> Options { get; init; } = new Dictionary<string, string>();

    /// <summary>Progress lines (the CLI prints them); null for silence.</summary>
    public Action<string>? Log { get; init; }

    /// <summary>Loads Fashion-MNIST the way <c>convlab train</c> finds it (the CLI supplies it: the embedded subset lives there); null when the caller has no data.</summary>
    public Func<ExperimentData>? FashionMnist { get; init; }
}
