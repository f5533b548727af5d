using System.Text.Json.Nodes;
using ConvLab.Imaging;

namespace ConvLab.Experiments.Claims;

/// <summary><c>convlab experiment equivariance</c>: where convolution and pooling are translation equivariant or invariant, and where not.</summary>
public sealed class EquivarianceExperiment : IExperiment
{
    /// <inheritdoc/>
    public string Name => "equivariance";

    /// <inheritdoc/>
    public string Description => "Convolution is translation equivariant (circular padding exactly; zero padding except at borders; strided only for multiples of the stride; not rotation), GAP invariant, max pooling tolerant to shifts below its stride";

    /// <inheritdoc/>
    public void Run(ExperimentContext context)
    {
        int size = context.Quick ? 16 : 32;
        int[] shifts = context.Quick ? [1, 2, 3] : [1, 2, 3, 4, 5];
        var r = EquivarianceStudy.Run(size, shifts, new Generator(context.Seed));
        context.Log($"equivariance: {r.Rows.Count} cases on {size}x{size} maps");

        context.Results["size"] = size;
        context.Results["equivariance"] = new JsonArray([.. r.Rows.Select(e => (JsonNode)new JsonObject
            { ["case"] = e.Case, ["shift"] = e.Shift, ["relative_error"] = e.RelativeError })]);
        context.Results["pool_tolerance"] = new JsonArray([.. r.Pools.Select(p => (JsonNode)new JsonObject
            { ["pool"] = p.Pool, ["window"] = p.Window, ["stride"] = p.Stride, ["shift"] = p.Shift, ["fraction_unchanged"] = p.FractionUnchanged })]);
        context.Results["zero_padding_error_near_seams"] = new JsonArray([.. r.Borders.Select(b => (JsonNode)new JsonObject
            { ["shift"] = b.Shift, ["fraction"] = b.FractionNearSeams })]);
        context.Results["gap_edges"] = new JsonArray([.. r.Edges.Select(e => (JsonNode)new JsonObject
            { ["image"] = e.Image, ["predicted_from"] = e.PredictedFrom, ["g"] = Doubles(e.G), ["predicted_g"] = Doubles(e.Predicted), ["relative_error"] = e.RelativeError })]);
        context.Results["mlp_neuron"] = new JsonArray([.. r.Neuron.Select(n => (JsonNode)new JsonObject
            { ["shift"] = n.Shift, ["mlp_preactivation"] = n.MlpPreactivation, ["mlp_response"] = n.MlpResponse, ["conv_max_preactivation"] = n.ConvMaxPreactivation })]);

        var cases = r.Rows.Where(e => e.Case != "conv_rot90").Select(e => e.Case).Distinct().ToList();
        context.Figure("equivariance_error.png", Charts.Bars($"‖f(T x) − T f(x)‖ / ‖T f(x)‖ on {size}x{size} maps", "relative error", cases,
            [.. shifts.Select(d => ($"shift {d}", (IReadOnlyList<double>)cases.Select(c => r.Rows.First(e => e.Case == c && e.Shift == d).RelativeError).ToList()))]));
        context.Figure("zero_padding_error.png", Charts.ImageGrid([.. r.Borders.Select(b => new Tile($"shift {b.Shift}", Tensor.FromArray(Flat(b.Map), b.Map.GetLength(0), b.Map.GetLength(1))))],
            title: "zero padding: squared error of f(T x) − T f(x) per pixel", scaling: TileScaling.Shared));
        context.Figure("pool_tolerance.png", Charts.Line("pooled outputs unchanged under a horizontal shift", "shift (pixels)", "fraction unchanged",
            [.. r.Pools.GroupBy(p => (p.Pool, p.Window, p.Stride)).Select(grp => new Series($"{grp.Key.Pool} {grp.Key.Window}x{grp.Key.Window}/{grp.Key.Stride}",
                grp.Select(p => (double)p.Shift).ToList(), grp.Select(p => p.FractionUnchanged).ToList()))]));
        context.Figure("gap_edges.png", Charts.ImageGrid([.. r.Edges.Select(e => new Tile(e.Image, Tensor.FromArray(e.Pixels, 8, 8)))],
            columns: 4, title: "edge images x1..x4 (x3 = x1 moved right 2, x4 = x2 moved down 3)", scaling: TileScaling.Clip01));
        context.Figure("gap_vectors.png", Charts.Bars("GAP vectors g of a conv(circular) → ReLU → GAP network", "g",
            [.. Enumerable.Range(0, r.Edges[0].G.Length).Select(i => $"g{i}")],
            [.. r.Edges.Select(e => (e.Image, (IReadOnlyList<double>)e.G))]));

        Write(context, r, size, shifts);
    }

    private static JsonArray Doubles(double[] v) => new([.. v.Select(x => (JsonNode)x)]);

    private static float[] Flat(double[,] m)
    {
        var a = new float[m.Length];
        int w = m.GetLength(1);
        for (int i = 0; i < m.GetLength(0); i++)
            for (int j = 0; j < w; j++) a[i * w + j] = (float)m[i, j];
        return a;
    }

    private static void Write(ExperimentContext context, EquivarianceResult r, int size, int[] shifts)
    {
        double Max(string c, Func<EquivarianceRow, bool>? where = null) => r.Rows.Where(e => e.Case == c && (where?.Invoke(e) ?? true)).Max(e => e.RelativeError);
        double Min(string c, Func<EquivarianceRow, bool>? where = null) => r.Rows.Where(e => e.Case == c && (where?.Invoke(e) ?? true)).Min(e => e.RelativeError);
        var rep = context.Report;
        rep.Heading("Equivariance and invariance");
        rep.Paragraph($"A 3x3 convolution (3 → 8 channels, random weights) on a 2x3x{size}x{size} random input; T moves the input diagonally by the shift " +
            "(circularly), and the output is compared with the output moved the same way.");
        rep.Table(["case", .. shifts.Select(d => $"shift {d}")],
            r.Rows.Where(e => e.Case != "conv_rot90").Select(e => e.Case).Distinct()
                .Select(c => (IReadOnlyList<string>)[c, .. shifts.Select(d => Report.Num(r.Rows.First(e => e.Case == c && e.Shift == d).RelativeError))]));
        var rot = r.Rows.First(e => e.Case == "conv_rot90");
        rep.Bullets([
            $"Circular padding: largest relative error {Report.Num(Max("conv_circular"))} over the shifts — equivariant up to float rounding.",
            $"Zero padding: relative error {Report.Num(Min("conv_zeros"))} to {Report.Num(Max("conv_zeros"))}; the share of the squared error within one pixel of the image border or of the wrap seam is " +
                string.Join(", ", r.Borders.Select(b => $"{Report.Percent(b.FractionNearSeams)} (shift {b.Shift})")) + " (see zero_padding_error.png): the interior is equivariant.",
            $"Stride 2: even shifts give {Report.Num(Max("conv_stride2", e => e.Shift % 2 == 0))} at most, odd shifts at least {Report.Num(Min("conv_stride2", e => e.Shift % 2 == 1))}: only shifts by multiples of the stride carry over.",
            $"Rotation by 90°: relative error {Report.Num(rot.RelativeError)} — convolution with a generic kernel is not rotation equivariant.",
            $"Global average pooling after circular convolution and ReLU: largest error {Report.Num(Max("gap_circular"))} (invariant); after zero padding {Report.Num(Max("gap_zeros"))}."]);
        rep.Figure("equivariance_error.png", "relative equivariance error per case and shift");
        rep.Figure("zero_padding_error.png", "where zero padding breaks equivariance");

        rep.Heading("The seed's GAP question");
        rep.Paragraph("x1 is a vertical edge, x2 a horizontal one (8x8); x3 is x1 moved right by 2 pixels and x4 is x2 moved down by 3, circularly. " +
            "With circular padding and global average pooling the prediction is g(x3) = g(x1) and g(x4) = g(x2); a conv(circular, 4 random 3x3 filters) → ReLU → GAP network gives:");
        rep.Table(["image", "g (measured)", "predicted from", "relative error"],
            r.Edges.Select(e => (IReadOnlyList<string>)[e.Image, string.Join(", ", e.G.Select(v => Report.Num(v))), e.PredictedFrom, Report.Num(e.RelativeError)]));
        var e1 = r.Edges[0]; var e2 = r.Edges[1];
        rep.Paragraph($"g(x1) and g(x2) differ (relative difference {Report.Num(Shifts.RelativeError(Tensor.FromArray(e1.G, e1.G.Length), Tensor.FromArray(e2.G, e2.G.Length)))}): the network still tells the orientations apart while ignoring position.");
        rep.Figure("gap_edges.png", "the four edge images");
        rep.Figure("gap_vectors.png", "their GAP vectors");

        rep.Heading("Pooling and shifts");
        rep.Table(["pool", "window/stride", .. r.Pools.Select(p => p.Shift).Distinct().Select(d => $"shift {d}")],
            r.Pools.GroupBy(p => (p.Pool, p.Window, p.Stride)).Select(grp => (IReadOnlyList<string>)[grp.Key.Pool, $"{grp.Key.Window}x{grp.Key.Window}/{grp.Key.Stride}",
                .. grp.Select(p => Report.Percent(p.FractionUnchanged))]));
        double Frac(string pool, int window, int d) => r.Pools.First(p => p.Pool == pool && p.Window == window && p.Shift == d).FractionUnchanged;
        rep.Paragraph($"Under a 1-pixel shift, {Report.Percent(Frac("max", 2, 1))} of 2x2/2 and {Report.Percent(Frac("max", 3, 1))} of 3x3/2 max-pooled outputs keep their value " +
            $"(uniform random maps), average pooling {Report.Percent(Frac("avg", 2, 1))} and {Report.Percent(Frac("avg", 3, 1))}: max pooling tolerates shifts below its stride, more with overlapping windows; at a shift of 2 (the stride) " +
            $"2x2/2 keeps {Report.Percent(Frac("max", 2, 2))} and 3x3/2 {Report.Percent(Frac("max", 3, 2))}.");
        rep.Figure("pool_tolerance.png", "fraction of pooled outputs unchanged per shift");

        rep.Heading("An MLP neuron and a shifted edge");
        rep.Table(["shift", "MLP pre-activation", "σ", "conv neuron (max over positions)"],
            r.Neuron.Select(n => (IReadOnlyList<string>)[n.Shift.ToString(System.Globalization.CultureInfo.InvariantCulture), Report.Num(n.MlpPreactivation), Report.Num(n.MlpResponse), Report.Num(n.ConvMaxPreactivation)]));
        rep.Paragraph("The fully connected neuron looks at one fixed pixel, so moving the edge changes its input from " +
            string.Join(" → ", r.Neuron.Select(n => $"σ({Report.Num(n.MlpPreactivation)})")) + "; the same weight slid over the row (a convolution) finds the edge at every shift.");
    }
}
