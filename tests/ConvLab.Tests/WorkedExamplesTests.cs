using System.Text.Json;
using Xunit;

namespace ConvLab.Tests;

/// <summary>Every number the worked examples of course material compute (issue 5, acceptance), reproduced by a `convlab` call run as a process.</summary>
public class WorkedExamplesTests
{
    private static string Run(params string[] args)
    {
        var (code, text) = CliTests.Convlab(args);
        Assert.True(code == 0, $"convlab {string.Join(' ', args)} exited {code}:\n{text}");
        return text;
    }

    [Fact]
    public void AlexNetConv1GivesFiftyFiveWithItsWorking()
    {
        var text = Run("compare", "stride", "--explain");
        Assert.Contains("O = floor((I - K + 2P) / S) + 1 = floor((227 - 11 + 2*0) / 4) + 1 = 55", text);
    }

    [Fact]
    public void AlexNetConv1InASpecSummaryExplainsTheSameFiftyFive()
    {
        var text = Run("summary", "input 227x227x3, conv 11x11/4 96", "--explain");
        Assert.Contains("O_h = floor((227 - 11 + 2*0) / 4) + 1 = 55", text);
        Assert.Contains("[96, 55, 55]", text);
    }

    private static JsonElement[] Layers(JsonDocument doc) => [.. doc.RootElement.GetProperty("layers").EnumerateArray()];
    private static int[] Ints(JsonElement e) => [.. e.EnumerateArray().Select(v => v.GetInt32())];

    [Fact]
    public void CourseTableConv3Pool2Fc3()
    {
        using var doc = JsonDocument.Parse(Run("summary", "INPUT 28x28x1, CONV3-10, POOL2, CONV3-10, POOL2, FLATTEN, FC-3", "--format", "json"));
        var layers = Layers(doc);
        Assert.Equal([1, 28, 28], Ints(doc.RootElement.GetProperty("input")));
        Assert.Equal(new[] { "Conv2d", "MaxPool2d", "Conv2d", "MaxPool2d", "Flatten", "Linear" }, layers.Select(l => l.GetProperty("type").GetString()));
        Assert.Equal(new[] { "[10,28,28]", "[10,14,14]", "[10,14,14]", "[10,7,7]", "[490]", "[3]" },
            layers.Select(l => "[" + string.Join(",", Ints(l.GetProperty("output_shape"))) + "]"));
        Assert.Equal(new long[] { 100, 0, 910, 0, 0, 1473 }, layers.Select(l => l.GetProperty("params").GetInt64()));
        Assert.Equal(2483, doc.RootElement.GetProperty("total").GetProperty("params").GetInt64());
    }

    private const string ThreeLayerNet = "input 128x128x3, conv 5x5/2 64, conv 5x5/2 128, conv 5x5/2 256";

    [Fact]
    public void ThreeLayerFiveByFiveStrideTwoNetworkParametersAndReceptiveField()
    {
        using var doc = JsonDocument.Parse(Run("summary", ThreeLayerNet, "--format", "json"));
        var layers = Layers(doc);
        Assert.Equal(new long[] { 4864, 204928, 819456 }, layers.Select(l => l.GetProperty("params").GetInt64()));
        Assert.Equal([29, 29], Ints(layers[^1].GetProperty("receptive_field")));
        var text = Run("summary", ThreeLayerNet, "--format", "markdown");
        Assert.Contains("4,864", text);
        Assert.Contains("204,928", text);
        Assert.Contains("819,456", text);
        Assert.Contains("receptive field of the output: 29x29", Run("rf", ThreeLayerNet));
    }

    [Fact]
    public void ASpecWithAnErrorExitsNonZeroWithTheCaret()
    {
        var (code, text) = CliTests.Convlab("summary", "INPUT 28x28x1, conv 96");
        Assert.NotEqual(0, code);
        Assert.Contains("expected a kernel size like 3x3 after 'conv', got '96' at column 21", text);
        Assert.Contains("                      ^^", text);
    }

    [Fact]
    public void SevenBySevenVersusThreeThreeBySevenSavesFortyFourPointNinePercent()
    {
        var text = Run("compare", "7x7-vs-3x3", "--channels", "256");
        Assert.Contains("44.9 % fewer parameters", text);
        Assert.Contains("parameter change B vs A: -44.9 %", text);
    }

    [Fact]
    public void MobileNetSeparableLayerNeedsAboutSevenPointNineTimesFewerMacs()
    {
        var text = Run("compare", "separable", "--size", "112", "--in-channels", "32", "--out-channels", "64", "--kernel", "3", "--explain");
        Assert.Contains("7.9x fewer MACs", text);
        Assert.Contains("= 112*112*64*32*3*3 = 231211008", text);
        Assert.Contains("MACs_dw + MACs_pw = 3612672 + 25690112 = 29302784", text);
        Assert.Contains("1/N + 1/K^2 = 1/64 + 1/3^2 = 0.126736", text);
    }
}
