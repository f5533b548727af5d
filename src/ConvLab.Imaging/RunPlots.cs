using ConvLab.IO;
using ScottPlot;
using SkiaSharp;

namespace ConvLab.Imaging;

/// <summary>One epoch of a training history as the curves take it; a test value is NaN when that epoch was not evaluated.</summary>
public readonly record struct EpochMetrics(int Epoch, double TrainLoss, double TrainAccuracy, double TestLoss, double TestAccuracy);

/// <summary>
/// PNG plots of a training run: loss and accuracy curves, the confusion matrix and the first convolution's filters.
/// Text uses the font embedded in this assembly, so the images are the same on any machine and need no X server or
/// system fonts. The <c>*Png</c> methods take plain data and return the encoded file; <see cref="Write"/> reads a run
/// folder and writes all plots atomically.
/// </summary>
public static class RunPlots
{
    private static readonly Color Train = new(31, 119, 180), Test = new(255, 127, 14);

    /// <summary>
    /// Reads <c>metrics.json</c> and <c>model.safetensors</c> in <paramref name="runDir"/> and writes <c>loss.png</c>,
    /// <c>accuracy.png</c>, <c>confusion.png</c> and <c>filters.png</c> there (the last only if the model has a 4-D
    /// float tensor, i.e. a convolution). Both inputs are read and every image rendered before any file is written.
    /// Returns the paths written.
    /// </summary>
    public static IReadOnlyList<string> Write(string runDir)
    {
        ArgumentException.ThrowIfNullOrEmpty(runDir);
        if (!Directory.Exists(runDir)) throw new DirectoryNotFoundException($"RunPlots: run folder {runDir} does not exist");
        var metrics = Training.RunMetrics.Read(Path.Combine(runDir, "metrics.json"));
        EpochMetrics[] history = [.. metrics.History.Select(h => new EpochMetrics(h.Epoch, h.TrainLoss, h.TrainAccuracy, h.TestLoss ?? double.NaN, h.TestAccuracy ?? double.NaN))];
        var modelPath = Path.Combine(runDir, "model.safetensors");
        if (!File.Exists(modelPath)) throw new FileNotFoundException($"model.safetensors: not found in {runDir}", modelPath);
        var conv = FirstConvWeight(modelPath);

        var images = new List<(string Name, byte[] Png)>
        {
            ("loss.png", LossPng(history)),
            ("accuracy.png", AccuracyPng(history)),
            ("confusion.png", ConfusionPng(metrics.ConfusionArray(), metrics.ClassNames)),
        };
        if (conv is var (name, weight)) images.Add(("filters.png", FiltersPng(weight, name)));
        var written = new List<string>();
        foreach (var (file, png) in images)
        {
            var path = Path.Combine(runDir, file);
            AtomicFile.Write(path, s => s.Write(png));
            written.Add(path);
        }
        return written;
    }

    /// <summary>
    /// The first 4-D float tensor of a safetensors file in key order (the first convolution's weight in a PyTorch
    /// state dict), or null if there is none.
    /// </summary>
    public static (string Name, Tensor Weight)? FirstConvWeight(string safetensorsPath)
    {
        foreach (var (key, t) in SafeTensors.Load(safetensorsPath))
            if (t.Rank == 4 && t.IsFloatingPoint) return (key, t);
        return null;
    }

    /// <summary>Train and test loss per epoch (width x height pixels).</summary>
    public static byte[] LossPng(IReadOnlyList<EpochMetrics> history, int width = 800, int height = 500) =>
        Curves(history, "Loss", "loss", e => e.TrainLoss, e => e.TestLoss, Alignment.UpperRight, width, height);

    /// <summary>Train and test accuracy per epoch, on the scale the history uses (fraction or percent).</summary>
    public static byte[] AccuracyPng(IReadOnlyList<EpochMetrics> history, int width = 800, int height = 500) =>
        Curves(history, "Accuracy", "accuracy", e => e.TrainAccuracy, e => e.TestAccuracy, Alignment.LowerRight, width, height);

    private static byte[] Curves(IReadOnlyList<EpochMetrics> history, string title, string yLabel,
        Func<EpochMetrics, double> train, Func<EpochMetrics, double> test, Alignment legend, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(history);
        CheckSize(title, width, height);
        if (history.Count == 0) throw new ArgumentException($"RunPlots.{title}: the history is empty");
        var plot = NewPlot();
        foreach (var (label, value, color) in new[] { ("train", train, Train), ("test", test, Test) })
        {
            // Non-finite values (epochs without a test pass, a diverged loss) are left out rather than drawn off-scale.
            var points = history.Where(e => double.IsFinite(value(e))).ToArray();
            if (points.Length == 0) continue;
            var s = plot.Add.Scatter(points.Select(e => (double)e.Epoch).ToArray(), points.Select(value).ToArray(), color);
            s.LegendText = label;
            s.LineWidth = 2;
            s.MarkerSize = history.Count <= 50 ? 6 : 0;
        }
        plot.Title(title);
        plot.XLabel("epoch");
        plot.YLabel(yLabel);
        // Loss falls and accuracy rises, so the legend goes in the corner the curves leave free.
        plot.ShowLegend(legend);
        if (history.Max(e => e.Epoch) - history.Min(e => e.Epoch) < 10)
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericFixedInterval(1);
        return plot.GetImageBytes(width, height, ImageFormat.Png);
    }

    /// <summary>
    /// The confusion matrix (rows = true class, columns = predicted) as a heat map coloured by the fraction of each
    /// true class, with the counts written in the cells (up to 40 classes) and the class names on the axes.
    /// </summary>
    public static byte[] ConfusionPng(long[,] matrix, IReadOnlyList<string> classNames)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        ArgumentNullException.ThrowIfNull(classNames);
        int n = classNames.Count;
        if (n == 0 || matrix.GetLength(0) != n || matrix.GetLength(1) != n)
            throw new ArgumentException($"RunPlots.Confusion: expected a {n}x{n} matrix for {n} class names but got {matrix.GetLength(0)}x{matrix.GetLength(1)}");
        var fraction = new double[n, n];
        long correct = 0, total = 0;
        for (int r = 0; r < n; r++)
        {
            long rowSum = 0;
            for (int c = 0; c < n; c++)
            {
                if (matrix[r, c] < 0) throw new ArgumentException($"RunPlots.Confusion: count [{r}, {c}] is negative ({matrix[r, c]})");
                rowSum += matrix[r, c];
            }
            for (int c = 0; c < n; c++) fraction[r, c] = rowSum > 0 ? (double)matrix[r, c] / rowSum : 0;
            correct += matrix[r, r];
            total += rowSum;
        }

        var plot = NewPlot();
        var map = plot.Add.Heatmap(fraction);
        map.Colormap = new ScottPlot.Colormaps.Viridis();
        map.ManualRange = new ScottPlot.Range(0, 1);
        // By default cell (r, c) is centred on (x = c, y = n - 1 - r): row 0 at the top, as the matrix is printed.
        var bar = plot.Add.ColorBar(map);
        bar.Label = "fraction of true class";
        bar.LabelStyle.FontName = EmbeddedFont.Family;

        int cell = Math.Clamp(560 / n, 14, 60);
        if (n <= 40)
        {
            float fontSize = Math.Clamp(cell * 0.3f, 7f, 16f);
            for (int r = 0; r < n; r++)
                for (int c = 0; c < n; c++)
                {
                    var t = plot.Add.Text(matrix[r, c].ToString(System.Globalization.CultureInfo.InvariantCulture), c, n - 1 - r);
                    t.LabelAlignment = Alignment.MiddleCenter;
                    t.LabelFontSize = fontSize;
                    t.LabelFontName = EmbeddedFont.Family;
                    // Viridis is dark below about 0.55 and light above.
                    t.LabelFontColor = fraction[r, c] < 0.55 ? Colors.White : Colors.Black;
                }
        }
        var positions = Enumerable.Range(0, n).Select(i => (double)i).ToArray();
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(positions, classNames.ToArray());
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            positions.Select(p => n - 1 - p).ToArray(), classNames.ToArray());
        int longest = classNames.Max(s => s.Length);
        if (longest * n > 60)
        {
            plot.Axes.Bottom.TickLabelStyle.Rotation = -45;
            plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleRight;
            // ScottPlot sizes the axis for unrotated labels; reserve the rotated labels' height (about 7 px a character).
            plot.Axes.Bottom.MinimumSize = Math.Min(longest, 24) * 7 * 0.71f + 40;
        }
        plot.Axes.SetLimits(-0.5, n - 0.5, -0.5, n - 0.5);
        plot.Axes.Frameless(false);
        plot.Grid.IsVisible = false;
        plot.Title(total > 0 ? $"Confusion matrix (accuracy {100.0 * correct / total:0.00}% of {total})" : "Confusion matrix (no samples)");
        plot.XLabel("predicted");
        plot.YLabel("true");
        int side = n * cell;
        int labelRoom = Math.Min(longest, 24) * 8;
        return plot.GetImageBytes(side + labelRoom + 220, side + labelRoom + 120, ImageFormat.Png);
    }

    /// <summary>
    /// A grid of convolution filters from a weight (out, in, kH, kW): each filter is scaled to its own min/max and
    /// shown in RGB when in = 3, otherwise one gray tile per input channel (at most 1024 tiles). Pixels are enlarged
    /// without smoothing. <paramref name="title"/> (e.g. the tensor name) is drawn above the grid when given.
    /// </summary>
    public static byte[] FiltersPng(Tensor weight, string? title = null)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.Rank != 4 || !weight.IsFloatingPoint)
            throw new ArgumentException($"RunPlots.Filters: expected a float (out, in, kH, kW) weight but got {weight.DType} of rank {weight.Rank}");
        int o = weight.Size(0), ci = weight.Size(1), kh = weight.Size(2), kw = weight.Size(3);
        if (o == 0 || ci == 0 || kh == 0 || kw == 0) throw new ArgumentException($"RunPlots.Filters: the weight ({o}, {ci}, {kh}, {kw}) is empty");
        var w = weight.Detach().Float().ToArray();
        bool rgb = ci == 3;
        int tiles = Math.Min(rgb ? o : o * ci, 1024);
        int scale = Math.Max(1, 48 / Math.Max(kh, kw)), gap = 4, border = 8;
        int tw = kw * scale, th = kh * scale;
        int cols = (int)Math.Ceiling(Math.Sqrt(tiles)), rows = (tiles + cols - 1) / cols;
        int titleHeight = title != null ? 28 : 0;
        int width = Math.Max(2 * border + cols * (tw + gap) - gap, title != null ? 320 : 0);
        int height = titleHeight + 2 * border + rows * (th + gap) - gap;

        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(new SKColor(64, 64, 64));
            if (title != null)
            {
                using var font = new SKFont(EmbeddedFont.Regular, 15);
                using var paint = new SKPaint { Color = SKColors.White, IsAntialias = true };
                canvas.DrawText($"{title}  ({o}, {ci}, {kh}, {kw})", border, 20, SKTextAlign.Left, font, paint);
            }
            using var fill = new SKPaint { IsAntialias = false };
            int plane = kh * kw, per = ci * plane;
            for (int t = 0; t < tiles; t++)
            {
                // A gray tile normalises over its whole filter so the channels of one filter stay comparable.
                int f = rgb ? t : t / ci;
                var span = w.AsSpan(f * per, per);
                float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
                foreach (var v in span) if (float.IsFinite(v)) { lo = Math.Min(lo, v); hi = Math.Max(hi, v); }
                float range = hi > lo ? hi - lo : 0;
                byte Level(float v) => range > 0 && float.IsFinite(v) ? (byte)Math.Clamp(MathF.Round((v - lo) / range * 255f), 0, 255) : (byte)128;
                int x0 = border + t % cols * (tw + gap), y0 = titleHeight + border + t / cols * (th + gap);
                int channelBase = rgb ? 0 : t % ci * plane;
                for (int y = 0; y < kh; y++)
                    for (int x = 0; x < kw; x++)
                    {
                        int p = y * kw + x;
                        fill.Color = rgb
                            ? new SKColor(Level(span[p]), Level(span[plane + p]), Level(span[2 * plane + p]))
                            : new SKColor(Level(span[channelBase + p]), Level(span[channelBase + p]), Level(span[channelBase + p]));
                        canvas.DrawRect(x0 + x * scale, y0 + y * scale, scale, scale, fill);
                    }
            }
        }
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    internal static Plot NewPlot()
    {
        EmbeddedFont.Register();
        var plot = new Plot();
        plot.Font.Set(EmbeddedFont.Family);
        return plot;
    }

    internal static void CheckSize(string who, int width, int height)
    {
        if (width < 100 || height < 100 || width > 8192 || height > 8192)
            throw new ArgumentException($"RunPlots.{who}: image size must be between 100 and 8192 pixels, got {width}x{height}");
    }
}
