namespace ConvLab.Stats;

/// <summary>Corrections for testing many hypotheses at once.</summary>
public static class MultipleTesting
{
    /// <summary>Bonferroni: reject hypothesis i when p_i ≤ α / m (controls the family-wise error rate).</summary>
    public static bool[] Bonferroni(IReadOnlyList<double> pValues, double alpha)
    {
        Check(pValues, alpha, "bonferroni");
        double level = alpha / pValues.Count;
        return pValues.Select(p => p <= level).ToArray();
    }

    /// <summary>The per-test level α / m that Bonferroni compares each p-value with.</summary>
    public static double BonferroniAlpha(int tests, double alpha)
    {
        if (tests <= 0) throw new ArgumentException($"bonferroni: expected at least one test, got {tests}");
        return alpha / tests;
    }

    /// <summary>
    /// Benjamini–Hochberg step-up procedure (controls the false discovery rate): with p-values sorted ascending,
    /// find the largest k with p_(k) ≤ k·α / m and reject the k smallest.
    /// </summary>
    public static bool[] BenjaminiHochberg(IReadOnlyList<double> pValues, double alpha)
    {
        Check(pValues, alpha, "benjamini_hochberg");
        int m = pValues.Count;
        var order = Enumerable.Range(0, m).OrderBy(i => pValues[i]).ThenBy(i => i).ToArray();
        int k = 0;
        for (int r = m; r >= 1; r--)
            if (pValues[order[r - 1]] <= r * alpha / m) { k = r; break; }
        var reject = new bool[m];
        for (int r = 0; r < k; r++) reject[order[r]] = true;
        return reject;
    }

    private static void Check(IReadOnlyList<double> pValues, double alpha, string op)
    {
        ArgumentNullException.ThrowIfNull(pValues);
        if (pValues.Count == 0) throw new ArgumentException($"{op}: no p-values given");
        if (!(alpha > 0 && alpha < 1)) throw new ArgumentException($"{op}: alpha must be in (0, 1), got {alpha}");
        for (int i = 0; i < pValues.Count; i++)
            if (!(pValues[i] >= 0 && pValues[i] <= 1)) throw new ArgumentException($"{op}: p-value {i} is {pValues[i]}, expected a value in [0, 1]");
    }
}
