using ConvLab.Imaging;
using SkiaSharp;

namespace ConvLab.Fuzz.Targets;

/// <summary>
/// Image files through ConvLab.Imaging's SkiaSharp path (<see cref="ImageFile.Load"/>, RGB then grayscale). Skia's
/// native decoders are not instrumented: afl-fuzz sees coverage of the managed side only, but a native crash still
/// kills the process and is recorded.
/// </summary>
public sealed class ImageTarget : FuzzTarget
{
    /// <inheritdoc/>
    public override string Name => "image";
    /// <inheritdoc/>
    public override string Extension => ".img";
    /// <inheritdoc/>
    public override Type[] Expected => [typeof(InvalidDataException)];

    /// <inheritdoc/>
    public override long Run(string path)
    {
        var rgb = ImageFile.Load(path, 3);
        return 4L * rgb.Numel;
    }

    /// <inheritdoc/>
    public override IEnumerable<(string, byte[])> Seeds(SeedContext context)
    {
        var rgb = Tensor.Rand([3, 5, 4], new Generator(1));
        yield return ("rgb.png", ImageFile.EncodePng(rgb));
        yield return ("gray.png", ImageFile.EncodePng(Tensor.Rand([1, 3, 3], new Generator(2))));
        using var bitmap = new SKBitmap(new SKImageInfo(8, 8, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++) bitmap.SetPixel(x, y, new SKColor((byte)(x * 32), (byte)(y * 32), 128, (byte)(255 - x)));
        using (var jpeg = bitmap.Encode(SKEncodedImageFormat.Jpeg, 80)) yield return ("small.jpg", jpeg.ToArray());
        using (var webp = bitmap.Encode(SKEncodedImageFormat.Webp, 100)) yield return ("lossless.webp", webp.ToArray());
        using (var webp = bitmap.Encode(SKEncodedImageFormat.Webp, 50)) yield return ("lossy.webp", webp.ToArray());
        yield return ("2x2.bmp", Bmp());
        yield return ("1x1.gif", Gif());
        yield return ("rgb.ico", Ico(ImageFile.EncodePng(rgb), 4, 5));
    }

    // 24-bit BMP, 2x2, bottom-up rows padded to 4 bytes.
    private static byte[] Bmp()
    {
        byte[] rows = [0, 0, 255, 0, 255, 0, 0, 0, 255, 0, 0, 255, 255, 255, 0, 0];
        var b = new byte[54 + rows.Length];
        b[0] = (byte)'B'; b[1] = (byte)'M';
        BitConverter.TryWriteBytes(b.AsSpan(2), b.Length);
        BitConverter.TryWriteBytes(b.AsSpan(10), 54);
        BitConverter.TryWriteBytes(b.AsSpan(14), 40);
        BitConverter.TryWriteBytes(b.AsSpan(18), 2);
        BitConverter.TryWriteBytes(b.AsSpan(22), 2);
        BitConverter.TryWriteBytes(b.AsSpan(26), (short)1);
        BitConverter.TryWriteBytes(b.AsSpan(28), (short)24);
        BitConverter.TryWriteBytes(b.AsSpan(34), rows.Length);
        rows.CopyTo(b, 54);
        return b;
    }

    // GIF89a, 1x1, a 2-colour global palette and one LZW-coded pixel (min code size 2: clear, 0, end).
    private static byte[] Gif() =>
    [
        .. "GIF89a"u8, 1, 0, 1, 0, 0x80, 0, 0, 255, 0, 0, 0, 0, 255,
        0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 0x01, 0, 0x3b,
    ];

    // An ICO directory with one PNG-encoded image.
    private static byte[] Ico(byte[] png, int width, int height)
    {
        var b = new byte[6 + 16 + png.Length];
        b[2] = 1; b[4] = 1;
        b[6] = (byte)width; b[7] = (byte)height;
        BitConverter.TryWriteBytes(b.AsSpan(10), (short)1);
        BitConverter.TryWriteBytes(b.AsSpan(12), (short)32);
        BitConverter.TryWriteBytes(b.AsSpan(14), png.Length);
        BitConverter.TryWriteBytes(b.AsSpan(18), 22);
        png.CopyTo(b, 22);
        return b;
    }
}
