using System.Globalization;
using System.Text.Json.Nodes;
using ConvLab.Autograd;
using ConvLab.Imaging;
using ConvLab.Models;
using ConvLab.NN.Functional;
using ConvLab.Stats;

namespace ConvLab.Experiments.Claims;

/// <summary>
/// <c>convlab experiment scale-pyramid</c> (TTIC problem 4): an item at size s and the same item at 2s excite the same
/// units of <c>scale_pyramid</c> one scale apart, because every scale shares the weights — measured as correlations of
/// the per-scale GAP features.
/// </summary>
public sealed class ScalePyramidExperiment : IExperiment
{
    /// <inheritdoc/>
    public string Name => "scale-pyramid";

    /// <inheritdoc/>
    public string Description => "Weights shared across scales: an item at size s and at 2s excite the same scale_pyramid units one scale apart (measured correlation)";

    /// <inheritdoc/>
    public void Run(ExperimentContext context)
    {
        int items = context.IntOption("items", context.Quick ? 8 : 64, 2, 10_000);
        const int canvas = 32, scales = 3, width = 16;
        // The large item needs one scale more so that its scales 1.. see the same coarser neighbours as the small item's
        // 0..; the same seed gives both the same stem and layers (the head, sized by the scale count, is built last and unused).
        var model = new ScalePyramid(10, 1, width, scales, 2, new Generator(context.Seed));
        var larger = new ScalePyramid(10, 1, width, scales + 1, 2, new Generator(context.Seed));
        var g = new Generator(context.Seed + 1);
        // Pairs of equally sized maps: the small item's scale s against the large item's scale s + 1 (the claim), and
        // against the large item's scale s averaged 2x2 down to the same size (the control: same scale index).
        var shifted = new (List<double> A, List<double> B)[scales];
        var control = new (List<double> A, List<double> B)[scales];
        for (int s = 0; s < scales; s++) { shifted[s] = ([], []); control[s] = ([], []); }
        Tensor? exampleSmall = null, exampleLarge = null;
        for (int n = 0; n < items; n++)
        {
            var x = Item(canvas, g);
            var x2 = F.Interpolate(x, size: [2 * canvas, 2 * canvas], mode: "nearest");
            exampleSmall ??= x; exampleLarge ??= x2;
            Tensor[] fs, fl;
            using (new NoGrad()) { fs = model.ScaleFeatures(x); fl = larger.ScaleFeatures(x2); }
            for (int s = 0; s < scales; s++)
            {
                var a = Centred(fs[s]);
                shifted[s].A.AddRange(a); shifted[s].B.AddRange(Centred(fl[s + 1]));
                control[s].A.AddRange(a); control[s].B.AddRange(Centred(F.AvgPool2d(fl[s], [2, 2])));
            }
        }
        var rows = Enumerable.Range(0, scales).Select(s => (Scale: s, Shifted: Correlation.Pearson(shifted[s].A, shifted[s].B), Control: Correlation.Pearson(control[s].A, control[s].B))).ToList();

        context.Results["items"] = items;
        context.Results["scales"] = scales;
        context.Results["correlations"] = new JsonArray([.. rows.Select(r => (JsonNode)new JsonObject
            { ["small_scale"] = r.Scale, ["large_scale"] = r.Scale + 1, ["pearson"] = r.Shifted, ["same_index_pearson"] = r.Control })]);
        context.Figure("items.png", Charts.ImageGrid([new Tile("item at size s", exampleSmall!.Reshape(canvas, canvas)), new Tile("item at 2s", exampleLarge!.Reshape(2 * canvas, 2 * canvas))],
            columns: 2, title: "the same item at two sizes", scaling: TileScaling.Clip01));
        context.Figure("correlation.png", Charts.Bars("feature-map correlation, small item scale s vs large item", "Pearson r",
            [.. rows.Select(r => $"small scale {r.Scale}")],
            [("large scale s + 1", [.. rows.Select(r => r.Shifted)]), ("large scale s, averaged 2x2", [.. rows.Select(r => r.Control)])]));

        var inv = CultureInfo.InvariantCulture;
        var rep = context.Report;
        rep.Heading("Scale pyramid: one scale apart");
        rep.Paragraph($"scale_pyramid (random weights; {scales.ToString(inv)} scales for the small item, {(scales + 1).ToString(inv)} with the same stem and layer weights for the large one; 2 layers, width {width.ToString(inv)}) on {items.ToString(inv)} random items: three Gaussian blobs on a {canvas.ToString(inv)}x{canvas.ToString(inv)} canvas (size s) " +
            "and the same canvas enlarged 2x by nearest upsampling (size 2s). The large item's pyramid scale t + 1 is exactly the small item's scale t (2x2 averaging undoes the enlargement), " +
            "and every scale runs the same convolutions. Correlations are Pearson r over every item, channel and position of equally sized final feature maps, each channel centred.");
        rep.Table(["small item scale", "vs large scale s + 1", "vs large scale s (averaged 2x2)"],
            rows.Select(r => (IReadOnlyList<string>)[r.Scale.ToString(inv), Report.Num(r.Shifted, 4), Report.Num(r.Control, 3)]));
        rep.Paragraph(string.Join(" ", rows.Select(r => $"Scale {r.Scale.ToString(inv)}: r = {Report.Num(r.Shifted, 4)} one scale apart against {Report.Num(r.Control, 3)} at the same scale index.")) +
            " One scale apart the maps agree up to float rounding: the same units fire for the item at s and at 2s, one scale apart.");
        rep.Figure("items.png", "an item at size s and 2s");
        rep.Figure("correlation.png", "correlations between scales");
    }

    /// <summary>A (1, C, H, W) map as values with each channel's mean removed.</summary>
    private static double[] Centred(Tensor map)
    {
        var a = map.Contiguous().ToDoubleArray();
        int c = map.Size(1), per = a.Length / c;
        for (int k = 0; k < c; k++)
        {
            double mean = 0;
            for (int i = 0; i < per; i++) mean += a[k * per + i];
            mean /= per;
            for (int i = 0; i < per; i++) a[k * per + i] -= mean;
        }
        return a;
    }

    /// <summary>Three random Gaussian blobs near the centre of a blank canvas, in [0, 1].</summary>
    private static Tensor Item(int canvas, Generator g)
    {
        var px = new float[canvas * canvas];
        for (int b = 0; b < 3; b++)
        {
            double cy = canvas / 2 + (g.NextDouble() - 0.5) * canvas / 3, cx = canvas / 2 + (g.NextDouble() - 0.5) * canvas / 3, r = 1.5 + 2.5 * g.NextDouble();
            for (int i = 0; i < canvas; i++)
                for (int j = 0; j < canvas; j++)
                    px[i * canvas + j] = (float)Math.Min(1, px[i * canvas + j] + Math.Exp(-((i - cy) * (i - cy) + (j - cx) * (j - cx)) / (2 * r * r)));
        }
        return Tensor.FromArray(px, 1, 1, canvas, canvas);
    }
}
