using System.Globalization;
using System.Text.Json.Nodes;
using ConvLab.Imaging;

namespace ConvLab.Experiments.Claims;

/// <summary><c>convlab experiment checkerboard</c>: transposed-convolution overlap patterns and their artifacts vs resize + convolution.</summary>
public sealed class CheckerboardExperiment : IExperiment
{
    /// <inheritdoc/>
    public string Name => "checkerboard";

    /// <inheritdoc/>
    public string Description => "Checkerboard artifacts: 3x3/2 transposed convolution overlaps unevenly, 4x4/2 evenly, resize + conv uniformly; output spread on a constant input before and after training";

    /// <inheritdoc/>
    public void Run(ExperimentContext context)
    {
        int samples = context.IntOption("samples", context.Quick ? 64 : 512, 16, 100_000);
        int epochs = context.IntOption("epochs", context.Quick ? 2 : 30, 1, 1000);
        int channels = context.Quick ? 8 : 16;
        var rows = CheckerboardStudy.Run(channels, samples, epochs, context.Seed, context.Log);

        context.Results["samples"] = samples;
        context.Results["epochs"] = epochs;
        context.Results["channels"] = channels;
        context.Results["upsamplers"] = new JsonArray([.. rows.Select(r => (JsonNode)new JsonObject
        {
            ["upsampler"] = r.Name, ["overlap_interior_min"] = r.OverlapMin, ["overlap_interior_max"] = r.OverlapMax,
            ["constant_input_relative_variance_init"] = r.InitVariance, ["constant_input_relative_variance_trained"] = r.TrainedVariance, ["test_mse"] = r.TestMse,
        })]);

        int s = CheckerboardStudy.Out;
        context.Figure("overlap.png", Charts.ImageGrid([.. rows.Select(r => new Tile(r.Name, Tensor.FromArray(r.Overlap, s, s)))], columns: 3,
            title: "taps writing each output pixel (8x8 → 16x16)", scaling: TileScaling.PerTile));
        context.Figure("constant_input.png", Charts.ImageGrid([.. rows.SelectMany(r => new[]
            {
                new Tile($"{r.Name}, init", Tensor.FromArray(r.InitOutput, s, s)), new Tile($"{r.Name}, trained", Tensor.FromArray(r.TrainedOutput, s, s)),
            })], columns: 2, title: "net output on a constant input", scaling: TileScaling.PerTile));
        context.Figure("constant_variance.png", Charts.Bars("relative variance of the output on a constant input (interior)", "variance / mean square",
            [.. rows.Select(r => r.Name)], [("initialisation", [.. rows.Select(r => r.InitVariance)]), ("trained", [.. rows.Select(r => r.TrainedVariance)])]));

        var inv = CultureInfo.InvariantCulture;
        var rep = context.Report;
        rep.Heading("Checkerboard artifacts");
        rep.Paragraph("Overlap: the upsampler with all-ones weights and no bias on an 8x8 ones input counts the kernel taps that write each of the 16x16 output pixels.");
        rep.Table(["upsampler", "interior taps min", "max", "even?"],
            rows.Select(r => (IReadOnlyList<string>)[r.Name, Report.Num(r.OverlapMin), Report.Num(r.OverlapMax), r.OverlapMin == r.OverlapMax ? "yes" : "no (period-2 pattern)"]));
        rep.Figure("overlap.png", "overlap counts");
        rep.Paragraph($"Artifacts: a ×2 super-resolution net conv → ReLU → upsampler → ReLU → conv ({channels.ToString(inv)} channels) fed a constant 8x8 input; the interior output's variance " +
            $"relative to its mean square, at initialisation and after {epochs.ToString(inv)} epochs of Adam (lr 3e-3, MSE, the library's Trainer with a regression objective) on {samples.ToString(inv)} smooth images (sums of Gaussian blobs, input = 2x2 average).");
        rep.Table(["upsampler", "relative variance at init", "after training", "test MSE"],
            rows.Select(r => (IReadOnlyList<string>)[r.Name, Report.Num(r.InitVariance, 3), Report.Num(r.TrainedVariance, 3), Report.Num(r.TestMse, 3)]));
        var resize = rows[^1];
        rep.Paragraph($"Resize + convolution gives {Report.Num(resize.InitVariance, 3)} at initialisation against {Report.Num(rows[0].InitVariance, 3)} (3x3/2) and {Report.Num(rows[1].InitVariance, 3)} (4x4/2): " +
            "even overlap is not enough at random weights, because each output phase of a transposed convolution uses different kernel taps; only resize + convolution treats every output pixel alike.");
        rep.Figure("constant_input.png", "outputs on a constant input");
        rep.Figure("constant_variance.png", "relative variance on a constant input");
    }
}
