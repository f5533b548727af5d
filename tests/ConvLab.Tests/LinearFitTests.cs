using CsCheck;
using ConvLab.Stats;
using Xunit;

namespace ConvLab.Tests;

/// <summary>The least-squares line the soak reports its memory slopes with: scipy's <c>linregress</c> numbers and exact lines.</summary>
public class LinearFitTests
{
    [Fact]
    public void MatchesScipyLinregress()
    {
        // scipy 1.10: linregress([0,500,...,2500], [10, 12.5, 11, 15.5, 14, 18.25])
        var fit = LinearFit.Of([0, 500, 1000, 1500, 2000, 2500], [10.0, 12.5, 11.0, 15.5, 14.0, 18.25]);
        Assert.Equal(0.0028714285714285716, fit.Slope, 1e-15);
        Assert.Equal(9.952380952380953, fit.Intercept, 1e-12);
        Assert.Equal(0.0007645638123330525, fit.SlopeStandardError, 1e-15);
        Assert.Equal(6, fit.Count);
    }

    [Fact]
    public void RecoversAnExactLine() =>
        Gen.Select(Gen.Double[-1e6, 1e6], Gen.Double[-1e3, 1e3], Gen.Int[3, 40]).Sample((a, b, n) =>
        {
            var x = Enumerable.Range(0, n).Select(i => 500.0 * i).ToArray();
            var fit = LinearFit.Of(x, [.. x.Select(v => a + b * v)]);
            return Math.Abs(fit.Slope - b) <= 1e-9 * (1 + Math.Abs(b) + Math.Abs(a) / x[^1]) && fit.SlopeStandardError <= 1e-6 * (1 + Math.Abs(a) + Math.Abs(b));
        });

    [Fact]
    public void RefusesWhatHasNoSlope()
    {
        Assert.Contains("at least 2 points", Assert.Throws<ArgumentException>(() => LinearFit.Of([1.0], [2.0])).Message);
        Assert.Contains("every x is the same", Assert.Throws<ArgumentException>(() => LinearFit.Of([1.0, 1.0], [2.0, 3.0])).Message);
        Assert.Contains("3 x values but 2", Assert.Throws<ArgumentException>(() => LinearFit.Of([1.0, 2.0, 3.0], [2.0, 3.0])).Message);
    }
}
