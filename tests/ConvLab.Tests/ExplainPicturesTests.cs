using ConvLab.Imaging;
using ConvLab.Explain;
using CsCheck;
using SkiaSharp;
using Xunit;

namespace ConvLab.Tests;

public sealed class ExplainPicturesTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("convlab-explain-pictures-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // Layout of GridPng: border 8, title band 22; a 4x4 image is enlarged 48 times (minSide 192).
    private const int Border = 8, Title = 22, Scale4 = 48;

    private static SKColor PixelOf(SKBitmap bmp, int tile, int cols, int cellW, int cellH, int x, int y) =>
        bmp.GetPixel(Border + tile % cols * cellW + x * Scale4 + Scale4 / 2, Border + tile / cols * cellH + Title + y * Scale4 + Scale4 / 2);

    [Fact]
    public void ColormapsRunFromTheirEndsAndDivergingIsWhiteInTheMiddle()
    {
        Assert.Equal(((byte)68, (byte)1, (byte)84), Colormap.Viridis[0]);
        Assert.Equal(((byte)253, (byte)231, (byte)37), Colormap.Viridis[1]);
        Assert.Equal(Colormap.Viridis[1], Colormap.Viridis[7]); // clamped
        var mid = Colormap.RdBu[0.5];
        Assert.True(mid.R > 240 && mid.G > 240 && mid.B > 240, $"RdBu centre is {mid}");
        Assert.True(Colormap.RdBu[0].B > Colormap.RdBu[0].R, "RdBu low end is blue");
        Assert.True(Colormap.RdBu[1].R > Colormap.RdBu[1].B, "RdBu high end is red");
        Assert.True(Colormap.RdBu.Diverging && !Colormap.Viridis.Diverging && !Colormap.Inferno.Diverging);
        // Sequential maps grow brighter along their length (a magnitude reads as light, not as hue).
        foreach (var cm in new[] { Colormap.Viridis, Colormap.Inferno })
        {
            double Luma(double t) { var (r, g, b) = cm[t]; return 0.299 * r + 0.587 * g + 0.114 * b; }
            for (int i = 0; i < 20; i++) Assert.True(Luma((i + 1) / 20.0) > Luma(i / 20.0), $"{cm.Name} luma falls at {i / 20.0}");
        }
    }

    [Fact]
    public void OverlayAtFullAlphaShowsTheColormapAndAtZeroAlphaTheImage()
    {
        var image = Tensor.Full([1, 4, 4], 0.25);
        var map = new float[16];
        map[5] = 2; // one hot pixel at (x 1, y 1); the rest 0
        var panel = new ExplainPanel("saliency", Tensor.FromArray(map, 4, 4), Signed: false);
        using var full = SKBitmap.Decode(ExplainPictures.OverlayPng(image, panel, alpha: 1));
        int cellW = 4 * Scale4 + Border, cellH = Title + 4 * Scale4 + 4 + 10 + 16 + Border;
        Assert.Equal((Border + cellW, Border + cellH), (full.Width, full.Height));
        var (hr, hg, hb) = Colormap.Viridis[1];
        Assert.Equal(new SKColor(hr, hg, hb), PixelOf(full, 0, 1, cellW, cellH, 1, 1));
        var (lr, lg, lb) = Colormap.Viridis[0];
        Assert.Equal(new SKColor(lr, lg, lb), PixelOf(full, 0, 1, cellW, cellH, 3, 2));

        using var none = SKBitmap.Decode(ExplainPictures.OverlayPng(image, panel, alpha: 0));
        Assert.Equal(new SKColor(64, 64, 64), PixelOf(none, 0, 1, cellW, cellH, 1, 1));
    }

    [Fact]
    public void SignedMapsAreCentredAtZeroOnTheDivergingMap()
    {
        var image = Tensor.Zeros([3, 4, 4]);
        var map = new float[16];
        map[0] = -3; map[15] = 3; // symmetric extremes; zero elsewhere
        using var bmp = SKBitmap.Decode(ExplainPictures.OverlayPng(image, new ExplainPanel("ig", Tensor.FromArray(map, 1, 4, 4), Signed: true), alpha: 1));
        int cellW = 4 * Scale4 + Border, cellH = Title + 4 * Scale4 + 4 + 10 + 16 + Border;
        SKColor At(double t) { var (r, g, b) = Colormap.RdBu[t]; return new SKColor(r, g, b); }
        Assert.Equal(At(0), PixelOf(bmp, 0, 1, cellW, cellH, 0, 0));
        Assert.Equal(At(1), PixelOf(bmp, 0, 1, cellW, cellH, 3, 3));
        Assert.Equal(At(0.5), PixelOf(bmp, 0, 1, cellW, cellH, 2, 1));
    }

    [Fact]
    public void PlaneSumsChannelsAndScaleIsAPercentileOfMagnitudes()
    {
        Gen.Int[1, 4].Select(Gen.Int[1, 6], Gen.Int[1, 6]).Sample((c, h, w) =>
        {
            var g = new Generator((ulong)(c * 100 + h * 10 + w));
            var t = Tensor.Randn([1, c, h, w], g);
            var (plane, ph, pw) = ExplainPictures.Plane(t);
            Assert.Equal((h, w), (ph, pw));
            var v = t.ToArray();
            for (int i = 0; i < h * w; i++)
            {
                float s = 0;
                for (int k = 0; k < c; k++) s += v[k * h * w + i];
                // Summation order may differ: compare with a float32 tolerance, not by rounding to decimals.
                Assert.True(Math.Abs(s - plane[i]) <= 1e-5f * (1 + Math.Abs(s)), $"pixel {i}: {s} vs {plane[i]}");
            }
            double max = plane.Max(x => Math.Abs(x));
            Assert.Equal(max, ExplainPictures.Scale(plane, signed: true, percentile: 100), 6);
            Assert.True(ExplainPictures.Scale(plane, signed: true) <= max);
            Assert.Equal(Math.Max(0, plane.Max()), ExplainPictures.Scale(plane, signed: false, percentile: 100), 6);
        }, iter: 40);
    }

    [Fact]
    public void GridHasTheInputThenOnePanelPerMethodWithTitlesAndTheBoxOutlined()
    {
        var image = Tensor.Full([1, 4, 4], 0.5);
        var panels = Enumerable.Range(0, 6).Select(i => new ExplainPanel($"method {i}", Tensor.Full([4, 4], i), i % 2 == 0)).ToArray();
        var png = ExplainPictures.GridPng(image, panels, box: new PixelBox(1, 1, 3, 3));
        using var bmp = SKBitmap.Decode(png);
        int cellW = 4 * Scale4 + Border, cellH = Title + 4 * Scale4 + 4 + 10 + 16 + Border;
        // 7 tiles at 5 per row: 2 rows.
        Assert.Equal((Border + 5 * cellW, Border + 2 * cellH), (bmp.Width, bmp.Height));
        Assert.Equal(new SKColor(128, 128, 128), PixelOf(bmp, 0, 5, cellW, cellH, 0, 0)); // the input tile, unblended
        for (int tile = 0; tile < 7; tile++)
        {
            int dark = 0;
            int x0 = Border + tile % 5 * cellW, y0 = Border + tile / 5 * cellH;
            for (int y = y0; y < y0 + Title; y++)
                for (int x = x0; x < x0 + 100; x++) if (bmp.GetPixel(x, y).Red < 128) dark++;
            Assert.True(dark > 20, $"tile {tile} has no title ({dark} dark pixels)");
            // The box's top-left corner is outlined in green on every tile.
            Assert.Equal(new SKColor(0, 230, 0), bmp.GetPixel(x0 + Scale4, y0 + Title + Scale4 + Scale4 / 2));
        }
    }

    [Fact]
    public void MapsOfAnotherSizeAreResizedToTheImage()
    {
        var image = Tensor.Zeros([1, 8, 8]);
        var cam = Tensor.FromArray(new float[] { 0, 0, 0, 1 }, 1, 1, 2, 2); // the bottom-right quarter is hot
        using var bmp = SKBitmap.Decode(ExplainPictures.OverlayPng(image, new ExplainPanel("gradcam", cam, false), alpha: 1, minSide: 16));
        int scale = 2;
        SKColor At(int x, int y) => bmp.GetPixel(Border + x * scale, Border + Title + y * scale);
        var (hr, hg, hb) = Colormap.Viridis[1];
        var (lr, lg, lb) = Colormap.Viridis[0];
        Assert.Equal(new SKColor(hr, hg, hb), At(7, 7));
        Assert.Equal(new SKColor(lr, lg, lb), At(0, 0));
    }

    [Fact]
    public void CurvePlotsDecodeAndNeedTwoScores()
    {
        var curves = new[] { new ExplainCurve("saliency", [0.9, 0.5, 0.2, 0.1], 0.4), new ExplainCurve("random", [0.9, 0.8, 0.7, 0.6, 0.5], 0.7) };
        using var c = SKBitmap.Decode(ExplainPictures.CurvesPng("Deletion", curves));
        Assert.Equal((800, 500), (c.Width, c.Height));
        Assert.Throws<ArgumentException>(() => ExplainPictures.CurvesPng("x", [new ExplainCurve("one", [1.0], 1)]));
        Assert.Throws<ArgumentException>(() => ExplainPictures.CurvesPng("x", []));
    }

    [Fact]
    public void BadInputIsANamedArgumentError()
    {
        var ok = new ExplainPanel("m", Tensor.Zeros([4, 4]), false);
        void Bad(Action a) => Assert.StartsWith("ExplainPictures", Assert.ThrowsAny<ArgumentException>(a).Message);
        Bad(() => ExplainPictures.OverlayPng(Tensor.Zeros([2, 4, 4]), ok));
        Bad(() => ExplainPictures.OverlayPng(Tensor.Zeros([4, 4]), ok));
        Bad(() => ExplainPictures.OverlayPng(Tensor.Zeros([1, 4, 4]), ok, alpha: 1.5));
        Bad(() => ExplainPictures.OverlayPng(Tensor.Zeros([1, 4, 4]), ok, box: new PixelBox(0, 0, 5, 2)));
        Bad(() => ExplainPictures.OverlayPng(Tensor.Zeros([1, 4, 4]), ok, box: new PixelBox(2, 0, 2, 2)));
        Bad(() => ExplainPictures.OverlayPng(Tensor.Zeros([1, 4, 4]), new ExplainPanel("m", Tensor.Zeros([2, 1, 4, 4]), false)));
        Bad(() => ExplainPictures.OverlayPng(Tensor.Zeros([1, 4, 4]), new ExplainPanel("m", Tensor.Zeros([4]), false)));
        Bad(() => ExplainPictures.GridPng(Tensor.Zeros([1, 4, 4]), []));
        Bad(() => ExplainPictures.Scale([1f], false, percentile: 0));
    }
}
