using System.Globalization;
using System.Text.Json.Nodes;
using ConvLab.Imaging;

namespace ConvLab.Experiments.Claims;

/// <summary><c>convlab experiment roofline</c>: per-layer arithmetic intensity against this machine's measured FMA peak and memory bandwidth.</summary>
public sealed class RooflineExperiment : IExperiment
{
    /// <inheritdoc/>
    public string Name => "roofline";

    /// <inheritdoc/>
    public string Description => "The roofline: per-layer arithmetic intensity (calculator) vs measured FMA peak and triad bandwidth, measured GFLOP/s per layer; depthwise is memory-bound, 3x3 and 1x1 are not";

    /// <inheritdoc/>
    public void Run(ExperimentContext context)
    {
        int batch = context.IntOption("batch", context.Quick ? 1 : 8, 1, 256);
        int size = context.Quick ? 28 : 56;
        int channels = 32;
        var r = RooflineStudy.Run(channels, size, batch, context.Quick ? 1 << 22 : 1 << 24, context.Quick ? 3 : 7, new Generator(context.Seed));
        context.Log($"roofline: peak {r.PeakGflops:F1} GFLOP/s, triad {r.BandwidthGBs:F1} GB/s, ridge {r.Ridge:F1} FLOP/byte");

        context.Results["isa"] = r.Isa;
        context.Results["peak_gflops"] = r.PeakGflops;
        context.Results["bandwidth_gbs"] = r.BandwidthGBs;
        context.Results["ridge_flops_per_byte"] = r.Ridge;
        context.Results["batch"] = r.Batch;
        context.Results["input"] = new JsonArray([.. r.Input.Select(v => (JsonNode)v)]);
        context.Results["layers"] = new JsonArray([.. r.Layers.Select(l => (JsonNode)new JsonObject
        {
            ["layer"] = l.Layer, ["kind"] = l.Kind, ["flops"] = l.Flops, ["bytes"] = l.Bytes, ["intensity"] = l.Intensity,
            ["seconds"] = l.Seconds, ["measured_gflops"] = l.MeasuredGflops, ["roof_gflops"] = l.RoofGflops, ["bound"] = l.Bound,
        })]);

        double lo = Math.Min(0.05, r.Layers.Min(l => l.Intensity) / 2), hi = Math.Max(r.Ridge * 4, r.Layers.Max(l => l.Intensity) * 2);
        var xs = Enumerable.Range(0, 41).Select(i => lo * Math.Pow(hi / lo, i / 40.0)).ToList();
        var series = new List<Series> { new("roof: min(peak, bandwidth × intensity)", xs, [.. xs.Select(v => Math.Min(r.PeakGflops, r.BandwidthGBs * v))]) };
        series.AddRange(r.Layers.GroupBy(l => l.Kind).Select(grp => new Series(grp.Key, [.. grp.Select(l => l.Intensity)], [.. grp.Select(l => l.MeasuredGflops)])));
        context.Figure("roofline.png", Charts.Line($"roofline ({r.Isa}, {r.Threads} threads, batch {r.Batch})", "arithmetic intensity (FLOP/byte)", "GFLOP/s", series, logX: true, logY: true));

        var inv = CultureInfo.InvariantCulture;
        var rep = context.Report;
        rep.Heading("Roofline");
        rep.Paragraph($"Peak: {Report.Num(r.PeakGflops)} GFLOP/s (the library's FmaPeak loop, {r.Isa}, {r.Threads.ToString(inv)} threads); memory bandwidth {Report.Num(r.BandwidthGBs)} GB/s " +
            $"(triad a = b + s·c over three float arrays, 12 bytes per element, best run). Ridge point {Report.Num(r.Ridge, 3)} FLOP/byte. " +
            $"Network on a {r.Input[0].ToString(inv)}x{r.Input[1].ToString(inv)}x{r.Input[2].ToString(inv)} input at batch {r.Batch.ToString(inv)}; " +
            "FLOPs per layer from the calculator, bytes = 4·(input + output elements + parameters), time = median forward of the layer alone. The machine is shared, so times carry load noise.");
        rep.Table(["layer", "kind", "MFLOP", "MB moved", "intensity", "measured GFLOP/s", "roof GFLOP/s", "of roof", "bound"],
            r.Layers.Select(l => (IReadOnlyList<string>)[l.Layer, l.Kind, Report.Num(l.Flops / 1e6), Report.Num(l.Bytes / 1e6, 3), Report.Num(l.Intensity, 3),
                Report.Num(l.MeasuredGflops, 3), Report.Num(l.RoofGflops, 3), Report.Percent(l.MeasuredGflops / l.RoofGflops), l.Bound]));
        var byKind = r.Layers.GroupBy(l => l.Kind).Select(grp => $"{grp.Key}: intensity {string.Join(", ", grp.Select(l => Report.Num(l.Intensity, 3)))} → {string.Join(", ", grp.Select(l => l.Bound).Distinct())}-bound").ToList();
        var above = r.Layers.Where(l => l.MeasuredGflops > l.RoofGflops).Select(l => $"{l.Layer} ({l.Kind})").ToList();
        if (above.Count > 0)
            byKind.Add($"Measured above the roof: {string.Join(", ", above)} — the peak or bandwidth loop ran while other work shared the cores, so the roof is an underestimate here.");
        rep.Bullets(byKind);
        rep.Figure("roofline.png", "measured layers under the roof");
    }
}
