using System.Globalization;
using ConvLab.Explain;
using SkiaSharp;

namespace ConvLab.Imaging;

/// <summary>One attribution map to draw: a title, the raw map and whether its sign carries meaning.</summary>
/// <param name="Title">Text above the panel (e.g. the method's name).</param>
/// <param name="Map">The raw map: (H, W), (C, H, W) or (1, C, H, W); channels are summed (Captum's convention).</param>
/// <param name="Signed">True for signed maps (diverging colormap centred at 0), false for magnitudes (sequential).</param>
public sealed record ExplainPanel(string Title, Tensor Map, bool Signed);

/// <summary>One deletion or insertion curve: scores after 0..S steps and the area under it.</summary>
/// <param name="Label">Legend text (e.g. the method's name).</param>
/// <param name="Scores">S + 1 target probabilities, drawn at x = k / S.</param>
/// <param name="Auc">Area under the curve on the [0, 1] x-axis, shown in the legend.</param>
public sealed record ExplainCurve(string Label, double[] Scores, double Auc);

/// <summary>
/// Pictures of attribution maps: a heat map overlaid on its image (sequential colormap for magnitudes, diverging
/// centred at zero for signed maps, blended with a constant alpha), a grid comparing methods side by side,
/// and deletion/insertion curve plots (raw maps: <see cref="AttributionFile"/>; score bars: <see cref="Charts.Bars"/>). Text uses
/// the embedded font (see <see cref="RunPlots"/>). Maps are scaled for display only.
/// </summary>
public static class ExplainPictures
{
    private const int Border = 8, TitleHeight = 22, BarHeight = 10, BarLabelHeight = 16;

    /// <summary>
    /// The (H, W) plane drawn for a map: (H, W) as is; (C, H, W) or (1, C, H, W) summed over channels. Returns the
    /// values in row-major order with the plane's size.
    /// </summary>
    public static (float[] Values, int Height, int Width) Plane(Tensor map)
    {
        ArgumentNullException.ThrowIfNull(map);
        if (!map.IsFloatingPoint) throw new ArgumentException($"ExplainPictures: the map must be a float tensor, got {map.DType}");
        var shape = map.Shape;
        if (map.Rank == 4 && shape[0] != 1) throw new ArgumentException($"ExplainPictures: a 4-D map must hold one sample (1, C, H, W), got {ShapeText(shape)}");
        if (map.Rank is < 2 or > 4) throw new ArgumentException($"ExplainPictures: expected a map (H, W), (C, H, W) or (1, C, H, W), got {ShapeText(shape)}");
        int h = shape[^2], w = shape[^1];
        if (h == 0 || w == 0) throw new ArgumentException($"ExplainPictures: the map {ShapeText(shape)} is empty");
        return (ExplainMethods.Plane(map.Rank == 4 ? map.Select(0, 0) : map).ToArray(), h, w);
    }

    /// <summary>
    /// The display range of a plane: magnitudes map [0, s] onto the sequential colormap, signed maps [-s, s] onto the
    /// diverging one, where s is the <paramref name="percentile"/>-th percentile of |v| (100 = the maximum; a lower
    /// value keeps one extreme pixel from washing out the rest). Non-finite values are ignored; an all-zero map gives s = 0.
    /// </summary>
    public static double Scale(ReadOnlySpan<float> plane, bool signed, double percentile = 99.5)
    {
        if (!(percentile is > 0 and <= 100)) throw new ArgumentException($"ExplainPictures: percentile must be in (0, 100], got {percentile}");
        var a = new List<double>(plane.Length);
        foreach (var x in plane)
            if (float.IsFinite(x)) a.Add(signed ? Math.Abs(x) : Math.Max(x, 0));
        if (a.Count == 0) return 0;
        a.Sort();
        // Nearest-rank percentile: the smallest value with at least percentile % of the values at or below it.
        int rank = Math.Clamp((int)Math.Ceiling(percentile / 100 * a.Count) - 1, 0, a.Count - 1);
        return a[rank];
    }

    /// <summary>
    /// The heat map of <paramref name="panel"/>'s map blended over <paramref name="image"/> ((1|3, H, W); values in [0, 1] are
    /// shown as they are, anything else min-max scaled for display) with opacity <paramref name="alpha"/>, enlarged
    /// without smoothing so the shorter side is at least <paramref name="minSide"/> pixels, with the title above and a
    /// colour bar with its range below. A map of another size than the image is resized bilinearly to it.
    /// </summary>
    public static byte[] OverlayPng(Tensor image, ExplainPanel panel, double alpha = 0.5, int minSide = 192, PixelBox? box = null) =>
        GridPng(image, [panel], columns: 1, alpha, minSide, box, showInput: false);

    /// <summary>
    /// A grid comparing methods on one image: the input itself first (when <paramref name="showInput"/>), then one
    /// overlay per panel, <paramref name="columns"/> per row (0 = up to 5), each with its title and colour bar. An
    /// optional ground-truth <paramref name="box"/> is outlined on every panel.
    /// </summary>
    public static byte[] GridPng(Tensor image, IReadOnlyList<ExplainPanel> panels, int columns = 0, double alpha = 0.5, int minSide = 192,
        PixelBox? box = null, bool showInput = true)
    {
        ArgumentNullException.ThrowIfNull(panels);
        if (panels.Count == 0) throw new ArgumentException("ExplainPictures: no maps to draw");
        if (!(alpha is >= 0 and <= 1)) throw new ArgumentException($"ExplainPictures: alpha must be in [0, 1], got {alpha}");
        if (minSide is < 16 or > 2048) throw new ArgumentException($"ExplainPictures: minSide must be between 16 and 2048 pixels, got {minSide}");
        if (columns < 0) throw new ArgumentException($"ExplainPictures: columns must be 0 (automatic) or positive, got {columns}");
        var (rgb, h, w) = ImagePixels(image);
        if (box is PixelBox b && (b.X0 < 0 || b.Y0 < 0 || b.X1 > w || b.Y1 > h || b.X0 >= b.X1 || b.Y0 >= b.Y1))
            throw new ArgumentException($"ExplainPictures: box ({b.X0}, {b.Y0}, {b.X1}, {b.Y1}) is not a non-empty box inside the {w}x{h} image");

        var tiles = new List<(string Title, byte[] Rgb, Colormap? Map, double Low, double High)>();
        if (showInput) tiles.Add(("input", rgb, null, 0, 0));
        foreach (var p in panels)
        {
            ArgumentNullException.ThrowIfNull(p);
            var (values, mh, mw) = Plane(p.Map);
            if (mh != h || mw != w) values = Resize.Bilinear(values, 1, mh, mw, h, w);
            double s = Scale(values, p.Signed);
            var cmap = p.Signed ? Colormap.RdBu : Colormap.Viridis;
            var blended = new byte[rgb.Length];
            for (int i = 0; i < h * w; i++)
            {
                double v = values[i];
                double t = s > 0 ? (p.Signed ? 0.5 + 0.5 * v / s : v / s) : p.Signed ? 0.5 : 0;
                var (r, g, bl) = cmap[float.IsFinite(values[i]) ? t : double.NaN];
                blended[3 * i] = Blend(rgb[3 * i], r, alpha);
                blended[3 * i + 1] = Blend(rgb[3 * i + 1], g, alpha);
                blended[3 * i + 2] = Blend(rgb[3 * i + 2], bl, alpha);
            }
            tiles.Add((p.Title, blended, cmap, p.Signed ? -s : 0, s));
        }

        int scale = Math.Max(1, (int)Math.Ceiling((double)minSide / Math.Min(h, w)));
        while (scale > 1 && (long)scale * Math.Max(h, w) > 2048) scale--;
        int tw = w * scale, th = h * scale;
        int cols = columns > 0 ? Math.Min(columns, tiles.Count) : Math.Min(tiles.Count, 5);
        int rows = (tiles.Count + cols - 1) / cols;
        int cellW = Math.Max(tw, 120) + Border, cellH = TitleHeight + th + 4 + BarHeight + BarLabelHeight + Border;
        int width = Border + cols * cellW, height = Border + rows * cellH;

        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(SKColors.White);
            using var font = new SKFont(EmbeddedFont.Regular, 13);
            using var small = new SKFont(EmbeddedFont.Regular, 11);
            using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
            using var fill = new SKPaint { IsAntialias = false };
            using var outline = new SKPaint { Color = new SKColor(0, 230, 0), IsStroke = true, StrokeWidth = 2, IsAntialias = false };
            for (int k = 0; k < tiles.Count; k++)
            {
                var tile = tiles[k];
                int x0 = Border + k % cols * cellW, y0 = Border + k / cols * cellH;
                canvas.DrawText(Fit(tile.Title, font, cellW - Border), x0, y0 + 15, SKTextAlign.Left, font, ink);
                int iy = y0 + TitleHeight;
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                    {
                        int i = 3 * (y * w + x);
                        fill.Color = new SKColor(tile.Rgb[i], tile.Rgb[i + 1], tile.Rgb[i + 2]);
                        canvas.DrawRect(x0 + x * scale, iy + y * scale, scale, scale, fill);
                    }
                if (box is PixelBox bb)
                    canvas.DrawRect(x0 + bb.X0 * scale, iy + bb.Y0 * scale, (bb.X1 - bb.X0) * scale - 1, (bb.Y1 - bb.Y0) * scale - 1, outline);
                if (tile.Map is Colormap cm)
                {
                    int by = iy + th + 4, bw = Math.Max(tw, 120);
                    for (int x = 0; x < bw; x++)
                    {
                        var (cr, cg, cb) = cm[(x + 0.5) / bw];
                        fill.Color = new SKColor(cr, cg, cb);
                        canvas.DrawRect(x0 + x, by, 1, BarHeight, fill);
                    }
                    canvas.DrawText(Number(tile.Low), x0, by + BarHeight + 12, SKTextAlign.Left, small, ink);
                    if (cm.Diverging) canvas.DrawText("0", x0 + bw / 2f, by + BarHeight + 12, SKTextAlign.Center, small, ink);
                    canvas.DrawText(Number(tile.High), x0 + bw, by + BarHeight + 12, SKTextAlign.Right, small, ink);
                }
            }
        }
        using var encoded = SKImage.FromBitmap(bitmap);
        using var data = encoded.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    /// <summary>
    /// Deletion or insertion curves of several methods on one line chart (<see cref="Charts.Line"/>): target probability
    /// against the fraction of pixels replaced (x = k / S), the AUC of each in its legend entry.
    /// </summary>
    public static byte[] CurvesPng(string title, IReadOnlyList<ExplainCurve> curves, int width = 800, int height = 500)
    {
        ArgumentNullException.ThrowIfNull(curves);
        if (curves.Count == 0) throw new ArgumentException($"ExplainPictures.Curves: no curves to draw for '{title}'");
        var series = new List<Series>();
        foreach (var c in curves)
        {
            ArgumentNullException.ThrowIfNull(c);
            if (c.Scores is null || c.Scores.Length < 2)
                throw new ArgumentException($"ExplainPictures.Curves: curve '{c.Label}' needs at least 2 scores (before and after one step), got {c.Scores?.Length ?? 0}");
            int steps = c.Scores.Length - 1;
            series.Add(new Series($"{c.Label} (AUC {c.Auc.ToString("0.000", CultureInfo.InvariantCulture)})",
                [.. Enumerable.Range(0, steps + 1).Select(i => (double)i / steps)], c.Scores));
        }
        return Charts.Line(title, "fraction of pixels replaced", "target probability", series, width: width, height: height);
    }

    /// <summary>Interleaved RGB bytes of a (1|3, H, W) image, min-max scaled when its values leave [0, 1].</summary>
    private static (byte[] Rgb, int Height, int Width) ImagePixels(Tensor image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var shape = image.Shape;
        if (image.Rank == 4 && shape[0] == 1) image = image.Squeeze(0);
        if (image.Rank != 3 || image.Size(0) is not (1 or 3) || !image.IsFloatingPoint)
            throw new ArgumentException($"ExplainPictures: the image must be a float (1 or 3, H, W) tensor, got {image.DType} {ShapeText(shape)}");
        int c = image.Size(0), h = image.Size(1), w = image.Size(2);
        if (h == 0 || w == 0) throw new ArgumentException($"ExplainPictures: the image {ShapeText(shape)} is empty");
        var v = image.Detach().Float().ToArray();
        float lo = 0, hi = 1;
        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        foreach (var x in v) if (float.IsFinite(x)) { min = Math.Min(min, x); max = Math.Max(max, x); }
        if (min < 0 || max > 1) (lo, hi) = (min, max > min ? max : min + 1);
        var rgb = new byte[3 * h * w];
        for (int i = 0; i < h * w; i++)
            for (int k = 0; k < 3; k++)
            {
                float x = v[(c == 3 ? k : 0) * h * w + i];
                rgb[3 * i + k] = float.IsFinite(x) ? (byte)Math.Clamp(MathF.Round((x - lo) / (hi - lo) * 255f), 0, 255) : (byte)0;
            }
        return (rgb, h, w);
    }

    private static byte Blend(byte under, byte over, double alpha) => (byte)Math.Round((1 - alpha) * under + alpha * over);

    private static string Number(double v) =>
        v == 0 ? "0" : Math.Abs(v) is >= 0.01 and < 1000 ? v.ToString("0.###", CultureInfo.InvariantCulture) : v.ToString("0.##e0", CultureInfo.InvariantCulture);

    private static string Fit(string text, SKFont font, float width)
    {
        if (font.MeasureText(text) <= width) return text;
        while (text.Length > 1 && font.MeasureText(text + "…") > width) text = text[..^1];
        return text + "…";
    }

    private static string ShapeText(ReadOnlySpan<int> shape) => "(" + string.Join(", ", shape.ToArray()) + ")";
}
