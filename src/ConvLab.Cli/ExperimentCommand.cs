using System.CommandLine;
using System.Globalization;
using ConvLab.Experiments;

namespace ConvLab.Cli;

/// <summary>
/// <c>convlab experiment NAME [--quick] [--out DIR] [--seed N] [--threads N] [--image FILE] [--data DIR] [--run DIR]
/// [--budget SIZE] [--set key=value]...</c> and <c>convlab experiment list</c>: runs one of <see cref="ExperimentRegistry"/>'s
/// experiments into a run folder (figures, results.json, report.md). The experiments live in ConvLab.Experiments.
/// </summary>
internal static class ExperimentCommand
{
    public static Command Create()
    {
        var name = new Argument<string?>("name") { Description = "Experiment to run, or 'list' (omit to list them)", Arity = ArgumentArity.ZeroOrOne };
        var quick = new Option<bool>("--quick") { Description = "The small setting (seconds; what the tests run)" };
        var outDir = new Option<string?>("--out") { Description = "Run folder (default runs/experiment-NAME-<yyyyMMdd-HHmmss>)" };
        var seed = new Option<ulong?>("--seed") { Description = "Seed of every random choice (default 0)" };
        var threads = new Option<int?>("--threads") { Description = "Threads for the kernels (default: CONVLAB_THREADS or all cores)" };
        var image = new Option<string?>("--image") { Description = "An image file, for experiments that take one" };
        var data = new Option<string?>("--data") { Description = "Data folder, for experiments that take one (Fashion-MNIST IDX files, 'embedded', or the experiment's own)" };
        var run = new Option<string?>("--run") { Description = "A `convlab train` run folder, for experiments that use a trained model" };
        var budget = new Option<string?>("--budget") { Description = "A budget, for experiments that take one (e.g. memory: 8GB)" };
        var set = new Option<string[]>("--set") { Description = "Experiment-specific setting key=value (repeatable)", AllowMultipleArgumentsPerToken = false };
        var cmd = new Command("experiment", "Run one of the course's experiments into a run folder: PNG figures, results.json and a report computed from the run.")
        {
            name, quick, outDir, seed, threads, image, data, run, budget, set,
        };
        cmd.SetAction(pr =>
        {
            var options = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (key, option) in new[] { ("image", image), ("data", data), ("run", run), ("budget", budget) })
                if (pr.GetValue(option) is { } v) options[key] = v;
            foreach (var kv in pr.GetValue(set) ?? [])
            {
                int eq = kv.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0) return TrainCommand.Fail(Console.Out, $"experiment: --set expects key=value, got '{kv}'");
                options[kv[..eq]] = kv[(eq + 1)..];
            }
            return Run(pr.GetValue(name), pr.GetValue(quick), pr.GetValue(outDir), pr.GetValue(seed) ?? 0, pr.GetValue(threads), options, Console.Out);
        });
        return cmd;
    }

    public static int Run(string? name, bool quick, string? outDir, ulong seed, int? threads, IReadOnlyDictionary<string, string> options, TextWriter output)
    {
        if (name == null || name == "list")
        {
            foreach (var e in ExperimentRegistry.All) output.WriteLine($"{e.Name,-18} {e.Description}");
            if (ExperimentRegistry.All.Count == 0) output.WriteLine("(no experiments)");
            return 0;
        }
        try
        {
            var experiment = ExperimentRegistry.Find(name);
            if (threads is int t && t < 1) throw new ArgumentException($"experiment: --threads must be at least 1, got {t}");
            CliPaths.OutputFolder("experiment: --out", outDir);
            string dir = outDir ?? DefaultFolder(name);
            string? dataOption = options.TryGetValue("data", out var d) ? d : null;
            var settings = new ExperimentSettings
            {
                OutDir = dir,
                Quick = quick,
                Seed = seed,
                Threads = threads ?? Threads.Count,
                Options = options,
                Log = line => output.WriteLine(line),
                FashionMnist = () =>
                {
                    var loaded = TrainDataSource.Load(TrainDataSource.Resolve(dataOption), forced: dataOption == TrainDataSource.Embedded);
                    return new ExperimentData(loaded.Train, loaded.Test, loaded.Description, loaded.ClassNames);
                },
            };
            output.WriteLine($"experiment {name}{(quick ? " (quick)" : "")}, seed {seed.ToString(CultureInfo.InvariantCulture)}: {experiment.Description}");
            var outcome = ExperimentRunner.Run(experiment, settings);
            output.WriteLine($"done in {outcome.Seconds.ToString("0.0", CultureInfo.InvariantCulture)} s: {outcome.OutDir}");
            output.WriteLine($"  {ExperimentRunner.ReportFile}, {ExperimentRunner.ResultsFile}" + (outcome.Figures.Count > 0 ? ", " + string.Join(", ", outcome.Figures) : ""));
            return 0;
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            return TrainCommand.Fail(output, e.Message);
        }
    }

    private static string DefaultFolder(string name)
    {
        string stamp = DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);
        string dir = Path.Combine("runs", $"experiment-{name}-{stamp}");
        for (int i = 2; Directory.Exists(dir); i++) dir = Path.Combine("runs", $"experiment-{name}-{stamp}-{i}");
        return dir;
    }
}
