using System.Globalization;
using System.Text.Json.Nodes;
using ConvLab.Analysis;
using ConvLab.Data;
using ConvLab.Explain;
using ConvLab.Imaging;
using ConvLab.NN;
using ConvLab.Training;

namespace ConvLab.Experiments;

/// <summary>
/// <c>convlab experiment localisation</c>: attribution methods judged against ground truth. Fashion-MNIST items are
/// pasted at random positions on larger cluttered canvases (<see cref="ClutteredCanvas"/>, paste box known), a small
/// GAP CNN is trained on them with the library's <see cref="Trainer"/>, and every method of <see cref="ExplainMethods"/>
/// is scored on held-out canvases (true class as the target) by the pointing game, mean box IoU and deletion/insertion
/// AUC, beside three model-free maps: uniform random (chance), Sobel magnitude (an edge detector) and the box itself (the
/// upper bound). The cascading randomisation sanity check (Adebayo et al., 2018) runs on the first held-out canvases.
/// </summary>
public sealed class LocalisationExperiment : IExperiment
{
    private const string SpecTemplate =
        "INPUT {0}x{0}x1, conv 3x3 p1 16, bn, relu, maxpool 2x2, conv 3x3 p1 32, bn, relu, maxpool 2x2, conv 3x3 p1 64, bn, relu, maxpool 2x2, conv 3x3 p1 128, bn, relu, gap, fc {1}";

    private static readonly string[] MetricNames = ["pointing_game", "mean_box_iou", "deletion_auc", "insertion_auc", "sanity_spearman_top_layer"];

    /// <inheritdoc/>
    public string Name => "localisation";

    /// <inheritdoc/>
    public string Description =>
        "Attribution methods vs known object boxes (Fashion-MNIST on cluttered canvases): pointing game, box IoU, deletion/insertion AUC, sanity check, random and Sobel baselines";

    /// <summary>Scores of one map kind (a method or a baseline) accumulated over the held-out images.</summary>
    private sealed class Tally(string name, bool signed)
    {
        public string Name { get; } = name;
        public bool Signed { get; } = signed;
        public int Hits, Images;
        public double IouSum, DeletionSum, InsertionSum;
        public double[]? DeletionCurve, InsertionCurve;
        public readonly List<double> SanityTop = [];
        public double[]? SanitySum;
        public int[]? SanityCount;
        public List<string>? SanityLayers;

        public double Pointing => Images > 0 ? (double)Hits / Images : double.NaN;
        public double Iou => Images > 0 ? IouSum / Images : double.NaN;
        public double Deletion => Images > 0 ? DeletionSum / Images : double.NaN;
        public double Insertion => Images > 0 ? InsertionSum / Images : double.NaN;
        public double Sanity => SanityTop.Count > 0 ? SanityTop.Average() : double.NaN;

        public void Add(ExplainScore s)
        {
            Images++;
            if (s.PointingHit == true) Hits++;
            IouSum += s.BoxIou!.Mean;
            DeletionSum += s.Deletion!.Auc;
            InsertionSum += s.Insertion!.Auc;
            Accumulate(ref DeletionCurve, s.Deletion.Scores);
            Accumulate(ref InsertionCurve, s.Insertion.Scores);
        }

        public void AddSanity(SanityCheckResult r)
        {
            SanityLayers ??= [.. r.Steps.Select(st => st.Layer)];
            SanitySum ??= new double[r.Steps.Count];
            SanityCount ??= new int[r.Steps.Count];
            for (int k = 0; k < r.Steps.Count && k < SanitySum.Length; k++)
                if (double.IsFinite(r.Steps[k].Mean)) { SanitySum[k] += r.Steps[k].Mean; SanityCount[k]++; }
            // A map that becomes constant after re-initialisation has no rank correlation; such images are left out.
            if (r.Steps.Count > 0 && double.IsFinite(r.Steps[0].Mean)) SanityTop.Add(r.Steps[0].Mean);
        }

        private static void Accumulate(ref double[]? sum, double[] v)
        {
            sum ??= new double[v.Length];
            for (int i = 0; i < v.Length; i++) sum[i] += v[i];
        }
    }

    /// <inheritdoc/>
    public void Run(ExperimentContext ctx)
    {
        bool quick = ctx.Quick;
        // The full setting is sized to finish in minutes on 2 cores: the cost is dominated by the deletion/insertion
        // curves (two per map and image, one forward per step), then training, then IG/SmoothGrad/occlusion.
        int canvas = ctx.IntOption("canvas", quick ? 40 : 56, 28, 112);
        int trainCount = ctx.IntOption("train", quick ? 256 : 8000, 64, 60000);
        int validationCount = ctx.IntOption("validation", quick ? 32 : 1000, 16, 10000);
        int images = ctx.IntOption("images", quick ? 3 : 100, 1, 5000);
        int sanityImages = ctx.IntOption("sanity-images", quick ? 1 : 4, 1, 1000);
        int epochs = ctx.IntOption("epochs", quick ? 1 : 3, 1, 100);
        double lr = ctx.DoubleOption("lr", 2e-3, 1e-6, 1);
        int clutter = ctx.IntOption("clutter", 6, 0, 100);
        int curveSteps = quick ? 16 : 25;
        var settings = new ExplainSettings
        {
            IgSteps = ctx.IntOption("ig-steps", quick ? 4 : 16, 1, 1000),
            SmoothGradSamples = ctx.IntOption("smoothgrad-samples", quick ? 2 : 8, 1, 1000),
            OcclusionWindow = quick ? canvas / 4 : canvas / 7,
            OcclusionStride = quick ? canvas / 4 : canvas / 7,
            Seed = (int)(ctx.Seed % int.MaxValue),
            BatchSize = 32,
        };
        var scoring = new ScoringSettings { PixelsPerStep = ctx.IntOption("pixels-per-step", (canvas * canvas + curveSteps - 1) / curveSteps, 1, canvas * canvas), Seed = settings.Seed };

        var data = ctx.FashionMnist();
        int classes = data.ClassNames.Count;
        // Train, validation and scored canvases come from disjoint sources (the training split; the two halves of the test split).
        var train = new ClutteredCanvas(data.Train, canvas, clutter, seed: Mix(ctx.Seed, 1), count: Math.Min(trainCount, data.Train.Count));
        int half = data.Test.Count / 2;
        if (half < 1) throw new ArgumentException($"experiment {Name}: the test split has {data.Test.Count} images; need at least 2");
        var validation = new ClutteredCanvas(new Slice(data.Test, 0, half), canvas, clutter, seed: Mix(ctx.Seed, 2), count: Math.Min(validationCount, half));
        var scored = new ClutteredCanvas(new Slice(data.Test, half, data.Test.Count - half), canvas, clutter, seed: Mix(ctx.Seed, 3),
            count: Math.Min(images, data.Test.Count - half));
        ctx.Log($"data: {data.Description}; {train.Count} training, {validation.Count} validation and {scored.Count} scored {canvas}x{canvas} canvases");

        string spec = string.Format(CultureInfo.InvariantCulture, SpecTemplate, canvas, classes);
        var model = SpecParser.Parse(spec, generator: new Generator(ctx.Seed)).Module;
        var optimizer = new Adam(model.Parameters(), lr);
        var trainer = new Trainer(model, optimizer, new CosineAnnealingLR(optimizer, epochs), train, validation, classes,
            new TrainerOptions { Epochs = epochs, BatchSize = 64, Seed = ctx.Seed });
        ctx.Log($"training {spec} for {epochs} epoch(s)");
        var history = new List<EpochRecord>();
        var validationMetrics = trainer.Fit(new EpochLog(ctx, history)) ?? throw new InvalidOperationException($"experiment {Name}: training produced no validation pass");
        model.Eval();
        double accuracy = validationMetrics.Top1;
        var probe = scored.Get(0).Input.Unsqueeze(0);
        string layer = Attributions.DefaultLayer(model, probe);
        ctx.Log($"validation accuracy {accuracy:P1}; CAM layer {layer}");

        var methods = ExplainMethods.All.Select(m => (Method: m, Tally: new Tally(m.Name, m.Signed))).ToList();
        var baselines = new[] { new Tally("random", false), new Tally("sobel", false), new Tally("box", false) };
        var curveMetrics = ExplainMetric.Deletion | ExplainMetric.Insertion | ExplainMetric.Pointing | ExplainMetric.Iou;
        var examples = new List<(Tensor Image, PixelBox Box, string Title, List<ExplainPanel> Panels)>();
        for (int i = 0; i < scored.Count; i++)
        {
            var (image, label) = scored.Get(i);
            var (x0, y0, x1, y1) = scored.Box(i);
            var box = new PixelBox(x0, y0, x1, y1);
            var input = image.Unsqueeze(0);
            int target = (int)label;
            var panels = new List<ExplainPanel>();
            foreach (var (method, tally) in methods)
            {
                var a = ExplainMethods.Run(method, model, input, ExplainTarget.Class(target), layer, settings);
                tally.Add(ExplainScoring.Score(curveMetrics, method, a, model, input, target, box, layer, settings: scoring, methodSettings: settings));
                if (i < sanityImages)
                {
                    var s = ExplainScoring.Score(ExplainMetric.Sanity, method, a, model, input, target, layer: layer,
                        createCopy: () => SpecParser.Parse(spec).Module, settings: scoring, methodSettings: settings);
                    tally.AddSanity(s.Sanity!);
                }
                if (i < 2) panels.Add(new ExplainPanel(method.Name, ExplainMethods.Plane(a), method.Signed));
            }
            foreach (var tally in baselines)
            {
                Tensor Map(Tensor img) => tally.Name switch
                {
                    "random" => BaselineMaps.Random(canvas, canvas, Mix(ctx.Seed, 1000 + (ulong)i)),
                    "sobel" => BaselineMaps.Sobel(img),
                    _ => BaselineMaps.Box(canvas, canvas, box),
                };
                var map = Map(input);
                var a = new Attribution(tally.Name, map, [target]);
                var pseudo = new ExplainMethod(tally.Name, tally.Name, false, false, tally.Name);
                tally.Add(ExplainScoring.Score(curveMetrics, pseudo, a, model, input, target, box, settings: scoring));
                if (i < sanityImages)
                    // The same check as the methods get: these maps never read the model, so re-initialising it cannot change them.
                    tally.AddSanity(ExplainMetrics.RandomisationSanityCheck(model, () => SpecParser.Parse(spec).Module, (_, x) => Map(x).Squeeze(0), input, scoring.Seed));
                if (i < 2 && tally.Name != "box") panels.Add(new ExplainPanel(tally.Name + " (baseline)", ExplainMethods.Plane(a), false));
            }
            if (i < 2) examples.Add((image, box, $"{data.ClassNames[target]}", panels));
            ctx.Log($"scored canvas {i + 1}/{scored.Count}");
        }

        WriteResults(ctx, methods.Select(m => m.Tally).ToList(), baselines);
        ctx.Results["classifier"] = new JsonObject
        {
            ["validation_accuracy"] = accuracy,
            ["chance"] = 1.0 / classes,
            ["epochs"] = new JsonArray([.. history.Select(e => (JsonNode)new JsonObject
            {
                ["epoch"] = e.Epoch, ["train_loss"] = e.TrainLoss, ["train_accuracy"] = e.TrainAccuracy, ["validation_accuracy"] = e.TestAccuracy,
            })]),
        };
        WriteFigures(ctx, train, data.ClassNames, examples, methods.Select(m => m.Tally).ToList(), baselines);
        WriteReport(ctx, data, spec, canvas, train.Count, validation.Count, scored.Count, sanityImages, epochs, accuracy, layer, settings, scoring,
            methods.Select(m => m.Tally).ToList(), baselines);
    }

    private static void WriteResults(ExperimentContext ctx, List<Tally> methods, Tally[] baselines)
    {
        JsonArray Rows(IEnumerable<Tally> tallies) => new([.. tallies.Select(t => (JsonNode)new JsonObject
        {
            ["method"] = t.Name,
            [MetricNames[0]] = Num(t.Pointing),
            [MetricNames[1]] = Num(t.Iou),
            [MetricNames[2]] = Num(t.Deletion),
            [MetricNames[3]] = Num(t.Insertion),
            [MetricNames[4]] = Num(t.Sanity),
        })]);
        ctx.Results["methods"] = Rows(methods);
        ctx.Results["baselines"] = Rows(baselines);
    }

    private static void WriteFigures(ExperimentContext ctx, ClutteredCanvas train, IReadOnlyList<string> classNames,
        List<(Tensor Image, PixelBox Box, string Title, List<ExplainPanel> Panels)> examples, List<Tally> methods, Tally[] baselines)
    {
        var tiles = Enumerable.Range(0, Math.Min(8, train.Count)).Select(i =>
        {
            var (img, y) = train.Get(i);
            return new Tile(classNames[(int)y], img);
        }).ToList();
        ctx.Figure("dataset.png", Charts.ImageGrid(tiles, columns: 4, title: "Training canvases (object pasted on clutter)", scaling: TileScaling.Clip01));
        for (int e = 0; e < examples.Count; e++)
            ctx.Figure($"example-{e + 1}.png", ExplainPictures.GridPng(examples[e].Image, examples[e].Panels, columns: 6, box: examples[e].Box));

        var all = methods.Concat(baselines).ToList();
        ctx.Figure("scores.png", Charts.Bars("Localisation and faithfulness (mean over scored canvases)", "score", [.. all.Select(t => t.Name)],
        [
            ("pointing game", [.. all.Select(t => t.Pointing)]),
            ("mean box IoU", [.. all.Select(t => t.Iou)]),
            ("deletion AUC (lower is better)", [.. all.Select(t => t.Deletion)]),
            ("insertion AUC", [.. all.Select(t => t.Insertion)]),
        ], width: 1200));
        ctx.Figure("deletion.png", ExplainPictures.CurvesPng("Deletion, mean over scored canvases (lower area is better)",
            [.. all.Select(t => new ExplainCurve(t.Name, [.. t.DeletionCurve!.Select(v => v / t.Images)], t.Deletion))]));
        ctx.Figure("insertion.png", ExplainPictures.CurvesPng("Insertion, mean over scored canvases (higher area is better)",
            [.. all.Select(t => new ExplainCurve(t.Name, [.. t.InsertionCurve!.Select(v => v / t.Images)], t.Insertion))]));
        var series = all.Where(t => t.SanitySum != null).Select(t => new Series(t.Name,
            [.. Enumerable.Range(1, t.SanitySum!.Length).Select(k => (double)k)],
            [.. t.SanitySum.Select((s, k) => t.SanityCount![k] > 0 ? s / t.SanityCount[k] : double.NaN)])).ToList();
        ctx.Figure("sanity.png", Charts.Line("Randomisation sanity check: Spearman ρ of original vs randomised map",
            "layers re-initialised, from the top (cascading)", "mean Spearman ρ", series));
    }

    private void WriteReport(ExperimentContext ctx, ExperimentData data, string spec, int canvas, int trainCount, int validationCount, int scoredCount,
        int sanityImages, int epochs, double accuracy, string layer, ExplainSettings settings, ScoringSettings scoring, List<Tally> methods, Tally[] baselines)
    {
        var r = ctx.Report;
        var (window, stride) = settings.Occlusion(canvas, canvas);
        r.Heading("Setup");
        r.Paragraph($"Data: {data.Description}. Each item is pasted at a random position on a {canvas}x{canvas} canvas with clutter " +
            $"(crops of other items) and noise; the paste box is the ground truth. {trainCount} training canvases, {validationCount} validation " +
            $"canvases (first half of the test split) and {scoredCount} scored canvases (second half).");
        r.Paragraph($"Model: `{spec}`, trained with the library's Trainer (Adam, cosine schedule) for {epochs} epoch(s): validation accuracy " +
            $"{Report.Percent(accuracy)} (chance {Report.Percent(1.0 / data.ClassNames.Count)}). CAM-family layer (the last module with a spatial output): `{layer}`.");
        r.Paragraph($"Methods explain the true class. IG: {settings.IgSteps} Gauss–Legendre points; SmoothGrad: {settings.SmoothGradSamples} samples; " +
            $"occlusion: {window}x{window} window, stride {stride}. Deletion/insertion: {scoring.StepPixels(canvas, canvas)} pixels per step, zero baseline; " +
            $"pointing tolerance {Report.Num(scoring.ToleranceFor(canvas, canvas))} pixels; IoU averaged over thresholds " +
            $"{string.Join(", ", scoring.IouThresholds.Select(t => Report.Num(t)))} of each map's maximum. Sanity check on the first {sanityImages} scored canvas(es).");

        r.Heading("Results");
        var header = new[] { "map", "pointing game", "mean box IoU", "deletion AUC ↓", "insertion AUC ↑", "sanity ρ, top layer" };
        r.Table(header, methods.Concat(baselines).Select(t => (IReadOnlyList<string>)
        [
            baselines.Contains(t) ? t.Name + " (baseline)" : t.Name,
            Report.Percent(t.Pointing), Report.Num(t.Iou, 3), Report.Num(t.Deletion, 3), Report.Num(t.Insertion, 3), Report.Num(t.Sanity, 3),
        ]));

        var random = baselines[0];
        var sobel = baselines[1];
        var box = baselines[2];
        var bestPointing = methods.MaxBy(t => t.Pointing)!;
        var bestIou = methods.MaxBy(t => t.Iou)!;
        var bestDeletion = methods.MinBy(t => t.Deletion)!;
        var bestInsertion = methods.MaxBy(t => t.Insertion)!;
        int beatSobelPointing = methods.Count(t => t.Pointing > sobel.Pointing);
        int beatRandomPointing = methods.Count(t => t.Pointing > random.Pointing);
        int beatSobelIou = methods.Count(t => t.Iou > sobel.Iou);
        var findings = new List<string>
        {
            $"Pointing game: {bestPointing.Name} is best with {Report.Percent(bestPointing.Pointing)}; {beatRandomPointing} of {methods.Count} methods beat the random map " +
            $"({Report.Percent(random.Pointing)}) and {beatSobelPointing} beat the Sobel edge map ({Report.Percent(sobel.Pointing)}).",
            $"Box IoU: {bestIou.Name} is best with {Report.Num(bestIou.Iou, 3)}; {beatSobelIou} of {methods.Count} methods beat the Sobel map ({Report.Num(sobel.Iou, 3)}); " +
            $"the random map gets {Report.Num(random.Iou, 3)} and the box itself {Report.Num(box.Iou, 3)} (pointing {Report.Percent(box.Pointing)}), the upper bound.",
            $"Faithfulness: the lowest deletion AUC is {bestDeletion.Name}'s ({Report.Num(bestDeletion.Deletion, 3)}, random map {Report.Num(random.Deletion, 3)}); " +
            $"the highest insertion AUC is {bestInsertion.Name}'s ({Report.Num(bestInsertion.Insertion, 3)}, random map {Report.Num(random.Insertion, 3)}).",
        };
        var sane = methods.Where(t => double.IsFinite(t.Sanity)).ToList();
        if (sane.Count > 0)
        {
            var insensitive = sane.Where(t => t.Sanity >= 0.5).Select(t => $"{t.Name} ({Report.Num(t.Sanity, 2)})").ToList();
            var sensitive = sane.Where(t => t.Sanity < 0.5).Select(t => $"{t.Name} ({Report.Num(t.Sanity, 2)})").ToList();
            findings.Add($"Sanity check (re-initialising only the top layer): ρ ≥ 0.5, i.e. maps that keep their ranking when the class evidence is destroyed: " +
                $"{(insensitive.Count > 0 ? string.Join(", ", insensitive) : "none")}; ρ < 0.5 (the map changed): {(sensitive.Count > 0 ? string.Join(", ", sensitive) : "none")}. " +
                $"The model-free maps keep ρ = {Report.Num(sobel.Sanity, 2)} (Sobel), as they must: good localisation alone does not show that a map explains the model.");
        }
        var undefined = methods.Where(t => !double.IsFinite(t.Sanity)).Select(t => t.Name).ToList();
        if (undefined.Count > 0)
            findings.Add($"No top-layer correlation for {string.Join(", ", undefined)}: the map became constant (e.g. all zero after the ReLU) once the top layer was re-initialised.");
        r.Bullets(findings);

        r.Heading("Figures");
        r.Figure("dataset.png", "Training canvases");
        foreach (var f in ctx.Figures.Where(f => f.StartsWith("example-", StringComparison.Ordinal)))
            r.Figure(f, "Maps of a scored canvas; the green box is the ground truth");
        r.Figure("scores.png", "Scores per method and baseline");
        r.Figure("deletion.png", "Mean deletion curves");
        r.Figure("insertion.png", "Mean insertion curves");
        r.Figure("sanity.png", "Cascading randomisation: Spearman ρ per step");
    }

    private static JsonNode? Num(double v) => double.IsFinite(v) ? JsonValue.Create(v) : null;

    /// <summary>An independent stream per (seed, purpose).</summary>
    private static ulong Mix(ulong seed, ulong slot)
    {
        ulong z = seed * 0x9E3779B97F4A7C15UL + slot * 0xD1B54A32D192ED03UL + 1;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>One progress line per epoch (the full setting trains for minutes), and the epochs for results.json.</summary>
    private sealed class EpochLog(ExperimentContext ctx, List<EpochRecord> history) : ITrainingProgress
    {
        public void EpochStarted(int epoch, int epochs, int steps) { }

        public void StepCompleted(StepProgress progress) { }

        public void Evaluating(int epoch) { }

        public void EpochCompleted(EpochRecord record)
        {
            history.Add(record);
            ctx.Log(string.Create(CultureInfo.InvariantCulture,
                $"epoch {record.Epoch}: train loss {record.TrainLoss:0.000}, train accuracy {record.TrainAccuracy:P1}, validation accuracy {record.TestAccuracy:P1} ({record.Seconds:0} s)"));
        }
    }

    /// <summary>A contiguous range of a dataset.</summary>
    private sealed class Slice(IDataset inner, int start, int count) : IDataset
    {
        public int Count => count;

        public (Tensor Input, long Label) Get(int index) =>
            (uint)index < (uint)count ? inner.Get(start + index) : throw new ArgumentOutOfRangeException(nameof(index), $"localisation: index {index} is out of range for {count} samples");
    }
}
