using System.Globalization;
using System.Text.Json.Nodes;
using ConvLab.IO;

namespace ConvLab.Experiments;

/// <summary>What an experiment writes into while it runs: figures, results and the report, all inside <see cref="OutDir"/>.</summary>
public sealed class ExperimentContext
{
    private readonly List<string> _figures = [];
    private readonly HashSet<string> _readOptions = [];

    internal ExperimentContext(IExperiment experiment, ExperimentSettings settings)
    {
        Experiment = experiment;
        Settings = settings;
        OutDir = Path.GetFullPath(settings.OutDir);
        Report = new Report();
    }

    /// <summary>The experiment being run.</summary>
    public IExperiment Experiment { get; }

    /// <summary>The settings it runs with.</summary>
    public ExperimentSettings Settings { get; }

    /// <summary>The run folder (absolute).</summary>
    public string OutDir { get; }

    /// <summary>True for the small test setting.</summary>
    public bool Quick => Settings.Quick;

    /// <summary>The seed of every random choice.</summary>
    public ulong Seed => Settings.Seed;

    /// <summary>The numbers of the run; written to <c>results.json</c> when the run ends (the runner adds <c>experiment</c>, <c>seed</c>, <c>quick</c>, <c>threads</c>, <c>seconds</c>, <c>figures</c>).</summary>
    public JsonObject Results { get; } = [];

    /// <summary>The report; written to <c>report.md</c> when the run ends.</summary>
    public Report Report { get; }

    /// <summary>File names of the figures written so far, in order.</summary>
    public IReadOnlyList<string> Figures => _figures;

    /// <summary>Writes a progress line.</summary>
    public void Log(string line) => Settings.Log?.Invoke(line);

    /// <summary>Writes PNG bytes as <paramref name="fileName"/> in the run folder (atomically) and returns its full path.</summary>
    public string Figure(string fileName, byte[] png)
    {
        ArgumentNullException.ThrowIfNull(png);
        if (string.IsNullOrWhiteSpace(fileName) || fileName != Path.GetFileName(fileName) || !fileName.EndsWith(".png", StringComparison.Ordinal))
            throw new ArgumentException($"experiment {Experiment.Name}: a figure needs a plain file name ending in .png, got '{fileName}'");
        string path = Path.Combine(OutDir, fileName);
        AtomicFile.Write(path, s => s.Write(png));
        if (!_figures.Contains(fileName)) _figures.Add(fileName);
        return path;
    }

    /// <summary>The string option <paramref name="name"/>, or null when not given.</summary>
    public string? Option(string name)
    {
        _readOptions.Add(name);
        return Settings.Options.TryGetValue(name, out var v) ? v : null;
    }

    /// <summary>The integer option <paramref name="name"/>, or <paramref name="fallback"/>; a value that is not an integer in range is an error naming it.</summary>
    public int IntOption(string name, int fallback, int min = int.MinValue, int max = int.MaxValue)
    {
        string? v = Option(name);
        if (v == null) return fallback;
        if (!int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) || n < min || n > max)
            throw new ArgumentException($"experiment {Experiment.Name}: --set {name}={v} must be an integer in [{min}, {max}]");
        return n;
    }

    /// <summary>The number option <paramref name="name"/>, or <paramref name="fallback"/>; a value that is not a finite number in range is an error naming it.</summary>
    public double DoubleOption(string name, double fallback, double min = double.MinValue, double max = double.MaxValue)
    {
        string? v = Option(name);
        if (v == null) return fallback;
        if (!double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) || !double.IsFinite(d) || d < min || d > max)
            throw new ArgumentException($"experiment {Experiment.Name}: --set {name}={v} must be a number in [{min}, {max}]");
        return d;
    }

    /// <summary>Fashion-MNIST as <c>convlab train</c> finds it; an error when the caller supplied no data.</summary>
    public ExperimentData FashionMnist() =>
        Settings.FashionMnist?.Invoke() ?? throw new InvalidOperationException($"experiment {Experiment.Name}: no Fashion-MNIST source was given to the runner");

    /// <summary>Options given but never read by the experiment (the runner rejects them after the run so a typo is not silently ignored).</summary>
    internal IEnumerable<string> UnreadOptions => Settings.Options.Keys.Where(k => !_readOptions.Contains(k));
}
