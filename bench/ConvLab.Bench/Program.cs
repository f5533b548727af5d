using System.Runtime.InteropServices;
using ConvLab;
using ConvLab.Bench;
using TorchSharp;

// ConvLab vs TorchSharp-cpu, side by side in one process (see BENCHMARKS.md).
const string Usage = "usage: ConvLab.Bench gemm|conv|models|onnx|all [--format text|json|markdown] [--threads N] [--repeat R] [--filter substring] [--json-out FILE]";

string? suite = null, filter = null, jsonOut = null, format = "text";
int threads = 2, repeats = 7;
try
{
    for (int i = 0; i < args.Length; i++)
    {
        string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"option {args[i]} needs a value");
        int Positive() { string o = args[i], v = Value(); return int.TryParse(v, out int n) && n >= 1 ? n : throw new ArgumentException($"option {o}: expected a positive integer, got '{v}'"); }
        switch (args[i])
        {
            case "--format": format = Value(); if (format is not ("text" or "json" or "markdown")) throw new ArgumentException($"option --format: expected text, json or markdown, got '{format}'"); break;
            case "--threads": threads = Positive(); break;
            case "--repeat": repeats = Positive(); break;
            case "--filter": filter = Value(); break;
            case "--json-out": jsonOut = Value(); break;
            case "-h" or "--help": Console.WriteLine(Usage); return 0;
            default:
                if (suite is null && !args[i].StartsWith('-')) suite = args[i];
                else throw new ArgumentException($"unexpected argument '{args[i]}'");
                break;
        }
    }
    if (suite is null) throw new ArgumentException("no suite given");
    if (suite != "all" && !Suites.Names.Contains(suite)) throw new ArgumentException($"unknown suite '{suite}': expected gemm, conv, models, onnx or all");
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"ConvLab.Bench: {e.Message}\n{Usage}");
    return 2;
}

// Progress goes to stderr when stdout carries a document.
var log = format == "text" ? Console.Out : Console.Error;

ConvLab.Threads.Count = threads;
torch.set_num_threads(threads);
double peak = FmaPeak.Measure(threads);
string cpu = File.Exists("/proc/cpuinfo")
    ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "?"
    : RuntimeInformation.ProcessArchitecture.ToString();
string torchVersion = typeof(torch).Assembly.GetName().Version?.ToString(3) ?? "?";
log.WriteLine($"machine: {cpu}, {Environment.ProcessorCount} logical CPUs, {RuntimeInformation.OSDescription}, .NET {Environment.Version}");
log.WriteLine($"threads: {threads} (ConvLab.Threads.Count and torch.set_num_threads), repeats: {repeats}, TorchSharp {torchVersion}");
string LoadAvg() => File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "?";
string loadStart = LoadAvg();
log.WriteLine($"load average at start: {loadStart} (a shared machine's other work skews every figure)");
log.WriteLine($"FMA peak: {peak:F1} GFLOP/s float32 ({FmaPeak.Isa} FMA loop on {threads} threads)");
log.WriteLine();

var results = new List<Result>();
foreach (var s in suite == "all" ? Suites.Names : [suite])
{
    foreach (var (name, make) in Suites.Get(s))
    {
        if (filter is not null && !name.Contains(filter, StringComparison.OrdinalIgnoreCase)) continue;
        var r = Runner.Run(make(), repeats);
        results.Add(r);
        log.WriteLine(Report.Row(r, peak));
        GC.Collect(); GC.WaitForPendingFinalizers(); // frees the case's tensors on both sides before the next
    }
}
if (results.Count == 0) log.WriteLine($"no case matches filter '{filter}'");
string loadEnd = LoadAvg();
log.WriteLine($"load average at end: {loadEnd}");
// Measured again at the end, best of both: other work on a shared machine can only lower the measured peak.
double peakEnd = FmaPeak.Measure(threads);
log.WriteLine($"FMA peak at end: {peakEnd:F1} GFLOP/s" + (peakEnd > peak ? "; % peak above used the start figure" : ""));
peak = Math.Max(peak, peakEnd);
// A case faster than the FMA peak means the peak loop (or a FLOP count) is wrong: every "% of peak" and target line
// would be too, so the run says so and fails instead of printing them as if they held.
var aboveRoof = results.Where(r => r.Case.Flops > 0 && Math.Max(r.GFlops, r.PeerGFlops) > 1.02 * peak).ToList();
foreach (var r in aboveRoof)
    Console.Error.WriteLine($"ConvLab.Bench: ERROR: {r.Case.Name} runs at {Math.Max(r.GFlops, r.PeerGFlops):F1} GFLOP/s, above the measured " +
                            $"FMA peak {peak:F1} GFLOP/s ({FmaPeak.Isa}): the peak loop or the case's FLOP count is wrong on this machine");
string jsonDoc = Report.Json(results, peak, cpu, threads, repeats, torchVersion, loadStart, loadEnd);
if (jsonOut is not null) ConvLab.IO.AtomicFile.Write(jsonOut, s => s.Write(System.Text.Encoding.UTF8.GetBytes(jsonDoc + "\n")));
if (format == "json")
    Console.WriteLine(jsonDoc);
else if (format == "markdown")
    Console.WriteLine($"- machine: {cpu}, {Environment.ProcessorCount} logical CPUs, {RuntimeInformation.OSDescription}, .NET {Environment.Version}, TorchSharp-cpu {torchVersion}\n" +
                      $"- threads: {threads}, repeats: {repeats}, FMA peak: {peak:F1} GFLOP/s ({FmaPeak.Isa}), load average start/end: {loadStart} / {loadEnd}\n\n" +
                      Report.Markdown(results, peak));
else
    log.WriteLine("\n" + Report.Legend);
return aboveRoof.Count > 0 ? 3 : 0;
