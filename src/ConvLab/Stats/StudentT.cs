namespace ConvLab.Stats;

/// <summary>Student's t distribution with <c>df</c> degrees of freedom (any real df &gt; 0).</summary>
public static class StudentT
{
    /// <summary>P(T ≤ t).</summary>
    public static double Cdf(double t, double df)
    {
        CheckDf(df);
        if (double.IsNaN(t)) return double.NaN;
        if (double.IsPositiveInfinity(t)) return 1;
        if (double.IsNegativeInfinity(t)) return 0;
        double tail = 0.5 * SpecialFunctions.RegularizedIncompleteBeta(df / 2, 0.5, df / (df + t * t));
        return t >= 0 ? 1 - tail : tail;
    }

    /// <summary>The two-sided p-value P(|T| ≥ |t|).</summary>
    public static double TwoSidedP(double t, double df)
    {
        CheckDf(df);
        if (double.IsNaN(t)) return double.NaN;
        if (double.IsInfinity(t)) return 0;
        return SpecialFunctions.RegularizedIncompleteBeta(df / 2, 0.5, df / (df + t * t));
    }

    private static void CheckDf(double df)
    {
        if (!(df > 0)) throw new ArgumentOutOfRangeException(nameof(df), df, "student_t: expected degrees of freedom > 0");
    }
}
