using ConvLab.Detection;
using ConvLab.Imaging;
using SkiaSharp;
using Xunit;

namespace ConvLab.Tests;

public class DetectionPlotsTests
{
    private static SKBitmap Decode(byte[] png) => SKBitmap.Decode(png) ?? throw new InvalidOperationException("not a PNG");

    /// <summary>Pixels close to the colour (curves are antialiased).</summary>
    private static int Count(SKBitmap b, byte r, byte g, byte bl)
    {
        int n = 0;
        for (int y = 0; y < b.Height; y++)
            for (int x = 0; x < b.Width; x++)
            {
                var c = b.GetPixel(x, y);
                if (Math.Abs(c.Red - r) < 12 && Math.Abs(c.Green - g) < 12 && Math.Abs(c.Blue - bl) < 12) n++;
            }
        return n;
    }

    [Fact]
    public void MeanIouCurveAndPrCurvesRenderTheirLinesAtTheRequestedSize()
    {
        var g = new Generator(1);
        var wh = Tensor.FromArray(Enumerable.Range(0, 60).Select(_ => 1 + (float)g.NextInt(50)).ToArray(), 30, 2);
        using var curve = Decode(DetectionPlots.MeanIouCurvePng(AnchorKMeans.Curve(wh, 5), 640, 400));
        Assert.Equal((640, 400), (curve.Width, curve.Height));
        Assert.True(Count(curve, 31, 119, 180) > 200);

        var pr = new PrCurve(0, [0.5, 0.5, 1.0], [1.0, 0.5, 2.0 / 3], [0.9, 0.8, 0.7]);
        var none = new PrCurve(1, [], [], []);
        using var img = Decode(DetectionPlots.PrCurvesPng([pr, none], ["cat", "dog"], [0.83, 0]));
        Assert.Equal((800, 600), (img.Width, img.Height));
        // Category10's first colour draws class 0's steps.
        Assert.True(Count(img, 31, 119, 180) > 200);
        Assert.Throws<ArgumentException>(() => DetectionPlots.PrCurvesPng([]));
        Assert.Throws<ArgumentException>(() => DetectionPlots.MeanIouCurvePng([], 10, 10));
    }

    [Fact]
    public void PrStepsFollowThePrecisionEnvelope()
    {
        var (x, y) = DetectionPlots.Envelope([0.5, 0.5, 1.0], [1.0, 0.5, 2.0 / 3]);
        Assert.Equal([0, 0.5, 0.5, 0.5, 0.5, 1.0], x);
        Assert.Equal([1.0, 1.0, 2.0 / 3, 2.0 / 3, 2.0 / 3, 2.0 / 3], y);
    }
}
