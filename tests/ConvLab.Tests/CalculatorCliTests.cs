using System.Text.Json;
using Xunit;

namespace ConvLab.Tests;

/// <summary>`convlab summary | rf | memory | models` run as a separate process, as a user types them.</summary>
public class CalculatorCliTests
{
    private static (int Code, string Out, string Err) Convlab(params string[] args) => CliTests.Run(2, args);

    [Fact]
    public void SummaryJsonFollowsTheContract()
    {
        var (code, text, err) = Convlab("summary", "resnet18", "--input", "3x224x224", "--batch", "32", "--optimizer", "adam", "--format", "json", "--explain");
        Assert.True(code == 0, err);
        using var doc = JsonDocument.Parse(text);
        var root = doc.RootElement;
        Assert.Equal([3, 224, 224], root.GetProperty("input").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(32, root.GetProperty("batch").GetInt32());
        Assert.Equal([1000], root.GetProperty("output_shape").EnumerateArray().Select(e => e.GetInt32()));
        var layers = root.GetProperty("layers").EnumerateArray().ToList();
        var conv1 = layers.First(l => l.GetProperty("name").GetString() == "conv1");
        Assert.Equal("Conv2d", conv1.GetProperty("type").GetString());
        Assert.Equal([64, 112, 112], conv1.GetProperty("output_shape").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(9408, conv1.GetProperty("params").GetInt64());
        Assert.Equal(9408, conv1.GetProperty("trainable_params").GetInt64());
        Assert.Equal(112L * 112 * 64 * 3 * 7 * 7, conv1.GetProperty("macs").GetInt64());
        Assert.Equal(2L * 112 * 112 * 64 * 3 * 7 * 7, conv1.GetProperty("flops").GetInt64());
        Assert.Equal(64L * 112 * 112 * 4, conv1.GetProperty("activation_bytes").GetInt64());
        Assert.Equal([7, 7], conv1.GetProperty("receptive_field").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal([2, 2], conv1.GetProperty("jump").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal([0, 0], conv1.GetProperty("start").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Contains("O_h = floor((224 - 7 + 2*3) / 2) + 1 = 112", conv1.GetProperty("explain").EnumerateArray().Select(e => e.GetString()));
        foreach (var l in layers)
            foreach (var key in new[] { "name", "type", "output_shape", "params", "trainable_params", "macs", "flops", "activation_bytes", "receptive_field", "jump", "start" })
                Assert.True(l.TryGetProperty(key, out _), $"layer lacks '{key}'");
        var total = root.GetProperty("total");
        Assert.Equal(11689512, total.GetProperty("params").GetInt64());
        Assert.Equal(11689512, total.GetProperty("trainable_params").GetInt64());
        Assert.Equal(layers.Sum(l => l.GetProperty("macs").GetInt64()), total.GetProperty("macs").GetInt64());
        Assert.InRange(total.GetProperty("macs").GetInt64(), 1_810_000_000, 1_830_000_000); // torchvision's 1.81 GMACs
        foreach (var key in new[] { "flops", "activation_bytes", "model_bytes", "training_memory_bytes" })
            Assert.True(total.GetProperty(key).GetInt64() > 0, key);
    }

    [Fact]
    public void SummaryTableShowsTotalsAndConventions()
    {
        var (code, text, err) = Convlab("summary", "lenet5");
        Assert.True(code == 0, err);
        Assert.Contains("61,706", text);
        Assert.Contains("features.0", text);
        Assert.Contains("training memory at batch 1 with adam", text);
        Assert.Contains("MAC = one multiply-add", text);
    }

    [Fact]
    public void AlexNetConv1WorkedAnswerIs55()
    {
        // torchvision's AlexNet pads conv1 by 2, so 224 gives the paper's 55 (as 227 does without padding).
        var (code, text, err) = Convlab("summary", "alexnet", "--input", "3x224x224", "--format", "markdown", "--explain");
        Assert.True(code == 0, err);
        Assert.Contains("O_h = floor((224 - 11 + 2*2) / 4) + 1 = 55", text);
        Assert.Contains("| features.0 | Conv2d | [64, 55, 55] |", text);
    }

    [Fact]
    public void RfAndMemoryCommands()
    {
        var (code, text, err) = Convlab("rf", "resnet18", "--format", "json");
        Assert.True(code == 0, err);
        using (var doc = JsonDocument.Parse(text))
        {
            var last = doc.RootElement.GetProperty("layers").EnumerateArray().Last(l => l.GetProperty("type").GetString() == "Conv2d");
            // ResNet-18's last convolution: the published 435-pixel receptive field with jump 32 (residual merges take the union).
            Assert.Equal("layer4.1.conv2", last.GetProperty("name").GetString());
            Assert.Equal(435, last.GetProperty("receptive_field")[0].GetInt32());
            Assert.Equal(32, last.GetProperty("jump")[1].GetInt32());
        }
        var (tcode, table, terr) = Convlab("rf", "lenet5", "--explain");
        Assert.True(tcode == 0, terr);
        Assert.Contains("RF_h = 6 + (5 - 1)*1*2 = 14", table); // conv2 after conv1 (5x5) and a 2x2 pool
        var (mcode, mtext, merr) = Convlab("memory", "resnet18", "--batch", "8", "--optimizer", "sgd", "--format", "json");
        Assert.True(mcode == 0, merr);
        using var m = JsonDocument.Parse(mtext);
        var mem = m.RootElement.GetProperty("memory");
        Assert.Equal(0, mem.GetProperty("optimizer_bytes").GetInt64());
        Assert.Equal(11689512L * 4, mem.GetProperty("gradient_bytes").GetInt64());
        Assert.False(m.RootElement.TryGetProperty("layers", out _));
        Assert.Equal(mem.GetProperty("total_bytes").GetInt64(), m.RootElement.GetProperty("total").GetProperty("training_memory_bytes").GetInt64());
    }

    [Fact]
    public void ModelsListsTheZoo()
    {
        var (code, text, err) = Convlab("models", "--format", "json");
        Assert.True(code == 0, err);
        using var doc = JsonDocument.Parse(text);
        var names = doc.RootElement.EnumerateArray().Select(e => e.GetProperty("name").GetString()!).ToList();
        Assert.Equal(Models.Zoo.Names, names);
    }

    [Fact]
    public void BadArgumentsGiveAMessageAndANonZeroExit()
    {
        var (code, _, err) = Convlab("summary", "resnet19");
        Assert.NotEqual(0, code);
        Assert.Contains("unknown model 'resnet19'", err);
        Assert.Contains("resnet18", err);
        (code, _, err) = Convlab("summary", "resnet18", "--input", "3x0x224");
        Assert.NotEqual(0, code);
        Assert.Contains("--input", err);
        (code, _, err) = Convlab("memory", "lenet5", "--optimizer", "lbfgs");
        Assert.NotEqual(0, code);
        Assert.Contains("unknown optimizer 'lbfgs'", err);
        (code, _, err) = Convlab("summary", "lenet5", "--input", "1x64x64");
        Assert.NotEqual(0, code);
        Assert.Contains("linear:", err);
    }
}
