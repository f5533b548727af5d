using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ConvLab.IO;

namespace ConvLab.Experiments;

/// <summary>What a finished run left in its folder.</summary>
/// <param name="OutDir">The run folder.</param>
/// <param name="ResultsPath">Path of <c>results.json</c>.</param>
/// <param name="ReportPath">Path of <c>report.md</c>.</param>
/// <param name="Figures">File names of the figures.</param>
/// <param name="Seconds">Wall time of the run.</param>
public sealed record ExperimentOutcome(string OutDir, string ResultsPath, string ReportPath, IReadOnlyList<string> Figures, double Seconds);

/// <summary>Runs an experiment into its folder and writes <c>results.json</c> and <c>report.md</c> (atomically) when it ends.</summary>
public static class ExperimentRunner
{
    /// <summary>The results file of every run folder.</summary>
    public const string ResultsFile = "results.json";

    /// <summary>The report file of every run folder.</summary>
    public const string ReportFile = "report.md";

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>Runs <paramref name="experiment"/> with <paramref name="settings"/>. Errors of the experiment propagate; nothing is written for a failed run's results.</summary>
    public static ExperimentOutcome Run(IExperiment experiment, ExperimentSettings settings)
    {
        ArgumentNullException.ThrowIfNull(experiment);
        ArgumentNullException.ThrowIfNull(settings);
        if (settings.Threads <= 0) throw new ArgumentException($"experiment {experiment.Name}: --threads must be positive, got {settings.Threads}");
        var context = new ExperimentContext(experiment, settings);
        Directory.CreateDirectory(context.OutDir);
        var clock = Stopwatch.StartNew();
        int threadsBefore = Threads.Count;
        Threads.Count = settings.Threads;
        try { experiment.Run(context); }
        finally { Threads.Count = threadsBefore; }
        double seconds = clock.Elapsed.TotalSeconds;
        var unread = context.UnreadOptions.ToArray();
        if (unread.Length > 0)
            throw new ArgumentException($"experiment {experiment.Name}: option(s) {string.Join(", ", unread.Select(k => "'" + k + "'"))} are not used by this experiment");

        var results = new JsonObject
        {
            ["experiment"] = experiment.Name,
            ["seed"] = settings.Seed,
            ["quick"] = settings.Quick,
            ["threads"] = settings.Threads,
            ["seconds"] = Math.Round(seconds, 3),
            ["figures"] = new JsonArray(context.Figures.Select(f => (JsonNode?)JsonValue.Create(f)).ToArray()),
        };
        foreach (var (key, value) in context.Results.ToArray())
        {
            if (results.ContainsKey(key)) throw new InvalidOperationException($"experiment {experiment.Name}: results key '{key}' is reserved by the runner");
            context.Results.Remove(key);
            results[key] = value;
        }
        string resultsPath = Path.Combine(context.OutDir, ResultsFile), reportPath = Path.Combine(context.OutDir, ReportFile);
        byte[] json = Encoding.UTF8.GetBytes(results.ToJsonString(Indented) + "\n");
        AtomicFile.Write(resultsPath, s => s.Write(json));
        string header = $"# {experiment.Name}: {experiment.Description}\n\nSeed {settings.Seed}, {(settings.Quick ? "quick setting" : "full setting")}, " +
            $"{settings.Threads} thread(s), {Report.Num(seconds, 3)} s.\n\n";
        byte[] md = Encoding.UTF8.GetBytes(header + context.Report);
        AtomicFile.Write(reportPath, s => s.Write(md));
        return new ExperimentOutcome(context.OutDir, resultsPath, reportPath, context.Figures, seconds);
    }
}
