using Xunit;

namespace ConvLab.Tests;

/// <summary>`convlab train --weights FILE.pth` as a user types it.</summary>
public class PthCliTests
{
    [Fact]
    public void TrainStartsFromAPyTorchStateDict()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"convlab-pthrun-{Guid.NewGuid():N}");
        try
        {
            var (code, text) = TrainCliTests.Convlab("train", "--data", "embedded", "--epochs", "1", "--limit-train", "64", "--limit-test", "32",
                "--batch-size", "32", "--threads", "2", "--weights", Path.Combine(PthTests.InteropDir, "training_checkpoint.pth"), "--out", dir);
            Assert.True(code == 0, text);
            // The checkpoint's simple_cnn calls its last linear layer classifier.4 (a Dropout sits at 3): only that is fresh.
            Assert.Contains("training_checkpoint.pth; re-initialised (new head): classifier.3.weight, classifier.3.bias", text.ReplaceLineEndings(" "));
            Assert.True(File.Exists(Path.Combine(dir, "model.safetensors")));
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [Fact]
    public void TrainRefusesAMaliciousPthInOneLine()
    {
        var (code, text) = TrainCliTests.Convlab("train", "--data", "embedded", "--limit-train", "8", "--weights", Path.Combine(PthTests.InteropDir, "malicious.pth"));
        Assert.NotEqual(0, code);
        Assert.Contains("malicious.pth: ", text);
        Assert.Contains("refused global posix.system", text);
        Assert.DoesNotContain("   at ", text);
        Assert.False(File.Exists("/tmp/convlab-pickle-executed"));
    }
}
