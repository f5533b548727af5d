using System.Globalization;
using ConvLab.Conformance;
using ConvLab.NN.Functional;
using ConvLab.Vision;
using Xunit;

namespace ConvLab.Tests;

/// <summary>Hand-designed filters (`ConvLab.Vision.Filters`) and `convlab filter` run as a process.</summary>
public class FilterTests
{
    private static Tensor Grey(ulong seed, int h, int w) => Tensor.Rand([h, w], new Generator(seed), dtype: DType.Float64);

    /// <summary>The filter as an independent path: explicit F.Pad in the mode, then a valid conv2d.</summary>
    private static double[] PadThenConv(Tensor grey, Tensor k, string mode)
    {
        int kh = k.Shape[0], kw = k.Shape[1];
        int[] pad = [(kw - 1) / 2, kw - 1 - (kw - 1) / 2, (kh - 1) / 2, kh - 1 - (kh - 1) / 2];
        var x = F.Pad(grey.Reshape(1, 1, grey.Shape[0], grey.Shape[1]), pad, mode == "zeros" ? "constant" : mode);
        return F.Conv2d(x, k.Reshape(1, 1, kh, kw)).ToDoubleArray();
    }

    [Theory]
    [InlineData("sobel-x")]
    [InlineData("laplacian")]
    [InlineData("box:6")]
    [InlineData("gaussian:1.2")]
    [InlineData("gabor:30:4")]
    [InlineData("[[1,2,0,-1],[0,1,1,3]]")]
    public void EveryBoundaryModeMatchesPaddingThenConv2d(string name)
    {
        var f = Filters.Parse(name);
        var grey = Grey(7, 17, 15);
        foreach (var mode in Filters.Modes)
        {
            var got = Filters.Apply(grey, f, mode).ToDoubleArray();
            var expected = PadThenConv(grey, f.Kernel, mode);
            Assert.Equal(expected.Length, got.Length);
            for (int i = 0; i < got.Length; i++) Assert.Equal(expected[i], got[i], 10);
        }
    }

    [Fact]
    public void GradientMagnitudeIsTheNormOfTheSobelPair()
    {
        var grey = Grey(3, 12, 12);
        var gx = Filters.Apply(grey, Filters.Parse("sobel-x"), "reflect").ToDoubleArray();
        var gy = Filters.Apply(grey, Filters.Parse("sobel-y"), "reflect").ToDoubleArray();
        var m = Filters.Apply(grey, Filters.Parse("gradient-magnitude"), "reflect").ToDoubleArray();
        for (int i = 0; i < m.Length; i++) Assert.Equal(Math.Sqrt(gx[i] * gx[i] + gy[i] * gy[i]), m[i], 12);
    }

    [Fact]
    public void NamedKernelsHaveTheirDefinitions()
    {
        Assert.All(Filters.Parse("box:3").Kernel.ToDoubleArray(), v => Assert.Equal(1.0 / 9, v, 15));
        Assert.Equal([0, 1, 0, 1, -4, 1, 0, 1, 0], Filters.Parse("laplacian").Kernel.ToDoubleArray());
        Assert.Equal([-1, 0, 1, -2, 0, 2, -1, 0, 1], Filters.Parse("sobel-x").Kernel.ToDoubleArray());
        Assert.Equal([-1, -2, -1, 0, 0, 0, 1, 2, 1], Filters.Parse("sobel-y").Kernel.ToDoubleArray());
        var g = Filters.Parse("gaussian:1").Kernel;
        Assert.Equal([7, 7], g.Shape.ToArray());
        Assert.Equal(1, g.ToDoubleArray().Sum(), 12);
        Assert.Equal(0, Filters.Parse("gabor:0:6").Kernel.ToDoubleArray().Sum(), 9);
        Assert.Equal(8, Filters.GaborBank([0, 45, 90, 135], [4, 8]).Count);
    }

    [Fact]
    public void GreyUsesTheNotebookWeights()
    {
        var rgb = Tensor.FromArray(new float[] { 1, 0, 0, 0, 1, 0, 0, 0, 1 }, 3, 1, 3);
        Assert.Equal([0.2989, 0.5870, 0.1140], Filters.Grey(rgb).ToDoubleArray().Select(v => Math.Round(v, 6)));
    }

    [Fact]
    public void BoxBlurMatchesTheSeedExample()
    {
        var c = ReferenceCase.Load(Path.Combine(TestUtil.ReferenceDir, "seed_examples", "box_blur_3x3.json"));
        var x = c.Inputs["input"]!;
        var got = Filters.Apply(x.Reshape(x.Shape[2], x.Shape[3]).Double(), Filters.Parse("box:3"), "zeros").ToDoubleArray();
        var expected = c.Outputs["output"].ToDoubleArray();
        for (int i = 0; i < got.Length; i++) Assert.Equal(expected[i], got[i], 5);
    }

    [Fact]
    public void LearnedFiltersFindTheirHandDesignedTwin()
    {
        var bank = Filters.ComparisonBank(3);
        var sobel = Filters.Parse("sobel-y").Kernel;
        var w = Tensor.Cat([sobel.Neg().Reshape(1, 1, 3, 3), Filters.Box(3).Reshape(1, 1, 3, 3)], 0);
        var m = Filters.BestMatches(w, bank);
        Assert.Equal("sobel-y", m[0].BestMatch);
        Assert.Equal(-1, m[0].Cosine, 12);
        Assert.Equal("box:3", m[1].BestMatch);
        Assert.Equal(1, m[1].Cosine, 12);
    }

    [Fact]
    public void CliWritesThePngAndTheRawResponseOfConv2d()
    {
        var dir = Directory.CreateTempSubdirectory("convlab-filter-");
        try
        {
            string png = Path.Combine(dir.FullName, "edges.png"), csv = Path.Combine(dir.FullName, "edges.csv");
            var (code, text, err) = CliTests.Run(2, "filter", "--kernel", "sobel-x", "--mode", "replicate", "--out", png, "--raw", csv);
            Assert.True(code == 0, err);
            var raw = File.ReadAllLines(csv).SelectMany(l => l.Split(',')).Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
            var grey = Filters.Grey(SampleImage.Create());
            var expected = PadThenConv(grey, Filters.Parse("sobel-x").Kernel, "replicate");
            Assert.Equal(expected.Length, raw.Length);
            for (int i = 0; i < raw.Length; i++) Assert.Equal(expected[i], raw[i], 10);
            var back = Imaging.ImageFile.Load(png, channels: 1).ToDoubleArray();
            for (int i = 0; i < back.Length; i++) Assert.True(Math.Abs(Math.Clamp(expected[i], 0, 1) - back[i]) <= 0.5 / 255 + 1e-6, $"pixel {i}");
            Assert.Contains("outside [0, 1] were clipped", text);
        }
        finally { dir.Delete(true); }
    }

    [Theory]
    [InlineData("--kernel:", "--kernel", "nope")]
    [InlineData("--kernel:", "--kernel", "[[1,2],[3]]")]
    [InlineData("--kernel:", "--kernel", "box:200")]
    [InlineData("--kernel:", "SMALLIMAGE", "--kernel", "box:9")]
    [InlineData("--mode:", "--kernel", "sobel-x", "--mode", "mirror")]
    [InlineData("IMAGE:", "BADIMAGE", "--kernel", "sobel-x")]
    public void BadInputIsOneLineNamingTheOption(string prefix, params string[] args)
    {
        var dir = Directory.CreateTempSubdirectory("convlab-filter-");
        try
        {
            string bad = Path.Combine(dir.FullName, "broken.png");
            File.WriteAllBytes(bad, [0x89, 0x50, 0x4E, 0x47, 1, 2, 3]);
            string small = Path.Combine(dir.FullName, "small.png");
            File.WriteAllBytes(small, Imaging.ImageFile.EncodePng(Tensor.Full([1, 8, 8], 0.5)));
            var full = new List<string> { "filter" };
            full.AddRange(args.Select(a => a switch { "BADIMAGE" => bad, "SMALLIMAGE" => small, _ => a }));
            full.AddRange(["--out", Path.Combine(dir.FullName, "out.png")]);
            var (code, text, err) = CliTests.Run(2, [.. full]);
            Assert.NotEqual(0, code);
            Assert.StartsWith(prefix, err.Trim());
            Assert.Single(err.Trim().Split('\n'));
            Assert.False(File.Exists(Path.Combine(dir.FullName, "out.png")));
        }
        finally { dir.Delete(true); }
    }
}
