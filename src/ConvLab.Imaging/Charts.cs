using ScottPlot;
using SkiaSharp;

namespace ConvLab.Imaging;

/// <summary>One curve of a line chart.</summary>
/// <param name="Label">Legend text.</param>
/// <param name="X">X values.</param>
/// <param name="Y">Y values (as many as <paramref name="X"/>); non-finite points are left out.</param>
public sealed record Series(string Label, IReadOnlyList<double> X, IReadOnlyList<double> Y);

/// <summary>One tile of an image grid: a (H, W), (1, H, W) or (3, H, W) float image and its caption.</summary>
/// <param name="Title">Caption drawn above the tile.</param>
/// <param name="Image">The image.</param>
/// <param name="Marks">Dots drawn over the image (e.g. sampling locations), or null.</param>
public sealed record Tile(string Title, Tensor Image, IReadOnlyList<TileMark>? Marks = null);

/// <summary>A dot over an image-grid tile at image coordinates where pixel (row i, column j) has its centre at (x = j, y = i); fractional positions are drawn where they fall.</summary>
/// <param name="X">Column coordinate.</param>
/// <param name="Y">Row coordinate.</param>
/// <param name="Colour">Index into the chart palette (the colours of line-chart series).</param>
/// <param name="Radius">Radius in output pixels.</param>
public readonly record struct TileMark(double X, double Y, int Colour = 3, float Radius = 3f);

/// <summary>How image-grid tiles map values to grey levels.</summary>
public enum TileScaling
{
    /// <summary>Each tile stretched from its own minimum to its maximum (filters, feature maps, signed outputs).</summary>
    PerTile,

    /// <summary>One range for all tiles, from the smallest to the largest value of any tile (comparable levels).</summary>
    Shared,

    /// <summary>Values clipped to [0, 1] (images).</summary>
    Clip01,
}

/// <summary>
/// General PNG charts for experiments and reports — line charts with several series (linear or log axes), grouped bar
/// charts and captioned image grids — drawn with the same embedded font and plot setup as <see cref="RunPlots"/>.
/// </summary>
public static class Charts
{
    private static readonly Color[] Palette =
    [
        new(31, 119, 180), new(255, 127, 14), new(44, 160, 44), new(214, 39, 40), new(148, 103, 189),
        new(140, 86, 75), new(227, 119, 194), new(127, 127, 127), new(188, 189, 34), new(23, 190, 207),
    ];

    /// <summary>A line chart of <paramref name="series"/>; with <paramref name="logX"/>/<paramref name="logY"/> the axis is log10 (non-positive values left out).</summary>
    public static byte[] Line(string title, string xLabel, string yLabel, IReadOnlyList<Series> series,
        bool logX = false, bool logY = false, bool markers = true, int width = 800, int height = 500)
    {
        ArgumentNullException.ThrowIfNull(series);
        RunPlots.CheckSize("Line", width, height);
        if (series.Count == 0) throw new ArgumentException("Charts.Line: no series given");
        var plot = RunPlots.NewPlot();
        for (int i = 0; i < series.Count; i++)
        {
            var s = series[i];
            if (s.X.Count != s.Y.Count) throw new ArgumentException($"Charts.Line: series '{s.Label}' has {s.X.Count} x values but {s.Y.Count} y values");
            var xs = new List<double>();
            var ys = new List<double>();
            for (int j = 0; j < s.X.Count; j++)
            {
                double x = s.X[j], y = s.Y[j];
                if (!double.IsFinite(x) || !double.IsFinite(y) || (logX && x <= 0) || (logY && y <= 0)) continue;
                xs.Add(logX ? Math.Log10(x) : x);
                ys.Add(logY ? Math.Log10(y) : y);
            }
            if (xs.Count == 0) continue;
            var line = plot.Add.Scatter(xs.ToArray(), ys.ToArray(), Palette[i % Palette.Length]);
            line.LegendText = s.Label;
            line.LineWidth = 2;
            line.MarkerSize = markers && xs.Count <= 60 ? 6 : 0;
        }
        if (logX) plot.Axes.Bottom.TickGenerator = LogTicks();
        if (logY) plot.Axes.Left.TickGenerator = LogTicks();
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        if (series.Count > 1 || series[0].Label.Length > 0) plot.ShowLegend(Alignment.UpperLeft);
        return plot.GetImageBytes(width, height, ImageFormat.Png);
    }

    /// <summary>Grouped bars: one group of bars per category, one bar per entry of <paramref name="groups"/> (each with a value per category).</summary>
    public static byte[] Bars(string title, string yLabel, IReadOnlyList<string> categories,
        IReadOnlyList<(string Label, IReadOnlyList<double> Values)> groups, int width = 800, int height = 500)
    {
        ArgumentNullException.ThrowIfNull(categories);
        ArgumentNullException.ThrowIfNull(groups);
        RunPlots.CheckSize("Bars", width, height);
        if (categories.Count == 0 || groups.Count == 0) throw new ArgumentException("Charts.Bars: needs at least one category and one group");
        var plot = RunPlots.NewPlot();
        double slot = 0.8 / groups.Count;
        for (int g = 0; g < groups.Count; g++)
        {
            if (groups[g].Values.Count != categories.Count)
                throw new ArgumentException($"Charts.Bars: group '{groups[g].Label}' has {groups[g].Values.Count} values for {categories.Count} categories");
            var bars = new List<Bar>();
            for (int c = 0; c < categories.Count; c++)
            {
                double v = groups[g].Values[c];
                if (!double.IsFinite(v)) continue;
                bars.Add(new Bar { Position = c - 0.4 + slot * (g + 0.5), Value = v, Size = slot * 0.9, FillColor = Palette[g % Palette.Length] });
            }
            var plotted = plot.Add.Bars(bars);
            plotted.LegendText = groups[g].Label;
        }
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, categories.Count).Select(i => (double)i).ToArray(), categories.ToArray());
        plot.Axes.Margins(bottom: 0);
        plot.Title(title);
        plot.YLabel(yLabel);
        if (groups.Count > 1) plot.ShowLegend(Alignment.UpperRight);
        return plot.GetImageBytes(width, height, ImageFormat.Png);
    }

    /// <summary>
    /// Captioned tiles in a grid (<paramref name="columns"/> per row; 0 picks a near-square grid). Tiles are enlarged
    /// without smoothing to about <paramref name="tileSize"/> pixels; grey for one channel, RGB for three.
    /// </summary>
    public static byte[] ImageGrid(IReadOnlyList<Tile> tiles, int columns = 0, string? title = null,
        TileScaling scaling = TileScaling.PerTile, int tileSize = 160)
    {
        ArgumentNullException.ThrowIfNull(tiles);
        if (tiles.Count == 0 || tiles.Count > 1024) throw new ArgumentException($"Charts.ImageGrid: expected 1 to 1024 tiles, got {tiles.Count}");
        if (tileSize < 16 || tileSize > 1024) throw new ArgumentException($"Charts.ImageGrid: tile size must be 16 to 1024 pixels, got {tileSize}");
        var images = tiles.Select((t, i) => Planes(t, i)).ToArray();
        float sharedLo = float.PositiveInfinity, sharedHi = float.NegativeInfinity;
        foreach (var im in images) { sharedLo = Math.Min(sharedLo, im.Lo); sharedHi = Math.Max(sharedHi, im.Hi); }
        int cols = columns > 0 ? Math.Min(columns, tiles.Count) : (int)Math.Ceiling(Math.Sqrt(tiles.Count));
        int rows = (tiles.Count + cols - 1) / cols;
        int maxSide = images.Max(im => Math.Max(im.H, im.W));
        int scale = Math.Max(1, tileSize / maxSide);
        int cellW = Math.Max(images.Max(im => im.W) * scale, 96), cellH = images.Max(im => im.H) * scale;
        const int gap = 10, caption = 22, border = 10;
        int titleHeight = title != null ? 30 : 0;
        int width = 2 * border + cols * (cellW + gap) - gap, height = titleHeight + 2 * border + rows * (cellH + caption + gap) - gap;
        using var bitmap = new SKBitmap(new SKImageInfo(Math.Max(width, 200), height, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(SKColors.White);
            using var text = new SKPaint { Color = SKColors.Black, IsAntialias = true };
            if (title != null)
            {
                using var bold = new SKFont(EmbeddedFont.Bold, 16);
                canvas.DrawText(title, border, 22, SKTextAlign.Left, bold, text);
            }
            using var font = new SKFont(EmbeddedFont.Regular, 12);
            using var fill = new SKPaint { IsAntialias = false };
            for (int t = 0; t < images.Length; t++)
            {
                var im = images[t];
                int x0 = border + t % cols * (cellW + gap), y0 = titleHeight + border + t / cols * (cellH + caption + gap);
                canvas.DrawText(Fit(tiles[t].Title, cellW, font), x0, y0 + 15, SKTextAlign.Left, font, text);
                var (lo, hi) = scaling switch
                {
                    TileScaling.Clip01 => (0f, 1f),
                    TileScaling.Shared => (sharedLo, sharedHi),
                    _ => (im.Lo, im.Hi),
                };
                float range = hi > lo ? hi - lo : 0;
                byte Level(float v) => !float.IsFinite(v) ? (byte)0
                    : range > 0 ? (byte)Math.Clamp(MathF.Round((v - lo) / range * 255f), 0, 255) : (byte)(scaling == TileScaling.Clip01 ? 0 : 128);
                int plane = im.H * im.W;
                for (int y = 0; y < im.H; y++)
                    for (int x = 0; x < im.W; x++)
                    {
                        int p = y * im.W + x;
                        byte r = Level(im.Data[p]), g = im.C == 3 ? Level(im.Data[plane + p]) : r, b = im.C == 3 ? Level(im.Data[2 * plane + p]) : r;
                        fill.Color = new SKColor(r, g, b);
                        canvas.DrawRect(x0 + x * scale, y0 + caption + y * scale, scale, scale, fill);
                    }
                if (tiles[t].Marks is { } marks) DrawMarks(canvas, marks, x0, y0 + caption, scale, im.W, im.H);
            }
        }
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    /// <summary>Filled dots with a white rim (visible on dark and light pixels), clipped to the tile; non-finite marks are skipped.</summary>
    private static void DrawMarks(SKCanvas canvas, IReadOnlyList<TileMark> marks, int left, int top, int scale, int w, int h)
    {
        canvas.Save();
        canvas.ClipRect(new SKRect(left, top, left + w * scale, top + h * scale));
        using var rim = new SKPaint { Color = SKColors.White, IsAntialias = true, Style = SKPaintStyle.Fill };
        using var dot = new SKPaint { IsAntialias = true, Style = SKPaintStyle.Fill };
        foreach (var m in marks)
        {
            if (!double.IsFinite(m.X) || !double.IsFinite(m.Y) || !(m.Radius > 0)) continue;
            float cx = left + (float)(m.X + 0.5) * scale, cy = top + (float)(m.Y + 0.5) * scale;
            var c = Palette[((m.Colour % Palette.Length) + Palette.Length) % Palette.Length];
            dot.Color = new SKColor(c.R, c.G, c.B);
            canvas.DrawCircle(cx, cy, m.Radius + 1, rim);
            canvas.DrawCircle(cx, cy, m.Radius, dot);
        }
        canvas.Restore();
    }

    private static (float[] Data, int C, int H, int W, float Lo, float Hi) Planes(Tile tile, int index)
    {
        var t = tile.Image ?? throw new ArgumentException($"Charts.ImageGrid: tile {index} has no image");
        if (!t.IsFloatingPoint) throw new ArgumentException($"Charts.ImageGrid: tile {index} ('{tile.Title}') is {t.DType}, expected a float image");
        int c = t.Rank == 2 ? 1 : t.Rank == 3 ? t.Size(0) : -1;
        if (c != 1 && c != 3) throw new ArgumentException($"Charts.ImageGrid: tile {index} ('{tile.Title}') must be (H, W), (1, H, W) or (3, H, W), got [{string.Join(", ", t.Shape.ToArray())}]");
        int h = t.Size(t.Rank - 2), w = t.Size(t.Rank - 1);
        if (h == 0 || w == 0 || h > 4096 || w > 4096) throw new ArgumentException($"Charts.ImageGrid: tile {index} ('{tile.Title}') has an unusable size {h}x{w}");
        var data = t.Detach().Float().Contiguous().ToArray();
        float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
        foreach (var v in data) if (float.IsFinite(v)) { lo = Math.Min(lo, v); hi = Math.Max(hi, v); }
        if (lo > hi) (lo, hi) = (0, 0);
        return (data, c, h, w, lo, hi);
    }

    private static string Fit(string text, int width, SKFont font)
    {
        if (font.MeasureText(text) <= width) return text;
        while (text.Length > 1 && font.MeasureText(text + "…") > width) text = text[..^1];
        return text + "…";
    }

    private static ScottPlot.TickGenerators.NumericAutomatic LogTicks() => new()
    {
        MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
        IntegerTicksOnly = true,
        LabelFormatter = v => Math.Pow(10, v).ToString("G4", System.Globalization.CultureInfo.InvariantCulture),
    };
}
