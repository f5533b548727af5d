using System.Globalization;
using System.Text.Json.Nodes;
using ConvLab.Data;
using ConvLab.Imaging;
using ConvLab.IO;
using ConvLab.Models;

namespace ConvLab.Experiments.Claims;

/// <summary><c>convlab experiment fcn</c>: the default classifier made fully convolutional — same logits, a dense score map, one pass instead of sliding windows.</summary>
public sealed class FcnExperiment : IExperiment
{
    /// <inheritdoc/>
    public string Name => "fcn";

    /// <inheritdoc/>
    public string Description => "An FC layer is a convolution: the default classifier run fully convolutionally gives the same logits, a dense class map on a larger canvas, and beats sliding windows";

    /// <inheritdoc/>
    public void Run(ExperimentContext context)
    {
        _ = context.Option("data"); // FashionMnist() honours --data; reading it marks it as used
        var data = context.FashionMnist();
        var g = new Generator(context.Seed);
        var test = context.Quick ? new Subset(data.Test, [.. Enumerable.Range(0, Math.Min(500, data.Test.Count))]) : data.Test;
        var model = new SimpleCnn(generator: g);
        string source;
        if (context.Option("run") is { } run)
        {
            string path = Directory.Exists(run) ? Path.Combine(run, "model.safetensors") : run;
            if (!File.Exists(path)) throw new ArgumentException($"experiment fcn: --run: {path} not found (give a `convlab train` run folder of simple_cnn)");
            try { model.LoadStateDict(SafeTensors.Load(path)); }
            catch (ArgumentException e) { throw new ArgumentException($"experiment fcn: --run: {path} is not a simple_cnn state dict ({e.Message})", e); }
            source = $"the trained simple_cnn of {path}";
        }
        else
        {
            int epochs = context.IntOption("epochs", context.Quick ? 1 : 3, 1, 100);
            var train = context.Quick ? new Subset(data.Train, [.. Enumerable.Range(0, Math.Min(1000, data.Train.Count))]) : data.Train;
            ClaimsTraining.Fit(model, train, null, 10, epochs, 1e-3, context.Seed, 64, log: context.Log, what: "simple_cnn");
            source = $"simple_cnn trained here for {epochs} epoch(s) with Adam (lr 1e-3) on {train.Count} images of {data.Description}";
        }

        int canvas = context.Quick ? 84 : 112;
        int[] sides = context.Quick ? [64] : [64, 128, 224];
        var r = FcnStudy.Run(model, test, canvas, sides, context.Quick ? 3 : 5, g);
        context.Log($"fcn: logits max relative error {r.LogitsMaxRelativeError:G3}; speedup at {sides[0]}: {r.Timings[0].Speedup:F1}x");

        context.Results["model"] = source;
        context.Results["test_accuracy"] = r.TestAccuracy;
        context.Results["test_images"] = r.TestCount;
        context.Results["replaced"] = new JsonArray([.. r.Replaced.Select(s => (JsonNode)s)]);
        context.Results["logits_max_relative_error"] = r.LogitsMaxRelativeError;
        context.Results["canvas"] = r.CanvasSide;
        context.Results["map_side"] = r.MapSide;
        context.Results["items"] = new JsonArray([.. r.Items.Select(i => (JsonNode)new JsonObject
            { ["label"] = data.ClassNames[(int)i.Label], ["row"] = i.Row, ["col"] = i.Col, ["predicted"] = data.ClassNames[(int)i.Predicted], ["probability"] = i.Probability })]);
        context.Results["timing"] = new JsonArray([.. r.Timings.Select(t => (JsonNode)new JsonObject
        {
            ["canvas"] = t.Canvas, ["window"] = t.Window, ["stride"] = t.Stride, ["windows"] = t.Windows, ["map_side"] = t.MapSide,
            ["sliding_seconds"] = t.SlidingSeconds, ["fcn_seconds"] = t.FcnSeconds, ["speedup"] = t.Speedup,
            ["sliding_allocated_bytes"] = t.SlidingAllocatedBytes, ["fcn_allocated_bytes"] = t.FcnAllocatedBytes,
            ["sliding_activation_bytes"] = t.SlidingActivationBytes, ["fcn_activation_bytes"] = t.FcnActivationBytes,
            ["argmax_agreement"] = t.ArgmaxAgreement,
        })]);

        var tiles = new List<Tile>
        {
            new("canvas", Tensor.FromArray(r.Canvas, r.CanvasSide, r.CanvasSide)),
            new("argmax class / 9", Tensor.FromArray([.. r.ClassMap.Select(c => c / 9f)], r.MapSide, r.MapSide)),
        };
        tiles.AddRange(r.Items.Select((it, i) => new Tile($"p({data.ClassNames[(int)it.Label]})", Tensor.FromArray(r.ScoreMaps[i], r.MapSide, r.MapSide))));
        context.Figure("dense_map.png", Charts.ImageGrid(tiles, columns: 3, title: $"{r.MapSide}x{r.MapSide} map of class scores on a {r.CanvasSide}x{r.CanvasSide} canvas", scaling: TileScaling.Clip01));
        context.Figure("sliding_vs_fcn.png", Charts.Line("sliding windows vs one fully convolutional pass", "canvas side (pixels)", "seconds (median)",
            [new Series("sliding windows (batched)", [.. r.Timings.Select(t => (double)t.Canvas)], [.. r.Timings.Select(t => t.SlidingSeconds)]),
             new Series("fully convolutional", [.. r.Timings.Select(t => (double)t.Canvas)], [.. r.Timings.Select(t => t.FcnSeconds)])], logY: true));

        Write(context, r, source, data.ClassNames);
    }

    private static void Write(ExperimentContext context, FcnResult r, string source, IReadOnlyList<string> names)
    {
        var inv = CultureInfo.InvariantCulture;
        var rep = context.Report;
        rep.Heading("Fully connected layers as convolutions");
        rep.Paragraph($"Model: {source}; test accuracy {Report.Percent(r.TestAccuracy, 2)} on {r.TestCount.ToString(inv)} test images. " +
            $"Fusion.Convolutionalize replaced {string.Join("; ", r.Replaced)}.");
        rep.Paragraph($"At the training size (28x28) the convolutional model's logits differ from the original's by at most {Report.Num(r.LogitsMaxRelativeError)} (relative to the largest logit) on 64 test images.");
        rep.Heading("A dense map of class scores");
        rep.Paragraph($"On a {r.CanvasSide.ToString(inv)}x{r.CanvasSide.ToString(inv)} canvas one pass gives a {r.MapSide.ToString(inv)}x{r.MapSide.ToString(inv)} map: cell (i, j) scores the 28x28 window at ({Claims.FcnStudy.Stride.ToString(inv)}i, {Claims.FcnStudy.Stride.ToString(inv)}j).");
        rep.Table(["item", "top-left (row, col)", "map's class at its cell", "p(true class)"],
            r.Items.Select(i => (IReadOnlyList<string>)[names[(int)i.Label], $"({i.Row.ToString(inv)}, {i.Col.ToString(inv)})", names[(int)i.Predicted], Report.Num(i.Probability, 3)]));
        rep.Figure("dense_map.png", "canvas, argmax class map and the score map of each item's class");
        rep.Heading("Sliding windows vs one pass");
        rep.Paragraph($"Windows of {FcnStudy.Window.ToString(inv)} pixels at stride {FcnStudy.Stride.ToString(inv)} (the seed's 224 crops of a 512 image at stride 32 — (512 − 224)/32 + 1 = 10 per side, 100 windows — scaled by 1/8 is the 64 canvas). " +
            "Sliding: every window cropped and classified by the original model in batches of 256. Fully convolutional: one forward of the canvas. Medians of repeated runs; " +
            "allocated bytes measured by the GC over one run; activation bytes are the calculator's sum of layer outputs.");
        rep.Table(["canvas", "windows", "sliding s", "FCN s", "speedup", "allocated sliding / FCN (MB)", "activations sliding / FCN (MB)", "argmax agreement"],
            r.Timings.Select(t => (IReadOnlyList<string>)[t.Canvas.ToString(inv), t.Windows.ToString(inv), Report.Num(t.SlidingSeconds, 3), Report.Num(t.FcnSeconds, 3), Report.Num(t.Speedup, 3) + "x",
                $"{Report.Num(t.SlidingAllocatedBytes / 1e6, 3)} / {Report.Num(t.FcnAllocatedBytes / 1e6, 3)}", $"{Report.Num(t.SlidingActivationBytes / 1e6, 3)} / {Report.Num(t.FcnActivationBytes / 1e6, 3)}",
                Report.Percent(t.ArgmaxAgreement)]));
        rep.Paragraph("The windows overlap, so sliding recomputes the shared convolutions for every window; the fully convolutional pass computes each feature once. " +
            "simple_cnn pads every convolution, so a window's border features see canvas pixels in the one pass but zeros in a crop: that is where the argmax can differ.");
        rep.Figure("sliding_vs_fcn.png", "time per canvas");
    }
}
