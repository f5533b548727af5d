using System.Text.Json.Nodes;
using ConvLab.Imaging;
using ConvLab.Vision;

namespace ConvLab.Experiments.Filters;

/// <summary>
/// <c>convlab experiment filters [--image FILE] [--run DIR]</c>: the HandDesignFilters notebook — box blur at N = 3, 6, 9,
/// edge detectors, the Sobel pair and its magnitude, boundary modes, a Gabor bank, and the first-layer filters of a
/// <c>convlab train</c> run against the hand-designed ones (best cosine similarity per learned filter).
/// </summary>
public sealed class FiltersExperiment : IExperiment
{
    /// <inheritdoc/>
    public string Name => "filters";

    /// <inheritdoc/>
    public string Description => "Hand-designed filters: blur, edges, Sobel magnitude, boundary modes, a Gabor bank, and learned first-layer filters compared with them";

    private static readonly string[] EdgeKernels = ["laplacian", "sobel-x", "sobel-y", "gradient-magnitude", "prewitt-x", "prewitt-y", "sharpen", "emboss"];

    /// <inheritdoc/>
    public void Run(ExperimentContext ctx)
    {
        var r = ctx.Report;
        var res = ctx.Results;
        string? imagePath = ctx.Option("image");
        Tensor image;
        if (imagePath == null) image = ShippedSampleImage.Load();
        else
        {
            if (!File.Exists(imagePath)) throw new ArgumentException($"--image: no such file: {imagePath}");
            try { image = ImageFile.Load(imagePath); }
            catch (InvalidDataException e) { throw new ArgumentException($"--image: cannot decode {e.Message}"); }
        }
        var grey = Vision.Filters.Grey(image);
        int h = grey.Shape[0], w = grey.Shape[1];
        if (h < 9 || w < 9) throw new ArgumentException($"--image: the image is {h}x{w}; the 9x9 blur needs at least 9x9 pixels");
        string source = imagePath == null ? ShippedSampleImage.Provenance : Path.GetFileName(imagePath);
        res["image"] = new JsonObject { ["source"] = source, ["height"] = h, ["width"] = w };
        r.Paragraph($"Image: {source}, {h}x{w}, converted to grey as 0.2989 R + 0.5870 G + 0.1140 B. Filters are applied by conv2d (cross-correlation, " +
            "\"same\" output size); shown clipped to [0, 1] as the notebook does unless a caption says the range is stretched.");

        // Blur: sharpness falls with N.
        var lap = Vision.Filters.Parse("laplacian");
        double Sharpness(Tensor g) => Vision.Filters.Apply(g, lap, "reflect").ToDoubleArray().Average(Math.Abs);
        var blurRows = new JsonArray();
        var tiles = new List<Tile> { new("original", grey) };
        double sharp0 = Sharpness(grey);
        var sharp = new List<(int N, double S)>();
        foreach (int n in new[] { 3, 6, 9 })
        {
            var b = Vision.Filters.Apply(grey, Vision.Filters.Parse($"box:{n}"), "reflect");
            tiles.Add(new($"box {n}x{n}", b));
            double sn = Sharpness(b);
            sharp.Add((n, sn));
            blurRows.Add(new JsonObject { ["n"] = n, ["mean_abs_laplacian"] = sn, ["relative_to_original"] = sn / sharp0 });
        }
        ctx.Figure("blur.png", Charts.ImageGrid(tiles, columns: 4, title: "Box blur (reflect boundary)", scaling: TileScaling.Clip01));
        res["original_mean_abs_laplacian"] = sharp0;
        res["blur"] = blurRows;
        r.Heading("Blur");
        r.Paragraph($"The mean absolute Laplacian (a measure of fine detail) is {Report.Num(sharp0)} on the original and " +
            string.Join(", ", sharp.Select(x => $"{Report.Num(x.S)} after the {x.N}x{x.N} box ({Report.Percent(x.S / sharp0)} of it)")) +
            (sharp.Zip(sharp.Skip(1)).All(p => p.Second.S < p.First.S) ? ": every larger box removes more detail." : ": the detail does not fall monotonically with N on this image."));

        // Edges.
        var edgeRows = new JsonArray();
        var edgeTiles = new List<Tile>();
        var stats = new List<(string Name, double Max, double Clipped)>();
        foreach (var name in EdgeKernels)
        {
            var resp = Vision.Filters.Apply(grey, Vision.Filters.Parse(name), "reflect");
            var d = resp.ToDoubleArray();
            double clipped = d.Count(v => v < 0 || v > 1) / (double)d.Length;
            stats.Add((name, d.Max(Math.Abs), clipped));
            edgeTiles.Add(new(name, Vision.Filters.Clip01(resp)));
            edgeRows.Add(new JsonObject { ["kernel"] = name, ["min"] = d.Min(), ["max"] = d.Max(), ["mean"] = d.Average(), ["fraction_clipped"] = clipped });
        }
        ctx.Figure("edges.png", Charts.ImageGrid(edgeTiles, columns: 4, title: "Edge kernels (reflect, clipped to [0, 1])", scaling: TileScaling.Clip01));
        res["edges"] = edgeRows;
        var gx = Vision.Filters.Apply(grey, Vision.Filters.Parse("sobel-x"), "reflect");
        var gy = Vision.Filters.Apply(grey, Vision.Filters.Parse("sobel-y"), "reflect");
        var mag = Vision.Filters.Apply(grey, Vision.Filters.Parse("gradient-magnitude"), "reflect");
        ctx.Figure("sobel.png", Charts.ImageGrid([new("grey", grey), new("sobel-x (stretched)", gx), new("sobel-y (stretched)", gy), new("magnitude (stretched)", mag)],
            columns: 4, title: "The Sobel pair and the gradient magnitude", scaling: TileScaling.PerTile));
        double ex = gx.ToDoubleArray().Average(v => v * v), ey = gy.ToDoubleArray().Average(v => v * v);
        res["sobel"] = new JsonObject { ["mean_square_x"] = ex, ["mean_square_y"] = ey, ["max_magnitude"] = mag.ToDoubleArray().Max() };
        r.Heading("Edges");
        var loudest = stats.MaxBy(x => x.Max);
        r.Paragraph($"Responses are signed and unbounded: the strongest is {loudest.Name} (|response| up to {Report.Num(loudest.Max)}), and clipping to [0, 1] hides " +
            string.Join(", ", stats.Select(x => $"{Report.Percent(x.Clipped)} of the {x.Name} pixels")) + ". " +
            $"The Sobel x response carries {Report.Percent(ex / (ex + ey))} of the gradient energy, so this image has " +
            (ex > ey ? "more vertical edges (changes along x) than horizontal ones." : "more horizontal edges (changes along y) than vertical ones."));

        // Boundary modes.
        var sobelX = Vision.Filters.Parse("sobel-x");
        var zeros = Vision.Filters.Apply(grey, sobelX, "zeros").ToDoubleArray();
        var modeRows = new JsonArray();
        var modeTiles = new List<Tile>();
        var borderDiff = new List<(string Mode, double Diff)>();
        foreach (var mode in Vision.Filters.Modes)
        {
            var resp = Vision.Filters.Apply(grey, sobelX, mode);
            var d = resp.ToDoubleArray();
            double diff = BorderMeanAbs(d, zeros, h, w);
            borderDiff.Add((mode, diff));
            modeTiles.Add(new(mode, resp));
            modeRows.Add(new JsonObject { ["mode"] = mode, ["border_mean_abs"] = BorderMeanAbs(d, new double[d.Length], h, w), ["border_mean_abs_diff_vs_zeros"] = diff });
        }
        ctx.Figure("modes.png", Charts.ImageGrid(modeTiles, columns: 4, title: "sobel-x with each boundary mode (shared range)", scaling: TileScaling.Shared));
        res["modes"] = modeRows;
        r.Heading("Boundary modes");
        r.Paragraph("Only the one-pixel frame differs between modes for a 3x3 kernel. Mean |difference| from zero padding on that frame: " +
            string.Join(", ", borderDiff.Where(b => b.Mode != "zeros").Select(b => $"{b.Mode} {Report.Num(b.Diff)}")) +
            ". Zero padding invents a dark frame, so it creates an edge wherever the image border is bright; reflect and replicate continue the image, circular wraps the opposite side in.");

        // Gabor bank.
        double[] orientations = [0, 45, 90, 135], wavelengths = ctx.Quick ? [4] : [4, 8];
        var bank = Vision.Filters.GaborBank(orientations, wavelengths);
        var gaborRows = new JsonArray();
        var kernelTiles = new List<Tile>();
        var respTiles = new List<Tile>();
        var energy = new List<(string Name, double Theta, double Lambda, double E)>();
        foreach (var (f, i) in bank.Select((f, i) => (f, i)))
        {
            double theta = orientations[i % orientations.Length], lambda = wavelengths[i / orientations.Length];
            var resp = Vision.Filters.Apply(grey, f, "reflect");
            double e = resp.ToDoubleArray().Average(Math.Abs);
            energy.Add((f.Name, theta, lambda, e));
            kernelTiles.Add(new(f.Name, f.Kernel));
            respTiles.Add(new(f.Name, resp.Abs()));
            gaborRows.Add(new JsonObject { ["name"] = f.Name, ["theta_degrees"] = theta, ["wavelength"] = lambda, ["size"] = f.Kernel.Shape[0], ["mean_abs_response"] = e });
        }
        ctx.Figure("gabor-kernels.png", Charts.ImageGrid(kernelTiles, columns: orientations.Length, title: "Gabor bank: orientations x wavelengths", tileSize: 96));
        ctx.Figure("gabor-responses.png", Charts.ImageGrid(respTiles, columns: orientations.Length, title: "|Gabor response| (each tile stretched)"));
        res["gabor"] = gaborRows;
        r.Heading("Gabor bank");
        r.Paragraph(string.Join(" ", wavelengths.Select(l =>
        {
            var at = energy.Where(x => x.Lambda == l).ToList();
            var top = at.MaxBy(x => x.E);
            return $"At wavelength {Report.Num(l)} px the strongest mean |response| is at {Report.Num(top.Theta)}° ({Report.Num(top.E)}; weakest {Report.Num(at.Min(x => x.E))} at {Report.Num(at.MinBy(x => x.E).Theta)}°).";
        })) + " A Gabor filter answers to stripes across its orientation at its wavelength, which is what a first convolution layer often learns.");

        // Learned first-layer filters of a convlab train run.
        r.Heading("Learned first-layer filters");
        string? run = ctx.Option("run");
        if (run == null)
        {
            res["learned"] = null;
            r.Paragraph("No `--run DIR` was given, so no learned filters were compared. Train a model with `convlab train --out DIR` and rerun with `--run DIR` to compare its first convolution with these hand-designed filters.");
            return;
        }
        string weights = Path.Combine(run, "model.safetensors");
        if (!File.Exists(weights)) throw new ArgumentException($"--run: {run} has no model.safetensors (is it a `convlab train` run folder?)");
        var first = RunPlots.FirstConvWeight(weights) ?? throw new ArgumentException($"--run: {weights} holds no 4-D convolution weight");
        var learned = first.Weight;
        int kh = learned.Shape[2], kw = learned.Shape[3];
        if (kh != kw) throw new ArgumentException($"--run: the first convolution {first.Name} has a {kh}x{kw} kernel; only square kernels are compared");
        var hand = Vision.Filters.ComparisonBank(kh);
        var matches = Vision.Filters.BestMatches(learned, hand);
        // Chance level: the best |cosine| of as many random (standard normal) filters against the same bank.
        var random = Tensor.Randn([Math.Max(learned.Shape[0], 64), 1, kh, kw], new Generator(ctx.Seed));
        double chance = Vision.Filters.BestMatches(random, hand).Average(m => Math.Abs(m.Cosine));
        res["learned"] = new JsonObject
        {
            ["run"] = Path.GetFullPath(run), ["tensor"] = first.Name, ["shape"] = new JsonArray(learned.Shape.ToArray().Select(v => (JsonNode)v).ToArray()),
            ["random_filters_mean_best_abs_cosine"] = chance,
            ["matches"] = new JsonArray(matches.Select(m => (JsonNode)new JsonObject { ["filter"] = m.Index, ["best_match"] = m.BestMatch, ["cosine"] = m.Cosine }).ToArray()),
        };
        int shown = Math.Min(matches.Count, 16);
        var lt = new List<Tile>();
        for (int i = 0; i < shown; i++)
        {
            lt.Add(new($"learned {i}", learned.Detach().Select(0, i).Mean([0])));
            lt.Add(new($"{matches[i].BestMatch} ({Report.Num(matches[i].Cosine, 2)})", hand.First(b => b.Name == matches[i].BestMatch).Kernel));
        }
        ctx.Figure("learned-vs-hand.png", Charts.ImageGrid(lt, columns: 4, title: "learned (channel mean) vs best match", tileSize: 96));
        var byName = matches.GroupBy(m => m.BestMatch).OrderByDescending(g => g.Count()).ToList();
        r.Paragraph($"The first convolution of the run ({first.Name}, {string.Join("x", learned.Shape.ToArray())}) was compared, filter by filter (mean over input channels), with " +
            $"{hand.Count} hand-designed {kh}x{kw} kernels. The mean best |cosine similarity| is {Report.Num(matches.Average(m => Math.Abs(m.Cosine)), 3)} " +
            $"(highest {Report.Num(matches.Max(m => Math.Abs(m.Cosine)), 3)}, lowest {Report.Num(matches.Min(m => Math.Abs(m.Cosine)), 3)}), against {Report.Num(chance, 3)} for random normal filters " +
            $"(learned minus random: {Report.Num(matches.Average(m => Math.Abs(m.Cosine)) - chance, 3)}); the most frequent best match is " +
            $"{byName[0].Key} ({byName[0].Count()} of {matches.Count} filters). A negative cosine is the same detector with the opposite polarity.");
        r.Table(["learned filter", "best hand-designed match", "cosine"], matches.Select(m => (IReadOnlyList<string>)[m.Index.ToString(), m.BestMatch, Report.Num(m.Cosine, 3)]));
    }

    private static double BorderMeanAbs(double[] a, double[] b, int h, int w)
    {
        double sum = 0;
        int n = 0;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                if (y == 0 || x == 0 || y == h - 1 || x == w - 1) { sum += Math.Abs(a[y * w + x] - b[y * w + x]); n++; }
        return sum / n;
    }
}
