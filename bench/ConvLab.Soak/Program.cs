using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using ConvLab.Imaging;
using ConvLab.IO;
using ConvLab.NN;
using ConvLab.Soak;

// Soak: long stretches of training, explanation and detection in one process, memory sampled on a fixed cadence, slopes
// after warm-up by least squares (docs/reliability.md, "Kill tests and soak"). Not a test: it takes about an hour.
const string Usage = "usage: ConvLab.Soak train|explain|detect|all [--steps N] [--every N] [--explain-iterations N] [--detect-steps N] " +
    "[--predict-iterations N] [--warmup FRACTION] [--seed N] [--threads N] [--data DIR] [--out DIR]";

string? loop = null, outDir = null, data = null;
var settings = new SoakSettings { Data = "" };
int threads = 2;
try
{
    for (int i = 0; i < args.Length; i++)
    {
        string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"option {args[i]} needs a value");
        int Positive() { string o = args[i], v = Value(); return int.TryParse(v, CultureInfo.InvariantCulture, out int n) && n >= 1 ? n : throw new ArgumentException($"option {o}: expected a positive integer, got '{v}'"); }
        switch (args[i])
        {
            case "--steps": settings = settings with { TrainSteps = Positive() }; break;
            case "--every": settings = settings with { TrainEvery = Positive() }; break;
            case "--explain-iterations": settings = settings with { ExplainIterations = Positive() }; break;
            case "--detect-steps": settings = settings with { DetectSteps = Positive() }; break;
            case "--predict-iterations": settings = settings with { PredictIterations = Positive() }; break;
            case "--seed": settings = settings with { Seed = (ulong)Positive() }; break;
            case "--threads": threads = Positive(); break;
            case "--data": data = Value(); break;
            case "--out": outDir = Value(); break;
            case "--warmup":
            {
                string v = Value();
                double f = double.TryParse(v, CultureInfo.InvariantCulture, out double w) && w is >= 0 and < 1 ? w
                    : throw new ArgumentException($"option --warmup: expected a fraction in [0, 1), got '{v}'");
                settings = settings with { WarmupFraction = f };
                break;
            }
            case "-h" or "--help": Console.WriteLine(Usage); return 0;
            default:
                if (loop is null && !args[i].StartsWith('-')) loop = args[i];
                else throw new ArgumentException($"unexpected argument '{args[i]}'");
                break;
        }
    }
    if (loop is not ("train" or "explain" or "detect" or "all")) throw new ArgumentException(loop is null ? "no loop given" : $"unknown loop '{loop}': expected train, explain, detect or all");
    data ??= new[] { "/usr/share/datasets/fashion-mnist", Path.Combine(AppContext.BaseDirectory, "../../../../../src/ConvLab.Cli/EmbeddedData") }
        .FirstOrDefault(d => File.Exists(Path.Combine(d, "train-images-idx3-ubyte.gz")))
        ?? throw new ArgumentException("no Fashion-MNIST found (install dataset-fashion-mnist or pass --data DIR)");
    if (!File.Exists(Path.Combine(data, "train-images-idx3-ubyte.gz"))) throw new ArgumentException($"option --data: {data} has no train-images-idx3-ubyte.gz");
    settings = settings with { Data = Path.GetFullPath(data) };
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"ConvLab.Soak: {e.Message}\n{Usage}");
    return 2;
}

ConvLab.Threads.Count = threads;
outDir ??= Path.Combine("soak", DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
Directory.CreateDirectory(outDir);
string LoadAvg() => File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "?";
string cpu = File.Exists("/proc/cpuinfo")
    ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "?"
    : RuntimeInformation.ProcessArchitecture.ToString();
string loadStart = LoadAvg();
Console.WriteLine($"machine: {cpu}, {Environment.ProcessorCount} logical CPUs, .NET {Environment.Version}, {threads} threads, load average {loadStart}");
Console.WriteLine($"data: {settings.Data}; out: {outDir}");

var logs = new List<MemoryLog>();
var json = new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };
MemoryLog.Sampled += l =>
{
    if (!logs.Contains(l)) logs.Add(l);
    WriteReport(complete: false);
};
Module? classifier = null;
if (loop is "train" or "all") (_, classifier) = Loops.Train(settings, Console.Out);
if (loop is "explain" or "all") Loops.Explain(settings, classifier ?? ConvLab.Models.Zoo.Create("simple_cnn", 10, new ConvLab.Generator(settings.Seed)), Console.Out);
if (loop is "detect" or "all")
{
    var (_, detector) = Loops.DetectTrain(settings, Console.Out);
    Loops.DetectPredict(settings, detector, Console.Out);
}
WriteReport(complete: true);

void WriteReport(bool complete)
{
string loadEnd = LoadAvg();
var report = new Dictionary<string, object?>
{
    ["machine"] = cpu, ["threads"] = threads, ["load_average_start"] = loadStart, ["load_average_end"] = loadEnd,
    ["complete"] = complete, ["seed"] = settings.Seed, ["warmup_fraction"] = settings.WarmupFraction, ["data"] = settings.Data,
    ["loops"] = logs.Select(l => new Dictionary<string, object?>
    {
        ["name"] = l.Name, ["step"] = l.Unit, ["warmup_steps"] = l.Warmup, ["steps"] = l.Samples[^1].Step, ["seconds"] = l.Samples[^1].Seconds,
        ["heap_slope_bytes_per_1000_steps"] = l.SlopeOf(s => s.HeapBytes),
        ["committed_slope_bytes_per_1000_steps"] = l.SlopeOf(s => s.CommittedBytes),
        ["working_set_slope_bytes_per_1000_steps"] = l.SlopeOf(s => s.WorkingSetBytes),
        ["private_slope_bytes_per_1000_steps"] = l.SlopeOf(s => s.PrivateBytes),
        ["allocated_bytes_per_step"] = l.AllocatedPerStep,
        ["samples"] = l.Samples,
    }).ToArray(),
};
AtomicFile.Write(Path.Combine(outDir, "soak.json"), s => JsonSerializer.Serialize(s, report, json));
foreach (var l in logs)
{
    double[] steps = [.. l.Samples.Select(s => (double)s.Step)];
    Series Mb(string label, Func<MemorySample, long> v) => new(label, steps, [.. l.Samples.Select(s => v(s) / 1048576.0)]);
    var png = Charts.Line($"{l.Name}: memory over {l.Samples[^1].Step:N0} steps (warm-up: first {l.Warmup:N0})", "step", "MB",
        [Mb("live managed heap", s => s.HeapBytes), Mb("GC committed", s => s.CommittedBytes), Mb("working set", s => s.WorkingSetBytes)]);
    AtomicFile.Write(Path.Combine(outDir, $"memory-{l.Name}.png"), s => s.Write(png));
}
if (!complete) return;

Console.WriteLine();
Console.WriteLine($"load average at end: {loadEnd}");
Console.WriteLine("| loop | steps | warm-up | live heap slope | committed slope | working set slope | allocated per step |");
Console.WriteLine("|---|---|---|---|---|---|---|");
foreach (var l in logs)
{
    static string S(Slope? s) => s is null ? "n/a" : string.Create(CultureInfo.InvariantCulture, $"{s.PerThousandSteps / 1024:+0.0;-0.0} ± {s.StandardError / 1024:0.0} KB ({Loops.Mb(s.First)} → {Loops.Mb(s.Last)} MB)");
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"| {l.Name} | {l.Samples[^1].Step:N0} | {l.Warmup:N0} | {S(l.SlopeOf(s => s.HeapBytes))} | {S(l.SlopeOf(s => s.CommittedBytes))} | {S(l.SlopeOf(s => s.WorkingSetBytes))} | {l.AllocatedPerStep / 1024:F1} KB |"));
}
Console.WriteLine("(slopes per 1,000 steps, least squares over the samples after warm-up, ± standard error)");
Console.WriteLine($"wrote {Path.Combine(outDir, "soak.json")} and {string.Join(", ", logs.Select(l => $"memory-{l.Name}.png"))}");
}
return 0;
