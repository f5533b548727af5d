namespace ConvLab.Stats;

/// <summary>A t-test's statistic, degrees of freedom, two-sided p-value, and the mean (difference) it tested.</summary>
/// <param name="T">The t statistic; ±∞ when the sample has no spread but a non-zero mean.</param>
/// <param name="Df">Degrees of freedom.</param>
/// <param name="PValue">Two-sided p-value (Student t with <paramref name="Df"/> degrees of freedom).</param>
/// <param name="Mean">Mean of the sample (one-sample), of the differences (paired) or difference of means (Welch).</param>
public readonly record struct TTestResult(double T, double Df, double PValue, double Mean);

/// <summary>Student t-tests as scipy.stats computes them (<c>ttest_1samp</c>, <c>ttest_rel</c>, <c>ttest_ind(equal_var=False)</c>).</summary>
public static class TTest
{
    /// <summary>One-sample test of mean = <paramref name="mu"/>: t = (x̄ − μ) / (s / √n), n − 1 degrees of freedom.</summary>
    /// <remarks>With zero spread the statistic is ±∞ (p = 0) for a non-zero difference and 0 (p = 1) for none, where scipy returns NaN.</remarks>
    public static TTestResult OneSample(IReadOnlyList<double> x, double mu = 0)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.Count < 2) throw new ArgumentException($"ttest: needs at least 2 observations, got {x.Count}");
        var (mean, variance) = MeanVariance(x);
        double diff = mean - mu, df = x.Count - 1;
        double t = Ratio(diff, Math.Sqrt(variance / x.Count));
        return new TTestResult(t, df, StudentT.TwoSidedP(t, df), diff);
    }

    /// <summary>Paired test on per-item differences a − b (same items measured twice): the one-sample test of the differences against 0.</summary>
    public static TTestResult Paired(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Count != b.Count) throw new ArgumentException($"ttest_rel: the samples must pair up, got {a.Count} and {b.Count} values");
        var d = new double[a.Count];
        for (int i = 0; i < d.Length; i++) d[i] = a[i] - b[i];
        return OneSample(d);
    }

    /// <summary>Welch's unequal-variance two-sample test with Welch–Satterthwaite degrees of freedom.</summary>
    public static TTestResult Welch(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Count < 2 || b.Count < 2) throw new ArgumentException($"ttest_ind: each sample needs at least 2 observations, got {a.Count} and {b.Count}");
        var (ma, va) = MeanVariance(a);
        var (mb, vb) = MeanVariance(b);
        double sa = va / a.Count, sb = vb / b.Count, diff = ma - mb;
        double df = sa + sb == 0 ? a.Count + b.Count - 2 : (sa + sb) * (sa + sb) / (sa * sa / (a.Count - 1) + sb * sb / (b.Count - 1));
        double t = Ratio(diff, Math.Sqrt(sa + sb));
        return new TTestResult(t, df, StudentT.TwoSidedP(t, df), diff);
    }

    private static double Ratio(double diff, double se) =>
        se > 0 ? diff / se : diff == 0 ? 0 : diff > 0 ? double.PositiveInfinity : double.NegativeInfinity;

    /// <summary>Mean and unbiased (n − 1) variance, two-pass.</summary>
    internal static (double Mean, double Variance) MeanVariance(IReadOnlyList<double> x)
    {
        double sum = 0;
        for (int i = 0; i < x.Count; i++)
        {
            if (!double.IsFinite(x[i])) throw new ArgumentException($"ttest: observation {i} is {x[i]}");
            sum += x[i];
        }
        double mean = sum / x.Count, ss = 0;
        for (int i = 0; i < x.Count; i++) ss += (x[i] - mean) * (x[i] - mean);
        return (mean, x.Count > 1 ? ss / (x.Count - 1) : 0);
    }
}
