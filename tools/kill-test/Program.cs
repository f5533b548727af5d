using System.Globalization;
using System.Text.Json;
using ConvLab.KillTest;

// The long kill test: `dotnet run --project tools/kill-test -c Release -- [--kills 100] [--seed 1] [--threads 2]
// [--write-delay-ms 50] [--work DIR] [--json FILE]` (docs/reliability.md, "Kill tests and soak").
int kills = 100, threads = 2, delay = 50;
ulong seed = 1;
string work = Path.Combine(Path.GetTempPath(), "convlab-kill-test"), json = "";
string[] train = ["train", "--data", "embedded", "--limit-train", "1024", "--limit-test", "256", "--epochs", "4", "--batch-size", "64", "--checkpoint-every", "2", "--seed", "3"];
for (int i = 0; i < args.Length; i++)
{
    string V() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    int N() { string o = args[i], v = V(); return int.TryParse(v, CultureInfo.InvariantCulture, out int n) && n >= 0 ? n : throw new ArgumentException($"{o}: expected an integer >= 0, got '{v}'"); }
    switch (args[i])
    {
        case "--kills": kills = N(); break;
        case "--seed": seed = (ulong)N(); break;
        case "--threads": threads = Math.Max(1, N()); break;
        case "--write-delay-ms": delay = N(); break;
        case "--work": work = V(); break;
        case "--json": json = V(); break;
        default: Console.Error.WriteLine($"kill-test: unexpected argument '{args[i]}'"); return 2;
    }
}
var settings = new KillSettings
{
    Cli = Path.Combine(AppContext.BaseDirectory, "ConvLab.Cli.dll"), WorkDir = work, TrainArgs = train, Kills = kills, Seed = seed,
    Threads = threads, WriteDelayMs = delay,
};
Console.WriteLine($"convlab {string.Join(" ", train)} --threads {threads}; {kills} kills, seed {seed}, write delay {delay} ms, load average " +
    (File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "?"));
var outcome = KillHarness.Run(settings, Console.Out);
foreach (var p in outcome.Problems) Console.WriteLine("PROBLEM: " + p);
var modes = outcome.Events.GroupBy(e => e.Mode).ToDictionary(g => g.Key, g => g.Count());
Console.WriteLine($"{outcome.Events.Count} kills ({string.Join(", ", modes.Select(kv => $"{kv.Value} {kv.Key}"))}), {outcome.DuringWrites} inside an atomic write, " +
    $"{outcome.MidEpoch} left a mid-epoch checkpoint, {outcome.FinishedFirst} launches finished before their kill; reference {outcome.ReferenceSeconds:F0} s, killed run {outcome.KilledSeconds:F0} s; " +
    $"{outcome.TensorsCompared} tensors compared: " + (outcome.Problems.Count == 0 ? "bit-identical, no corrupt file" : $"{outcome.Problems.Count} problems"));
if (json.Length > 0)
    ConvLab.IO.AtomicFile.Write(json, s => JsonSerializer.Serialize(s, new
    {
        kills = outcome.Events.Count, modes, finished_first = outcome.FinishedFirst, during_writes = outcome.DuringWrites, mid_epoch = outcome.MidEpoch, reference_seconds = outcome.ReferenceSeconds,
        killed_seconds = outcome.KilledSeconds, tensors_compared = outcome.TensorsCompared, problems = outcome.Problems,
        events = outcome.Events.Select(e => new { e.Index, e.Mode, e.Seconds, before = $"{e.Before.Epoch}:{e.Before.Step}", after = $"{e.After.Epoch}:{e.After.Step}", e.Interrupted }),
    }, new JsonSerializerOptions { WriteIndented = true }));
return outcome.Problems.Count == 0 && outcome.Events.Count == kills ? 0 : 1;
