using System.Text.Json;
using Xunit;

namespace ConvLab.Tests;

/// <summary>One tiny `convlab train` run on the embedded subset, shared by the tests that inspect, resume, evaluate and predict with it.</summary>
public sealed class TrainRunFixture : IDisposable
{
    public string Dir { get; } = Path.Combine(Path.GetTempPath(), $"convlab-run-{Guid.NewGuid():N}");
    public (int Code, string Out) Result { get; }

    public TrainRunFixture() =>
        Result = TrainCliTests.Convlab("train", "--data", "embedded", "--epochs", "1", "--limit-train", "128", "--limit-test", "64",
            "--batch-size", "64", "--threads", "2", "--out", Dir);

    public void Dispose()
    {
        if (Directory.Exists(Dir)) Directory.Delete(Dir, true);
    }
}

/// <summary>`convlab train`, `evaluate` and `predict` run as a user types them.</summary>
public class TrainCliTests(TrainRunFixture run) : IClassFixture<TrainRunFixture>
{
    // Generous: the test machine is shared; this is a hang guard, not a timing check.
    internal static (int Code, string Out) Convlab(params string[] args)
    {
        var (code, stdout, stderr) = CliTests.Run(10, args);
        return (code, stdout + stderr);
    }

    [Fact]
    public void TrainWritesARunFolderWithEveryMetricsKey()
    {
        var (code, text) = run.Result;
        Assert.True(code == 0, text);
        Assert.Contains("embedded", text);
        Assert.Contains("test accuracy", text);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(run.Dir, "metrics.json")));
        var root = doc.RootElement;
        foreach (var key in new[] { "data_source", "train_images", "test_images", "epochs", "test_accuracy", "test_loss", "seconds_per_epoch",
                     "images_per_second", "history", "model", "class_names", "confusion_matrix", "per_class_accuracy", "top5_accuracy", "bytes_allocated_per_step" })
            Assert.True(root.TryGetProperty(key, out _), $"metrics.json lacks '{key}'");
        Assert.Equal("simple_cnn", root.GetProperty("model").GetString());
        Assert.Equal(128, root.GetProperty("train_images").GetInt32());
        Assert.Equal(64, root.GetProperty("test_images").GetInt32());
        Assert.Equal(1, root.GetProperty("epochs").GetInt32());
        Assert.Equal("Ankle boot", root.GetProperty("class_names")[9].GetString());
        var confusion = root.GetProperty("confusion_matrix");
        Assert.Equal(10, confusion.GetArrayLength());
        Assert.Equal(64, confusion.EnumerateArray().Sum(r => r.EnumerateArray().Sum(v => v.GetInt64())));
        var h = root.GetProperty("history")[0];
        foreach (var key in new[] { "epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy" }) Assert.True(h.TryGetProperty(key, out _), key);
        Assert.Equal(root.GetProperty("test_accuracy").GetDouble(), h.GetProperty("test_accuracy").GetDouble());
        Assert.Equal(2, File.ReadAllLines(Path.Combine(run.Dir, "metrics.csv")).Length);
        Assert.True(File.Exists(Path.Combine(run.Dir, "model.safetensors")));
        Assert.True(File.Exists(Path.Combine(run.Dir, "checkpoint.ckpt")));
        Assert.Empty(Directory.GetFiles(run.Dir, "*.tmp"));
    }

    [Fact]
    public void EvaluateAndPredictUseTheSavedRun()
    {
        var (code, text) = Convlab("evaluate", run.Dir, "--limit-test", "64", "--threads", "2");
        Assert.True(code == 0, text);
        Assert.Contains("confusion matrix", text);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(run.Dir, "metrics.json")));
        // the same weights on the same 64 images give the accuracy the training run recorded
        Assert.Contains("test accuracy " + doc.RootElement.GetProperty("test_accuracy").GetDouble().ToString("P2", System.Globalization.CultureInfo.InvariantCulture), text);

        (code, text) = Convlab("predict", run.Dir, "--index", "0", "3", "--top", "2");
        Assert.True(code == 0, text);
        Assert.Contains("test #0 (true class: Ankle boot)", text);
        Assert.Contains("test #3", text);
        Assert.Contains("probability", text);

        (code, text) = Convlab("predict", run.Dir, "--index", "99999");
        Assert.NotEqual(0, code);
        Assert.Contains("outside the test set", text);
    }

    [Fact]
    public void ResumeContinuesTheRunAndBadCheckpointsAreNamed()
    {
        string copy = run.Dir + "-resumed";
        try
        {
            Directory.CreateDirectory(copy);
            foreach (var f in Directory.GetFiles(run.Dir)) File.Copy(f, Path.Combine(copy, Path.GetFileName(f)));
            // The fixture's cosine schedule spans its one epoch (and ends at lr 0): extending it is refused, naming the option.
            var (code, text) = Convlab("train", "--resume", copy, "--epochs", "2", "--threads", "2");
            Assert.NotEqual(0, code);
            Assert.Contains("--epochs 2 with --resume would run past this run's cosine schedule", text);
            Assert.Contains("T_max=1", text);
            // Without a schedule a run can be extended.
            (code, text) = Convlab("train", "--data", "embedded", "--epochs", "1", "--limit-train", "128", "--limit-test", "64",
                "--batch-size", "64", "--threads", "2", "--schedule", "none", "--out", copy);
            Assert.True(code == 0, text);
            (code, text) = Convlab("train", "--resume", copy, "--epochs", "2", "--threads", "2");
            Assert.True(code == 0, text);
            Assert.Contains("after epoch 1 of 2", text);
            using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(copy, "metrics.json"))))
            {
                Assert.Equal(2, doc.RootElement.GetProperty("epochs").GetInt32());
                Assert.Equal(2, doc.RootElement.GetProperty("history").GetArrayLength());
            }

            string ckpt = Path.Combine(copy, "checkpoint.ckpt");
            var bytes = File.ReadAllBytes(ckpt);
            File.WriteAllBytes(ckpt, bytes[..1000]);
            (code, text) = Convlab("train", "--resume", ckpt);
            Assert.NotEqual(0, code);
            Assert.Contains("checkpoint.ckpt", text);
        }
        finally { if (Directory.Exists(copy)) Directory.Delete(copy, true); }
    }

    [Fact]
    public void BadOptionsAreRefusedWithAMessage()
    {
        var (code, text) = Convlab("train", "--data", "embedded", "--optimizer", "lbfgs", "--limit-train", "8");
        Assert.NotEqual(0, code);
        Assert.Contains("unknown --optimizer 'lbfgs'", text);
        (code, text) = Convlab("train", "--data", "/no/such/dir");
        Assert.NotEqual(0, code);
        Assert.Contains("'/no/such/dir' does not exist", text);
        (code, text) = Convlab("evaluate", "/no/such/run");
        Assert.NotEqual(0, code);
        Assert.Contains("does not exist", text);
    }
}
