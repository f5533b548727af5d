using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ConvLab.IO;

namespace ConvLab.KillTest;

/// <summary>What a kill-and-resume run does.</summary>
public sealed record KillSettings
{
    /// <summary>Path of ConvLab.Cli.dll (run with <c>dotnet</c>).</summary>
    public required string Cli { get; init; }

    /// <summary>Folder for the reference and the killed run folders (created; its runs are replaced).</summary>
    public required string WorkDir { get; init; }

    /// <summary>The <c>convlab train</c> options of the run (without <c>--out</c>, <c>--resume</c> and <c>--threads</c>).</summary>
    public required string[] TrainArgs { get; init; }

    /// <summary>SIGKILLs before the last resume, which runs to the end.</summary>
    public int Kills { get; init; } = 10;

    /// <summary>Seed of the kill schedule (modes and moments).</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>Kernel threads of every process (the same for the reference and the killed run).</summary>
    public int Threads { get; init; } = 1;

    /// <summary>Milliseconds every atomic write of the children waits before its rename (<c>CONVLAB_ATOMIC_WRITE_DELAY_MS</c>), so kills
    /// aimed at a write land inside it; 0 leaves the window as it is.</summary>
    public int WriteDelayMs { get; init; }

    /// <summary>Longest a single process may run before the harness gives up (a hang is a failure, not a wait).</summary>
    public TimeSpan ProcessTimeout { get; init; } = TimeSpan.FromMinutes(10);
}

/// <summary>One SIGKILL and what the folder held afterwards.</summary>
/// <param name="Index">0-based kill number.</param>
/// <param name="Mode">startup (during loading/resume), write (aimed at an atomic write), random (during training).</param>
/// <param name="Seconds">Seconds after the process started.</param>
/// <param name="Before">Progress (epoch, step) of the checkpoint before this process ran.</param>
/// <param name="After">Progress of the checkpoint the kill left.</param>
/// <param name="Interrupted">Temporary files the kill left behind: writes it interrupted (removed by the next resume).</param>
public sealed record KillEvent(int Index, string Mode, double Seconds, (int Epoch, int Step) Before, (int Epoch, int Step) After, string[] Interrupted);

/// <summary>The result of <see cref="KillHarness.Run"/>.</summary>
/// <param name="Events">Every kill in order.</param>
/// <param name="Problems">Everything found wrong: a file that does not parse, inconsistent metrics, progress going back, a
/// difference from the uninterrupted run (empty when the run survived).</param>
/// <param name="ReferenceSeconds">Wall time of the uninterrupted run.</param>
/// <param name="KilledSeconds">Wall time of all processes of the killed run, the last resume included.</param>
/// <param name="TensorsCompared">Tensors compared bit for bit (final weights and the final checkpoint).</param>
/// <param name="FinishedFirst">Launches that finished before their kill came (later kills then hit a finished run's rewrites).</param>
public sealed record KillOutcome(IReadOnlyList<KillEvent> Events, IReadOnlyList<string> Problems, double ReferenceSeconds, double KilledSeconds, int TensorsCompared,
    int FinishedFirst)
{
    /// <summary>Kills whose process left an interrupted atomic write.</summary>
    public int DuringWrites => Events.Count(e => e.Interrupted.Length > 0);

    /// <summary>Kills that landed inside an epoch after a checkpoint written inside it (a mid-epoch resume followed).</summary>
    public int MidEpoch => Events.Count(e => e.After.Step > 0);
}

/// <summary>
/// Starts <c>convlab train</c> as a child process, kills it with SIGKILL at seeded random moments (during start-up, aimed at
/// an atomic checkpoint write, or anywhere in training), resumes it with <c>--resume</c> each time and checks after every
/// kill that every file of the run folder parses and agrees with the others; at the end the weights, the checkpoint's
/// tensors and the history must equal those of an uninterrupted run bit for bit.
/// </summary>
public static class KillHarness
{
    private const string Checkpoint = "checkpoint.ckpt", Metrics = "metrics.json", Csv = "metrics.csv", Weights = "model.safetensors";

    /// <summary>Runs the reference, then the killed run, and compares them; <paramref name="log"/> gets one line per process.</summary>
    public static KillOutcome Run(KillSettings s, TextWriter? log = null)
    {
        ArgumentNullException.ThrowIfNull(s);
        if (!File.Exists(s.Cli)) throw new ArgumentException($"kill test: the CLI {s.Cli} does not exist");
        Directory.CreateDirectory(s.WorkDir);
        string reference = Path.Combine(s.WorkDir, "reference"), killed = Path.Combine(s.WorkDir, "killed");
        foreach (var d in new[] { reference, killed }) if (Directory.Exists(d)) Directory.Delete(d, true);
        var problems = new List<string>();
        var rng = new Random(unchecked((int)s.Seed ^ (int)(s.Seed >> 32)));

        var refRun = Launch(s, [.. s.TrainArgs, "--out", reference]);
        refRun.WaitForExit(s.ProcessTimeout, problems, "reference");
        double refSeconds = refRun.Clock.Elapsed.TotalSeconds;
        if (refRun.Process.ExitCode != 0) throw new InvalidOperationException($"kill test: the reference run failed ({refRun.Process.ExitCode}): {refRun.Output}");
        double startup = refRun.TrainingStarted ?? 1, training = Math.Max(0.5, refSeconds - startup);
        log?.WriteLine(Inv($"reference: {refSeconds:F1} s ({startup:F1} s start-up)"));
        int epochs = ReadCheckpoint(Path.Combine(reference, Checkpoint)).Epoch;
        // Random kills come at least one checkpoint interval and a half apart in training time, so the run moves on.
        int every = Array.IndexOf(s.TrainArgs, "--checkpoint-every") is int ix && ix >= 0 ? int.Parse(s.TrainArgs[ix + 1], CultureInfo.InvariantCulture) : 0;
        int stepsPerEpoch = StepsPerEpoch(Path.Combine(reference, Checkpoint));
        double minWindow = training * 1.5 * (every > 0 ? every : stepsPerEpoch) / (epochs * stepsPerEpoch);

        var events = new List<KillEvent>();
        var total = Stopwatch.StartNew();
        var before = (0, 0);
        int finishedEarly = 0;
        for (int k = 0; k < s.Kills;)
        {
            // Killed before its first checkpoint, a run can only start again (as its user would: --resume says there is none).
            string[] args = !File.Exists(Path.Combine(killed, Checkpoint)) ? [.. s.TrainArgs, "--out", killed] : ["train", "--resume", killed];
            var run = Launch(s, args);
            double draw = rng.NextDouble();
            string mode = draw < 0.1 ? "startup" : draw < 0.5 ? "write" : "random";
            // Spread the random kills over what is left, so the planned number fits into one run.
            double left = training * (1 - Fraction(before, epochs, killed)), window = Math.Max(minWindow, 2 * left / (s.Kills - k + 1));
            bool done = mode switch
            {
                "startup" => run.ExitedWithin(TimeSpan.FromSeconds(rng.NextDouble() * startup)),
                "write" => run.WaitForWrite(killed, 1 + rng.Next(2), s.ProcessTimeout),
                _ => run.WaitForTraining(s.ProcessTimeout) || run.ExitedWithin(TimeSpan.FromSeconds(rng.NextDouble() * window)),
            };
            if (done)
            {
                // The run finished first: later resumes of a finished run re-evaluate and rewrite its files, and the kills
                // land in those writes.
                run.WaitForExit(s.ProcessTimeout, problems, $"launch before kill {k}");
                if (run.Process.ExitCode != 0) problems.Add($"launch before kill {k} exited with {run.Process.ExitCode}: {run.Output}");
                before = Inspect(killed, epochs, problems, $"after an unkilled launch before kill {k}");
                log?.WriteLine($"launch before kill {k} finished by itself ({mode})");
                if (++finishedEarly > s.Kills) { problems.Add("the kill schedule keeps missing the process"); break; }
                continue;
            }
            if (mode == "write") Thread.Sleep(rng.Next(3));
            double at = run.Kill();
            var interrupted = Directory.EnumerateFiles(killed).Select(Path.GetFileName).Where(n => AtomicFile.IsTemporary(n!)).Select(n => n!).ToArray();
            var after = Inspect(killed, epochs, problems, $"after kill {k} ({mode})");
            if (Compare(after, before) < 0) problems.Add($"kill {k}: progress went back from {before} to {after}");
            events.Add(new KillEvent(k, mode, at, before, after, interrupted));
            log?.WriteLine(Inv($"kill {k,3}: {mode,-7} at {at,6:F2} s, checkpoint {before} -> {after}{(interrupted.Length > 0 ? ", interrupted " + string.Join(" ", interrupted) : "")}"));
            before = after;
            k++;
        }
        var last = Launch(s, ["train", "--resume", killed]);
        last.WaitForExit(s.ProcessTimeout, problems, "final resume");
        if (last.Process.ExitCode != 0) problems.Add($"final resume exited with {last.Process.ExitCode}: {last.Output}");
        double killedSeconds = total.Elapsed.TotalSeconds;
        Inspect(killed, epochs, problems, "after the final resume");
        foreach (var f in Directory.EnumerateFiles(killed).Where(f => AtomicFile.IsTemporary(f)))
            problems.Add($"after the final resume: {Path.GetFileName(f)} is still there");
        int compared = 0;
        try { compared = CompareRuns(reference, killed, problems); }
        catch (Exception e) when (e is IOException or InvalidDataException or JsonException or KeyNotFoundException)
        {
            problems.Add($"comparing with the uninterrupted run: {e.Message}");
        }
        log?.WriteLine(Inv($"killed run: {events.Count} kills, {killedSeconds:F1} s; {compared} tensors compared; {problems.Count} problems"));
        return new KillOutcome(events, problems, refSeconds, killedSeconds, compared, finishedEarly);
    }

    private static double Fraction((int Epoch, int Step) p, int epochs, string dir)
    {
        if (p == (0, 0)) return 0;
        int steps = StepsPerEpoch(Path.Combine(dir, Checkpoint));
        return Math.Clamp((p.Epoch + (double)p.Step / Math.Max(1, steps)) / epochs, 0, 1);
    }

    private static int StepsPerEpoch(string checkpoint)
    {
        // The history's last epoch does not say its step count; the config does (limits and batch size).
        var meta = ConvLab.IO.Checkpoint.Load(checkpoint).Meta;
        using var config = JsonDocument.Parse(meta["cli.config"]);
        int batch = config.RootElement.GetProperty("BatchSize").GetInt32();
        int images = config.RootElement.TryGetProperty("LimitTrain", out var l) && l.ValueKind == JsonValueKind.Number ? l.GetInt32() : 10_000;
        return (images + batch - 1) / batch;
    }

    private static int Compare((int, int) a, (int, int) b) => a.Item1 != b.Item1 ? a.Item1.CompareTo(b.Item1) : a.Item2.CompareTo(b.Item2);

    private static (int Epoch, int Step) ReadCheckpoint(string path)
    {
        var c = ConvLab.IO.Checkpoint.Load(path);
        int epoch = int.Parse(c.Meta["trainer.epoch"], CultureInfo.InvariantCulture);
        int step = c.Meta.TryGetValue("trainer.step", out var st) ? int.Parse(st, CultureInfo.InvariantCulture) : 0;
        return (epoch, step);
    }

    /// <summary>Checks every file of a run folder parses and that they agree; returns the checkpoint's progress ((0, 0) without one).</summary>
    public static (int Epoch, int Step) Inspect(string dir, int epochs, List<string> problems, string when)
    {
        if (!Directory.Exists(dir)) return (0, 0);
        var progress = (0, 0);
        int historyRows = -1;
        string ckpt = Path.Combine(dir, Checkpoint);
        bool hasCheckpoint = File.Exists(ckpt);
        try
        {
            if (hasCheckpoint)
            {
                var c = ConvLab.IO.Checkpoint.Load(ckpt);
                progress = ReadCheckpoint(ckpt);
                using var history = JsonDocument.Parse(c.Meta["trainer.history"]);
                historyRows = history.RootElement.GetArrayLength();
                if (historyRows != progress.Item1) problems.Add($"{when}: {Checkpoint} is after epoch {progress.Item1} but holds {historyRows} history rows");
                for (int i = 0; i < historyRows; i++)
                    if (history.RootElement[i].GetProperty("Epoch").GetInt32() != i + 1) problems.Add($"{when}: {Checkpoint} history row {i} is not epoch {i + 1}");
                if (progress.Item2 > 0 && !c.Tensors.ContainsKey("trainer.running")) problems.Add($"{when}: {Checkpoint} after step {progress.Item2} has no running metrics");
                if (progress.Item1 > epochs || progress.Item1 == epochs && progress.Item2 > 0) problems.Add($"{when}: {Checkpoint} is past the end ({progress})");
            }
        }
        catch (Exception e) when (e is InvalidDataException or JsonException or KeyNotFoundException or FormatException or ArgumentException)
        {
            problems.Add($"{when}: {Checkpoint} does not parse: {e.Message}");
        }
        foreach (var file in Directory.EnumerateFiles(dir))
        {
            string name = Path.GetFileName(file);
            if (AtomicFile.IsTemporary(name) || name == Checkpoint) continue;
            try
            {
                bool finished = progress.Item1 == epochs && progress.Item2 == 0;
                if (!finished) problems.Add($"{when}: {name} exists but {Checkpoint} is at {progress} of {epochs} epochs");
                switch (Path.GetExtension(name))
                {
                    case ".json" when name == Metrics:
                    {
                        using var m = JsonDocument.Parse(File.ReadAllBytes(file));
                        int rows = m.RootElement.GetProperty("history").GetArrayLength();
                        if (rows != historyRows || m.RootElement.GetProperty("epochs").GetInt32() != historyRows)
                            problems.Add($"{when}: {Metrics} has {rows} history rows, the checkpoint {historyRows}");
                        break;
                    }
                    case ".csv" when name == Csv:
                    {
                        var lines = File.ReadAllLines(file);
                        if (lines.Length != historyRows + 1) problems.Add($"{when}: {Csv} has {lines.Length} lines for {historyRows} epochs");
                        foreach (var line in lines.Skip(1))
                            if (line.Split(',').Any(v => !double.TryParse(v, CultureInfo.InvariantCulture, out _))) problems.Add($"{when}: {Csv} row '{line}' does not parse");
                        break;
                    }
                    case ".safetensors" when name == Weights: SafeTensors.Load(file); break;
                    case ".png": Imaging.ImageFile.Load(file, 3); break;
                    default: problems.Add($"{when}: unexpected file {name}"); break;
                }
            }
            catch (Exception e) when (e is InvalidDataException or JsonException or KeyNotFoundException or ArgumentException or IOException or InvalidOperationException)
            {
                problems.Add($"{when}: {name} does not parse: {e.Message}");
            }
        }
        return progress;
    }

    /// <summary>Final weights and every checkpoint tensor bit for bit, history and metrics without the timings.</summary>
    private static int CompareRuns(string reference, string killed, List<string> problems)
    {
        int compared = 0;
        foreach (var file in new[] { Weights, Checkpoint })
        {
            var a = SafeTensors.Load(Path.Combine(reference, file), out var metaA);
            var b = SafeTensors.Load(Path.Combine(killed, file), out var metaB);
            if (!a.Keys.SequenceEqual(b.Keys)) problems.Add($"{file}: tensor names differ");
            foreach (var (key, ta) in a)
            {
                if (!b.TryGetValue(key, out var tb)) continue;
                compared++;
                if (!ta.Shape.SequenceEqual(tb.Shape) || ta.DType != tb.DType || !Bytes(ta).SequenceEqual(Bytes(tb)))
                    problems.Add($"{file}: tensor {key} differs from the uninterrupted run");
            }
            if (file == Checkpoint)
            {
                if (Untimed(metaA["trainer.history"]) != Untimed(metaB["trainer.history"])) problems.Add($"{file}: history differs: {metaA["trainer.history"]} vs {metaB["trainer.history"]}");
                foreach (var key in new[] { "trainer.epoch", "trainer.model_generator", "trainer.best_loss", "trainer.bad_epochs", "trainer.stopped_early", "cli.config" })
                    if (metaA.GetValueOrDefault(key) != metaB.GetValueOrDefault(key)) problems.Add($"{file}: {key} differs: {metaA.GetValueOrDefault(key)} vs {metaB.GetValueOrDefault(key)}");
            }
        }
        using var ma = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(reference, Metrics)));
        using var mb = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(killed, Metrics)));
        foreach (var key in new[] { "test_accuracy", "test_loss", "top5_accuracy", "confusion_matrix", "per_class_accuracy", "epochs" })
            if (ma.RootElement.GetProperty(key).GetRawText() != mb.RootElement.GetProperty(key).GetRawText()) problems.Add($"{Metrics}: {key} differs");
        if (Untimed(ma.RootElement.GetProperty("history").GetRawText()) != Untimed(mb.RootElement.GetProperty("history").GetRawText()))
            problems.Add($"{Metrics}: history differs");
        return compared;
    }

    // float32 -> float64 is exact and keeps the sign of zero, so equal bits here are equal bits in the file.
    private static long[] Bytes(Tensor t) => [.. t.Contiguous().ToDoubleArray().Select(BitConverter.DoubleToInt64Bits)];

    // History rows without wall time and throughput, the only columns a kill may change.
    private static string Untimed(string historyJson)
    {
        using var d = JsonDocument.Parse(historyJson);
        return string.Join(";", d.RootElement.EnumerateArray().Select(r => string.Join(",", r.EnumerateObject()
            .Where(p => !p.Name.Contains("second", StringComparison.OrdinalIgnoreCase))
            .Select(p => p.Name + "=" + p.Value.GetRawText()))));
    }

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    private static Child Launch(KillSettings s, string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(s.Cli);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.ArgumentList.Add("--threads");
        psi.ArgumentList.Add(s.Threads.ToString(CultureInfo.InvariantCulture));
        if (s.WriteDelayMs > 0) psi.Environment["CONVLAB_ATOMIC_WRITE_DELAY_MS"] = s.WriteDelayMs.ToString(CultureInfo.InvariantCulture);
        return new Child(Process.Start(psi) ?? throw new InvalidOperationException("kill test: could not start dotnet"));
    }

    /// <summary>A running <c>convlab</c> process whose output is collected and whose start of training is noticed.</summary>
    private sealed class Child
    {
        private readonly System.Text.StringBuilder _output = new();
        private readonly ManualResetEventSlim _training = new();

        public Child(Process p)
        {
            Process = p;
            p.OutputDataReceived += (_, e) => Line(e.Data);
            p.ErrorDataReceived += (_, e) => Line(e.Data);
            p.BeginOutputReadLine();
            p.BeginErrorReadLine();
        }

        public Process Process { get; }
        public Stopwatch Clock { get; } = Stopwatch.StartNew();
        public double? TrainingStarted { get; private set; }

        public string Output { get { lock (_output) return _output.ToString(); } }

        private void Line(string? line)
        {
            if (line == null) return;
            lock (_output) _output.AppendLine(line);
            // The CLI prints the run folder last before the first step.
            if (line.StartsWith("run folder:", StringComparison.Ordinal) && !_training.IsSet)
            {
                TrainingStarted = Clock.Elapsed.TotalSeconds;
                _training.Set();
            }
        }

        public bool ExitedWithin(TimeSpan t) => Process.WaitForExit(t);

        /// <summary>Waits until training starts; true when the process ended first.</summary>
        public bool WaitForTraining(TimeSpan timeout)
        {
            var clock = Stopwatch.StartNew();
            while (!_training.Wait(20))
                if (Process.HasExited || clock.Elapsed > timeout) return true;
            return false;
        }

        /// <summary>Waits until the <paramref name="nth"/> temporary file of an atomic write appears in <paramref name="dir"/>; true when the process ended first.</summary>
        public bool WaitForWrite(string dir, int nth, TimeSpan timeout)
        {
            // Temporaries an earlier kill left (until the CLI removes them) are not this process's writes.
            var old = Directory.Exists(dir) ? Directory.EnumerateFiles(dir, ".*").ToHashSet() : [];
            var seen = new HashSet<string>();
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < timeout)
            {
                if (Directory.Exists(dir))
                    foreach (var f in Directory.EnumerateFiles(dir, ".*"))
                        if (AtomicFile.IsTemporary(f) && !old.Contains(f) && seen.Add(f) && seen.Count >= nth) return false;
                if (Process.HasExited) return true;
                Thread.Sleep(1);
            }
            return true;
        }

        /// <summary>SIGKILL (Process.Kill on Unix); returns the seconds since start.</summary>
        public double Kill()
        {
            double at = Clock.Elapsed.TotalSeconds;
            try { Process.Kill(); } catch (InvalidOperationException) { }
            Process.WaitForExit();
            return at;
        }

        public void WaitForExit(TimeSpan timeout, List<string> problems, string what)
        {
            if (Process.WaitForExit(timeout)) { Process.WaitForExit(); return; }
            problems.Add($"{what}: still running after {timeout.TotalSeconds:F0} s (hang); killed");
            Kill();
        }
    }
}
