using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using ConvLab.Analysis;
using ConvLab.Data;
using ConvLab.Imaging;
using ConvLab.Models;
using ConvLab.NN.Functional;
using ConvLab.Training;

namespace ConvLab.Experiments.Memory;

/// <summary>
/// <c>convlab experiment memory [--budget SIZE] [--data DIR]</c>: the GPUMemory notebook on this CPU — parameter counts and
/// fp32 sizes, the calculator's training-memory estimate beside the peak measured by <c>convlab memory --measure</c> in a
/// fresh process per configuration (optimizers at a fixed batch, then batch sizes), the largest batch that fits the
/// budget, and batch size against accuracy and wall clock when training one model for the same number of epochs.
/// </summary>
public sealed class MemoryExperiment : IExperiment
{
    /// <inheritdoc/>
    public string Name => "memory";

    /// <inheritdoc/>
    public string Description => "Training memory: estimate vs measured peak per optimizer and batch size, largest batch for a budget, batch size vs accuracy and wall clock";

    private sealed record Config(string Model, int Classes, int[] Input, string Optimizer, int Batch);

    /// <inheritdoc/>
    public void Run(ExperimentContext ctx)
    {
        var r = ctx.Report;
        var res = ctx.Results;
        bool quick = ctx.Quick;
        long budget = Budget(ctx.Option("budget"));
        string? dataDir = ctx.Option("data");
        bool measure = ctx.Option("measure") switch
        {
            null or "true" => true,
            "false" => false,
            var v => throw new ArgumentException($"experiment memory: --set measure={v} must be true or false"),
        };

        // Estimate vs measured: optimizers at a fixed batch, then batch sizes with SGD + momentum.
        var fixedCfg = quick ? ("lenet5", 10, new[] { 1, 28, 28 }, 2) : ("resnet152", 1000, new[] { 3, 224, 224 }, 8);
        var sweepCfg = quick ? ("lenet5", 10, new[] { 1, 28, 28 }) : ("resnet18", 1000, new[] { 3, 224, 224 });
        int[] batches = quick ? [2, 8] : [4, 16, 64, 256];
        var configs = new List<Config>();
        foreach (var opt in new[] { "sgd", "momentum", "adam" }) configs.Add(new(fixedCfg.Item1, fixedCfg.Item2, fixedCfg.Item3, opt, fixedCfg.Item4));
        foreach (int b in batches) configs.Add(new(sweepCfg.Item1, sweepCfg.Item2, sweepCfg.Item3, "momentum", b));
        var rows = new JsonArray();
        var measuredRows = new List<(Config C, long Est, long? Meas, string Note)>();
        long firstStep = Estimate(configs[^batches.Length] with { Batch = 1 });
        if (budget < firstStep)
            throw new ArgumentException($"--budget: {Mb(budget)} is below one training step of {sweepCfg.Item1} at batch 1 (estimated {Mb(firstStep)})");
        // Sizes of the notebook's models (1000 and 10 classes) from the calculator.
        var sizes = new JsonArray();
        var sizeRows = new List<IReadOnlyList<string>>();
        foreach (var (model, classes) in new[] { ("resnet152", 1000), ("resnet152", 10), ("resnet18", 1000) })
        {
            var s = Summary.Of(Model(model, classes), [3, 224, 224], 1, "sgd");
            sizes.Add(new JsonObject { ["model"] = model, ["classes"] = classes, ["params"] = s.Params, ["fp32_bytes"] = s.Params * 4 });
            sizeRows.Add([model, classes.ToString(CultureInfo.InvariantCulture), s.Params.ToString("N0", CultureInfo.InvariantCulture), Report.Num(s.Params * 4 / 1e6, 4) + " MB"]);
        }
        res["models"] = sizes;
        r.Heading("Model sizes");
        r.Table(["model", "classes", "parameters", "fp32 size"], sizeRows);

        var estimates = configs.Select(Estimate).ToList();
        _models.Clear();
        // The children measure their own process; this one's garbage (model copies of the estimates) would only add to
        // the machine's load while they run.
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        foreach (var (c, est) in configs.Zip(estimates))
        {
            long? meas = null;
            string note = "";
            // The measurement needs what the step needs; a configuration over budget is estimated only.
            if (!measure) note = "not measured (--set measure=false)";
            else if (est <= budget) (meas, note) = Measure(ctx, c);
            else note = $"estimate {Mb(est)} exceeds the budget {Mb(budget)}; not measured";
            ctx.Log($"{c.Model} {c.Optimizer} batch {c.Batch}: estimated {Mb(est)}, measured {(meas is long m ? Mb(m) : "-")}");
            measuredRows.Add((c, est, meas, note));
            rows.Add(new JsonObject
            {
                ["model"] = c.Model, ["optimizer"] = c.Optimizer, ["batch"] = c.Batch, ["input"] = string.Join("x", c.Input),
                ["estimated_bytes"] = est, ["measured_bytes"] = meas, ["note"] = note.Length == 0 ? null : note,
            });
        }
        res["rows"] = rows;
        res["budget_bytes"] = budget;
        r.Heading("Training-step memory: estimate and measurement");
        r.Paragraph($"Each measurement is `convlab memory MODEL --measure` in a fresh process (one warm-up step on a throw-away copy, then one step of a fresh copy and the live managed heap plus pooled kernel scratch at the end of the next forward pass, every step inside a storage recycler as the Trainer's). Budget: {Mb(budget)}" +
            (ctx.Option("budget") == null ? " (this machine's available memory)." : "."));
        r.Table(["model", "optimizer", "batch", "estimated", "measured", "estimate / measured"], measuredRows.Select(x => (IReadOnlyList<string>)
            [x.C.Model, x.C.Optimizer, x.C.Batch.ToString(CultureInfo.InvariantCulture), Mb(x.Est), x.Meas is long m ? Mb(m) : x.Note, x.Meas is long m2 ? Report.Num((double)x.Est / m2, 3) : "-"]));
        var opts = measuredRows.Take(3).ToList();
        if (opts.All(o => o.Meas != null))
            r.Paragraph($"At batch {fixedCfg.Item4}, {fixedCfg.Item1} measures {Mb(opts[0].Meas!.Value)} with plain SGD, {Mb(opts[1].Meas!.Value)} with momentum " +
                $"(+{Mb(opts[1].Meas!.Value - opts[0].Meas!.Value)}: one velocity per parameter) and {Mb(opts[2].Meas!.Value)} with Adam " +
                $"(+{Mb(opts[2].Meas!.Value - opts[0].Meas!.Value)}: two moments per parameter).");

        // Largest batch under the budget: the estimate is affine in the batch (activations scale, the rest does not).
        var baseCfg = configs[^batches.Length];
        long e1 = Estimate(baseCfg with { Batch = 1 }), e2 = Estimate(baseCfg with { Batch = 2 });
        _models.Clear();
        long perSample = e2 - e1, fixedPart = e1 - perSample;
        int largest = perSample <= 0 ? int.MaxValue : (int)Math.Min(int.MaxValue, (budget - fixedPart) / perSample);
        var lastMeasured = measuredRows.Skip(3).LastOrDefault(x => x.Meas != null);
        double ratio = lastMeasured.Meas is long lm ? (double)lm / lastMeasured.Est : 1;
        int largestMeasuredScale = perSample <= 0 ? int.MaxValue : (int)Math.Min(int.MaxValue, (budget / ratio - fixedPart) / perSample);
        res["largest_batch"] = new JsonObject
        {
            ["model"] = baseCfg.Model, ["optimizer"] = baseCfg.Optimizer, ["budget_bytes"] = budget, ["fixed_bytes"] = fixedPart, ["bytes_per_sample"] = perSample,
            ["by_estimate"] = largest, ["by_estimate_scaled_to_measured"] = largestMeasuredScale,
        };
        r.Paragraph($"For {baseCfg.Model} with SGD + momentum at {string.Join("x", baseCfg.Input)}, the estimate is {Mb(fixedPart)} plus {Mb(perSample)} per sample, so the largest batch within {Mb(budget)} is " +
            $"{largest} by the estimate" + (lastMeasured.Meas != null ? $" and {largestMeasuredScale} after scaling by the measured/estimated ratio {Report.Num(ratio, 3)} at batch {lastMeasured.C.Batch}." : "."));
        ctx.Figure("memory-batch.png", Charts.Line($"{baseCfg.Model}, SGD + momentum: training-step memory vs batch", "batch", "MB",
        [
            new Series("estimate", measuredRows.Skip(3).Select(x => (double)x.C.Batch).ToList(), measuredRows.Skip(3).Select(x => x.Est / 1e6).ToList()),
            new Series("measured", measuredRows.Skip(3).Where(x => x.Meas != null).Select(x => (double)x.C.Batch).ToList(), measuredRows.Skip(3).Where(x => x.Meas != null).Select(x => x.Meas!.Value / 1e6).ToList()),
        ], logX: true, logY: true));
        ctx.Figure("memory-optimizer.png", Charts.Bars($"{fixedCfg.Item1}, batch {fixedCfg.Item4}: memory per optimizer", "MB", opts.Select(o => o.C.Optimizer).ToList(),
            [("estimate", opts.Select(o => o.Est / 1e6).ToList()), ("measured", opts.Select(o => o.Meas is long m ? m / 1e6 : double.NaN).ToList())]));

        // Batch size vs accuracy and wall clock.
        var (train, description, channels) = Data(ctx, dataDir);
        int trainCount = Math.Min(train.Count, quick ? 256 : 8_000);
        int epochs = ctx.IntOption("epochs", quick ? 1 : 2, 1, 100);
        int[] runBatches = quick ? [16, 64] : [4, 16, 64, 256];
        var subset = new Subset(train, Enumerable.Range(0, trainCount).ToArray());
        var batchRuns = new JsonArray();
        var curves = new List<Series>();
        var summary = new List<(int B, double Lr, double Sec, double Acc, double Ips, bool Diverged)>();
        foreach (int b in runBatches)
        {
            double lr = 0.02 * b / 64;  // linear scaling from 0.02 at batch 64
            var model = new SimpleCnn(10, channels, 32, new Generator(ctx.Seed));
            var progress = new Curve();
            var trainer = new Trainer(model, new SGD(model.Parameters(), lr, momentum: 0.9), null, subset, null, 10,
                new TrainerOptions { Epochs = epochs, BatchSize = b, Seed = ctx.Seed, TrainTransform = channels == 1 ? new Resize32() : null });
            bool diverged = false;
            var clock = Stopwatch.StartNew();
            try { trainer.Fit(progress); }
            catch (TrainingDivergedException) { diverged = true; }
            double seconds = clock.Elapsed.TotalSeconds;
            double acc = trainer.History.Count > 0 ? trainer.History[^1].TrainAccuracy : double.NaN;
            double ips = trainer.History.Count > 0 ? trainer.History.Average(h => h.ImagesPerSecond) : double.NaN;
            ctx.Log($"batch {b}, lr {Report.Num(lr)}: {Report.Num(seconds, 3)} s, training accuracy {Report.Percent(acc)}{(diverged ? " (diverged)" : "")}");
            summary.Add((b, lr, seconds, acc, ips, diverged));
            curves.Add(new Series($"batch {b} (lr {Report.Num(lr, 3)})", progress.Seconds, progress.Accuracy));
            batchRuns.Add(new JsonObject
            {
                ["batch"] = b, ["lr"] = lr, ["seconds"] = seconds, ["final_train_accuracy"] = acc, ["images_per_second"] = ips, ["diverged"] = diverged, ["epochs"] = epochs,
            });
        }
        res["batch_runs"] = batchRuns;
        res["batch_data"] = new JsonObject { ["description"] = description, ["train_images"] = trainCount, ["model"] = "simple_cnn (convlab train's default model) at 32x32", ["epochs"] = epochs };
        ctx.Figure("batch-accuracy-time.png", Charts.Line($"SimpleCNN, {epochs} epoch(s) on {trainCount} images: training accuracy vs wall time", "seconds", "running training accuracy", curves, markers: false));
        var fastest = summary.MinBy(x => x.Sec);
        var best = summary.Where(x => !double.IsNaN(x.Acc)).MaxBy(x => x.Acc);
        r.Heading("Batch size vs accuracy and wall clock");
        r.Paragraph($"The default `convlab train` model (SimpleCnn, at 32x32) trained for {epochs} epoch(s) on {trainCount} images of {description} (resized to 32x32 where needed), SGD with momentum 0.9 and the learning rate scaled linearly with the batch (0.02 at 64).");
        r.Table(["batch", "lr", "seconds", "images/s", "final training accuracy"], summary.Select(x => (IReadOnlyList<string>)
            [x.B.ToString(CultureInfo.InvariantCulture), Report.Num(x.Lr, 3), Report.Num(x.Sec, 3), Report.Num(x.Ips, 4), x.Diverged ? "diverged" : Report.Percent(x.Acc)]));
        r.Paragraph($"Fastest: batch {fastest.B} ({Report.Num(fastest.Sec, 3)} s, {Report.Num(fastest.Ips, 4)} images/s against {Report.Num(summary.MinBy(x => x.Ips).Ips, 4)} at batch {summary.MinBy(x => x.Ips).B}): " +
            (fastest.B == runBatches.Max()
                ? "throughput grew with every larger batch, as each step's fixed overhead is shared by more images and the matrix products get larger. "
                : $"throughput grew up to batch {fastest.B} and fell at larger batches on this run, so past that size a step's cost grew faster than its images. ") +
            $"Most accurate after the same epochs: batch {best.B} ({Report.Percent(best.Acc)}), " +
            (best.B < runBatches.Max() ? "because smaller batches take more update steps per epoch, which the linear learning-rate scaling does not fully make up for." : "because the scaled learning rate made its fewer, larger steps as effective as many small ones here."));
    }

    /// <summary>Bytes from "8GB", "512MB", "2G", or a plain number; default: the memory the runtime sees as available.</summary>
    private static long Budget(string? text)
    {
        if (text == null)
        {
            // Linux reports what can be allocated without swapping; elsewhere the runtime's view of free memory.
            if (File.Exists("/proc/meminfo"))
                foreach (var line in File.ReadLines("/proc/meminfo"))
                    if (line.StartsWith("MemAvailable:", StringComparison.Ordinal)
                        && long.TryParse(line["MemAvailable:".Length..].Trim().Split(' ')[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out long kb))
                        return kb * 1024;
            var info = GC.GetGCMemoryInfo();
            return Math.Max(1, info.TotalAvailableMemoryBytes - info.MemoryLoadBytes);
        }
        var t = text.Trim().ToUpperInvariant().Replace(" ", "", StringComparison.Ordinal);
        (string Suffix, double Scale)[] units = [("GIB", 1L << 30), ("MIB", 1L << 20), ("KIB", 1L << 10), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3), ("G", 1e9), ("M", 1e6), ("K", 1e3), ("B", 1)];
        double scale = 1;
        foreach (var (suffix, s) in units)
            if (t.EndsWith(suffix, StringComparison.Ordinal)) { t = t[..^suffix.Length]; scale = s; break; }
        if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v) || v <= 0 || v * scale > 1e15)
            throw new ArgumentException($"--budget: expected a positive size such as 8GB or 512MB, got \"{text}\"");
        return (long)(v * scale);
    }

    private static string Mb(long bytes) => bytes >= 1e9 ? Report.Num(bytes / 1e9, 4) + " GB" : Report.Num(bytes / 1e6, 4) + " MB";

    private long Estimate(Config c) => Summary.Of(Model(c.Model, c.Classes), c.Input, c.Batch, c.Optimizer).Memory.TotalBytes;

    // The estimate traces shapes only, so one instance per model serves every batch and optimizer (building ResNet-152's
    // 60 M initialised parameters anew for each row cost more than the tracing).
    private readonly Dictionary<(string Model, int Classes), ConvLab.NN.Module> _models = [];

    private ConvLab.NN.Module Model(string name, int classes)
    {
        if (!_models.TryGetValue((name, classes), out var m)) _models[(name, classes)] = m = Zoo.Create(name, classes);
        return m;
    }

    /// <summary>
    /// Runs <c>convlab memory ... --measure --format json</c> as a child of the running CLI and reads its <c>measured_bytes</c>;
    /// a child that fails (killed by the kernel when memory runs out, for one) leaves the row unmeasured with the reason.
    /// </summary>
    private static (long? Bytes, string Note) Measure(ExperimentContext ctx, Config c)
    {
        var entry = Assembly.GetEntryAssembly()?.Location;
        var host = Environment.ProcessPath;
        if (string.IsNullOrEmpty(entry) || host == null || !Path.GetFileNameWithoutExtension(entry).Equals("ConvLab.Cli", StringComparison.OrdinalIgnoreCase))
            throw new InvalidOperationException("experiment memory: measurements run `convlab memory --measure` in a fresh process; run this experiment through the convlab command");
        var psi = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (!Path.GetFileNameWithoutExtension(host).Equals("ConvLab.Cli", StringComparison.OrdinalIgnoreCase) && !Path.GetFileNameWithoutExtension(host).Equals("convlab", StringComparison.OrdinalIgnoreCase))
            psi.ArgumentList.Add(entry);
        foreach (var a in new[] { "memory", c.Model, "--classes", c.Classes.ToString(CultureInfo.InvariantCulture), "--input", string.Join("x", c.Input),
            "--batch", c.Batch.ToString(CultureInfo.InvariantCulture), "--optimizer", c.Optimizer, "--measure", "--format", "json" })
            psi.ArgumentList.Add(a);
        psi.Environment["CONVLAB_THREADS"] = ctx.Settings.Threads.ToString(CultureInfo.InvariantCulture);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("experiment memory: could not start the measuring process");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            string said = (stdout.Result + stderr.Result).Trim();
            return (null, $"measurement failed: exit code {p.ExitCode}" + (said.Length > 0 ? ": " + said.Split('\n')[^1] : p.ExitCode == 137 ? " (killed, most likely out of memory)" : " (no output)"));
        }
        using var doc = JsonDocument.Parse(stdout.Result);
        return (doc.RootElement.GetProperty("memory").GetProperty("measured_bytes").GetInt64(), "");
    }

    private static (IDataset Train, string Description, int Channels) Data(ExperimentContext ctx, string? dir)
    {
        if (dir != null && Directory.Exists(dir) && (File.Exists(Path.Combine(dir, "data_batch_1.bin")) || Directory.Exists(Path.Combine(dir, "cifar-10-batches-bin"))))
            return (Cifar10.Load(dir, train: true), $"CIFAR-10 from {dir}", 3);
        var fm = ctx.FashionMnist();
        return (fm.Train, fm.Description, 1);
    }

    /// <summary>Bilinear resize of a (1, 28, 28) sample to (1, 32, 32), the CIFAR size the batch runs use.</summary>
    private sealed class Resize32 : Transform
    {
        public override Tensor Apply(Tensor sample, Generator generator) =>
            F.Interpolate(sample.Unsqueeze(0), size: [32, 32], mode: "bilinear", alignCorners: false).Squeeze(0);
    }

    /// <summary>Running training accuracy against wall time, sampled about 40 times per epoch.</summary>
    private sealed class Curve : ITrainingProgress
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        public List<double> Seconds { get; } = [];
        public List<double> Accuracy { get; } = [];
        private int _every = 1;

        public void EpochStarted(int epoch, int epochs, int steps) => _every = Math.Max(1, steps / 40);

        public void StepCompleted(StepProgress p)
        {
            if (p.Step % _every != 0 && p.Step != p.Steps) return;
            Seconds.Add(_clock.Elapsed.TotalSeconds);
            Accuracy.Add(p.Accuracy);
        }

        public void Evaluating(int epoch) { }

        public void EpochCompleted(EpochRecord record) { }
    }
}
