using System.Text.Json;
using Xunit;

namespace ConvLab.Tests;

/// <summary>One `convlab detect train --quick` run, shared by the tests that inspect, evaluate and predict with it.</summary>
public sealed class DetectRunFixture : IDisposable
{
    public string Dir { get; } = Path.Combine(Path.GetTempPath(), $"convlab-detect-{Guid.NewGuid():N}");
    public (int Code, string Out) Result { get; }

    public DetectRunFixture() => Result = TrainCliTests.Convlab("detect", "train", "--quick", "--epochs", "2", "--threads", "2", "--out", Dir);

    public void Dispose()
    {
        if (Directory.Exists(Dir)) Directory.Delete(Dir, true);
    }
}

/// <summary>`convlab detect train | eval | predict` and `convlab anchors` run as a user types them.</summary>
public class DetectCliTests(DetectRunFixture run) : IClassFixture<DetectRunFixture>
{
    [Fact]
    public void TrainWritesTheRunFolderAndMetricsKeys()
    {
        var (code, text) = run.Result;
        Assert.True(code == 0, text);
        Assert.Contains("held-out mAP@0.5", text);
        Assert.Contains("epoch 2/2", text);
        foreach (var f in new[] { "checkpoint.ckpt", "model.safetensors", "detector.json", "metrics.json", "pr_curve.png" })
            Assert.True(File.Exists(Path.Combine(run.Dir, f)), f);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(Path.Combine(run.Dir, "pr_curve.png"))[..4]);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(run.Dir, "metrics.json")));
        var root = doc.RootElement;
        foreach (var key in new[] { "map50", "map50_95", "coco_map50" })
            Assert.InRange(root.GetProperty(key).GetDouble(), 0.0, 1.0);
        var perClass = root.GetProperty("per_class");
        Assert.Equal(4, perClass.GetArrayLength());
        Assert.Equal("circle", perClass[0].GetProperty("class").GetString());
        var history = root.GetProperty("history");
        Assert.Equal(2, history.GetArrayLength());
        foreach (var key in new[] { "train_loss", "val_loss", "val_map50", "learning_rate" }) Assert.True(history[1].TryGetProperty(key, out _), key);
        // The last epoch's validation is the reported result.
        Assert.Equal(root.GetProperty("map50").GetDouble(), history[1].GetProperty("val_map50").GetDouble(), 12);
    }

    [Fact]
    public void EvalReproducesTheTrainingResult()
    {
        Assert.True(run.Result.Code == 0, run.Result.Out);
        var (code, text) = TrainCliTests.Convlab("detect", "eval", run.Dir);
        Assert.True(code == 0, text);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(run.Dir, "metrics.json")));
        string map = doc.RootElement.GetProperty("map50").GetDouble().ToString("F4", System.Globalization.CultureInfo.InvariantCulture);
        Assert.Contains($"mAP@0.5 {map}", text);
        Assert.Contains("triangle", text);
    }

    [Fact]
    public void PredictDrawsAPngAndPrintsTheBoxes()
    {
        Assert.True(run.Result.Code == 0, run.Result.Out);
        string png = Path.Combine(run.Dir, "drawn.png");
        // Any image will do; the PR plot is one the run wrote.
        var (code, text) = TrainCliTests.Convlab("detect", "predict", run.Dir, "--image", Path.Combine(run.Dir, "pr_curve.png"), "--score", "0", "--out", png);
        Assert.True(code == 0, text);
        Assert.Contains("detections", text);
        Assert.Contains("x0", text);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(png)[..4]);
    }

    [Theory]
    [InlineData("detect train --quick --image-size 100", "--image-size 100 is not a positive multiple of 32")]
    [InlineData("detect train --quick --train-sizes 64,70", "--train-sizes: 70 is not a positive multiple of 32")]
    [InlineData("detect train --quick --data /nonexistent-convlab", "neither 'synthetic' nor an existing folder")]
    [InlineData("detect eval /nonexistent-convlab-run", "does not exist")]
    [InlineData("anchors synthetic -k 0", "-k must be at least 1")]
    public void BadInputIsOneLineAndAFailingExitCode(string args, string expected)
    {
        var (code, text) = TrainCliTests.Convlab(args.Split(' '));
        Assert.NotEqual(0, code);
        Assert.Contains(expected, text);
        Assert.DoesNotContain("   at ", text);
    }

    [Fact]
    public void ResumePastTheCosineScheduleIsRefusedNamingTheOption()
    {
        var (code, text) = TrainCliTests.Convlab("detect", "train", "--resume", run.Dir, "--epochs", "3");
        Assert.NotEqual(0, code);
        Assert.Contains("detect train: --epochs 3 with --resume would run past this run's cosine schedule", text);
        Assert.Contains("T_max=2", text);
    }

    [Fact]
    public void AnchorsPrintsKAnchorsAndWritesTheCurve()
    {
        string png = Path.Combine(Path.GetTempPath(), $"convlab-anchors-{Guid.NewGuid():N}.png");
        try
        {
            var (code, text) = TrainCliTests.Convlab("anchors", "synthetic", "-k", "4", "--k-max", "5", "--images", "60", "--out", png);
            Assert.True(code == 0, text);
            Assert.Contains("4 anchors of", text);
            Assert.Contains("mean IoU", text);
            Assert.Contains("5:0.", text);
            Assert.True(File.Exists(png));
        }
        finally { if (File.Exists(png)) File.Delete(png); }
    }
}
