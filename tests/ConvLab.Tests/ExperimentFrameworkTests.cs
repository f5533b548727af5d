using System.Text.Json;
using ConvLab.Experiments;
using ConvLab.Imaging;
using SkiaSharp;
using Xunit;

namespace ConvLab.Tests;

/// <summary>The experiment runner's folder contract (figures, results.json, report.md), option checking, the charts and the CLI verb.</summary>
public class ExperimentFrameworkTests
{
    private sealed class Probe : IExperiment
    {
        public string Name => "probe";
        public string Description => "a test experiment";
        public void Run(ExperimentContext context)
        {
            int n = context.IntOption("points", 5, min: 2, max: 100);
            var xs = Enumerable.Range(1, n).Select(i => (double)i).ToArray();
            var ys = xs.Select(x => x * x * (context.Quick ? 1 : 2)).ToArray();
            context.Figure("curve.png", Charts.Line("squares", "x", "y", [new Series("x²", xs, ys)], logX: true, logY: true));
            context.Results["points"] = n;
            context.Results["last"] = ys[^1];
            context.Report.Paragraph($"The last of {n} squares is {Report.Num(ys[^1])}.").Figure("curve.png", "the curve");
        }
    }

    private static string TempDir() => Directory.CreateTempSubdirectory("convlab-exp-").FullName;

    [Fact]
    public void RunnerWritesResultsReportAndFiguresWithTheRunSettings()
    {
        var dir = TempDir();
        try
        {
            var outcome = ExperimentRunner.Run(new Probe(), new ExperimentSettings
            {
                OutDir = dir, Quick = true, Seed = 7, Threads = 1, Options = new Dictionary<string, string> { ["points"] = "4" },
            });
            using var json = JsonDocument.Parse(File.ReadAllText(outcome.ResultsPath));
            var root = json.RootElement;
            Assert.Equal("probe", root.GetProperty("experiment").GetString());
            Assert.Equal(7UL, root.GetProperty("seed").GetUInt64());
            Assert.True(root.GetProperty("quick").GetBoolean());
            Assert.Equal(4, root.GetProperty("points").GetInt32());
            Assert.Equal(16, root.GetProperty("last").GetDouble());
            Assert.Equal("curve.png", root.GetProperty("figures")[0].GetString());
            string report = File.ReadAllText(outcome.ReportPath);
            Assert.Contains("The last of 4 squares is 16.", report);
            Assert.StartsWith("# probe: a test experiment", report);
            using var png = SKBitmap.Decode(Path.Combine(dir, "curve.png"));
            Assert.Equal(800, png.Width);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void AnOptionTheExperimentNeverReadsOrABadValueIsAnErrorNamingIt()
    {
        var dir = TempDir();
        try
        {
            var e = Assert.Throws<ArgumentException>(() => ExperimentRunner.Run(new Probe(), new ExperimentSettings
            {
                OutDir = dir, Options = new Dictionary<string, string> { ["pionts"] = "4" },
            }));
            Assert.Contains("'pionts'", e.Message);
            e = Assert.Throws<ArgumentException>(() => ExperimentRunner.Run(new Probe(), new ExperimentSettings
            {
                OutDir = dir, Options = new Dictionary<string, string> { ["points"] = "many" },
            }));
            Assert.Contains("points=many", e.Message);
            Assert.False(File.Exists(Path.Combine(dir, ExperimentRunner.ResultsFile)));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void ChartsRenderBarsAndCaptionedImageGrids()
    {
        var bars = Charts.Bars("accuracy", "fraction", ["a", "b", "c"], [("cnn", [0.9, 0.8, 0.7]), ("mlp", [0.5, double.NaN, 0.6])]);
        using (var b = SKBitmap.Decode(bars)) Assert.Equal((800, 500), (b.Width, b.Height));
        var tiles = new[] { new Tile("grey", Tensor.Rand([8, 8])), new Tile("rgb", Tensor.Rand([3, 8, 8])), new Tile("flat", Tensor.Zeros([1, 4, 4])) };
        var grid = Charts.ImageGrid(tiles, columns: 3, title: "tiles");
        using var g = SKBitmap.Decode(grid);
        Assert.True(g.Width > 3 * 96 && g.Height > 160);
        Assert.Throws<ArgumentException>(() => Charts.ImageGrid([new Tile("bad", Tensor.Rand([2, 4, 4]))]));
        Assert.Throws<ArgumentException>(() => Charts.Line("t", "x", "y", [new Series("s", [1.0, 2.0], [1.0])]));
    }

    [Fact]
    public void CliListsExperimentsAndRejectsAnUnknownNameListingTheNames()
    {
        var (code, text) = CliTests.Convlab("experiment", "list");
        Assert.Equal(0, code);
        foreach (var e in ExperimentRegistry.All) Assert.Contains(e.Name, text);
        (code, text) = CliTests.Convlab("experiment", "no-such-experiment", "--quick");
        Assert.Equal(1, code);
        Assert.Contains("unknown experiment 'no-such-experiment'", text);
        Assert.DoesNotContain("   at ", text);
        (code, text) = CliTests.Convlab("experiment", "no-such-experiment", "--set", "novalue");
        Assert.Equal(1, code);
        Assert.Contains("--set expects key=value", text);
    }
}
