namespace ConvLab.Stats;

/// <summary>An ordinary least-squares line y = <see cref="Intercept"/> + <see cref="Slope"/>·x.</summary>
/// <param name="Slope">Fitted slope.</param>
/// <param name="Intercept">Fitted value at x = 0.</param>
/// <param name="SlopeStandardError">Standard error of the slope (residual variance over n − 2 degrees of freedom); NaN for two points.</param>
/// <param name="Count">Points fitted.</param>
public sealed record LinearFit(double Slope, double Intercept, double SlopeStandardError, int Count)
{
    /// <summary>Fits the least-squares line through (<paramref name="x"/>[i], <paramref name="y"/>[i]); needs at least two distinct x.</summary>
    public static LinearFit Of(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        if (x.Count != y.Count) throw new ArgumentException($"linear fit: {x.Count} x values but {y.Count} y values");
        if (x.Count < 2) throw new ArgumentException($"linear fit: needs at least 2 points, got {x.Count}");
        double mx = x.Average(), my = y.Average(), sxx = 0, sxy = 0;
        for (int i = 0; i < x.Count; i++)
        {
            double dx = x[i] - mx;
            sxx += dx * dx;
            sxy += dx * (y[i] - my);
        }
        if (sxx == 0) throw new ArgumentException("linear fit: every x is the same, so no slope is defined");
        double slope = sxy / sxx, intercept = my - slope * mx, rss = 0;
        for (int i = 0; i < x.Count; i++)
        {
            double r = y[i] - intercept - slope * x[i];
            rss += r * r;
        }
        double se = x.Count > 2 ? Math.Sqrt(rss / (x.Count - 2) / sxx) : double.NaN;
        return new LinearFit(slope, intercept, se, x.Count);
    }
}
