using System.Text.Json;
using Xunit;

namespace ConvLab.Tests;

/// <summary>`convlab check-onnx`, `export` and `import` run as a user types them.</summary>
public class OnnxCliTests
{
    private static string TempDir()
    {
        var d = Path.Combine(Path.GetTempPath(), "convlab-onnx-cli-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }

    [Fact]
    public void CheckOnnxPrintsThePassTableAndTheCountLine()
    {
        var (code, text) = CliTests.Convlab("check-onnx", "/usr/share/libonnx-testdata/data/node", "--filter", "test_conv_with");
        var last = text.TrimEnd().Split('\n')[^1].Trim();
        Assert.Matches(@"^\d+ passed, 0 failed$", last);
        Assert.True(int.Parse(last.Split(' ')[0]) >= 3, text);
        Assert.Contains("conv", text);
        Assert.Equal(0, code);
    }

    [Fact]
    public void CheckOnnxReportsFailuresAndExitsNonZero()
    {
        var (code, text) = CliTests.Convlab("check-onnx", "/usr/share/libonnx-testdata/data/node", "--filter", "test_resize_upsample_scales_cubic");
        Assert.Matches(@"0 passed, [1-9]\d* failed\s*$", text);
        Assert.Contains("FAIL test_resize_upsample_scales_cubic", text);
        Assert.Contains("cubic", text);
        Assert.NotEqual(0, code);
    }

    [Fact]
    public void ExportThenImportWritesTheFolder()
    {
        var dir = TempDir();
        try
        {
            var onnx = Path.Combine(dir, "sq.onnx");
            var (code, text) = CliTests.Convlab("export", "squeezenet1_1", "--weights", Path.Combine(OnnxImportTests.InteropDir, "squeezenet1_1.pth"), "--onnx", onnx);
            Assert.True(code == 0, text);
            Assert.Contains("opset 17", text);
            var run = Path.Combine(dir, "run");
            (code, text) = CliTests.Convlab("import", onnx, "--out", run);
            Assert.True(code == 0, text);
            using var info = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "import.json")));
            var keys = info.RootElement.GetProperty("state_dict").EnumerateArray().Select(e => e.GetString()).ToList();
            Assert.Contains("features.0.weight", keys);
            Assert.Contains("classifier.1.bias", keys);
            Assert.True(File.Exists(Path.Combine(run, "model.safetensors")));
            Assert.True(File.Exists(Path.Combine(run, "model.onnx")));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void TrainedRunExportsAndOnnxRuntimeGivesTheRunsOutput()
    {
        // convlab train → convlab export RUN (the run's own model, weights and input shape) → ONNX Runtime.
        var dir = TempDir();
        try
        {
            var run = Path.Combine(dir, "run");
            var (code, text) = TrainCliTests.Convlab("train", "--data", "embedded", "--epochs", "1", "--limit-train", "64", "--limit-test", "32",
                "--batch-size", "32", "--threads", "2", "--out", run);
            Assert.True(code == 0, text);
            var onnx = Path.Combine(dir, "run.onnx");
            (code, text) = CliTests.Convlab("export", run, "--onnx", onnx);
            Assert.True(code == 0, text);
            Assert.Contains("input [batch, 1, 28, 28]", text);
            var model = Cli.RunFolder.LoadModel(run, Cli.RunFolder.ReadMetrics(run));
            var x = Tensor.Randn([3, 1, 28, 28], new Generator(12));
            Tensor expected;
            using (new Autograd.NoGrad()) expected = model.Forward(x);
            var (ort, shape) = OnnxExportTests.RunOrt(onnx, x);
            Assert.Equal(expected.Shape.ToArray(), shape);
            double rel = OnnxImportTests.RelativeError(ort, expected.ToArray());
            Assert.True(rel <= 1e-4, $"ORT vs the run's model: max |diff| / max |output| = {rel:E2}");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void BadInputsGiveOneLineAndNonZeroExit()
    {
        var dir = TempDir();
        try
        {
            var junk = Path.Combine(dir, "junk.onnx");
            File.WriteAllBytes(junk, [0x0a, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3]);
            foreach (var args in new[]
            {
                new[] { "import", junk, "--out", Path.Combine(dir, "r") },
                ["import", Path.Combine(dir, "missing.onnx"), "--out", Path.Combine(dir, "r")],
                ["export", "simple_cnn", "--onnx", Path.Combine(dir, "a.onnx"), "--opset", "9"],
                ["export", "simple_cnn", "--onnx", Path.Combine(dir, "a.onnx"), "--weights", Path.Combine(OnnxImportTests.InteropDir, "squeezenet1_1.pth")],
            })
            {
                var (code, stdout, stderr) = CliTests.Run(2, args);
                Assert.NotEqual(0, code);
                var text = (stdout + stderr).Trim();
                Assert.DoesNotContain("   at ", text);
                Assert.Single(text.Split('\n'));
            }
        }
        finally { Directory.Delete(dir, true); }
    }
}
