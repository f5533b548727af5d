using CsCheck;
using ConvLab.Stats;
using Xunit;

namespace ConvLab.Tests;

/// <summary>Statistics against numbers computed with scipy 1.10 (Debian python3-scipy), and the identities every input must satisfy.</summary>
public class StatsTests
{
    private static readonly double[] A = [12.1, 14.3, 11.8, 13.9, 15.2, 12.7, 13.3, 14.8];
    private static readonly double[] B = [11.4, 13.9, 12.0, 12.8, 14.1, 12.2, 12.9, 13.5];

    [Theory]
    [InlineData(0.5, 3, 0.6742760175759246)]
    [InlineData(-2.1, 7, 0.0369355981064613)]
    [InlineData(3.7, 1, 0.9159777371760524)]
    [InlineData(1.2, 30, 0.8802348245551688)]
    [InlineData(-0.3, 2.5, 0.39367118574759863)]
    [InlineData(10, 4, 0.9997189981886421)]
    public void StudentTCdfMatchesScipy(double t, double df, double expected) =>
        Assert.Equal(expected, StudentT.Cdf(t, df), 12);

    [Fact]
    public void PairedOneSampleAndWelchTestsMatchScipy()
    {
        var paired = TTest.Paired(A, B); // scipy.stats.ttest_rel
        Assert.Equal(3.8037779910440177, paired.T, 10);
        Assert.Equal(0.006681817487042222, paired.PValue, 12);
        Assert.Equal(7, paired.Df);
        var one = TTest.OneSample([0.3, -0.1, 0.8, 0.5, 0.2, 0.9, -0.4, 0.6, 0.1, 0.7]); // ttest_1samp(x, 0)
        Assert.Equal(2.730897382090537, one.T, 10);
        Assert.Equal(0.02319045625853979, one.PValue, 12);
        var welch = TTest.Welch(A, B); // ttest_ind(equal_var=False)
        Assert.Equal(1.1937161849928102, welch.T, 10);
        Assert.Equal(0.2537868087927941, welch.PValue, 10);
    }

    [Fact]
    public void ZeroSpreadGivesInfiniteStatisticOrNoEvidence()
    {
        var shifted = TTest.OneSample([2.0, 2.0, 2.0]);
        Assert.Equal(double.PositiveInfinity, shifted.T);
        Assert.Equal(0, shifted.PValue);
        var same = TTest.Paired([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]);
        Assert.Equal(0, same.T);
        Assert.Equal(1, same.PValue);
    }

    [Fact]
    public void BonferroniAndBenjaminiHochbergOnAKnownExample()
    {
        // Sorted: 0.005, 0.01, 0.03, 0.039, 0.2 against k·0.05/5 = 0.01, 0.02, 0.03, 0.04, 0.05: the step-up keeps k = 4.
        double[] p = [0.01, 0.039, 0.03, 0.005, 0.2];
        Assert.Equal([true, false, false, true, false], MultipleTesting.Bonferroni(p, 0.05));
        Assert.Equal([true, true, true, true, false], MultipleTesting.BenjaminiHochberg(p, 0.05));
        // A large p-value early in the order does not stop the step-up: only the largest qualifying k counts.
        Assert.Equal([true, true, false], MultipleTesting.BenjaminiHochberg([0.02, 0.03, 0.9], 0.05));
        Assert.Equal(0.01, MultipleTesting.BonferroniAlpha(5, 0.05), 15);
    }

    [Fact]
    public void SpearmanAndPearsonMatchScipy()
    {
        double[] u = [1, 2, 2, 3, 5, 4, 4, 7], v = [2, 1, 3, 3, 6, 5, 4, 9];
        Assert.Equal(0.9394111922831736, Correlation.Spearman(u, v), 12);
        Assert.Equal(0.9514685907105054, Correlation.Pearson(u, v), 12);
        Assert.Equal([1, 2.5, 2.5, 4], Correlation.Ranks([1.0, 5.0, 5.0, 9.0]));
    }

    [Fact]
    public void CdfIsSymmetricMonotoneAndTwoSidedPIsTwiceTheTail() =>
        Gen.Select(Gen.Double[-50, 50], Gen.Double[0.2, 200]).Sample((t, df) =>
        {
            double c = StudentT.Cdf(t, df);
            Assert.InRange(c, 0, 1);
            Assert.Equal(1, c + StudentT.Cdf(-t, df), 10);
            Assert.True(StudentT.Cdf(t + 0.1, df) >= c);
            Assert.Equal(2 * Math.Min(c, 1 - c), StudentT.TwoSidedP(t, df), 10);
        });

    [Fact]
    public void SpearmanIsInvariantUnderMonotoneMapsAndOneForIdenticalOrder() =>
        // Integers keep the maps strictly monotone in floating point (exp of nearby tiny doubles would tie).
        Gen.Int[-30, 30].Array[3, 30].Sample(ints =>
        {
            var x = ints.Select(i => (double)i).ToArray();
            if (x.Distinct().Count() < 2) return;
            var y = x.Select(v => Math.Exp(v / 3) * 5 - 1).ToArray();
            Assert.Equal(1, Correlation.Spearman(x, y), 10);
            Assert.Equal(-1, Correlation.Spearman(x, x.Select(v => -v * v * v).ToArray()), 10);
        });

    [Fact]
    public void BadInputIsAnArgumentExceptionNamingTheTest()
    {
        Assert.StartsWith("ttest_rel", Assert.Throws<ArgumentException>(() => TTest.Paired([1.0, 2.0], [1.0])).Message);
        Assert.StartsWith("ttest", Assert.Throws<ArgumentException>(() => TTest.OneSample([1.0])).Message);
        Assert.StartsWith("benjamini_hochberg", Assert.Throws<ArgumentException>(() => MultipleTesting.BenjaminiHochberg([1.5], 0.05)).Message);
        Assert.StartsWith("spearman", Assert.Throws<ArgumentException>(() => Correlation.Spearman([1.0, double.NaN], [1.0, 2.0])).Message);
    }
}
