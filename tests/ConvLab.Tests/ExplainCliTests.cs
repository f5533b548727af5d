using System.Text.Json;
using ConvLab.Analysis;
using ConvLab.Cli;
using ConvLab.Explain;
using ConvLab.IO;
using SkiaSharp;
using Xunit;

namespace ConvLab.Tests;

/// <summary>A tiny `convlab train` run (simple_cnn, no GAP) and a spec model with GAP and saved weights, for `convlab explain`.</summary>
public sealed class ExplainFixture : IDisposable
{
    public const string Spec = "INPUT 28x28x1, conv 3x3 p1 8, relu, maxpool 2x2, conv 3x3 p1 16, relu, gap, fc 10";

    public string Root { get; } = Directory.CreateTempSubdirectory("convlab-explain-cli-").FullName;
    public string Run => Path.Combine(Root, "run");
    public string Weights => Path.Combine(Root, "gap.safetensors");
    public (int Code, string Out) Train { get; }

    public ExplainFixture()
    {
        Train = TrainCliTests.Convlab("train", "--data", "embedded", "--epochs", "1", "--limit-train", "128", "--limit-test", "16",
            "--batch-size", "64", "--threads", "2", "--out", Run);
        SpecParser.Parse(Spec, generator: new Generator(3)).Module.SaveSafeTensors(Weights);
    }

    /// <summary>A PNG of w x h pixels; gray unless <paramref name="colour"/>.</summary>
    public string Png(string name, int w, int h, bool colour = false)
    {
        using var bmp = new SKBitmap(w, h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                byte v = (byte)((x * 37 + y * 11) % 256);
                bmp.SetPixel(x, y, colour ? new SKColor(v, (byte)(255 - v), 40) : new SKColor(v, v, v));
            }
        var path = Path.Combine(Root, name);
        using var data = bmp.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
        return path;
    }

    public void Dispose() => Directory.Delete(Root, true);
}

/// <summary>`convlab explain` run as a user types it.</summary>
public class ExplainCliTests(ExplainFixture fx) : IClassFixture<ExplainFixture>
{
    private static (int Code, string Out) Convlab(params string[] args) => TrainCliTests.Convlab(args);

    [Fact]
    public void RunFolderExplainsEveryMethodWritesPicturesRawMapsAndMetrics()
    {
        Assert.Equal(0, fx.Train.Code);
        var dir = Path.Combine(fx.Root, "all");
        var (code, text) = Convlab("explain", fx.Run, "--index", "3", "--method", "all", "--metrics", "deletion,insertion,pointing,iou",
            "--box", "4,4,24,24", "--steps", "8", "--samples", "4", "--pixels-per-step", "20", "--threads", "2", "--out", dir, "--format", "json");
        Assert.True(code == 0, text);
        using var doc = JsonDocument.Parse(text);
        var root = doc.RootElement;
        var methods = root.GetProperty("methods").EnumerateArray().ToList();
        Assert.Equal(["saliency", "smoothgrad", "ig", "occlusion", "guided", "gradcam", "gradcam++", "guided-gradcam"],
            methods.Select(m => m.GetProperty("method").GetString()!).ToArray());
        // simple_cnn has no global average pooling: `all` skips CAM and says why.
        var skipped = root.GetProperty("skipped").EnumerateArray().Single();
        Assert.Equal("cam", skipped.GetProperty("method").GetString());
        Assert.Contains("GAP", skipped.GetProperty("reason").GetString());
        Assert.Equal("features", root.GetProperty("layer").GetString());
        int target = root.GetProperty("target").GetInt32();
        Assert.Equal(root.GetProperty("predicted_class").GetInt32(), target);
        int steps = (28 * 28 + 19) / 20;
        foreach (var m in methods)
        {
            string name = m.GetProperty("method").GetString()!;
            Assert.Equal(target, m.GetProperty("target").GetInt32());
            var shape = m.GetProperty("map_shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            Assert.Equal(name is "gradcam" or "gradcam++" ? [1, 1, 7, 7] : new[] { 1, 1, 28, 28 }, shape);
            Assert.Equal(name == "ig", m.GetProperty("completeness_delta").ValueKind == JsonValueKind.Number);
            Assert.Equal(steps + 1, m.GetProperty("deletion_scores").GetArrayLength());
            Assert.Equal(steps + 1, m.GetProperty("insertion_scores").GetArrayLength());
            Assert.InRange(m.GetProperty("deletion_auc").GetDouble(), 0, 1);
            Assert.True(m.GetProperty("pointing_game").ValueKind is JsonValueKind.True or JsonValueKind.False);
            Assert.Equal(9, m.GetProperty("box_iou").GetProperty("iou").GetArrayLength());
            using var png = SKBitmap.Decode(Path.Combine(dir, name.Replace("++", "-pp") + ".png"));
            Assert.True(png.Width >= 192, $"{name}.png is {png.Width} wide");
        }
        foreach (var f in new[] { "grid.png", "deletion.png", "insertion.png" })
        {
            using var png = SKBitmap.Decode(Path.Combine(dir, f));
            Assert.NotNull(png);
        }
        Assert.Equal(root.ToString(), JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "explain.json"))).RootElement.ToString());

        // The raw maps are saved unnormalised: the saliency tensor equals the library's saliency of the same image.
        var maps = SafeTensors.Load(Path.Combine(dir, "explain.safetensors"));
        Assert.Contains("gradcam.upsampled", maps.Keys);
        Assert.Equal(8 + 2, maps.Count); // every method, and the upsampled maps of Grad-CAM and Grad-CAM++
        var metrics = RunFolder.ReadMetrics(fx.Run);
        var model = RunFolder.LoadModel(fx.Run, metrics);
        var test = TrainDataSource.Load(TrainDataSource.Resolve(metrics.DataSource), trainSplit: false).Test;
        var expected = Attributions.Saliency(model, test.Get(3).Input.Unsqueeze(0), ExplainTarget.Class(target)).Map.ToArray();
        var saved = maps["saliency"].ToArray();
        Assert.Equal(expected.Length, saved.Length);
        float scale = expected.Max(Math.Abs);
        Assert.True(scale > 0);
        for (int i = 0; i < saved.Length; i++) Assert.True(Math.Abs(saved[i] - expected[i]) <= 1e-4f * scale, $"saliency[{i}] {saved[i]} vs {expected[i]}");
    }

    [Fact]
    public void SpecModelWithWeightsExplainsAnImageFileWithCamOnTheDefaultLayer()
    {
        var dir = Path.Combine(fx.Root, "spec");
        var image = fx.Png("gray.png", 28, 28);
        var (code, text) = Convlab("explain", ExplainFixture.Spec, "--weights", fx.Weights, "--image", image, "--method", "cam,gradcam",
            "--target", "2", "--threads", "2", "--out", dir);
        Assert.True(code == 0, text);
        Assert.Contains("cam", text);
        Assert.Contains("layer for the CAM methods: 4 (default", text); // the ReLU after the second conv, before gap
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "explain.json")));
        var methods = doc.RootElement.GetProperty("methods").EnumerateArray().ToList();
        Assert.Equal(2, methods.Count);
        Assert.All(methods, m => Assert.Equal(2, m.GetProperty("target").GetInt32()));
        Assert.All(methods, m => Assert.Equal("4", m.GetProperty("layer").GetString()));
        // For GAP + linear, CAM = Grad-CAM x (h*w) before the ReLU, so Grad-CAM's map is CAM's positive part / 196.
        var maps = SafeTensors.Load(Path.Combine(dir, "explain.safetensors"));
        var cam = maps["cam"].ToArray();
        var grad = maps["gradcam"].ToArray();
        float scale = cam.Max(Math.Abs);
        for (int i = 0; i < cam.Length; i++) Assert.True(Math.Abs(Math.Max(cam[i], 0) / 196f - grad[i]) <= 1e-4f * scale, $"cell {i}: cam {cam[i]}, gradcam {grad[i]}");
    }

    [Fact]
    public void BadInputGetsOneLineNamingTheOption()
    {
        Assert.Equal(0, fx.Train.Code);
        var gray32 = fx.Png("big.png", 32, 32);
        var colour = fx.Png("colour.png", 28, 28, colour: true);
        var cases = new (string Option, string[] Args)[]
        {
            ("--layer", ["explain", fx.Run, "--index", "0", "--method", "gradcam", "--layer", "featurs.9"]),
            ("--target", ["explain", fx.Run, "--index", "0", "--method", "saliency", "--target", "10"]),
            ("--box", ["explain", fx.Run, "--index", "0", "--method", "saliency", "--box", "0,0,29,10", "--metrics", "pointing"]),
            ("--method cam", ["explain", fx.Run, "--index", "0", "--method", "cam"]),
            ("--method", ["explain", fx.Run, "--index", "0", "--method", "lime"]),
            ("--metrics", ["explain", fx.Run, "--index", "0", "--method", "saliency", "--metrics", "pointing"]),
            ("--image", ["explain", fx.Run, "--image", gray32, "--method", "saliency"]),
            ("--image", ["explain", fx.Run, "--image", colour, "--method", "saliency"]),
            ("--index", ["explain", fx.Run, "--index", "100000", "--method", "saliency"]),
            ("--image/--index", ["explain", fx.Run, "--method", "saliency"]),
            ("--weights", ["explain", ExplainFixture.Spec, "--image", gray32, "--method", "saliency"]),
        };
        var results = new (int Code, string Out)[cases.Length];
        Parallel.For(0, cases.Length, new ParallelOptions { MaxDegreeOfParallelism = 2 }, i => results[i] = Convlab(cases[i].Args));
        for (int i = 0; i < cases.Length; i++)
        {
            var (code, text) = results[i];
            var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            Assert.True(code != 0, $"{cases[i].Option}: exit code 0 for {text}");
            Assert.True(lines.Length == 1, $"{cases[i].Option}: expected one line, got:\n{text}");
            Assert.StartsWith("explain: " + cases[i].Option, lines[0]);
        }
        Assert.Contains("nearest names: features", results[0].Out);
    }
}
