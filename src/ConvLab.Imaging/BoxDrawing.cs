using SkiaSharp;

namespace ConvLab.Imaging;

/// <summary>One box to draw: <c>xyxy</c> pixels of the image, a caption and a class index (which picks the colour).</summary>
/// <param name="X0">Left edge.</param>
/// <param name="Y0">Top edge.</param>
/// <param name="X1">Right edge.</param>
/// <param name="Y1">Bottom edge.</param>
/// <param name="Caption">Text drawn above the box (e.g. "circle 0.93").</param>
/// <param name="ClassIndex">Class index; boxes of one class share a colour.</param>
public readonly record struct LabeledBox(float X0, float Y0, float X1, float Y1, string Caption, int ClassIndex);

/// <summary>Draws labelled boxes on an image and encodes it as PNG (the embedded font, never system fonts).</summary>
public static class BoxDrawing
{
    private static readonly SKColor[] Palette =
    [
        new(230, 25, 75), new(60, 180, 75), new(255, 225, 25), new(0, 130, 200), new(245, 130, 48),
        new(145, 30, 180), new(70, 240, 240), new(240, 50, 230), new(210, 245, 60), new(250, 190, 212),
    ];

    /// <summary>PNG bytes of <paramref name="image"/> ((C, H, W) in [0, 1], 1 or 3 channels) with <paramref name="boxes"/>; images are
    /// enlarged (nearest) to at least <paramref name="minSide"/> pixels on their shorter side so captions stay legible.</summary>
    public static byte[] Png(Tensor image, IReadOnlyList<LabeledBox> boxes, int minSide = 384)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(boxes);
        if (image.Rank != 3 || image.Shape[0] is not (1 or 3))
            throw new ArgumentException($"BoxDrawing: expected a (1 or 3, H, W) image, got ({string.Join(", ", image.Shape.ToArray())})");
        int c = image.Shape[0], h = image.Shape[1], w = image.Shape[2];
        int scale = Math.Max(1, (int)Math.Ceiling((double)minSide / Math.Min(h, w)));
        var px = image.Detach().Float().Contiguous().ToArray();
        using var source = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Premul));
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                byte Level(int ch) => (byte)Math.Clamp(MathF.Round(px[(c == 3 ? ch : 0) * h * w + y * w + x] * 255f), 0, 255);
                source.SetPixel(x, y, new SKColor(Level(0), Level(1), Level(2)));
            }
        using var bitmap = new SKBitmap(new SKImageInfo(w * scale, h * scale, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.DrawBitmap(source, new SKRect(0, 0, w * scale, h * scale), new SKPaint { IsAntialias = false });
            using var font = new SKFont(EmbeddedFont.Bold, 13);
            foreach (var b in boxes)
            {
                var colour = Palette[((b.ClassIndex % Palette.Length) + Palette.Length) % Palette.Length];
                var rect = new SKRect(b.X0 * scale, b.Y0 * scale, b.X1 * scale, b.Y1 * scale);
                using var stroke = new SKPaint { Color = colour, Style = SKPaintStyle.Stroke, StrokeWidth = 2, IsAntialias = true };
                canvas.DrawRect(rect, stroke);
                float textWidth = font.MeasureText(b.Caption);
                float top = rect.Top >= 16 ? rect.Top - 16 : rect.Top;
                using var fill = new SKPaint { Color = colour, Style = SKPaintStyle.Fill };
                canvas.DrawRect(new SKRect(rect.Left, top, rect.Left + textWidth + 6, top + 16), fill);
                using var text = new SKPaint { Color = SKColors.Black, IsAntialias = true };
                canvas.DrawText(b.Caption, rect.Left + 3, top + 12, SKTextAlign.Left, font, text);
            }
        }
        using var encoded = SKImage.FromBitmap(bitmap);
        using var data = encoded.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    /// <summary>Writes <see cref="Png"/> to <paramref name="path"/> atomically.</summary>
    public static void Write(string path, Tensor image, IReadOnlyList<LabeledBox> boxes, int minSide = 384)
    {
        var bytes = Png(image, boxes, minSide);
        IO.AtomicFile.Write(path, s => s.Write(bytes));
    }
}
