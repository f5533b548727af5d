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
