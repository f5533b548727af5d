using System.Buffers.Binary;
using System.Text.Json;
using ConvLab.Data;
using ConvLab.Imaging;
using ConvLab.IO;
using ConvLab.NN.Functional;
using CsCheck;
using SkiaSharp;
using Xunit;

namespace ConvLab.Tests;

public sealed class ImagingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("convlab-imaging-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // ---------- image builders ----------

    /// <summary>Random RGBA bytes (alpha 255 unless <paramref name="alpha"/>), row-major h x w.</summary>
    private static byte[] RandomRgba(int h, int w, int seed, byte? alpha = 255)
    {
        var r = new Random(seed);
        var b = new byte[h * w * 4];
        r.NextBytes(b);
        if (alpha is byte a) for (int i = 3; i < b.Length; i += 4) b[i] = a;
        return b;
    }

    private static byte[] Encode(byte[] rgba, int h, int w, SKEncodedImageFormat format, int quality = 100)
    {
        using var bmp = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bmp.GetPixels(), rgba.Length);
        using var pixmap = bmp.PeekPixels();
        // WebP lossless at quality 101; JPEG without chroma subsampling so colours stay close to the source.
        using var data = format switch
        {
            SKEncodedImageFormat.Webp => pixmap.Encode(new SKWebpEncoderOptions(quality > 100 ? SKWebpEncoderCompression.Lossless : SKWebpEncoderCompression.Lossy, Math.Min(quality, 100))),
            SKEncodedImageFormat.Jpeg => pixmap.Encode(new SKJpegEncoderOptions(quality, SKJpegEncoderDownsample.Downsample444, SKJpegEncoderAlphaOption.Ignore)),
            _ => pixmap.Encode(format, quality),
        };
        return (data ?? throw new InvalidOperationException($"Skia cannot encode {format}")).ToArray();
    }

    private static byte[] EncodeGray(byte[] gray, int h, int w)
    {
        using var bmp = new SKBitmap(new SKImageInfo(w, h, SKColorType.Gray8, SKAlphaType.Opaque));
        System.Runtime.InteropServices.Marshal.Copy(gray, 0, bmp.GetPixels(), gray.Length);
        using var data = bmp.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    /// <summary>A 24-bit bottom-up BMP (Skia decodes BMP but cannot encode it).</summary>
    private static byte[] Bmp(byte[] rgba, int h, int w)
    {
        int stride = (w * 3 + 3) & ~3, size = 54 + stride * h;
        var b = new byte[size];
        b[0] = (byte)'B'; b[1] = (byte)'M';
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(2), size);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(10), 54);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(14), 40);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(18), w);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(22), h);
        BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(26), 1);
        BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(28), 24);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(34), stride * h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int s = 4 * (y * w + x), d = 54 + (h - 1 - y) * stride + 3 * x;
                (b[d], b[d + 1], b[d + 2]) = (rgba[s + 2], rgba[s + 1], rgba[s]);
            }
        return b;
    }

    private string Write(string relative, byte[] bytes)
    {
        var p = Path.Combine(_dir, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(p)!);
        File.WriteAllBytes(p, bytes);
        return p;
    }

    /// <summary>The expected (C, H, W) values of RGBA bytes: RGB planes or PIL's "L" luma, divided by 255.</summary>
    private static float[] Expected(byte[] rgba, int channels)
    {
        int n = rgba.Length / 4;
        var e = new float[channels * n];
        for (int i = 0; i < n; i++)
        {
            if (channels == 1) e[i] = ((rgba[4 * i] * 19595 + rgba[4 * i + 1] * 38470 + rgba[4 * i + 2] * 7471 + 0x8000) >> 16) / 255f;
            else for (int c = 0; c < 3; c++) e[c * n + i] = rgba[4 * i + c] / 255f;
        }
        return e;
    }

    // ---------- decoding ----------

    [Fact]
    public void PngBmpAndWebpLosslessDecodeExactlyAsRgbAndGrayscale()
    {
        var rgba = RandomRgba(5, 7, 1);
        var files = new[]
        {
            Write("a.png", Encode(rgba, 5, 7, SKEncodedImageFormat.Png)),
            Write("a.bmp", Bmp(rgba, 5, 7)),
            Write("a.webp", Encode(rgba, 5, 7, SKEncodedImageFormat.Webp, 101)), // quality > 100 = lossless
        };
        foreach (var f in files)
        {
            var rgb = ImageFile.Load(f);
            Assert.Equal([3, 5, 7], rgb.Shape.ToArray());
            Assert.Equal(DType.Float32, rgb.DType);
            Assert.Equal(Expected(rgba, 3), rgb.ToArray());
            Assert.Equal(Expected(rgba, 1), ImageFile.Load(f, channels: 1).ToArray());
        }
    }

    [Fact]
    public void AlphaIsDroppedNotBlendedAndGrayFilesLoadExactly()
    {
        // PIL's convert("RGB") keeps the stored colour of translucent pixels.
        var rgba = RandomRgba(4, 6, 2, alpha: 77);
        var p = Write("alpha.png", Encode(rgba, 4, 6, SKEncodedImageFormat.Png));
        Assert.Equal(Expected(rgba, 3), ImageFile.Load(p).ToArray());

        var gray = new byte[3 * 8];
        new Random(3).NextBytes(gray);
        var g = Write("gray.png", EncodeGray(gray, 3, 8));
        var expected = gray.Select(v => v / 255f).ToArray();
        Assert.Equal(expected, ImageFile.Load(g, 1).ToArray());
        Assert.Equal(expected.Concat(expected).Concat(expected).ToArray(), ImageFile.Load(g, 3).ToArray());
    }

    [Fact]
    public void JpegDecodesCloseToTheSourceAndResizes()
    {
        // A smooth image survives JPEG at quality 100 within a few levels.
        int h = 16, w = 24;
        var rgba = new byte[h * w * 4];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                (rgba[4 * (y * w + x)], rgba[4 * (y * w + x) + 1], rgba[4 * (y * w + x) + 2], rgba[4 * (y * w + x) + 3]) =
                    ((byte)(10 * x), (byte)(15 * y), (byte)(200 - 5 * x), 255);
        var p = Write("smooth.jpg", Encode(rgba, h, w, SKEncodedImageFormat.Jpeg));
        var t = ImageFile.Load(p).ToArray();
        var e = Expected(rgba, 3);
        float err = t.Zip(e).Max(z => Math.Abs(z.First - z.Second));
        Assert.True(err <= 4 / 255f, $"max error {err * 255} levels");
        var small = ImageFile.Load(p, 3, 8, 12);
        Assert.Equal([3, 8, 12], small.Shape.ToArray());
        Assert.Equal(Resize.Bilinear(t, 3, h, w, 8, 12), small.ToArray());
    }

    [Fact]
    public void ResizeMatchesTorchAntialiasedBilinear()
    {
        // torch 1.13: F.interpolate(x, size, mode="bilinear", align_corners=False, antialias=True), x[i] = ((37 i) % 101) / 100
        // of shape (1, 2, 7, 9).
        var x = Enumerable.Range(0, 2 * 7 * 9).Select(i => (i * 37 % 101) / 100f).ToArray();
        var cases = new (int H, int W, double[] Y)[]
        {
            (3, 4, [0.433857, 0.410331, 0.473850, 0.556653, 0.576807, 0.587934, 0.426227, 0.472504, 0.526122, 0.580470, 0.526098, 0.451041,
                    0.421102, 0.474495, 0.553850, 0.502673, 0.507429, 0.401306, 0.483042, 0.552504, 0.562837, 0.507387, 0.414303, 0.458898]),
            (2, 2, [0.477936, 0.486253, 0.556299, 0.488526, 0.456374, 0.520930, 0.487760, 0.463986]),
            (7, 4, [0.306571, 0.390732, 0.549268, 0.633429, 0.404571, 0.395122, 0.430488, 0.558286, 0.704571, 0.473415, 0.434878, 0.425429,
                    0.571714, 0.699512, 0.463902, 0.523429, 0.496571, 0.556098, 0.320488, 0.448286, 0.594571, 0.585122, 0.546585, 0.315429,
                    0.461714, 0.589512, 0.624878, 0.615429, 0.386571, 0.470732, 0.629268, 0.338286, 0.484571, 0.475122, 0.510488, 0.638286,
                    0.351714, 0.479512, 0.514878, 0.505429, 0.651714, 0.360732, 0.519268, 0.603429, 0.374571, 0.365122, 0.400488, 0.528286,
                    0.674571, 0.443415, 0.404878, 0.395429, 0.541714, 0.669512, 0.433902, 0.493429]),
        };
        foreach (var (h, w, y) in cases)
        {
            var r = Resize.Bilinear(x, 2, 7, 9, h, w);
            Assert.Equal(y.Length, r.Length);
            for (int i = 0; i < y.Length; i++) Assert.True(Math.Abs(r[i] - y[i]) < 2e-6, $"{h}x{w} [{i}]: {r[i]} vs torch {y[i]}");
        }
    }

    [Fact]
    public void UpscalingEqualsPlainBilinearInterpolate()
    {
        // Without downscaling the antialias filter is the ordinary half-pixel bilinear interpolation.
        Gen.Select(Gen.Int[1, 3], Gen.Int[1, 6], Gen.Int[1, 6], Gen.Int[0, 7], Gen.Int[0, 7], Gen.Int[0, 1000]).Sample((c, h, w, dh, dw, seed) =>
        {
            var g = new Generator((ulong)seed);
            var x = Tensor.Rand([1, c, h, w], g);
            var expected = F.Interpolate(x, [h + dh, w + dw], mode: "bilinear", alignCorners: false).ToArray();
            var actual = Resize.Bilinear(x.ToArray(), c, h, w, h + dh, w + dw);
            Assert.Equal(expected.Length, actual.Length);
            for (int i = 0; i < actual.Length; i++) Assert.True(Math.Abs(actual[i] - expected[i]) < 1e-5f, $"[{i}] {actual[i]} vs {expected[i]}");
        }, iter: 60, threads: 1);
    }

    [Fact]
    public void BadOptionsAreArgumentErrors()
    {
        var p = Write("x.png", Encode(RandomRgba(2, 2, 4), 2, 2, SKEncodedImageFormat.Png));
        Assert.Contains("channels must be 1", Assert.Throws<ArgumentException>(() => ImageFile.Load(p, 4)).Message);
        Assert.Contains("both height and width", Assert.Throws<ArgumentException>(() => ImageFile.Load(p, 3, 5)).Message);
        Assert.Contains("must be positive", Assert.Throws<ArgumentException>(() => ImageFile.Load(p, 3, 0, 5)).Message);
        Assert.Throws<FileNotFoundException>(() => ImageFile.Load(Path.Combine(_dir, "missing.png")));
    }

    // ---------- bad files ----------

    private static void AssertNamedError(string path, Action load, string? contains = null)
    {
        var e = Assert.Throws<InvalidDataException>(load);
        Assert.StartsWith(Path.GetFileName(path) + ":", e.Message);
        if (contains != null) Assert.Contains(contains, e.Message);
    }

    [Fact]
    public void NonImagesAndEmptyFilesGiveNamedErrors()
    {
        var text = Write("notes.png", "this is not an image"u8.ToArray());
        AssertNamedError(text, () => ImageFile.Load(text), "not a decodable image");
        var empty = Write("empty.jpg", []);
        AssertNamedError(empty, () => ImageFile.Load(empty), "file is empty");
        var png = Encode(RandomRgba(6, 6, 5), 6, 6, SKEncodedImageFormat.Png);
        var header = Write("header.png", png[..20]);
        AssertNamedError(header, () => ImageFile.Load(header));
        var cut = Write("cut.png", png[..(png.Length / 2)]);
        AssertNamedError(cut, () => ImageFile.Load(cut), "truncated");
    }

    [Theory]
    [InlineData(SKEncodedImageFormat.Png, "t.png")]
    [InlineData(SKEncodedImageFormat.Jpeg, "t.jpg")]
    [InlineData(SKEncodedImageFormat.Webp, "t.webp")]
    public void TruncatedOrCorruptedImagesOnlyEverGiveNamedDataErrors(SKEncodedImageFormat format, string name)
    {
        // A cut or a flipped byte either fails with an error naming the file, or (cut after the last pixel data, or
        // a byte the format does not check) still yields an image; a cut never changes the pixels.
        var full = Encode(RandomRgba(12, 10, 6), 12, 10, format, 90);
        var reference = ImageFile.Load(Write(name, full)).ToArray();
        Gen.Select(Gen.Int[0, full.Length - 1], Gen.Int[0, full.Length - 1], Gen.Byte, Gen.Bool).Sample((cut, pos, value, corrupt) =>
        {
            var bytes = corrupt ? full.ToArray() : full[..cut];
            if (corrupt) bytes[pos] = value;
            var p = Write(name, bytes);
            try
            {
                var t = ImageFile.Load(p);
                // A flipped header byte may change the stated size: still a valid (3, H, W) image.
                if (corrupt) Assert.Equal(3, t.Size(0));
                else Assert.Equal(reference, t.ToArray());
            }
            catch (InvalidDataException e)
            {
                Assert.StartsWith(name + ":", e.Message);
            }
        }, iter: 150, threads: 1);
    }

    // ---------- ImageFolderDataset ----------

    [Fact]
    public void ImageFolderFindsClassesFilesAndLabelsLikeTorchvision()
    {
        var root = Path.Combine(_dir, "folder");
        var pixels = new Dictionary<string, byte[]>();
        void Img(string rel, int seed)
        {
            var rgba = RandomRgba(3, 4, seed);
            pixels[Path.Combine(root, rel)] = rgba;
            Write(Path.Combine("folder", rel), rel.EndsWith(".bmp") ? Bmp(rgba, 3, 4) : Encode(rgba, 3, 4, SKEncodedImageFormat.Png));
        }
        Img("cat/b.png", 1);
        Img("cat/a.PNG", 2);
        Img("cat/sub/0.png", 3);
        Img("Zebra/z.bmp", 4);
        Img("dog/x.png", 5);
        Write("folder/dog/readme.txt", "ignored"u8.ToArray());
        Write("folder/top-level.png", Encode(RandomRgba(3, 4, 6), 3, 4, SKEncodedImageFormat.Png)); // not in a class folder

        var ds = new ImageFolderDataset(root);
        // Ordinal order, as Python's sorted(): upper case first.
        Assert.Equal(["Zebra", "cat", "dog"], ds.Classes);
        var expected = new[] { ("Zebra/z.bmp", 0L), ("cat/a.PNG", 1L), ("cat/b.png", 1L), ("cat/sub/0.png", 1L), ("dog/x.png", 2L) };
        Assert.Equal(expected.Length, ds.Count);
        for (int i = 0; i < ds.Count; i++)
        {
            var (path, label) = ds.Sample(i);
            Assert.Equal((Path.Combine(root, expected[i].Item1), expected[i].Item2), (path, label));
            var (x, l) = ds.Get(i);
            Assert.Equal(label, l);
            Assert.Equal([3, 3, 4], x.Shape.ToArray());
            Assert.Equal(Expected(pixels[path], 3), x.ToArray());
        }
        var gray = new ImageFolderDataset(root, channels: 1);
        Assert.Equal(Expected(pixels[Path.Combine(root, "dog/x.png")], 1), gray.Get(4).Input.ToArray());
        var onlyBmp = new ImageFolderDataset(root, extensions: ["bmp", ".png"]);
        Assert.Equal(5, onlyBmp.Count);
        Assert.Throws<ArgumentOutOfRangeException>(() => ds.Get(5));
    }

    [Fact]
    public void ImageFolderBatchesThroughTheDataLoaderWithResizeAndTransforms()
    {
        var sizes = new[] { (5, 7), (9, 4), (6, 6), (3, 11), (8, 8) };
        for (int i = 0; i < sizes.Length; i++)
            Write($"batch/{(i % 2 == 0 ? "even" : "odd")}/{i}.png", Encode(RandomRgba(sizes[i].Item1, sizes[i].Item2, i), sizes[i].Item1, sizes[i].Item2, SKEncodedImageFormat.Png));
        var ds = new ImageFolderDataset(Path.Combine(_dir, "batch"), channels: 1, height: 6, width: 6);
        var loader = new DataLoader(ds, batchSize: 2, shuffle: true, seed: 3, transform: new RandomHorizontalFlip());
        var labels = new List<long>();
        int batches = 0;
        foreach (var (x, y) in loader)
        {
            Assert.Equal([y.Size(0), 1, 6, 6], x.Shape.ToArray());
            Assert.All(x.ToArray(), v => Assert.InRange(v, 0f, 1f));
            labels.AddRange(y.ToInt64Array());
            batches++;
        }
        Assert.Equal(3, batches);
        Assert.Equal([0L, 0, 0, 1, 1], labels.Order().ToArray());

        // Without a resize, differently sized images cannot share a batch: the loader says which.
        var unsized = new DataLoader(new ImageFolderDataset(Path.Combine(_dir, "batch")), batchSize: 5);
        Assert.Contains("one shape", Assert.Throws<InvalidOperationException>(() => unsized.First()).Message);
    }

    [Fact]
    public void ImageFolderStructureErrorsAreClear()
    {
        Assert.Throws<DirectoryNotFoundException>(() => new ImageFolderDataset(Path.Combine(_dir, "nope")));
        Directory.CreateDirectory(Path.Combine(_dir, "flat"));
        Write("flat/a.png", Encode(RandomRgba(2, 2, 1), 2, 2, SKEncodedImageFormat.Png));
        Assert.Contains("no class sub-folders", Assert.Throws<InvalidDataException>(() => new ImageFolderDataset(Path.Combine(_dir, "flat"))).Message);
        Write("holes/full/a.png", Encode(RandomRgba(2, 2, 1), 2, 2, SKEncodedImageFormat.Png));
        Write("holes/textonly/a.txt", [1]);
        Directory.CreateDirectory(Path.Combine(_dir, "holes", "void"));
        var e = Assert.Throws<InvalidDataException>(() => new ImageFolderDataset(Path.Combine(_dir, "holes")));
        Assert.Contains("textonly, void", e.Message);
        Assert.Throws<ArgumentException>(() => new ImageFolderDataset(Path.Combine(_dir, "holes"), extensions: []));
    }

    [Fact]
    public void ACorruptFileInAFolderSurfacesThroughThePrefetchingLoaderWithItsName()
    {
        Write("bad/a/good.png", Encode(RandomRgba(4, 4, 1), 4, 4, SKEncodedImageFormat.Png));
        var png = Encode(RandomRgba(4, 4, 2), 4, 4, SKEncodedImageFormat.Png);
        Write("bad/b/broken.png", png[..(png.Length - 30)]);
        var loader = new DataLoader(new ImageFolderDataset(Path.Combine(_dir, "bad")), batchSize: 1, prefetch: true);
        var e = Assert.Throws<InvalidDataException>(() => loader.ToList());
        Assert.StartsWith("broken.png:", e.Message);
    }

    // ---------- plots ----------

    private static readonly string[] Names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    private string RunFolder(string name, Action<Dictionary<string, object?>>? edit = null, bool model = true)
    {
        var dir = Path.Combine(_dir, name);
        Directory.CreateDirectory(dir);
        var r = new Random(7);
        var metrics = new Dictionary<string, object?>
        {
            ["data_source"] = "synthetic",
            ["history"] = Enumerable.Range(1, 5).Select(e => new Dictionary<string, object?>
            {
                ["epoch"] = e, ["train_loss"] = 1.0 / e, ["train_accuracy"] = 1 - 0.3 / e,
                ["test_loss"] = e == 3 ? null : 1.1 / e, ["test_accuracy"] = 1 - 0.35 / e,
            }).ToArray(),
            ["class_names"] = Names,
            ["confusion_matrix"] = Enumerable.Range(0, 10).Select(i => Enumerable.Range(0, 10).Select(j => i == j ? 900 : r.Next(30)).ToArray()).ToArray(),
        };
        edit?.Invoke(metrics);
        File.WriteAllText(Path.Combine(dir, "metrics.json"), JsonSerializer.Serialize(metrics));
        if (model)
        {
            var g = new Generator(1);
            SafeTensors.Save(Path.Combine(dir, "model.safetensors"), new Dictionary<string, Tensor>
            {
                ["features.0.bias"] = Tensor.Zeros([8]),
                ["features.0.weight"] = Tensor.Randn([8, 3, 5, 5], g),
                ["features.4.weight"] = Tensor.Randn([16, 8, 3, 3], g),
                ["classifier.weight"] = Tensor.Randn([10, 16], g),
            });
        }
        return dir;
    }

    private static SKBitmap Decode(string path)
    {
        var bmp = SKBitmap.Decode(path);
        Assert.NotNull(bmp);
        return bmp;
    }

    private static int DistinctColours(SKBitmap bmp, SKRectI? region = null)
    {
        var r = region ?? new SKRectI(0, 0, bmp.Width, bmp.Height);
        var set = new HashSet<uint>();
        for (int y = r.Top; y < r.Bottom; y++)
            for (int x = r.Left; x < r.Right; x++) set.Add((uint)bmp.GetPixel(x, y));
        return set.Count;
    }

    [Fact]
    public void RunPlotsWritesFourDecodablePngsAtomically()
    {
        var dir = RunFolder("run");
        var written = RunPlots.Write(dir);
        Assert.Equal(["loss.png", "accuracy.png", "confusion.png", "filters.png"], written.Select(p => Path.GetFileName(p)).ToArray());
        foreach (var p in written)
        {
            using var bmp = Decode(p);
            Assert.True(bmp.Width >= 200 && bmp.Height >= 100, $"{Path.GetFileName(p)} is {bmp.Width}x{bmp.Height}");
            Assert.True(DistinctColours(bmp) > 20, $"{Path.GetFileName(p)} is nearly uniform");
        }
        using (var loss = Decode(Path.Combine(dir, "loss.png"))) Assert.Equal((800, 500), (loss.Width, loss.Height));
        // No temporary files left behind.
        Assert.Equal(6, Directory.GetFiles(dir).Length);
        // Rewriting replaces the files.
        Assert.Equal(4, RunPlots.Write(dir).Count);
        Assert.Equal(6, Directory.GetFiles(dir).Length);
    }

    [Fact]
    public void PlotTextIsDrawnWithTheEmbeddedFont()
    {
        Assert.NotNull(RunPlots.LossPng([new(1, 1, 0.5, 1, 0.5)])); // registers the resolver
        var typeface = ScottPlot.Fonts.GetTypeface(EmbeddedFont.Family, false, false);
        Assert.Same(EmbeddedFont.Regular, typeface);
        Assert.Same(EmbeddedFont.Bold, ScottPlot.Fonts.GetTypeface(EmbeddedFont.Family, true, false));
        Assert.NotEqual(0, EmbeddedFont.Regular.GetGlyph('A'));
        Assert.NotEqual(0, EmbeddedFont.Bold.GetGlyph('é'));

        // The title band of a plot holds text: dark pixels on the white background.
        var png = RunPlots.AccuracyPng([new(1, 0.5, 0.4, 0.6, 0.3), new(2, 0.4, 0.6, 0.5, 0.5)]);
        using var bmp = SKBitmap.Decode(png);
        int dark = 0;
        for (int y = 0; y < 30; y++)
            for (int x = 300; x < 500; x++) if (bmp.GetPixel(x, y).Red < 128) dark++;
        Assert.True(dark > 30, $"only {dark} dark pixels in the title band");
    }

    [Fact]
    public void FiltersGridShowsEachFilterScaledToItsOwnRange()
    {
        // (4, 1, 2, 3): gray tiles, 2x2 grid, scale 48 / 3 = 16, gap 4, border 8.
        var w = new float[4 * 6];
        for (int f = 0; f < 4; f++)
            for (int k = 0; k < 6; k++) w[f * 6 + k] = (f + 1) * (k - 2.5f); // each filter a ramp with its own range
        using var gray = SKBitmap.Decode(RunPlots.FiltersPng(Tensor.FromArray(w, 4, 1, 2, 3)));
        int scale = 16, tw = 3 * scale, th = 2 * scale;
        Assert.Equal((2 * 8 + 2 * tw + 4, 2 * 8 + 2 * th + 4), (gray.Width, gray.Height));
        for (int f = 0; f < 4; f++)
        {
            int x0 = 8 + f % 2 * (tw + 4), y0 = 8 + f / 2 * (th + 4);
            for (int k = 0; k < 6; k++)
            {
                var c = gray.GetPixel(x0 + k % 3 * scale + scale / 2, y0 + k / 3 * scale + scale / 2);
                byte level = (byte)MathF.Round(k / 5f * 255);
                Assert.Equal((level, level, level), (c.Red, c.Green, c.Blue));
            }
        }

        // (2, 3, 1, 1) RGB: the three channels of one pixel become its colour.
        var rgb = RunPlots.FiltersPng(Tensor.FromArray(new float[] { 1, 0, 0.5f, -2, 4, 1 }, 2, 3, 1, 1), "conv1.weight");
        using var img = SKBitmap.Decode(rgb);
        int titleHeight = 28, s = 48;
        var p0 = img.GetPixel(8 + s / 2, titleHeight + 8 + s / 2);
        var p1 = img.GetPixel(8 + s + 4 + s / 2, titleHeight + 8 + s / 2);
        Assert.Equal((255, 0, 128), ((int)p0.Red, (int)p0.Green, (int)p0.Blue));
        Assert.Equal((0, 255, 128), ((int)p1.Red, (int)p1.Green, (int)p1.Blue));
        Assert.True(DistinctColours(img, new SKRectI(0, 0, img.Width, titleHeight)) > 5, "no title text");

        // A constant filter is mid-gray rather than a division by zero.
        using var flat = SKBitmap.Decode(RunPlots.FiltersPng(Tensor.Full([1, 1, 3, 3], 0.7)));
        Assert.Equal(128, flat.GetPixel(8 + 16, 8 + 16).Red);
        Assert.Throws<ArgumentException>(() => RunPlots.FiltersPng(Tensor.Zeros([3, 3, 3])));
    }

    [Fact]
    public void FirstConvWeightIsTheFirst4DFloatTensorInKeyOrder()
    {
        var dir = RunFolder("first");
        var (name, weight) = RunPlots.FirstConvWeight(Path.Combine(dir, "model.safetensors"))!.Value;
        Assert.Equal("features.0.weight", name);
        Assert.Equal([8, 3, 5, 5], weight.Shape.ToArray());
        var mlp = Path.Combine(_dir, "mlp.safetensors");
        SafeTensors.Save(mlp, new Dictionary<string, Tensor> { ["fc.weight"] = Tensor.Zeros([2, 3]) });
        Assert.Null(RunPlots.FirstConvWeight(mlp));
    }

    [Fact]
    public void ConfusionPlotsScaleWithTheClassCountAndRejectBadMatrices()
    {
        using var two = SKBitmap.Decode(RunPlots.ConfusionPng(new long[,] { { 5, 1 }, { 0, 7 } }, ["a", "b"]));
        var many = new long[30, 30];
        for (int i = 0; i < 30; i++) many[i, (i * 7) % 30] = 3 + i;
        using var big = SKBitmap.Decode(RunPlots.ConfusionPng(many, Enumerable.Range(0, 30).Select(i => $"class {i}").ToArray()));
        Assert.True(DistinctColours(two) > 20 && DistinctColours(big) > 20);
        Assert.Throws<ArgumentException>(() => RunPlots.ConfusionPng(new long[2, 3], ["a", "b"]));
        Assert.Throws<ArgumentException>(() => RunPlots.ConfusionPng(new long[,] { { -1 } }, ["a"]));
        Assert.Throws<ArgumentException>(() => RunPlots.LossPng([]));
    }

    [Fact]
    public void MissingOrCorruptRunInputsNameTheFileAndWriteNothing()
    {
        void Fails<TException>(string dir, string startsWith, string contains) where TException : Exception
        {
            var e = Assert.Throws<TException>(() => RunPlots.Write(dir));
            Assert.StartsWith(startsWith, e.Message);
            Assert.Contains(contains, e.Message);
            Assert.Empty(Directory.GetFiles(dir, "*.png"));
        }
        Fails<InvalidDataException>(RunFolder("no-cm", m => m.Remove("confusion_matrix")), "metrics.json:", "missing \"confusion_matrix\"");
        Fails<InvalidDataException>(RunFolder("no-names", m => m.Remove("class_names")), "metrics.json:", "missing \"class_names\"");
        Fails<InvalidDataException>(RunFolder("no-history", m => m.Remove("history")), "metrics.json:", "missing \"history\"");
        Fails<InvalidDataException>(RunFolder("no-loss", m => m["history"] = new[] { new Dictionary<string, object> { ["epoch"] = 1, ["train_accuracy"] = 0.5 } }),
            "metrics.json:", "history[0] has no \"train_loss\"");
        Fails<InvalidDataException>(RunFolder("str-loss", m => m["history"] = new[] { new Dictionary<string, object> { ["epoch"] = 1, ["train_loss"] = "x", ["train_accuracy"] = 0.5 } }),
            "metrics.json:", "history[0].train_loss must be a number");
        Fails<InvalidDataException>(RunFolder("short-cm", m => m["confusion_matrix"] = new[] { new[] { 1, 2 } }), "metrics.json:", "confusion_matrix has 1 rows but class_names has 10");
        Fails<FileNotFoundException>(RunFolder("no-model", model: false), "model.safetensors:", "not found");

        var badJson = RunFolder("bad-json");
        File.WriteAllText(Path.Combine(badJson, "metrics.json"), "{\"history\": [");
        Fails<InvalidDataException>(badJson, "metrics.json:", "not valid JSON");
        var noMetrics = RunFolder("no-metrics");
        File.Delete(Path.Combine(noMetrics, "metrics.json"));
        Fails<FileNotFoundException>(noMetrics, "metrics.json:", "not found");
        var badModel = RunFolder("bad-model");
        var bytes = File.ReadAllBytes(Path.Combine(badModel, "model.safetensors"));
        File.WriteAllBytes(Path.Combine(badModel, "model.safetensors"), bytes[..(bytes.Length / 2)]);
        Fails<InvalidDataException>(badModel, "model.safetensors:", "");
        Assert.Throws<DirectoryNotFoundException>(() => RunPlots.Write(Path.Combine(_dir, "absent")));
    }
}

/// <summary>`convlab train` writes the plots and `convlab predict` classifies image files, run as a user types them.</summary>
public sealed class ImagingCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("convlab-imaging-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void TrainWritesPlotsAndPredictClassifiesImageFiles()
    {
        var run = Path.Combine(_dir, "run");
        var (code, text) = TrainCliTests.Convlab("train", "--data", "embedded", "--epochs", "1", "--limit-train", "64", "--limit-test", "32",
            "--batch-size", "32", "--threads", "2", "--out", run);
        Assert.True(code == 0, text);
        foreach (var png in new[] { "loss.png", "accuracy.png", "confusion.png", "filters.png" })
        {
            using var bmp = SKBitmap.Decode(Path.Combine(run, png));
            Assert.True(bmp != null && bmp.Width > 100, png);
            Assert.Contains(png, text);
        }

        // A 28x28 gray PNG as the model expects, and an RGB JPEG of another size (converted to gray and resized).
        var gray = new byte[28 * 28];
        for (int i = 0; i < gray.Length; i++) gray[i] = (byte)(i % 28 * 9);
        using (var g = new SKBitmap(new SKImageInfo(28, 28, SKColorType.Gray8, SKAlphaType.Opaque)))
        {
            System.Runtime.InteropServices.Marshal.Copy(gray, 0, g.GetPixels(), gray.Length);
            using var data = g.Encode(SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(Path.Combine(_dir, "shirt.png"), data.ToArray());
        }
        using (var c = new SKBitmap(new SKImageInfo(40, 30, SKColorType.Rgba8888, SKAlphaType.Unpremul)))
        {
            c.Erase(new SKColor(200, 120, 40));
            using var data = c.Encode(SKEncodedImageFormat.Jpeg, 90);
            File.WriteAllBytes(Path.Combine(_dir, "boot.jpg"), data.ToArray());
        }
        (code, text) = TrainCliTests.Convlab("predict", run, Path.Combine(_dir, "shirt.png"), Path.Combine(_dir, "boot.jpg"), "--top", "2");
        Assert.True(code == 0, text);
        // One table per file (their titles, long temp paths, may be wrapped to the console width).
        Assert.Equal(2, System.Text.RegularExpressions.Regex.Count(text, "probability"));

        File.WriteAllBytes(Path.Combine(_dir, "broken.png"), File.ReadAllBytes(Path.Combine(_dir, "shirt.png"))[..40]);
        (code, text) = TrainCliTests.Convlab("predict", run, Path.Combine(_dir, "broken.png"));
        Assert.NotEqual(0, code);
        Assert.Contains("broken.png:", text);
    }
}
