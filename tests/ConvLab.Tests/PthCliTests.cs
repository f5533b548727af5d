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

/// <summary>`convlab convert` as a user types it.</summary>
public class ConvertCliTests
{
    [Fact]
    public void ConvertsPthToSafetensorsAndBackWithTheSameTensors()
    {
        var dir = Directory.CreateTempSubdirectory("convlab-convert-");
        try
        {
            string st = Path.Combine(dir.FullName, "tiny.safetensors"), pth = Path.Combine(dir.FullName, "tiny.pth");
            var (code, text) = TrainCliTests.Convlab("convert", Path.Combine(PthTests.InteropDir, "tiny_unet.pth"), st);
            Assert.True(code == 0, text);
            Assert.Contains("22 tensors", text);
            (code, text) = TrainCliTests.Convlab("convert", st, pth, "--repeat", "3");
            Assert.True(code == 0, text);
            Assert.Contains("median of 3", text);
            var original = ConvLab.IO.Torch.TorchFile.LoadStateDict(Path.Combine(PthTests.InteropDir, "tiny_unet.pth"));
            var back = ConvLab.IO.Torch.TorchFile.LoadStateDict(pth);
            Assert.Equal(original.Keys.Order(), back.Keys.Order());
            foreach (var (k, t) in original)
                Assert.Equal(t.ToDoubleArray(), back[k].ToDoubleArray());

            (code, text) = TrainCliTests.Convlab("convert", "simple_cnn", Path.Combine(dir.FullName, "fresh.pth"), "--seed", "4");
            Assert.True(code == 0, text);
            Assert.Equal(18, ConvLab.IO.Torch.TorchFile.LoadStateDict(Path.Combine(dir.FullName, "fresh.pth")).Count);
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void ConvertNamesWhatIsWrong()
    {
        var (code, text) = TrainCliTests.Convlab("convert", "/no/such.pth", "x.pth");
        Assert.NotEqual(0, code);
        Assert.Contains("'/no/such.pth' is neither a file, a run folder nor a zoo model", text);
        (code, text) = TrainCliTests.Convlab("convert", "simple_cnn", "x.onnx");
        Assert.NotEqual(0, code);
        Assert.Contains("must end in .pth, .pt or .safetensors", text);
        (code, text) = TrainCliTests.Convlab("convert", Path.Combine(PthTests.InteropDir, "whole_module.pth"), "x.safetensors");
        Assert.NotEqual(0, code);
        Assert.Contains("whole_module.pth: ", text);
        Assert.DoesNotContain("   at ", text);
    }
}
