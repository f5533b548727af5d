using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using ConvLab.Detection;
using ConvLab.IO;
using ConvLab.Models;
using ConvLab.Training;
using Spectre.Console;

namespace ConvLab.Cli;

/// <summary>Everything that defines a detection run; stored in its checkpoint and in <c>detector.json</c>.</summary>
internal sealed record DetectConfig
{
    public string Data { get; init; } = "synthetic";
    public int Epochs { get; init; } = 6;
    public int BatchSize { get; init; } = 16;
    public double Lr { get; init; } = 2e-3;
    public ulong Seed { get; init; }
    public int Width { get; init; } = 8;
    public int ImageSize { get; init; } = 128;
    public int[] TrainSizes { get; init; } = [96, 128];
    public int SizeEvery { get; init; } = 10;
    public int TrainImages { get; init; } = 2000;
    public int ValImages { get; init; } = 200;
    public int Threads { get; init; }
    public string[] ClassNames { get; init; } = [];
    /// <summary>Anchors per scale (w, h pairs in pixels of <see cref="ImageSize"/>), strides 32 then 16; found by k-means when the run starts.</summary>
    public float[][] Anchors { get; init; } = [];
    /// <summary>The cosine schedule's T_max when it differs from <see cref="Epochs"/> (a resumed run stopped early; see ResumeSchedule).</summary>
    public int? ScheduleEpochs { get; init; }
}

/// <summary>
/// <c>convlab detect train | predict | eval</c>: trains the zoo's tiny YOLO on the synthetic shapes (or a YOLO-format folder)
/// through the library's Trainer, draws and prints detections of an image, and evaluates a run on its held-out split.
/// </summary>
internal static class DetectCommand
{
    private const string ConfigKey = "cli.detect_config", ConfigFile = "detector.json", PrCurveFile = "pr_curve.png";

    public static Command Create()
    {
        var cmd = new Command("detect", "Train, run and evaluate a YOLO detector (tiny YOLO, two scales) on synthetic shapes or a YOLO-format folder.");
        cmd.Subcommands.Add(TrainCmd());
        cmd.Subcommands.Add(PredictCmd());
        cmd.Subcommands.Add(EvalCmd());
        return cmd;
    }

    private static Command TrainCmd()
    {
        var data = new Option<string?>("--data") { Description = "'synthetic' (default) or a folder of images with YOLO label files (train/ and val/ sub-folders, or one folder of which the last 10 % is held out)" };
        var epochs = new Option<int?>("--epochs") { Description = "Epochs (default 6; with --resume the new total, at most the planned epochs, which the cosine schedule keeps)" };
        var outDir = new Option<string?>("--out") { Description = "Run folder (default runs/<yyyyMMdd-HHmmss>)" };
        var resume = new Option<string?>("--resume") { Description = "Continue a detection run (its folder or checkpoint.ckpt) where its last epoch ended" };
        var batch = new Option<int?>("--batch-size") { Description = "Images per batch (default 16)" };
        var lr = new Option<double?>("--lr") { Description = "Adam learning rate, cosine schedule (default 2e-3)" };
        var seed = new Option<ulong?>("--seed") { Description = "Seed of data, initialisation, order, flips and multi-scale sizes (default 0)" };
        var width = new Option<int?>("--width") { Description = "Base width of the tiny YOLO (default 8)" };
        var size = new Option<int?>("--image-size") { Description = "Input side for evaluation and prediction, a multiple of 32 (default 128)" };
        var sizes = new Option<string?>("--train-sizes") { Description = "Multi-scale training sides, comma-separated multiples of 32 (default 96,128)" };
        var count = new Option<int?>("--train-images") { Description = "Synthetic training images (default 2000)" };
        var valCount = new Option<int?>("--val-images") { Description = "Synthetic held-out images (default 200)" };
        var threads = new Option<int?>("--threads") { Description = "Threads for the kernels (default: CONVLAB_THREADS or all cores)" };
        var quick = new Option<bool>("--quick") { Description = "A tiny run for smoke tests (32 images of 64 px, width 4, 1 epoch) unless the options say otherwise" };
        var cmd = new Command("train", "Train the tiny YOLO and write a run folder (checkpoint, model.safetensors, detector.json, metrics.json, pr_curve.png).")
        {
            data, epochs, outDir, resume, batch, lr, seed, width, size, sizes, count, valCount, threads, quick,
        };
        cmd.SetAction(pr =>
        {
            var console = TrainCommand.Console(Console.Out);
            try
            {
                var d = pr.GetValue(quick) ? new DetectConfig { Epochs = 1, Width = 4, ImageSize = 64, TrainSizes = [64], TrainImages = 32, ValImages = 16, BatchSize = 8 } : new DetectConfig();
                var config = d with
                {
                    Data = pr.GetValue(data) ?? d.Data,
                    Epochs = pr.GetValue(epochs) ?? d.Epochs,
                    BatchSize = pr.GetValue(batch) ?? d.BatchSize,
                    Lr = pr.GetValue(lr) ?? d.Lr,
                    Seed = pr.GetValue(seed) ?? d.Seed,
                    Width = pr.GetValue(width) ?? d.Width,
                    ImageSize = pr.GetValue(size) ?? d.ImageSize,
                    TrainSizes = pr.GetValue(sizes) is { } s ? ParseSizes(s) : d.TrainSizes,
                    TrainImages = pr.GetValue(count) ?? d.TrainImages,
                    ValImages = pr.GetValue(valCount) ?? d.ValImages,
                };
                return Train(console, config, pr.GetValue(outDir), pr.GetValue(resume), pr.GetValue(epochs), pr.GetValue(threads));
            }
            catch (Exception e) when (e is ArgumentException or InvalidDataException or FileNotFoundException or DirectoryNotFoundException or InvalidOperationException)
            {
                return TrainCommand.Fail(Console.Out, e.Message);
            }
        });
        return cmd;
    }

    private static int[] ParseSizes(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new ArgumentException("detect train: --train-sizes is empty");
        return [.. parts.Select(p => int.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v
            : throw new ArgumentException($"detect train: --train-sizes: '{p}' is not an integer"))];
    }

    private static void Validate(DetectConfig c)
    {
        if (c.Epochs < 1) throw new ArgumentException($"detect train: --epochs must be at least 1, got {c.Epochs}");
        if (c.BatchSize < 1) throw new ArgumentException($"detect train: --batch-size must be at least 1, got {c.BatchSize}");
        if (!(c.Lr > 0) || double.IsInfinity(c.Lr)) throw new ArgumentException($"detect train: --lr must be a positive number, got {c.Lr}");
        if (c.Width < 1) throw new ArgumentException($"detect train: --width must be at least 1, got {c.Width}");
        if (c.TrainImages < 1 || c.ValImages < 1) throw new ArgumentException("detect train: --train-images and --val-images must be at least 1");
        if (c.ImageSize <= 0 || c.ImageSize % 32 != 0) throw new ArgumentException($"detect train: --image-size {c.ImageSize} is not a positive multiple of 32 (YOLOv3 downsamples by 32)");
        foreach (int s in c.TrainSizes)
            if (s <= 0 || s % 32 != 0) throw new ArgumentException($"detect train: --train-sizes: {s} is not a positive multiple of 32 (YOLOv3 downsamples by 32)");
    }

    /// <summary>The training and held-out splits a config names.</summary>
    internal static (IDetectionDataset Train, IDetectionDataset Val, string Description) LoadData(DetectConfig c)
    {
        if (c.Data == "synthetic")
            return (new SyntheticShapes(c.TrainImages, c.Seed, c.ImageSize), new SyntheticShapes(c.ValImages, c.Seed + 0x5EED_0001UL, c.ImageSize),
                $"synthetic shapes, seed {c.Seed}");
        if (!Directory.Exists(c.Data)) throw new ArgumentException($"detect: --data '{c.Data}' is neither 'synthetic' nor an existing folder");
        string train = Path.Combine(c.Data, "train"), val = Path.Combine(c.Data, "val");
        if (Directory.Exists(train) && Directory.Exists(val))
            return (new Imaging.YoloFolderDataset(train, c.ImageSize), new Imaging.YoloFolderDataset(val, c.ImageSize), $"YOLO folder {c.Data} (train/, val/)");
        var all = new Imaging.YoloFolderDataset(c.Data, c.ImageSize);
        if (all.Count < 2) throw new ArgumentException($"detect: {c.Data} has {all.Count} image; at least 2 are needed to hold one out");
        int held = Math.Max(1, all.Count / 10);
        return (new DetectionSubset(all, Enumerable.Range(0, all.Count - held)), new DetectionSubset(all, Enumerable.Range(all.Count - held, held)),
            $"YOLO folder {c.Data} (last {held} images held out)");
    }

    /// <summary>Six k-means anchors of the training boxes: the three largest for stride 32, the three smallest for stride 16.</summary>
    private static float[][] FitAnchors(IDetectionDataset train, ulong seed)
    {
        var wh = DetectionData.BoxSizes(train);
        if (wh.Length / 2 < 6) throw new ArgumentException($"detect train: the training set has {wh.Length / 2} boxes; 6 anchors need at least 6");
        var a = AnchorKMeans.Fit(Tensor.FromArray(wh, wh.Length / 2, 2), 6, seed: seed).Anchors.Float().ToArray();
        return [a[6..12], a[0..6]];
    }

    private static int Train(IAnsiConsole console, DetectConfig config, string? outDir, string? resume, int? epochsOverride, int? threads)
    {
        if (threads is int t) Threads.Count = t >= 1 ? t : throw new ArgumentException($"detect train: --threads must be at least 1, got {t}");
        Checkpoint? checkpoint = null;
        string? checkpointPath = null;
        if (resume != null)
        {
            checkpointPath = Directory.Exists(resume) ? Path.Combine(resume, RunFolder.CheckpointFile) : resume;
            if (!File.Exists(checkpointPath)) throw new ArgumentException($"detect train: --resume: {checkpointPath} not found");
            checkpoint = CliPaths.Read("detect train: --resume", () => Checkpoint.Load(checkpointPath));
            var saved = checkpoint.Meta.TryGetValue(ConfigKey, out var json) ? JsonSerializer.Deserialize<DetectConfig>(json) : null;
            if (saved == null) throw new InvalidDataException($"detect train: --resume: {Path.GetFileName(checkpointPath)}: not a checkpoint of convlab detect train (no '{ConfigKey}')");
            var (total, tMax, note) = ResumeSchedule.Plan("detect train", saved.Epochs, saved.ScheduleEpochs, epochsOverride, cosine: true);
            config = saved with { Epochs = total, ScheduleEpochs = tMax == total ? null : tMax }; // null when equal: a resumed run's config stays the uninterrupted one's
            if (note != null) console.MarkupLineInterpolated($"{note}");
            outDir ??= Path.GetDirectoryName(Path.GetFullPath(checkpointPath));
        }
        Validate(config);
        CliPaths.OutputFolder("detect train: --out", outDir);
        outDir ??= RunFolder.NewDefault();
        var (train, val, description) = LoadData(config);
        if (config.Anchors.Length == 0) config = config with { Anchors = FitAnchors(train, config.Seed) };
        config = config with { ClassNames = [.. train.ClassNames], Threads = Threads.Count };
        console.MarkupLineInterpolated($"data: {description}: {train.Count:N0} training / {val.Count:N0} held-out images, classes {string.Join(", ", config.ClassNames)}");
        console.MarkupLineInterpolated($"anchors (k-means of the training boxes): stride 32 {Pairs(config.Anchors[0])}, stride 16 {Pairs(config.Anchors[1])}");

        var model = new TinyYolo(config.ClassNames.Length, config.Width, generator: new Generator(config.Seed));
        var loss = new YoloLoss(config.ClassNames.Length, config.Anchors, TinyYolo.Strides);
        var detector = new YoloDetector(model, config.Anchors, TinyYolo.Strides, config.ImageSize);
        var objective = new DetectionObjective(train, val, loss, new DetectionObjectiveOptions
        {
            BatchSize = config.BatchSize, Seed = config.Seed, TrainSizes = config.TrainSizes, SizeEvery = config.SizeEvery, EvalSize = config.ImageSize,
        }, (_, d) => detector.Evaluate(d, config.BatchSize));
        var opt = new Adam(model.Parameters(), config.Lr);
        var scheduler = new CosineAnnealingLR(opt, config.ScheduleEpochs ?? config.Epochs);
        Directory.CreateDirectory(outDir);
        var trainer = new Trainer(model, opt, scheduler, objective, new TrainerOptions
        {
            Epochs = config.Epochs, BatchSize = config.BatchSize, Seed = config.Seed,
            CheckpointPath = Path.Combine(outDir, RunFolder.CheckpointFile),
            CheckpointMeta = new Dictionary<string, string> { [ConfigKey] = JsonSerializer.Serialize(config) },
        });
        if (checkpoint != null)
        {
            trainer.LoadCheckpoint(checkpoint, checkpointPath!);
            console.MarkupLineInterpolated($"resumed {checkpointPath} after epoch {trainer.EpochsDone} of {config.Epochs}");
        }
        console.MarkupLineInterpolated($"model: tiny_yolo width {config.Width} ({model.ParameterCount():N0} parameters), adam lr {config.Lr} cosine, batch {config.BatchSize}, {config.Epochs} epochs, train sizes {string.Join("/", config.TrainSizes)}, eval {config.ImageSize}, {Threads.Count} threads");
        console.MarkupLineInterpolated($"run folder: {outDir}");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        try { TrainProgress.Run(console, p => trainer.Fit(p), score: "recall", test: "val", testScore: "mAP50"); }
        catch (TrainingDivergedException e)
        {
            console.MarkupLineInterpolated($"[red]{e.Message}[/]");
            return 2;
        }
        var eval = objective.LastEvaluation ?? detector.Evaluate(val, config.BatchSize);
        double seconds = clock.Elapsed.TotalSeconds;
        WriteRun(outDir, config, model, eval, trainer.History, seconds, description, train.Count);
        console.MarkupLineInterpolated($"[bold]held-out mAP@0.5 {eval.Map50:F4}[/], mAP@[[.5:.95]] {eval.Map50To95:F4} on {eval.Images:N0} images ({eval.GroundTruth:N0} boxes) after {trainer.EpochsDone} epochs, {seconds:F0} s");
        console.MarkupLineInterpolated($"wrote {Path.Combine(outDir, RunFolder.MetricsJson)}, {ConfigFile}, {RunFolder.Weights}, {RunFolder.CheckpointFile}, {PrCurveFile}");
        return 0;
    }

    private static string Pairs(float[] a) =>
        string.Join(" ", Enumerable.Range(0, a.Length / 2).Select(i => string.Create(CultureInfo.InvariantCulture, $"{a[2 * i]:F1}x{a[2 * i + 1]:F1}")));

    private static void WriteRun(string dir, DetectConfig config, TinyYolo model, DetectionEvaluation eval, IReadOnlyList<EpochRecord> history,
        double seconds, string description, int trainImages)
    {
        var metrics = new Dictionary<string, object?>
        {
            ["model"] = "tiny_yolo",
            ["data"] = description,
            ["train_images"] = trainImages,
            ["val_images"] = eval.Images,
            ["val_boxes"] = eval.GroundTruth,
            ["epochs"] = history.Count,
            ["seconds"] = seconds,
            ["threads"] = config.Threads,
            ["map50"] = eval.Map50,
            ["map50_95"] = eval.Map50To95,
            ["coco_map50"] = eval.CocoMap50,
            ["per_class"] = config.ClassNames.Select((n, c) => new Dictionary<string, object?>
            {
                ["class"] = n, ["ap50"] = RunFolder.Finite(eval.Ap50PerClass[c]), ["ap50_95"] = RunFolder.Finite(eval.ApPerClass[c]),
            }).ToArray(),
            ["history"] = history.Select(h => new Dictionary<string, object?>
            {
                ["epoch"] = h.Epoch, ["train_loss"] = h.TrainLoss, ["train_recall"] = RunFolder.Finite(h.TrainAccuracy),
                ["val_loss"] = RunFolder.Finite(h.TestLoss), ["val_map50"] = RunFolder.Finite(h.TestAccuracy),
                ["seconds"] = h.Seconds, ["images_per_second"] = h.ImagesPerSecond, ["learning_rate"] = h.LearningRate,
            }).ToArray(),
        };
        AtomicFile.Write(Path.Combine(dir, RunFolder.MetricsJson), s => JsonSerializer.Serialize(s, metrics, RunFolder.Json));
        AtomicFile.Write(Path.Combine(dir, ConfigFile), s => JsonSerializer.Serialize(s, config, RunFolder.Json));
        model.SaveSafeTensors(Path.Combine(dir, RunFolder.Weights), new Dictionary<string, string>
        {
            ["model"] = "tiny_yolo",
            ["num_classes"] = config.ClassNames.Length.ToString(CultureInfo.InvariantCulture),
            ["class_names"] = JsonSerializer.Serialize(config.ClassNames),
        });
        var png = Imaging.DetectionPlots.PrCurvesPng(eval.Curves, config.ClassNames, eval.Ap50PerClass);
        AtomicFile.Write(Path.Combine(dir, PrCurveFile), s => s.Write(png));
    }

    /// <summary>A run's config and its trained detector (evaluation mode).</summary>
    private static (DetectConfig Config, YoloDetector Detector) LoadRun(string runDir)
    {
        if (!Directory.Exists(runDir)) throw new ArgumentException($"detect: run folder '{runDir}' does not exist");
        string path = Path.Combine(runDir, ConfigFile);
        if (!File.Exists(path)) throw new ArgumentException($"{path}: not found; is '{runDir}' a run folder written by convlab detect train?");
        DetectConfig config;
        try { config = JsonSerializer.Deserialize<DetectConfig>(File.ReadAllText(path), RunFolder.Json) ?? throw new InvalidDataException($"{path}: empty"); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a detector description: {e.Message}", e); }
        if (config.ClassNames.Length == 0 || config.Anchors.Length != 2) throw new InvalidDataException($"{path}: no class names or not two anchor sets");
        var model = new TinyYolo(config.ClassNames.Length, config.Width);
        string weights = Path.Combine(runDir, RunFolder.Weights);
        if (!File.Exists(weights)) throw new ArgumentException($"{weights}: not found; the run folder has no weights");
        try { model.LoadSafeTensors(weights); }
        catch (ArgumentException e) { throw new InvalidDataException($"{weights}: does not fit tiny_yolo width {config.Width} with {config.ClassNames.Length} classes: {e.Message}", e); }
        model.Eval();
        return (config, new YoloDetector(model, config.Anchors, TinyYolo.Strides, config.ImageSize));
    }

    private static Command PredictCmd()
    {
        var run = new Argument<string>("run") { Description = "Run folder written by convlab detect train" };
        var image = new Option<string>("--image") { Description = "Image file (PNG/JPEG/BMP/WebP)", Required = true };
        var outFile = new Option<string?>("--out") { Description = "PNG to write with the boxes drawn (default: RUN/<image name>.detections.png)" };
        var score = new Option<double>("--score") { Description = "Score threshold (default 0.25)", DefaultValueFactory = _ => 0.25 };
        var iou = new Option<double>("--iou") { Description = "NMS IoU threshold (default 0.45)", DefaultValueFactory = _ => 0.45 };
        var cmd = new Command("predict", "Detect objects in an image with a trained run: prints the boxes and draws them with labels and scores on a PNG.") { run, image, outFile, score, iou };
        cmd.SetAction(pr =>
        {
            var console = TrainCommand.Console(Console.Out);
            try
            {
                string runDir = pr.GetValue(run)!, file = pr.GetValue(image)!;
                double s = pr.GetValue(score), u = pr.GetValue(iou);
                if (!(s is >= 0 and <= 1)) throw new ArgumentException($"detect predict: --score must be in [0, 1], got {s}");
                if (!(u is >= 0 and <= 1)) throw new ArgumentException($"detect predict: --iou must be in [0, 1], got {u}");
                if (!File.Exists(file)) throw new ArgumentException($"detect predict: --image '{file}' not found");
                var (config, detector) = LoadRun(runDir);
                var original = Imaging.ImageFile.Load(file, 3);
                int h = original.Shape[1], w = original.Shape[2];
                var input = Imaging.ImageFile.Load(file, 3, config.ImageSize, config.ImageSize).Unsqueeze(0);
                var found = detector.Predict(input, new PostProcessOptions { ScoreThreshold = s, IouThreshold = u })[0];
                float sx = (float)w / config.ImageSize, sy = (float)h / config.ImageSize;
                var boxes = found.Select(d => new DetectedBox(d.X0 * sx, d.Y0 * sy, d.X1 * sx, d.Y1 * sy, d.Score, d.Label)).ToList();
                string target = pr.GetValue(outFile) ?? Path.Combine(runDir, Path.GetFileNameWithoutExtension(file) + ".detections.png");
                Imaging.BoxDrawing.Write(target, original, [.. boxes.Select(b => new Imaging.LabeledBox(b.X0, b.Y0, b.X1, b.Y1,
                    string.Create(CultureInfo.InvariantCulture, $"{config.ClassNames[b.Label]} {b.Score:F2}"), b.Label))]);
                var table = new Table().Title(Markup.Escape($"{file}: {boxes.Count} detections (score > {s.ToString(CultureInfo.InvariantCulture)})"))
                    .AddColumns("class", "score", "x0", "y0", "x1", "y1");
                foreach (var b in boxes)
                    table.AddRow(Markup.Escape(config.ClassNames[b.Label]), F(b.Score, "F3"), F(b.X0, "F1"), F(b.Y0, "F1"), F(b.X1, "F1"), F(b.Y1, "F1"));
                console.Write(table);
                console.MarkupLineInterpolated($"wrote {target}");
                return 0;
            }
            catch (Exception e) when (e is ArgumentException or InvalidDataException or FileNotFoundException or NotSupportedException)
            {
                return TrainCommand.Fail(Console.Out, e.Message);
            }
        });
        return cmd;
    }

    private static Command EvalCmd()
    {
        var run = new Argument<string>("run") { Description = "Run folder written by convlab detect train" };
        var data = new Option<string?>("--data") { Description = "Evaluate on this YOLO folder instead of the run's held-out split" };
        var cmd = new Command("eval", "Evaluate a trained run on its held-out split (or --data): mAP@0.5, mAP@[.5:.95] and AP per class.") { run, data };
        cmd.SetAction(pr =>
        {
            var console = TrainCommand.Console(Console.Out);
            try
            {
                if (pr.GetValue(data) is { } given && !Directory.Exists(given)) throw new ArgumentException($"detect eval: --data folder '{given}' does not exist");
                var (config, detector) = LoadRun(pr.GetValue(run)!);
                IDetectionDataset val;
                if (pr.GetValue(data) is { } dir)
                {
                    var folder = new Imaging.YoloFolderDataset(dir, config.ImageSize);
                    if (folder.ClassNames.Count > config.ClassNames.Length)
                        throw new ArgumentException($"detect eval: {dir} has {folder.ClassNames.Count} classes but the run was trained on {config.ClassNames.Length}");
                    val = folder;
                }
                else val = LoadData(config).Val;
                var e = detector.Evaluate(val, config.BatchSize);
                var table = new Table().Title(Markup.Escape($"{val.Count} images, {e.GroundTruth} boxes, {e.Detections} detections")).AddColumns("class", "AP@0.5", "AP@[[.5:.95]]");
                for (int c = 0; c < config.ClassNames.Length; c++)
                    table.AddRow(Markup.Escape(config.ClassNames[c]), F(e.Ap50PerClass[c], "F4"), F(e.ApPerClass[c], "F4"));
                console.Write(table);
                console.MarkupLineInterpolated($"[bold]mAP@0.5 {e.Map50:F4}[/], mAP@[[.5:.95]] {e.Map50To95:F4} (COCO 101-point mAP@0.5 {e.CocoMap50:F4})");
                return 0;
            }
            catch (Exception e) when (e is ArgumentException or InvalidDataException or FileNotFoundException or DirectoryNotFoundException)
            {
                return TrainCommand.Fail(Console.Out, e.Message);
            }
        });
        return cmd;
    }

    private static string F(double v, string format) => double.IsFinite(v) ? v.ToString(format, CultureInfo.InvariantCulture) : "-";
}
