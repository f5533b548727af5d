using System.Text.Json;
using ConvLab.Explain;
using SkiaSharp;
using Xunit;

namespace ConvLab.Tests;

/// <summary>`convlab experiment localisation --quick` run as a user types it.</summary>
public sealed class LocalisationExperimentTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"convlab-localisation-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, true);
    }

    private static readonly string[] Keys = ["method", "pointing_game", "mean_box_iou", "deletion_auc", "insertion_auc", "sanity_spearman_top_layer"];

    [Fact]
    public void QuickRunWritesFiguresResultsAndAReportAndTheBoxMapAlwaysScoresPerfectly()
    {
        var (code, text) = TrainCliTests.Convlab("experiment", "localisation", "--quick", "--seed", "5", "--threads", "2", "--out", _dir);
        Assert.True(code == 0, text);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "results.json")));
        var root = doc.RootElement;
        var figures = root.GetProperty("figures").EnumerateArray().Select(f => f.GetString()!).ToArray();
        Assert.Equal(["dataset.png", "example-1.png", "example-2.png", "scores.png", "deletion.png", "insertion.png", "sanity.png"], figures);
        foreach (var f in figures)
        {
            using var png = SKBitmap.Decode(Path.Combine(_dir, f));
            Assert.True(png != null && png.Width >= 200, $"{f} is not a decodable figure");
        }

        var methods = root.GetProperty("methods").EnumerateArray().ToList();
        var baselines = root.GetProperty("baselines").EnumerateArray().ToList();
        Assert.Equal(ExplainMethods.All.Select(m => m.Name).ToArray(), methods.Select(m => m.GetProperty("method").GetString()!).ToArray());
        Assert.Equal(["random", "sobel", "box"], baselines.Select(m => m.GetProperty("method").GetString()!).ToArray());
        var report = File.ReadAllText(Path.Combine(_dir, "report.md"));
        foreach (var row in methods.Concat(baselines))
        {
            Assert.Equal(Keys, row.EnumerateObject().Select(p => p.Name).ToArray());
            foreach (var key in Keys[1..])
            {
                var v = row.GetProperty(key);
                if (v.ValueKind == JsonValueKind.Null) continue; // undefined (a constant randomised map)
                Assert.InRange(v.GetDouble(), key.StartsWith("sanity", StringComparison.Ordinal) ? -1 : 0, 1);
            }
            Assert.Contains($"| {row.GetProperty("method").GetString()}", report);
        }
        // Whatever the seed and however poorly the quick model trains: the box itself hits and overlaps its box exactly,
        // and a map that never reads the model is untouched by re-initialising it.
        var box = baselines[2];
        Assert.Equal(1.0, box.GetProperty("pointing_game").GetDouble());
        Assert.Equal(1.0, box.GetProperty("mean_box_iou").GetDouble(), 12);
        Assert.Equal(1.0, baselines[1].GetProperty("sanity_spearman_top_layer").GetDouble(), 9);
        Assert.Contains(methods, m => m.GetProperty("sanity_spearman_top_layer").ValueKind == JsonValueKind.Number);
        Assert.Contains("## Results", report);
        Assert.Contains("Seed 5, quick setting", report);
    }
}
