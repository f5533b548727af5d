using System.Globalization;
using System.Text.Json.Nodes;
using ConvLab.Imaging;

namespace ConvLab.Experiments.Claims;

/// <summary><c>convlab experiment deformable</c>: deformable vs plain later layers on geometrically deformed Fashion-MNIST.</summary>
public sealed class DeformableExperiment : IExperiment
{
    /// <inheritdoc/>
    public string Name => "deformable";

    /// <inheritdoc/>
    public string Description => "Deformable convolution (DCN) vs plain convolution in the later layers on deformed Fashion-MNIST: accuracy, offsets per epoch, learned sampling locations, step time and memory";

    /// <inheritdoc/>
    public void Run(ExperimentContext context)
    {
        bool quick = context.Quick;
        string deform = context.Option("deform") ?? "affine";
        _ = DeformableStudy.Deformation(deform); // an unknown name fails before any data is read
        string maskText = context.Option("mask") ?? "false";
        bool modulated = maskText switch
        {
            "true" => true,
            "false" => false,
            _ => throw new ArgumentException($"experiment deformable: --set mask={maskText} must be true (DCN v2, a learned modulation mask) or false (v1)"),
        };
        var s = new DeformableSettings(
            Deform: deform,
            TrainImages: context.IntOption("train", quick ? 256 : 10000, 32, 60000),
            TestImages: context.IntOption("test", quick ? 128 : 2000, 16, 10000),
            ProbeImages: quick ? 64 : 500,
            Epochs: context.IntOption("epochs", quick ? 1 : 5, 1, 100),
            BatchSize: quick ? 32 : 64,
            Width: context.IntOption("width", quick ? 4 : 16, 1, 128),
            Lr: context.DoubleOption("lr", 2e-3, 1e-6, 1),
            OffsetLrFactor: context.DoubleOption("offset_lr", 0.1, 0, 10),
            OffsetL2: context.DoubleOption("offset_l2", 0, 0, 100),
            Modulated: modulated,
            TimingReps: quick ? 3 : 25);
        _ = context.Option("data"); // FashionMnist() honours --data; reading it marks it as used
        var data = context.FashionMnist();
        var o = DeformableStudy.Run(data, s, context.Seed, context.Log);
        WriteResults(context, s, o);
        WriteFigures(context, s, o, data);
        WriteReport(context, s, o, data);
    }

    private static JsonArray Array(IEnumerable<double> values) => [.. values.Select(v => (JsonNode)JsonValue.Create(v))];

    private static JsonObject Variant(DeformableVariant v) => new()
    {
        ["params"] = v.Params,
        ["test_accuracy"] = v.TestAccuracy,
        ["test_accuracy_per_epoch"] = Array(v.History.Select(e => e.TestAccuracy)),
        ["train_loss_per_epoch"] = Array(v.History.Select(e => e.TrainLoss)),
        ["epoch_seconds"] = Array(v.History.Select(e => e.Seconds)),
        ["allocated_bytes_per_step"] = v.BytesAllocatedPerStep,
    };

    private static JsonArray Points(IEnumerable<(double X, double Y)> points) => [.. points.Select(p => (JsonNode)new JsonArray(p.X, p.Y))];

    private static void WriteResults(ExperimentContext context, DeformableSettings s, DeformableOutcome o)
    {
        var r = context.Results;
        r["deform"] = s.Deform;
        r["train_images"] = s.TrainImages;
        r["test_images"] = s.TestImages;
        r["epochs"] = s.Epochs;
        r["batch_size"] = s.BatchSize;
        r["width"] = s.Width;
        r["lr"] = s.Lr;
        r["offset_lr_factor"] = s.OffsetLrFactor;
        r["offset_l2"] = s.OffsetL2;
        r["modulated"] = s.Modulated;
        r["plain"] = Variant(o.Plain);
        var d = Variant(o.Deformable);
        d["offset_params"] = o.OffsetParams;
        r["deformable"] = d;
        r["first_forward_max_abs_diff"] = o.FirstForwardMaxAbsDiff;
        r["first_forward_max_abs_logit"] = o.FirstForwardMaxAbs;
        r["offsets_per_epoch"] = new JsonArray([.. o.Offsets.Select(x => (JsonNode)new JsonObject
            { ["epoch"] = x.Epoch, ["layer"] = x.Layer, ["mean_abs_offset"] = x.MeanAbs, ["mean_offset_length"] = x.MeanNorm, ["max_offset_length"] = x.MaxNorm })]);
        var c = o.Cost;
        r["step_batch"] = c.Batch;
        r["step_reps"] = c.Reps;
        r["step_time_plain_ms"] = c.PlainSeconds * 1e3;
        r["step_time_deformable_ms"] = c.DeformSeconds * 1e3;
        r["step_time_ratio"] = c.TimeRatio;
        r["step_time_ratio_median_of_pairs"] = c.MedianPairRatio;
        r["step_cpu_plain_ms"] = c.PlainCpuSeconds * 1e3;
        r["step_cpu_deformable_ms"] = c.DeformCpuSeconds * 1e3;
        r["step_cpu_ratio"] = c.CpuRatio;
        r["step_memory_plain_bytes"] = c.PlainMemory.StepBytes;
        r["step_memory_deformable_bytes"] = c.DeformMemory.StepBytes;
        r["step_memory_ratio"] = c.MemoryRatio;
        r["step_memory_with_scratch_ratio"] = (double)c.DeformMemory.TotalBytes / c.PlainMemory.TotalBytes;
        r["allocated_per_step_ratio"] = o.Deformable.BytesAllocatedPerStep / o.Plain.BytesAllocatedPerStep;
        r["epoch_time_ratio"] = EpochRatio(o);
        r["sampling"] = new JsonArray([.. o.Samples.Select((x, i) => (JsonNode)new JsonObject
        {
            ["test_index"] = i, ["label"] = x.Label, ["unit"] = new JsonArray(x.Deformable.UnitX, x.Deformable.UnitY),
            ["plain_last_layer"] = Points(x.Plain.Last), ["deformable_last_layer"] = Points(x.Deformable.Last),
        })]);
    }

    /// <summary>Median over epochs of the deformable net's training seconds over the plain net's.</summary>
    private static double EpochRatio(DeformableOutcome o) =>
        DeformableStudy.Median([.. o.Deformable.History.Zip(o.Plain.History, (d, p) => d.Seconds / p.Seconds)]);

    private static void WriteFigures(ExperimentContext context, DeformableSettings s, DeformableOutcome o, ExperimentData data)
    {
        var transform = DeformableStudy.Deformation(s.Deform).Transform;
        var deformed = new DeformableStudy.Deformed(data.Train, transform, context.Seed + 100); // the training set's own deformation
        var examples = new List<Tile>();
        for (int i = 0; i < 6; i++)
        {
            var (x, y) = data.Train.Get(i);
            examples.Add(new Tile($"{ClassName(data, y)}", x));
            examples.Add(new Tile($"{s.Deform}", deformed.Get(i).Input));
        }
        context.Figure("deformed_data.png", Charts.ImageGrid(examples, columns: 4, title: $"training images before and after the '{s.Deform}' deformation", scaling: TileScaling.Clip01));

        var epochs = o.Plain.History.Select(e => (double)e.Epoch).ToList();
        context.Figure("accuracy.png", Charts.Line("test accuracy per epoch (deformed test images)", "epoch", "test accuracy",
            [new Series($"plain ({o.Plain.Params:N0} params)", epochs, [.. o.Plain.History.Select(e => e.TestAccuracy)]),
             new Series($"deformable ({o.Deformable.Params:N0} params)", epochs, [.. o.Deformable.History.Select(e => e.TestAccuracy)])]));

        var layers = o.Offsets.Select(x => x.Layer).Distinct().ToList();
        context.Figure("offsets.png", Charts.Line("offset magnitude per epoch (probe test images; epoch 0 = initialisation)", "epoch", "mean |offset| (input pixels of the layer)",
            [.. layers.Select(l => new Series(l, [.. o.Offsets.Where(x => x.Layer == l).Select(x => (double)x.Epoch)], [.. o.Offsets.Where(x => x.Layer == l).Select(x => x.MeanAbs)]))]));

        var tiles = new List<Tile>();
        foreach (var (image, label, plain, deform) in o.Samples)
        {
            tiles.Add(new Tile($"{ClassName(data, label)}: plain", image, Marks(plain)));
            tiles.Add(new Tile($"{ClassName(data, label)}: deformable", image, Marks(deform)));
        }
        context.Figure("sampling_locations.png", Charts.ImageGrid(tiles, columns: 4, tileSize: 224, scaling: TileScaling.Clip01,
            title: "most active conv3 unit: its 9 taps (orange), conv2's 81 taps (blue), centre (green)"));

        var c = o.Cost;
        context.Figure("step_cost.png", Charts.Bars("deformable / plain, per training step (same process)", "ratio",
            ["step time (median)", "CPU time per step", "live step memory", "allocated per step", "epoch time"],
            [("deformable / plain", [c.TimeRatio, c.CpuRatio, c.MemoryRatio, o.Deformable.BytesAllocatedPerStep / o.Plain.BytesAllocatedPerStep, EpochRatio(o)])]));
    }

    private static List<TileMark> Marks(SamplingPoints p) =>
        [.. p.Second.Select(q => new TileMark(q.X, q.Y, 0, 2.5f)), .. p.Last.Select(q => new TileMark(q.X, q.Y, 1, 4f)), new TileMark(p.UnitX, p.UnitY, 2, 4f)];

    private static string ClassName(ExperimentData data, long label) => label >= 0 && label < data.ClassNames.Count ? data.ClassNames[(int)label] : label.ToString(CultureInfo.InvariantCulture);

    private static void WriteReport(ExperimentContext context, DeformableSettings s, DeformableOutcome o, ExperimentData data)
    {
        var inv = CultureInfo.InvariantCulture;
        string N(long v) => v.ToString("N0", inv);
        var rep = context.Report;
        var c = o.Cost;
        rep.Heading("Deformable vs plain convolution");
        rep.Paragraph($"Data: {data.Description}; the first {N(Math.Min(s.TrainImages, data.Train.Count))} training and {N(Math.Min(s.TestImages, data.Test.Count))} test images, " +
            $"each deformed once by '{s.Deform}' ({DeformableStudy.Deformation(s.Deform).Description}) with a generator seeded from the run's seed and the image index, so both nets see the same images.");
        rep.Paragraph($"Nets: conv1 ({s.Width.ToString(inv)}) → conv2 ({(2 * s.Width).ToString(inv)}) → conv3 ({(2 * s.Width).ToString(inv)}), 3x3 each with batch norm and ReLU, 2x2 max pools after conv1 and conv2, " +
            $"global average pooling and a linear layer. In the deformable net conv2 and conv3 are DeformConv2d ({(s.Modulated ? "v2, with a sigmoid modulation mask" : "v1, no mask")}), " +
            $"whose offset branch is a 3x3 convolution predicting 2·3·3 = 18 offsets per position, initialised to zero. " +
            $"Parameters: plain {N(o.Plain.Params)}, deformable {N(o.Deformable.Params)} (offset branches {N(o.OffsetParams)}, i.e. {Report.Percent((double)(o.Deformable.Params - o.Plain.Params) / o.Plain.Params)} more).");
        rep.Paragraph($"Both start from the same weights (the plain net's state dict loaded into the deformable one; only the conv_offset keys differ). Before training their logits on {N(Math.Min(s.ProbeImages, s.TestImages))} test images differ by at most " +
            $"{Report.Num(o.FirstForwardMaxAbsDiff, 3)} (largest |logit| {Report.Num(o.FirstForwardMaxAbs, 3)}): " +
            (s.Modulated ? "zero offsets sample the plain grid, but a fresh v2 layer's mask is sigmoid(0) = 0.5, which halves each deformable layer's response."
                         : "zero offsets make a deformable convolution a plain one."));
        rep.Paragraph($"Training: the library's Trainer, {s.Epochs.ToString(inv)} epoch(s), batch {s.BatchSize.ToString(inv)}, Adam at {Report.Num(s.Lr)} with the offset branches in their own parameter group at " +
            $"{Report.Num(s.OffsetLrFactor)}x that rate ({Report.Num(s.Lr * s.OffsetLrFactor)}); " +
            (s.OffsetL2 > 0 ? $"L2 penalty {Report.Num(s.OffsetL2)} · Σ_layers mean(offset²) added to the loss." : "no penalty on the offsets (--set offset_l2=λ adds λ · Σ_layers mean(offset²))."));
        rep.Table(["net", "parameters", "test accuracy", "last train loss", "median epoch time (s)"],
            new[] { o.Plain, o.Deformable }.Select(v => (IReadOnlyList<string>)[v.Name, N(v.Params), Report.Percent(v.TestAccuracy, 2),
                Report.Num(v.History[^1].TrainLoss), Report.Num(DeformableStudy.Median([.. v.History.Select(e => e.Seconds)]), 3)]));
        double gain = o.Deformable.TestAccuracy - o.Plain.TestAccuracy;
        rep.Paragraph($"On the deformed test images the deformable net scores {Report.Percent(o.Deformable.TestAccuracy, 2)} against {Report.Percent(o.Plain.TestAccuracy, 2)}: " +
            $"{Report.Num(Math.Abs(gain) * 100, 3)} points {(gain >= 0 ? "higher" : "lower")} (one seed, {N(Math.Min(s.TestImages, data.Test.Count))} test images).");
        rep.Figure("deformed_data.png", "training images and their deformation");
        rep.Figure("accuracy.png", "test accuracy per epoch");

        rep.Heading("Offsets per epoch");
        rep.Paragraph($"Mean |offset| (over dy and dx) and mean offset length, in pixels of the layer's input grid (conv2: 14x14, conv3: 7x7), on {N(Math.Min(s.ProbeImages, s.TestImages))} test images after each epoch.");
        rep.Table(["epoch", "layer", "mean abs offset", "mean length", "max length"],
            o.Offsets.Select(x => (IReadOnlyList<string>)[x.Epoch.ToString(inv), x.Layer, Report.Num(x.MeanAbs, 3), Report.Num(x.MeanNorm, 3), Report.Num(x.MaxNorm, 3)]));
        rep.Figure("offsets.png", "mean |offset| per epoch");
        rep.Paragraph("Sampling locations: for each test image, the conv3 unit with the largest summed activation; its 9 sampling points and, through conv2's offsets at those points, the 81 points conv2 samples, in image pixels. The plain net samples the fixed 3x3 and 9x9 grids.");
        rep.Figure("sampling_locations.png", "learned sampling locations");

        rep.Heading("Cost per training step");
        rep.Paragraph($"One training step (forward, backward, Adam step) on the same batch of {c.Batch.ToString(inv)} images, both trained nets cloned, timed alternately in this process " +
            $"({c.Reps.ToString(inv)} repetitions each after two warm-up steps; medians). Live memory: the library's MemoryProbe (parameters, gradients, Adam state and what the graph keeps for backward, at the end of the forward pass).");
        rep.Table(["measure", "plain", "deformable", "deformable / plain"],
        [
            ["step time (ms, median)", Report.Num(c.PlainSeconds * 1e3, 4), Report.Num(c.DeformSeconds * 1e3, 4), Report.Num(c.TimeRatio, 3)],
            ["process CPU time per step (ms, mean)", Report.Num(c.PlainCpuSeconds * 1e3, 4), Report.Num(c.DeformCpuSeconds * 1e3, 4), Report.Num(c.CpuRatio, 3)],
            ["live step memory (MB)", Report.Num(c.PlainMemory.StepBytes / 1e6, 4), Report.Num(c.DeformMemory.StepBytes / 1e6, 4), Report.Num(c.MemoryRatio, 3)],
            ["step + kernel scratch (MB)", Report.Num(c.PlainMemory.TotalBytes / 1e6, 4), Report.Num(c.DeformMemory.TotalBytes / 1e6, 4), Report.Num((double)c.DeformMemory.TotalBytes / c.PlainMemory.TotalBytes, 3)],
            ["allocated per Trainer step (MB)", Report.Num(o.Plain.BytesAllocatedPerStep / 1e6, 4), Report.Num(o.Deformable.BytesAllocatedPerStep / 1e6, 4), Report.Num(o.Deformable.BytesAllocatedPerStep / o.Plain.BytesAllocatedPerStep, 3)],
            ["epoch time (s, median)", Report.Num(DeformableStudy.Median([.. o.Plain.History.Select(e => e.Seconds)]), 4), Report.Num(DeformableStudy.Median([.. o.Deformable.History.Select(e => e.Seconds)]), 4), Report.Num(EpochRatio(o), 3)],
        ]);
        rep.Paragraph($"The median of the per-pair time ratios is {Report.Num(c.MedianPairRatio, 3)}. The exam's 2–3x: the measured step-time ratio {Report.Num(c.TimeRatio, 3)} is " +
            $"{Range(c.TimeRatio)} that range (CPU time: {Report.Num(c.CpuRatio, 3)}, {Range(c.CpuRatio)}) and the live-memory ratio {Report.Num(c.MemoryRatio, 3)} is {Range(c.MemoryRatio)} it. " +
            $"Wall-clock figures depend on the machine's load during the run ({context.Settings.Threads.ToString(inv)} thread(s)).");
        rep.Figure("step_cost.png", "deformable / plain cost ratios");

        static string Range(double ratio) => ratio < 2 ? "below" : ratio <= 3 ? "within" : "above";
    }
}
