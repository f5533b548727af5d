using ConvLab.Data;
using ConvLab.Detection;
using ConvLab.Explain;
using ConvLab.Imaging;
using ConvLab.Models;
using ConvLab.NN;
using ConvLab.Training;

namespace ConvLab.Soak;

/// <summary>Settings shared by the loops.</summary>
public sealed record SoakSettings
{
    /// <summary>Folder of the Fashion-MNIST IDX files.</summary>
    public required string Data { get; init; }

    /// <summary>Training steps of the default model.</summary>
    public int TrainSteps { get; init; } = 10_000;

    /// <summary>Steps between samples of the training loop.</summary>
    public int TrainEvery { get; init; } = 500;

    /// <summary>Explanations (every method on one image, scored and drawn) of the explain loop.</summary>
    public int ExplainIterations { get; init; } = 300;

    /// <summary>Training steps of the detection loop.</summary>
    public int DetectSteps { get; init; } = 2_000;

    /// <summary>Predictions (one image, decoded, NMS, drawn) of the detection predict loop.</summary>
    public int PredictIterations { get; init; } = 3_000;

    /// <summary>Fraction of each loop treated as warm-up (left out of the slopes).</summary>
    public double WarmupFraction { get; init; } = 0.2;

    /// <summary>Seed of everything.</summary>
    public ulong Seed { get; init; }

    /// <summary>Samples per loop (the explain and detection loops sample this often; training every <see cref="TrainEvery"/>).</summary>
    public int SamplesPerLoop { get; init; } = 20;
}

/// <summary>
/// The soak loops: each runs a long stretch of one CLI job in process through the library's own code (the Trainer, the
/// explanation methods and scoring, the YOLO detector, the pictures) and samples memory on a fixed cadence.
/// </summary>
public static class Loops
{
    /// <summary>
    /// The default <c>convlab train</c> job (simple_cnn, Adam 1e-3, batch 128, cosine schedule, crop+flip augmentation,
    /// validation on the test set after each epoch) for <see cref="SoakSettings.TrainSteps"/> steps through the Trainer;
    /// the schedule spans the epochs those steps need. Memory is sampled from the Trainer's progress callback.
    /// </summary>
    public static (MemoryLog Log, Module Model) Train(SoakSettings s, TextWriter log)
    {
        var train = FashionMnist.Load(s.Data, true);
        var test = FashionMnist.Load(s.Data, false);
        var model = Zoo.Create("simple_cnn", 10, new Generator(s.Seed));
        var opt = new Adam(model.Parameters(), 1e-3);
        int batch = 128, stepsPerEpoch = (train.Count + batch - 1) / batch, epochs = (s.TrainSteps + stepsPerEpoch - 1) / stepsPerEpoch;
        var trainer = new Trainer(model, opt, new CosineAnnealingLR(opt, epochs), train, test, 10, new TrainerOptions
        {
            Epochs = epochs,
            BatchSize = batch,
            Seed = s.Seed,
            TrainTransform = new Compose(new RandomCrop([28, 28], padding: 2), new RandomHorizontalFlip()),
        });
        var memory = new MemoryLog("train", "training step of simple_cnn (batch 128)", (long)(s.TrainSteps * s.WarmupFraction));
        using var stop = new CancellationTokenSource();
        var progress = new Sampling(memory, s.TrainSteps, s.TrainEvery, stop, log);
        memory.Sample(0);
        try { trainer.Fit(progress, stop.Token); }
        catch (OperationCanceledException) when (stop.IsCancellationRequested) { }
        return (memory, model);
    }

    /// <summary>
    /// Repeated <c>convlab explain --method all --metrics deletion,insertion</c> on one test image: every method, its plane,
    /// deletion and insertion curves, an overlay per method and the grid, all in memory.
    /// </summary>
    public static MemoryLog Explain(SoakSettings s, Module model, TextWriter log)
    {
        var test = FashionMnist.Load(s.Data, false);
        var (image, label) = test.Get(0);
        var x = image.Unsqueeze(0);
        model.Eval();
        string layer = Attributions.DefaultLayer(model, x);
        var target = ExplainTarget.Class((int)label);
        var memory = new MemoryLog("explain", "explanation with every method, scored (deletion, insertion) and drawn", (long)(s.ExplainIterations * s.WarmupFraction));
        int every = Math.Max(1, s.ExplainIterations / s.SamplesPerLoop);
        memory.Sample(0);
        var methods = ExplainMethods.All.ToList();
        for (int i = 1; i <= s.ExplainIterations; i++)
        {
            var panels = new List<ExplainPanel>();
            foreach (var method in methods.ToArray())
            {
                Attribution attribution;
                try { attribution = ExplainMethods.Run(method, model, x, target, layer); }
                catch (ArgumentException e) when (i == 1)
                {
                    // As `--method all`: a method this network cannot support (CAM without GAP + linear) is skipped.
                    log.WriteLine($"explain: skipping {method.Name}: {e.Message}");
                    methods.Remove(method);
                    continue;
                }
                ExplainScoring.Score(ExplainMetric.Deletion | ExplainMetric.Insertion, method, attribution, model, x, (int)label);
                var panel = new ExplainPanel(method.Name, ExplainMethods.Plane(attribution), method.Signed);
                ExplainPictures.OverlayPng(image, panel);
                panels.Add(panel);
            }
            ExplainPictures.GridPng(image, panels);
            if (i % every == 0) Report(memory, memory.Sample(i), s.ExplainIterations, log);
        }
        return memory;
    }

    /// <summary>
    /// <c>convlab detect train</c>'s defaults (tiny YOLO width 8, 2,000 synthetic shapes, batch 16, sizes 96/128, Adam 2e-3 cosine,
    /// validation mAP on 200 held-out images per epoch) for <see cref="SoakSettings.DetectSteps"/> steps through the Trainer.
    /// </summary>
    public static (MemoryLog Log, YoloDetector Detector) DetectTrain(SoakSettings s, TextWriter log)
    {
        var train = new SyntheticShapes(2000, s.Seed, 128);
        var val = new SyntheticShapes(200, s.Seed + 0x5EED_0001UL, 128);
        var wh = DetectionData.BoxSizes(train);
        var a = AnchorKMeans.Fit(Tensor.FromArray(wh, wh.Length / 2, 2), 6, seed: s.Seed).Anchors.Float().ToArray();
        float[][] anchors = [a[6..12], a[0..6]];
        int classes = train.ClassNames.Count, batch = 16, stepsPerEpoch = (train.Count + batch - 1) / batch;
        int epochs = (s.DetectSteps + stepsPerEpoch - 1) / stepsPerEpoch;
        var model = new TinyYolo(classes, 8, generator: new Generator(s.Seed));
        var detector = new YoloDetector(model, anchors, TinyYolo.Strides, 128);
        var objective = new DetectionObjective(train, val, new YoloLoss(classes, anchors, TinyYolo.Strides),
            new DetectionObjectiveOptions { BatchSize = batch, Seed = s.Seed, TrainSizes = [96, 128], SizeEvery = 10, EvalSize = 128 },
            (_, d) => detector.Evaluate(d, batch));
        var opt = new Adam(model.Parameters(), 2e-3);
        var trainer = new Trainer(model, opt, new CosineAnnealingLR(opt, epochs), objective, new TrainerOptions { Epochs = epochs, BatchSize = batch, Seed = s.Seed });
        var memory = new MemoryLog("detect-train", "tiny YOLO training step (batch 16, 96/128 px)", (long)(s.DetectSteps * s.WarmupFraction));
        using var stop = new CancellationTokenSource();
        memory.Sample(0);
        try { trainer.Fit(new Sampling(memory, s.DetectSteps, Math.Max(1, s.DetectSteps / s.SamplesPerLoop), stop, log), stop.Token); }
        catch (OperationCanceledException) when (stop.IsCancellationRequested) { }
        return (memory, detector);
    }

    /// <summary>Repeated <c>convlab detect predict</c>: one held-out image through the detector (decode, NMS) and drawn with its boxes.</summary>
    public static MemoryLog DetectPredict(SoakSettings s, YoloDetector detector, TextWriter log)
    {
        var image = new SyntheticShapes(1, s.Seed + 0x5EED_0001UL, 128).Get(0).Image;
        var x = image.Unsqueeze(0);
        detector.Model.Eval();
        var memory = new MemoryLog("detect-predict", "prediction of one 128 px image, decoded, NMS and drawn", (long)(s.PredictIterations * s.WarmupFraction));
        int every = Math.Max(1, s.PredictIterations / s.SamplesPerLoop);
        memory.Sample(0);
        for (int i = 1; i <= s.PredictIterations; i++)
        {
            var found = detector.Predict(x, new PostProcessOptions { ScoreThreshold = 0.25, IouThreshold = 0.45 })[0];
            BoxDrawing.Png(image, [.. found.Select(b => new LabeledBox(b.X0, b.Y0, b.X1, b.Y1, $"{b.Label} {b.Score:F2}", b.Label))]);
            if (i % every == 0) Report(memory, memory.Sample(i), s.PredictIterations, log);
        }
        return memory;
    }

    internal static void Report(MemoryLog memory, MemorySample s, long total, TextWriter log) =>
        log.WriteLine($"{memory.Name} {s.Step}/{total}: heap {Mb(s.HeapBytes)} MB, committed {Mb(s.CommittedBytes)} MB, working set {Mb(s.WorkingSetBytes)} MB, " +
            $"allocated {Mb(s.AllocatedBytes)} MB, {s.Seconds:F0} s");

    internal static string Mb(double bytes) => (bytes / (1 << 20)).ToString("F1", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Samples every <c>every</c> steps of a Trainer run and cancels it after <c>steps</c>.</summary>
    private sealed class Sampling(MemoryLog memory, long steps, int every, CancellationTokenSource stop, TextWriter log) : ITrainingProgress
    {
        private long _done;

        public void EpochStarted(int epoch, int epochs, int stepsPerEpoch) { }

        public void StepCompleted(StepProgress progress)
        {
            if (stop.IsCancellationRequested) return;
            _done++;
            if (_done % every == 0 || _done == steps) Report(memory, memory.Sample(_done), steps, log);
            if (_done >= steps) stop.Cancel();
        }

        public void Evaluating(int epoch) { }

        public void EpochCompleted(EpochRecord record) =>
            log.WriteLine($"{memory.Name} epoch {record.Epoch}: train loss {record.TrainLoss:F4}, score {record.TrainAccuracy:F4}, validation {record.TestLoss:F4} / {record.TestAccuracy:F4}");
    }
}
