using System.Runtime.InteropServices;
using SkiaSharp;

namespace ConvLab.Imaging;

/// <summary>
/// Decodes image files (PNG, JPEG, BMP, WebP, GIF, ICO) into float32 (C, H, W) tensors scaled to [0, 1], as
/// torchvision's <c>ImageFolder</c> loader followed by <c>ToTensor</c>: RGB drops alpha (PIL's <c>convert("RGB")</c>),
/// grayscale uses PIL's <c>convert("L")</c> weights, embedded colour profiles are ignored, and a GIF gives its
/// first frame.
/// </summary>
public static class ImageFile
{
    /// <summary>Images up to this many pixels (16.7 million, 4096x4096) load whatever their file size.</summary>
    public const long MaxPlainPixels = 1L << 24;

    /// <summary>Larger images must have at least one file byte per this many pixels.</summary>
    public const long MaxPixelsPerByte = 1L << 15;

    /// <summary>
    /// Loads <paramref name="path"/> as <paramref name="channels"/> (1 = grayscale, 3 = RGB) planes, resized to
    /// <paramref name="height"/> x <paramref name="width"/> when both are given (antialiased bilinear, torchvision's
    /// <c>Resize(antialias=True)</c>). A truncated, corrupt or unsupported file, or one whose header claims more than
    /// <see cref="MaxPlainPixels"/> pixels at over <see cref="MaxPixelsPerByte"/> pixels per file byte (a decompression
    /// bomb), throws <see cref="InvalidDataException"/> naming the file and the defect.
    /// </summary>
    public static Tensor Load(string path, int channels = 3, int? height = null, int? width = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        CheckOptions("ImageFile.Load", channels, height, width);
        var (data, h, w) = Decode(path, channels);
        if (height is int oh && width is int ow && (oh != h || ow != w))
        {
            data = Resize.Bilinear(data, channels, h, w, oh, ow);
            (h, w) = (oh, ow);
        }
        return Tensor.FromArray(data, channels, h, w);
    }

    /// <summary>
    /// Decodes the image file held in <paramref name="bytes"/> (an embedded resource, say) as <see cref="Load(string, int, int?, int?)"/>
    /// does a file; <paramref name="name"/> names it in errors.
    /// </summary>
    public static Tensor Load(byte[] bytes, string name, int channels = 3)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        ArgumentException.ThrowIfNullOrEmpty(name);
        CheckOptions("ImageFile.Load", channels, null, null);
        var (data, h, w) = Decode(bytes, name, channels);
        return Tensor.FromArray(data, channels, h, w);
    }

    /// <summary>
    /// Encodes an image (H, W), (1, H, W) or (3, H, W) with values in [0, 1] as PNG bytes at its own size; values outside
    /// are clipped and rounded to 8 bits (the inverse of <see cref="Load(string, int, int?, int?)"/> for 8-bit files).
    /// </summary>
    public static byte[] EncodePng(Tensor image)
    {
        ArgumentNullException.ThrowIfNull(image);
        bool grey = image.Rank == 2 || (image.Rank == 3 && image.Shape[0] == 1);
        if (!grey && !(image.Rank == 3 && image.Shape[0] == 3))
            throw new ArgumentException($"ImageFile.EncodePng: expected (H, W), (1, H, W) or (3, H, W), got rank {image.Rank} shape [{string.Join(", ", image.Shape.ToArray())}]");
        int h = image.Shape[^2], w = image.Shape[^1], n = h * w;
        if (h == 0 || w == 0 || (long)h * w > (1L << 28)) throw new ArgumentException($"ImageFile.EncodePng: image size {h}x{w} must be 1 to 2^28 pixels");
        var d = image.Detach().ToArray();
        static byte Level(float v) => float.IsFinite(v) ? (byte)Math.Clamp(MathF.Round(v * 255f), 0, 255) : (byte)0;
        using var bitmap = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        var rgba = new byte[4 * n];
        for (int i = 0; i < n; i++)
        {
            rgba[4 * i] = Level(d[i]);
            rgba[4 * i + 1] = Level(d[grey ? i : n + i]);
            rgba[4 * i + 2] = Level(d[grey ? i : 2 * n + i]);
            rgba[4 * i + 3] = 255;
        }
        System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
        using var encoded = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return encoded.ToArray();
    }

    internal static void CheckOptions(string who, int channels, int? height, int? width)
    {
        if (channels is not (1 or 3)) throw new ArgumentException($"{who}: channels must be 1 (grayscale) or 3 (RGB), got {channels}");
        if (height.HasValue != width.HasValue)
            throw new ArgumentException($"{who}: give both height and width to resize, or neither (got height={height?.ToString() ?? "none"}, width={width?.ToString() ?? "none"})");
        if (height <= 0 || width <= 0) throw new ArgumentException($"{who}: resize size must be positive, got {height}x{width}");
    }

    /// <summary>Decodes to planar float data in [0, 1]; returns it with the image's own size.</summary>
    internal static (float[] Data, int Height, int Width) Decode(string path, int channels) =>
        Decode(File.ReadAllBytes(path), Path.GetFileName(path), channels);

    private static (float[] Data, int Height, int Width) Decode(byte[] bytes, string name, int channels)
    {
        if (bytes.Length == 0) throw Bad(name, "file is empty");
        using var stream = new SKMemoryStream(bytes);
        using var codec = SKCodec.Create(stream, out var created);
        if (codec == null)
            throw Bad(name, created == SKCodecResult.IncompleteInput
                ? $"image header is truncated ({bytes.Length} bytes)"
                : $"not a decodable image ({Describe(created)}; supported: PNG, JPEG, BMP, WebP, GIF, ICO)");
        var size = codec.Info;
        if (size.Width <= 0 || size.Height <= 0) throw Bad(name, $"{codec.EncodedFormat} header gives size {size.Width}x{size.Height}");
        if ((long)size.Width * size.Height > (1L << 28))
            throw Bad(name, $"{codec.EncodedFormat} header gives size {size.Width}x{size.Height}, more than 2^28 pixels");
        // A decompression bomb: no codec's data reaches 2^15 pixels per byte (deflate on 1-bit PNG tops out near 8,300,
        // GIF's LZW near 2,700, BMP's RLE skips near 16,300), but Skia fills a GIF canvas larger than its frames, and
        // fuzz/ found a valid 35-byte GIF that decodes to 134 million pixels (1.7 GB of planes, seconds of work).
        if ((long)size.Width * size.Height > MaxPlainPixels && (long)size.Width * size.Height > MaxPixelsPerByte * bytes.Length)
            throw Bad(name, $"{codec.EncodedFormat} header gives size {size.Width}x{size.Height} for a {bytes.Length}-byte file, " +
                            $"more than {MaxPixelsPerByte} pixels per byte (a decompression bomb)");
        // Unpremultiplied RGBA without a colour space: raw stored values, no profile conversion, alpha kept apart.
        var info = new SKImageInfo(size.Width, size.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        // The header's size is only a claim until the data is decoded: a 35-byte GIF can claim 2^28 pixels (found by
        // fuzz/). The pixels therefore go to zeroed native memory, which the OS commits page by page as Skia writes
        // decoded rows (ZeroInitialized stops Skia from filling the rows a truncated file lacks), and the managed
        // planes are allocated only after the decode succeeded.
        long byteCount = info.BytesSize64;
        SKCodecResult result;
        unsafe
        {
            byte* p = (byte*)NativeMemory.AllocZeroed((nuint)byteCount);
            try
            {
                result = codec.GetPixels(info, (IntPtr)p, new SKCodecOptions { ZeroInitialized = SKZeroInitialized.Yes });
                // libjpeg only warns when the data ends inside the last scan and Skia then reports success with made-up pixels.
                if (result == SKCodecResult.Success && codec.EncodedFormat == SKEncodedImageFormat.Jpeg && !JpegHasEnd(bytes))
                    result = SKCodecResult.IncompleteInput;
                if (result == SKCodecResult.Success)
                    return (ToPlanes(new ReadOnlySpan<byte>(p, checked((int)byteCount)), channels), size.Height, size.Width);
            }
            finally { NativeMemory.Free(p); }
        }
        throw Bad(name, result == SKCodecResult.IncompleteInput
            ? $"{codec.EncodedFormat} image data is truncated ({bytes.Length} bytes hold only part of the {size.Width}x{size.Height} image)"
            : $"{codec.EncodedFormat} image data is corrupt ({Describe(result)})");
    }

    /// <summary>RGBA bytes -> planar floats; grayscale with PIL's integer ITU-R 601 luma so gray files load exactly.</summary>
    private static float[] ToPlanes(ReadOnlySpan<byte> rgba, int channels)
    {
        int n = rgba.Length / 4;
        var dst = new float[channels * n];
        if (channels == 1)
        {
            for (int i = 0; i < n; i++)
                dst[i] = ((rgba[4 * i] * 19595 + rgba[4 * i + 1] * 38470 + rgba[4 * i + 2] * 7471 + 0x8000) >> 16) / 255f;
        }
        else
        {
            for (int i = 0; i < n; i++)
            {
                dst[i] = rgba[4 * i] / 255f;
                dst[n + i] = rgba[4 * i + 1] / 255f;
                dst[2 * n + i] = rgba[4 * i + 2] / 255f;
            }
        }
        return dst;
    }

    /// <summary>
    /// Walks the JPEG marker segments and entropy-coded scans from the start and reports whether the end-of-image
    /// marker (FF D9) is reached. Inside scan data FF is always followed by 00 or a restart marker, so the first other
    /// marker ends the scan; data after the first end-of-image (e.g. appended pictures) is not examined.
    /// </summary>
    internal static bool JpegHasEnd(ReadOnlySpan<byte> b)
    {
        int i = 2;
        while (i + 1 < b.Length)
        {
            if (b[i] != 0xFF || b[i + 1] == 0xFF) { i++; continue; }
            byte m = b[i + 1];
            if (m == 0xD9) return true;
            if (m is >= 0xD0 and <= 0xD7 or 0x01 or 0x00) { i += 2; continue; }
            if (i + 3 >= b.Length) return false;
            i += 2 + (b[i + 2] << 8 | b[i + 3]);
            if (m != 0xDA) continue;
            while (i + 1 < b.Length && !(b[i] == 0xFF && b[i + 1] is not (0x00 or 0xFF or >= 0xD0 and <= 0xD7))) i++;
        }
        return false;
    }

    private static string Describe(SKCodecResult r) => r switch
    {
        SKCodecResult.Unimplemented => "format not recognised",
        SKCodecResult.InvalidInput => "invalid header",
        SKCodecResult.ErrorInInput => "error in the encoded data",
        SKCodecResult.IncompleteInput => "data ends early",
        SKCodecResult.InvalidConversion => "pixel format cannot be converted",
        _ => $"decoder result {r}",
    };

    private static InvalidDataException Bad(string file, string message) => new($"{file}: {message}");
}
