using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using ConvLab.Autograd;
using ConvLab.Explain;
using ConvLab.Imaging;
using ConvLab.IO;
using ConvLab.NN;
using ConvLab.NN.Functional;
using Spectre.Console;

namespace ConvLab.Cli;

/// <summary>
/// <c>convlab explain RUN|MODEL (--image FILE | --index N) --method ...</c>: attribution maps of one image, their
/// pictures, raw maps and quality metrics. Parses the options, calls <see cref="ExplainMethods"/>,
/// <see cref="ExplainScoring"/> and <see cref="ExplainPictures"/>, and renders the table or JSON.
/// </summary>
internal static class ExplainCommand
{
    internal sealed record Options
    {
        public required string Source { get; init; }
        public string? Image { get; init; }
        public int? Index { get; init; }
        public string Method { get; init; } = "all";
        public string Target { get; init; } = "top";
        public string? Layer { get; init; }
        public string? Box { get; init; }
        public string? Metrics { get; init; }
        public string? Out { get; init; }
        public string Format { get; init; } = "table";
        public string? Weights { get; init; }
        public string? Input { get; init; }
        public int? Classes { get; init; }
        public string? Data { get; init; }
        public int Steps { get; init; } = 50;
        public int Samples { get; init; } = 25;
        public int? Window { get; init; }
        public int? Stride { get; init; }
        public int? PixelsPerStep { get; init; }
        public double? Tolerance { get; init; }
        public int Repeat { get; init; }
        public int? Threads { get; init; }
        public int Seed { get; init; }
    }

    public static Command Create()
    {
        var source = new Argument<string>("run-or-model") { Description = "A run folder written by convlab train, or a zoo model name / spec string (with --weights)" };
        var image = new Option<string?>("--image") { Description = "Image file to explain (PNG/JPEG; must have the model's input size)" };
        var index = new Option<int?>("--index") { Description = "Index into the test set (the run's own, or --data)" };
        var method = new Option<string>("--method") { Description = "Method(s), comma-separated: " + ExplainMethods.Names, DefaultValueFactory = _ => "all" };
        var target = new Option<string>("--target") { Description = "Class index to explain, or 'top' (the predicted class)", DefaultValueFactory = _ => "top" };
        var layer = new Option<string?>("--layer") { Description = "Module path for the CAM methods (e.g. layer4, features.6; default: the last layer with a spatial output)" };
        var box = new Option<string?>("--box") { Description = "Ground-truth box x0,y0,x1,y1 in pixels (end exclusive) for pointing/iou" };
        var metrics = new Option<string?>("--metrics") { Description = "Comma-separated: deletion,insertion,pointing,iou,sanity" };
        var outDir = new Option<string?>("--out") { Description = "Output folder (default: RUN/explain, or explain-<time> for a model)" };
        var format = new Option<string>("--format") { Description = "table or json", DefaultValueFactory = _ => "table" };
        var weights = new Option<string?>("--weights") { Description = "Weights (.safetensors or PyTorch .pth) for a zoo/spec model" };
        var input = new Option<string?>("--input") { Description = "Input shape CxHxW of a zoo/spec model (default: its usual input)" };
        var classes = new Option<int?>("--classes") { Description = "Classes of a zoo model (default: its usual number)" };
        var data = new Option<string?>("--data") { Description = "Test data for --index (an IDX folder or 'embedded'; default: the run's own)" };
        var steps = new Option<int>("--steps") { Description = "Integrated gradients: path points", DefaultValueFactory = _ => 50 };
        var samples = new Option<int>("--samples") { Description = "SmoothGrad: noisy samples", DefaultValueFactory = _ => 25 };
        var window = new Option<int?>("--window") { Description = "Occlusion: window side in pixels (default: about 1/14 of the image side)" };
        var stride = new Option<int?>("--stride") { Description = "Occlusion: stride in pixels (default: half the window)" };
        var pps = new Option<int?>("--pixels-per-step") { Description = "Deletion/insertion: pixels per step (default: H*W/50)" };
        var tolerance = new Option<double?>("--tolerance") { Description = "Pointing game: tolerance in pixels (default: 15 at 224 pixels, scaled)" };
        var repeat = new Option<int>("--repeat") { Description = "Time each method: run it this many more times and report the median seconds", DefaultValueFactory = _ => 0 };
        var threads = new Option<int?>("--threads") { Description = "Threads for the kernels" };
        var seed = new Option<int>("--seed") { Description = "Seed of SmoothGrad's noise and the sanity check", DefaultValueFactory = _ => 0 };
        var cmd = new Command("explain", "Attribution maps of one image (saliency, SmoothGrad, IG, occlusion, guided backprop, CAM, Grad-CAM, Grad-CAM++, Guided Grad-CAM) with pictures and quality metrics.")
        {
            source, image, index, method, target, layer, box, metrics, outDir, format, weights, input, classes, data, steps, samples, window, stride, pps, tolerance, repeat, threads, seed,
        };
        cmd.SetAction(pr => Run(new Options
        {
            Source = pr.GetValue(source)!, Image = pr.GetValue(image), Index = pr.GetValue(index), Method = pr.GetValue(method)!, Target = pr.GetValue(target)!,
            Layer = pr.GetValue(layer), Box = pr.GetValue(box), Metrics = pr.GetValue(metrics), Out = pr.GetValue(outDir), Format = pr.GetValue(format)!,
            Weights = pr.GetValue(weights), Input = pr.GetValue(input), Classes = pr.GetValue(classes), Data = pr.GetValue(data), Steps = pr.GetValue(steps),
            Samples = pr.GetValue(samples), Window = pr.GetValue(window), Stride = pr.GetValue(stride), PixelsPerStep = pr.GetValue(pps),
            Tolerance = pr.GetValue(tolerance), Repeat = pr.GetValue(repeat), Threads = pr.GetValue(threads), Seed = pr.GetValue(seed),
        }, Console.Out));
        return cmd;
    }

    private sealed record Loaded(Module Model, Func<Module> CreateCopy, int[] InputShape, string[] ClassNames, string Description, string? RunDir);

    private sealed record Outcome(ExplainMethod Method, Attribution Attribution, ExplainScore Score, double Seconds, double? MedianSeconds);

    public static int Run(Options o, TextWriter output)
    {
        var console = TrainCommand.Console(output);
        try
        {
            var format = o.Format.ToLowerInvariant();
            if (format is not ("table" or "json")) throw new ArgumentException($"--format: expected table or json, got '{o.Format}'");
            var methods = ExplainMethods.Parse(o.Method);
            var metrics = ExplainScoring.Parse(o.Metrics);
            if (o.Threads is int t) Threads.Count = t >= 1 ? t : throw new ArgumentException($"--threads: must be at least 1, got {t}");
            if ((o.Image == null) == (o.Index == null)) throw new ArgumentException("--image/--index: give exactly one of --image FILE or --index N");
            if (o.Steps < 1) throw new ArgumentException($"--steps: must be at least 1, got {o.Steps}");
            if (o.Samples < 1) throw new ArgumentException($"--samples: must be at least 1, got {o.Samples}");
            if (o.Window is < 1) throw new ArgumentException($"--window: must be at least 1, got {o.Window}");
            if (o.Stride is < 1) throw new ArgumentException($"--stride: must be at least 1, got {o.Stride}");
            if (o.PixelsPerStep is < 1) throw new ArgumentException($"--pixels-per-step: must be at least 1, got {o.PixelsPerStep}");
            if (o.Tolerance is double tol && !(tol >= 0)) throw new ArgumentException($"--tolerance: must be a non-negative number of pixels, got {tol}");
            if (o.Repeat is < 0 or > 1000) throw new ArgumentException($"--repeat: must be between 0 and 1000, got {o.Repeat}");
            CliPaths.OutputFolder("--out", o.Out);

            var loaded = Load(o);
            var (image, label, truth) = LoadInput(o, loaded);
            int h = loaded.InputShape[1], w = loaded.InputShape[2];
            var box = ParseBox(o.Box, h, w);
            if ((metrics & (ExplainMetric.Pointing | ExplainMetric.Iou)) != 0 && box == null)
                throw new ArgumentException("--metrics: pointing and iou need the object's box (--box x0,y0,x1,y1)");
            if (o.Window is int win && win > Math.Min(h, w)) throw new ArgumentException($"--window: {win} is larger than the {h}x{w} image");
            var x = image.Unsqueeze(0);

            Tensor probs;
            using (new NoGrad()) probs = F.Softmax(RunModel(loaded.Model, x), 1);
            if (probs.Rank != 2) throw new ArgumentException($"run-or-model: explain needs a classifier with (N, classes) output, got rank {probs.Rank}");
            int k = probs.Size(1);
            var p = probs.ToArray();
            int predicted = Enumerable.Range(0, k).MaxBy(i => p[i]);
            int target = ParseTarget(o.Target, predicted, k);
            var names = loaded.ClassNames.Length == k ? loaded.ClassNames : [.. Enumerable.Range(0, k).Select(i => i.ToString(CultureInfo.InvariantCulture))];

            string? layer = null, layerNote = null;
            if (methods.Any(m => m.UsesLayer))
            {
                layer = o.Layer ?? Attributions.DefaultLayer(loaded.Model, x);
                layerNote = o.Layer == null ? "default: the last module with a spatial (N, C, h, w) output" : "--layer";
            }
            var settings = new ExplainSettings { IgSteps = o.Steps, SmoothGradSamples = o.Samples, OcclusionWindow = o.Window, OcclusionStride = o.Stride, Seed = o.Seed };
            var scoring = new ScoringSettings { PixelsPerStep = o.PixelsPerStep, Tolerance = o.Tolerance, Seed = o.Seed };
            var explicitMethods = !o.Method.Split(',').Any(s => s.Trim().Equals("all", StringComparison.OrdinalIgnoreCase));

            long baseRss = Environment.WorkingSet;
            var outcomes = new List<Outcome>();
            var skipped = new List<(string Method, string Reason)>();
            foreach (var m in methods)
            {
                Attribution a;
                var clock = Stopwatch.StartNew();
                try { a = ExplainMethods.Run(m, loaded.Model, x, ExplainTarget.Class(target), layer, settings); }
                catch (ArgumentException e) when (!explicitMethods && IsUnsupported(e))
                {
                    skipped.Add((m.Name, e.Message));
                    continue;
                }
                catch (ArgumentException e) { throw new ArgumentException(OptionFor(e, m) + e.Message, e); }
                double seconds = clock.Elapsed.TotalSeconds;
                double? median = null;
                if (o.Repeat > 0)
                {
                    var times = new double[o.Repeat];
                    for (int r = 0; r < o.Repeat; r++)
                    {
                        clock.Restart();
                        ExplainMethods.Run(m, loaded.Model, x, ExplainTarget.Class(target), layer, settings);
                        times[r] = clock.Elapsed.TotalSeconds;
                    }
                    Array.Sort(times);
                    median = times.Length % 2 == 1 ? times[times.Length / 2] : (times[times.Length / 2 - 1] + times[times.Length / 2]) / 2;
                }
                var score = ExplainScoring.Score(metrics, m, a, loaded.Model, x, target, box, layer, loaded.CreateCopy, scoring, settings);
                outcomes.Add(new(m, a, score, seconds, median));
            }
            if (outcomes.Count == 0) throw new ArgumentException("--method: no method could run on this model: " + string.Join("; ", skipped.Select(s => s.Reason)));
            long peakRss = Process.GetCurrentProcess().PeakWorkingSet64;

            var dir = o.Out ?? (loaded.RunDir != null ? Path.Combine(loaded.RunDir, "explain") : "explain-" + DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
            Directory.CreateDirectory(dir);
            var files = WriteFiles(dir, image, outcomes, box, metrics);
            var json = Json(loaded, label, truth, names, predicted, p[predicted], target, layer, layerNote, box, outcomes, skipped, files, baseRss, peakRss, o.Repeat > 0);
            var jsonText = json.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
            AtomicFile.Write(Path.Combine(dir, "explain.json"), s => s.Write(System.Text.Encoding.UTF8.GetBytes(jsonText)));
            if (format == "json") output.WriteLine(jsonText);
            else Render(console, loaded, label, truth, names, predicted, p[predicted], target, layer, layerNote, outcomes, skipped, metrics, dir, o.Repeat > 0);
            return 0;
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or FileNotFoundException or NotSupportedException)
        {
            return TrainCommand.Fail(output, "explain: " + e.Message);
        }
    }

    /// <summary>Methods that cannot run on a network (CAM without GAP + linear) are skipped under <c>all</c> instead of failing it.</summary>
    private static bool IsUnsupported(ArgumentException e) => e.Message.StartsWith("cam:", StringComparison.Ordinal);

    /// <summary>The option a method's error is about: the layer path, or the method itself.</summary>
    private static string OptionFor(ArgumentException e, ExplainMethod m) =>
        e is LayerPathException ? "--layer: " : $"--method {m.Name}: ";

    private static Tensor RunModel(Module model, Tensor x)
    {
        try { return model.Forward(x); }
        catch (ArgumentException e) { throw new ArgumentException($"run-or-model: the model does not accept a {string.Join("x", x.Shape[1..].ToArray())} input ({e.Message})", e); }
    }

    private static Loaded Load(Options o)
    {
        if (Directory.Exists(o.Source) && File.Exists(Path.Combine(o.Source, RunFolder.MetricsJson)))
        {
            if (o.Weights != null || o.Input != null || o.Classes != null)
                throw new ArgumentException("--weights/--input/--classes: apply to a zoo or spec model, not to a run folder (its weights and shapes are in the run)");
            var metrics = RunFolder.ReadMetrics(o.Source);
            var model = RunFolder.LoadModel(o.Source, metrics);
            return new(model, () => Models.Zoo.Create(metrics.Model, metrics.ClassNames.Length), metrics.InputShape, metrics.ClassNames,
                $"run {o.Source} ({metrics.Model})", o.Source);
        }
        if (Directory.Exists(o.Source)) throw new ArgumentException($"run-or-model: '{o.Source}' is a folder without {RunFolder.MetricsJson}; is it a run folder written by convlab train?");
        if (o.Weights == null) throw new ArgumentException($"--weights: a zoo or spec model needs its weights (a .safetensors or .pth file); '{o.Source}' alone has random weights");
        if (!File.Exists(o.Weights)) throw new ArgumentException($"--weights: file '{o.Weights}' not found");
        var (m, shape) = ModelArgument.Resolve(o.Source, o.Input, o.Classes);
        try { m.LoadStateDict(CliPaths.Read("--weights", () => WeightsFile.Load(o.Weights))); }
        catch (ArgumentException e) { throw new ArgumentException($"--weights: {o.Weights} does not fit model '{o.Source}': {e.Message}", e); }
        m.Eval();
        if (shape.Length != 3) throw new ArgumentException($"--input: explain needs an image input CxHxW, got {string.Join("x", shape)}");
        return new(m, () => ModelArgument.Resolve(o.Source, o.Input, o.Classes).Model, shape, [], $"model {o.Source} with {o.Weights}", null);
    }

    private static (Tensor Image, string Label, long? Truth) LoadInput(Options o, Loaded loaded)
    {
        int c = loaded.InputShape[0], h = loaded.InputShape[1], w = loaded.InputShape[2];
        if (o.Image is string path)
        {
            if (!File.Exists(path)) throw new ArgumentException($"--image: file '{path}' not found");
            var rgb = CliPaths.Read("--image", () => ImageFile.Load(path, 3));
            if (rgb.Size(1) != h || rgb.Size(2) != w)
                throw new ArgumentException($"--image: {Path.GetFileName(path)} is {rgb.Size(2)}x{rgb.Size(1)} pixels but the model takes {w}x{h}; resize it first (a silently resized image would explain another picture)");
            if (c == 3) return (rgb, path, null);
            if (c != 1) throw new ArgumentException($"--image: the model takes {c} channels; image files give 1 (gray) or 3 (RGB)");
            var v = rgb.ToArray();
            int plane = h * w;
            for (int i = 0; i < plane; i++)
                if (v[i] != v[plane + i] || v[i] != v[2 * plane + i])
                    throw new ArgumentException($"--image: {Path.GetFileName(path)} has colour but the model takes 1 channel (gray); convert it to grayscale first");
            return (ImageFile.Load(path, 1), path, null);
        }
        int index = o.Index!.Value;
        string? source = o.Data;
        if (source == null && loaded.RunDir != null) source = RunFolder.ReadMetrics(loaded.RunDir).DataSource;
        var test = TrainDataSource.Load(TrainDataSource.Resolve(source), trainSplit: false).Test;
        if ((uint)index >= (uint)test.Count) throw new ArgumentException($"--index: {index} is outside the test set [0, {test.Count})");
        var (img, y) = test.Get(index);
        if (!img.Shape.SequenceEqual(loaded.InputShape))
            throw new ArgumentException($"--index: test images are {string.Join("x", img.Shape.ToArray())} but the model takes {string.Join("x", loaded.InputShape)}");
        return (img, $"test #{index}", y);
    }

    private static int ParseTarget(string text, int predicted, int classes)
    {
        if (text.Equals("top", StringComparison.OrdinalIgnoreCase)) return predicted;
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int c))
            throw new ArgumentException($"--target: expected a class index or 'top', got '{text}'");
        if (c < 0 || c >= classes) throw new ArgumentException($"--target: class {c} is out of range for a model with {classes} classes (0..{classes - 1})");
        return c;
    }

    private static PixelBox? ParseBox(string? text, int h, int w)
    {
        if (text == null) return null;
        var parts = text.Split(',');
        var v = new int[4];
        if (parts.Length != 4 || parts.Select((s, i) => int.TryParse(s.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out v[i])).Any(ok => !ok))
            throw new ArgumentException($"--box: expected four integers x0,y0,x1,y1, got '{text}'");
        var b = new PixelBox(v[0], v[1], v[2], v[3]);
        if (b.X0 < 0 || b.Y0 < 0 || b.X1 > w || b.Y1 > h || b.X0 >= b.X1 || b.Y0 >= b.Y1)
            throw new ArgumentException($"--box: {b} is not a non-empty box inside the {w}x{h} image (x0 < x1 <= {w}, y0 < y1 <= {h})");
        return b;
    }

    private static List<string> WriteFiles(string dir, Tensor image, List<Outcome> outcomes, PixelBox? box, ExplainMetric metrics)
    {
        var files = new List<(string Name, byte[] Png)>();
        var panels = outcomes.Select(r => new ExplainPanel(r.Method.Name, ExplainMethods.Plane(r.Attribution), r.Method.Signed)).ToList();
        for (int i = 0; i < outcomes.Count; i++)
            files.Add(($"{outcomes[i].Method.FileStem}.png", ExplainPictures.OverlayPng(image, panels[i], box: box)));
        if (outcomes.Count > 1) files.Add(("grid.png", ExplainPictures.GridPng(image, panels, box: box)));
        if (metrics.HasFlag(ExplainMetric.Deletion))
            files.Add(("deletion.png", ExplainPictures.CurvesPng("Deletion (lower area is better)", [.. outcomes.Select(r => new ExplainCurve(r.Method.Name, r.Score.Deletion!.Scores, r.Score.Deletion.Auc))])));
        if (metrics.HasFlag(ExplainMetric.Insertion))
            files.Add(("insertion.png", ExplainPictures.CurvesPng("Insertion (higher area is better)", [.. outcomes.Select(r => new ExplainCurve(r.Method.Name, r.Score.Insertion!.Scores, r.Score.Insertion.Auc))])));
        foreach (var (name, png) in files) AtomicFile.Write(Path.Combine(dir, name), s => s.Write(png));
        AttributionFile.Save(Path.Combine(dir, "explain.safetensors"), [.. outcomes.Select(r => r.Attribution with { Method = r.Method.Name })]);
        return [.. files.Select(f => f.Name), "explain.safetensors"];
    }

    private static JsonObject Json(Loaded loaded, string label, long? truth, string[] names, int predicted, float probability, int target, string? layer, string? layerNote,
        PixelBox? box, List<Outcome> outcomes, List<(string Method, string Reason)> skipped, List<string> files, long baseRss, long peakRss, bool timed)
    {
        var methods = new JsonArray();
        foreach (var r in outcomes)
        {
            var a = r.Attribution;
            var m = new JsonObject
            {
                ["method"] = r.Method.Name,
                ["library_method"] = a.Method,
                ["target"] = target,
                ["target_name"] = names[target],
                ["map_shape"] = Ints(a.Map.Shape.ToArray()),
                ["signed"] = r.Method.Signed,
                ["layer"] = a.Layer,
                ["completeness_delta"] = a.Delta is double[] d ? Num(d[0]) : null,
                ["seconds"] = Num(r.Seconds),
            };
            if (timed) m["median_seconds"] = r.MedianSeconds is double med ? Num(med) : null;
            var s = r.Score;
            if (s.Deletion is Curve del) { m["deletion_auc"] = Num(del.Auc); m["deletion_scores"] = Doubles(del.Scores); }
            if (s.Insertion is Curve ins) { m["insertion_auc"] = Num(ins.Auc); m["insertion_scores"] = Doubles(ins.Scores); }
            if (s.PointingHit is bool hit) { m["pointing_game"] = hit; m["pointing_tolerance"] = s.Tolerance; }
            if (s.BoxIou is BoxIouResult iou) m["box_iou"] = new JsonObject { ["thresholds"] = Doubles(iou.Thresholds), ["iou"] = Doubles(iou.Iou), ["mean"] = Num(iou.Mean) };
            if (s.Sanity is SanityCheckResult san)
                m["sanity"] = new JsonArray([.. san.Steps.Select(st => (JsonNode)new JsonObject { ["layer"] = st.Layer, ["spearman"] = Num(st.Mean) })]);
            if (s.PixelsPerStep is int pps) m["pixels_per_step"] = pps;
            methods.Add(m);
        }
        var json = new JsonObject
        {
            ["source"] = loaded.Description,
            ["input"] = label,
            ["input_shape"] = Ints(loaded.InputShape),
            ["true_class"] = truth,
            ["predicted_class"] = predicted,
            ["predicted_name"] = names[predicted],
            ["predicted_probability"] = Num(probability),
            ["target"] = target,
            ["layer"] = layer,
            ["layer_choice"] = layerNote,
            ["box"] = box is PixelBox b ? Ints([b.X0, b.Y0, b.X1, b.Y1]) : null,
            ["methods"] = methods,
            ["skipped"] = new JsonArray([.. skipped.Select(s => (JsonNode)new JsonObject { ["method"] = s.Method, ["reason"] = s.Reason })]),
            ["files"] = new JsonArray([.. files.Select(f => (JsonNode)f)]),
        };
        json["threads"] = Threads.Count;
        json["base_rss_mb"] = baseRss / 1048576.0;
        json["peak_rss_mb"] = peakRss / 1048576.0;
        return json;

        static JsonArray Ints(int[] v) => new([.. v.Select(i => (JsonNode)i)]);
        static JsonArray Doubles(double[] v) => new([.. v.Select(Num)]);
        // JSON has no NaN or infinity: an undefined value (e.g. a correlation with a constant map) is written as null.
        static JsonNode? Num(double v) => double.IsFinite(v) ? JsonValue.Create(v) : null;
    }

    private static void Render(IAnsiConsole console, Loaded loaded, string label, long? truth, string[] names, int predicted, float probability, int target,
        string? layer, string? layerNote, List<Outcome> outcomes, List<(string Method, string Reason)> skipped, ExplainMetric metrics, string dir, bool timed)
    {
        console.MarkupLineInterpolated($"{loaded.Description}: {label}{(truth is long t ? $" (true class {t} {names[t]})" : "")}");
        console.MarkupLineInterpolated($"predicted {predicted} {names[predicted]} ({probability:P1}); explaining class {target} {names[target]}");
        if (layer != null) console.MarkupLineInterpolated($"layer for the CAM methods: {layer} ({layerNote})");
        var table = new Table().AddColumns("method", "map shape", "delta", "seconds");
        if (timed) table.AddColumn("median s");
        if (metrics.HasFlag(ExplainMetric.Deletion)) table.AddColumn("deletion AUC");
        if (metrics.HasFlag(ExplainMetric.Insertion)) table.AddColumn("insertion AUC");
        if (metrics.HasFlag(ExplainMetric.Pointing)) table.AddColumn("pointing");
        if (metrics.HasFlag(ExplainMetric.Iou)) table.AddColumn("mean IoU");
        if (metrics.HasFlag(ExplainMetric.Sanity)) table.AddColumn("sanity ρ (top layer → all)");
        foreach (var r in outcomes)
        {
            var s = r.Score;
            var row = new List<string>
            {
                r.Method.Name, "(" + string.Join(", ", r.Attribution.Map.Shape.ToArray()) + ")",
                r.Attribution.Delta is double[] d ? d[0].ToString("G3", CultureInfo.InvariantCulture) : "-",
                r.Seconds.ToString("0.000", CultureInfo.InvariantCulture),
            };
            if (timed) row.Add(r.MedianSeconds?.ToString("0.000", CultureInfo.InvariantCulture) ?? "-");
            if (s.Deletion is Curve del) row.Add(del.Auc.ToString("0.000", CultureInfo.InvariantCulture));
            if (s.Insertion is Curve ins) row.Add(ins.Auc.ToString("0.000", CultureInfo.InvariantCulture));
            if (s.PointingHit is bool hit) row.Add(hit ? "hit" : "miss");
            if (s.BoxIou is BoxIouResult iou) row.Add(iou.Mean.ToString("0.000", CultureInfo.InvariantCulture));
            if (s.Sanity is SanityCheckResult san)
                row.Add(san.Steps.Count == 0 ? "-" : $"{san.Steps[0].Mean.ToString("0.00", CultureInfo.InvariantCulture)} → {san.Steps[^1].Mean.ToString("0.00", CultureInfo.InvariantCulture)}");
            table.AddRow([.. row.Select(Markup.Escape)]);
        }
        console.Write(table);
        foreach (var (m, reason) in skipped) console.MarkupLineInterpolated($"skipped {m}: {reason}");
        console.MarkupLineInterpolated($"wrote {dir}: explain.json, explain.safetensors and the PNGs");
    }
}
