using System.Text.Json.Nodes;
using ConvLab.Experiments.Claims;
using ConvLab.Imaging;
using ConvLab.NN;
using ConvLab.NN.Functional;
using CsCheck;
using SkiaSharp;
using Xunit;

namespace ConvLab.Tests;

/// <summary><c>convlab experiment deformable</c> (issue 13, item 5) as a user types it, `--quick`, and the invariants behind it that hold for any seed.</summary>
public class DeformableExperimentTests
{
    private static (JsonNode Results, string Dir, string Out) RunQuick(params string[] extra)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"convlab-deformable-{Guid.NewGuid():N}");
        var (code, stdout, stderr) = CliTests.Run(5, ["experiment", "deformable", "--quick", "--data", "embedded", "--seed", "5", "--out", dir, .. extra]);
        Assert.True(code == 0, $"exit {code}: {stdout}{stderr}");
        var results = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "results.json")))!;
        foreach (var f in results["figures"]!.AsArray())
            Assert.True(new FileInfo(Path.Combine(dir, f!.GetValue<string>())).Length > 1000, $"figure {f} is missing or empty");
        return (results, dir, stdout);
    }

    /// <summary>Offset-branch parameters of conv2 (w → 2w) and conv3 (2w → 2w): a 3x3 conv from C_in to 18 offsets (27 with the mask), plus bias.</summary>
    private static long OffsetParams(int width, bool modulated)
    {
        int outs = (modulated ? 3 : 2) * 9;
        return outs * width * 9 + outs + outs * 2 * width * 9 + outs;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void QuickRunReportsBothNetsOffsetsPerEpochAndTheStepCost(bool modulated)
    {
        var (r, dir, stdout) = modulated ? RunQuick("--set", "mask=true", "--set", "offset_l2=0.01") : RunQuick();
        foreach (var key in new[] { "plain", "deformable", "offsets_per_epoch", "step_time_ratio", "step_memory_ratio", "first_forward_max_abs_diff", "sampling" })
            Assert.True(r[key] != null, $"results.json has no '{key}'");
        Assert.Equal(modulated, (bool)r["modulated"]!);
        int width = (int)r["width"]!, epochs = (int)r["epochs"]!;
        long plain = (long)r["plain"]!["params"]!, deform = (long)r["deformable"]!["params"]!;
        Assert.Equal(OffsetParams(width, modulated), (long)r["deformable"]!["offset_params"]!);
        Assert.Equal(plain + OffsetParams(width, modulated), deform);
        Assert.Contains($"parameters: plain {plain}, deformable {deform}", stdout);
        foreach (var net in new[] { "plain", "deformable" })
        {
            Assert.InRange((double)r[net]!["test_accuracy"]!, 0, 1);
            Assert.Equal(epochs, r[net]!["test_accuracy_per_epoch"]!.AsArray().Count);
        }

        // Zero-initialised offsets: the deformable net's first forward is the plain net's (v2's fresh mask of 0.5 halves the response instead).
        double diff = (double)r["first_forward_max_abs_diff"]!, bound = 1e-5 * (1 + (double)r["first_forward_max_abs_logit"]!);
        Assert.True(modulated ? diff > bound : diff <= bound, $"first forward differs by {diff}");
        var offsets = r["offsets_per_epoch"]!.AsArray().Select(o => o!).ToList();
        Assert.Equal(2 * (epochs + 1), offsets.Count);
        Assert.Equal(["conv2", "conv3"], offsets.Where(o => (int)o["epoch"]! == 0).Select(o => (string)o["layer"]!));
        foreach (var o in offsets.Where(o => (int)o["epoch"]! == 0)) Assert.Equal(0.0, (double)o["mean_abs_offset"]!);
        foreach (var o in offsets.Where(o => (int)o["epoch"]! > 0)) Assert.True((double)o["mean_abs_offset"]! > 0, "the offset branch did not learn");
        foreach (var o in offsets) Assert.True((double)o["mean_offset_length"]! <= (double)o["max_offset_length"]! + 1e-12);

        foreach (var key in new[] { "step_time_ratio", "step_memory_ratio", "step_time_plain_ms", "step_time_deformable_ms" })
            Assert.True((double)r[key]! > 0 && double.IsFinite((double)r[key]!), $"{key} = {r[key]}");
        // The deformable net keeps strictly more for backward (offsets, offset-branch weights, gradients, Adam state).
        Assert.True((long)r["step_memory_deformable_bytes"]! > (long)r["step_memory_plain_bytes"]!);
        foreach (var s in r["sampling"]!.AsArray())
        {
            Assert.Equal(9, s!["plain_last_layer"]!.AsArray().Count);
            Assert.Equal(9, s["deformable_last_layer"]!.AsArray().Count);
        }
        string report = File.ReadAllText(Path.Combine(dir, "report.md"));
        Assert.Contains("## Offsets per epoch", report);
        Assert.Contains("## Cost per training step", report);
        Assert.Contains("sampling_locations.png", report);
    }

    [Fact]
    public void FreshDeformableNetEqualsThePlainNetWithTheSameWeightsAndGetsTheSameMainGradients() =>
        Gen.Select(Gen.ULong, Gen.Int[1, 3], Gen.Bool, Gen.Int[1, 3]).Sample((seed, width, modulated, batch) =>
        {
            var s = new DeformableSettings("affine", 64, 16, 16, 1, 8, width, 1e-3, 0.1, 0, modulated, 1);
            var plain = DeformableStudy.Create(s, false, seed);
            var deform = DeformableStudy.Create(s, true, seed + 7); // other initial weights, overwritten by LoadMain
            DeformableStudy.LoadMain(deform, plain);
            Assert.All(deform.OffsetParameters().SelectMany(p => p.ToArray()), v => Assert.Equal(0f, v));
            var x = Tensor.Rand([batch, 1, 28, 28], new Generator(seed));
            var y = Tensor.FromArray(Enumerable.Range(0, batch).Select(i => (long)(i % 10)).ToArray(), [batch]);

            // A fresh modulated layer multiplies by sigmoid(0) = 0.5, so only v1 equals the plain net outright.
            var lp = F.CrossEntropy(plain.Forward(x), y);
            var ld = F.CrossEntropy(deform.Forward(x), y);
            if (!modulated) Assert.Equal(lp.Item(), ld.Item(), 1e-5);
            lp.Backward();
            ld.Backward();
            var pg = plain.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.Grad!.ToArray());
            foreach (var (name, p) in deform.NamedParameters().Where(p => !modulated && !p.Name.Contains(".conv_offset.", StringComparison.Ordinal)))
            {
                var want = pg[name];
                var got = p.Grad!.ToArray();
                double scale = want.Max(v => Math.Abs(v)) + 1e-6;
                for (int i = 0; i < want.Length; i++) Assert.True(Math.Abs(want[i] - got[i]) <= 1e-4 * scale, $"{name}[{i}]: {want[i]} vs {got[i]}");
            }
            Assert.True(deform.DeformLayers.All(l => l.Layer.OffsetWeight.Grad!.Abs().Sum().Item() > 0), "offset branches get no gradient");
        }, iter: 8);

    [Fact]
    public void PenaltyAddsTheMeanSquaredOffsetsOfTheSameForwardPass()
    {
        var s = new DeformableSettings("affine", 64, 16, 16, 1, 8, 2, 1e-3, 0.1, 0, false, 1);
        var net = DeformableStudy.Create(s, true, 3);
        foreach (var p in net.OffsetParameters()) using (new Autograd.NoGrad()) p.Copy_(Tensor.Randn(p.Shape, new Generator(4)).MulScalar(0.1));
        var x = Tensor.Rand([4, 1, 28, 28], new Generator(5));
        var y = Tensor.FromArray(new long[] { 0, 1, 2, 3 }, [4]);
        var data = new Data.InMemoryImageDataset(new byte[4 * 28 * 28], [0, 1, 2, 3], 1, 28, 28);
        var plainLoss = new Training.ClassificationObjective(data, null, 10, 4, 1).Loss(net, (x, y)).Item();
        double penalty = net.LastOffsets.Sum(o => (o * o).Mean().Item());
        Assert.True(penalty > 0);
        var penalised = new DeformableStudy.OffsetPenalty(new Training.ClassificationObjective(data, null, 10, 4, 1), 0.5).Loss(net, (x, y)).Item();
        Assert.Equal(plainLoss + 0.5 * penalty, penalised, 1e-5);
    }

    /// <summary>The sampling-location figure's dots: drawn at image coordinates (pixel centres at integers) in the palette colour, clipped to their tile.</summary>
    [Fact]
    public void ImageGridMarksLandOnTheirImageCoordinatesAndStayInTheirTile()
    {
        // 8x8 tiles at tile size 160: 20 output pixels per image pixel, a 10-pixel border, 22-pixel captions, 10-pixel gaps.
        var marks = new[] { new TileMark(2, 5), new TileMark(8.5, 5), new TileMark(double.NaN, 1) };
        var png = Charts.ImageGrid([new Tile("marked", Tensor.Zeros([8, 8]), marks), new Tile("plain", Tensor.Zeros([8, 8]))], columns: 2, scaling: TileScaling.Clip01);
        using var bmp = SKBitmap.Decode(png);
        SKColor At(double x, double y, int tile = 0) => bmp.GetPixel(10 + tile * 170 + (int)((x + 0.5) * 20), 32 + (int)((y + 0.5) * 20));
        var dot = At(2, 5);
        Assert.True(dot.Red > 150 && dot.Green < 100 && dot.Blue < 100, $"mark colour {dot}");
        Assert.Equal(SKColors.Black, At(5, 2));
        Assert.Equal(SKColors.Black, At(0, 5, tile: 1)); // the mark past the first tile's right edge is clipped away
    }

    [Theory]
    [InlineData("deform=twist", "deform=twist", "affine, rotate, scale, elastic, mixed")]
    [InlineData("mask=maybe", "mask=maybe", "true")]
    [InlineData("offset_lr=-1", "offset_lr=-1", "[0, 10]")]
    public void BadOptionsAreErrorsNamingTheOption(string option, string named, string expected)
    {
        var (code, stdout, stderr) = CliTests.Run(2, "experiment", "deformable", "--quick", "--data", "embedded", "--set", option,
            "--out", Path.Combine(Path.GetTempPath(), $"convlab-deformable-bad-{Guid.NewGuid():N}"));
        Assert.NotEqual(0, code);
        Assert.Contains(named, stdout + stderr);
        Assert.Contains(expected, stdout + stderr);
        Assert.DoesNotContain("   at ", stdout + stderr);
    }
}
