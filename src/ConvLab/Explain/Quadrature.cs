namespace ConvLab.Explain;

/// <summary>Integration rules on [0, 1] for integrated gradients: points α_i and weights w_i.</summary>
internal static class Quadrature
{
    /// <summary>The <paramref name="steps"/> points and weights of <paramref name="rule"/>.</summary>
    public static (double[] Alphas, double[] Weights) Rule(IntegrationRule rule, int steps, string op)
    {
        if (steps < 1) throw new ArgumentException($"{op}: steps must be positive, got {steps}");
        var a = new double[steps];
        var w = new double[steps];
        switch (rule)
        {
            case IntegrationRule.RiemannLeft:
            case IntegrationRule.RiemannRight:
            case IntegrationRule.RiemannMiddle:
                double shift = rule switch { IntegrationRule.RiemannLeft => 0, IntegrationRule.RiemannRight => 1, _ => 0.5 };
                for (int i = 0; i < steps; i++) { a[i] = (i + shift) / steps; w[i] = 1.0 / steps; }
                break;
            case IntegrationRule.RiemannTrapezoid:
                if (steps < 2) throw new ArgumentException($"{op}: the trapezoid rule needs at least 2 steps, got {steps}");
                for (int i = 0; i < steps; i++) { a[i] = (double)i / (steps - 1); w[i] = 1.0 / (steps - 1); }
                w[0] /= 2; w[^1] /= 2;
                break;
            case IntegrationRule.GaussLegendre:
                var (x, wx) = GaussLegendre(steps);
                for (int i = 0; i < steps; i++) { a[i] = (x[i] + 1) / 2; w[i] = wx[i] / 2; }
                break;
            default: throw new ArgumentException($"{op}: unknown integration rule {rule}");
        }
        return (a, w);
    }

    /// <summary>
    /// Nodes (ascending) and weights of n-point Gauss–Legendre quadrature on [−1, 1]: the roots of P_n by Newton's
    /// method from the usual cosine starting points, w_i = 2 / ((1 − x_i²) P_n'(x_i)²).
    /// </summary>
    public static (double[] Nodes, double[] Weights) GaussLegendre(int n)
    {
        var x = new double[n];
        var w = new double[n];
        for (int i = 0; i < (n + 1) / 2; i++)
        {
            double z = Math.Cos(Math.PI * (i + 0.75) / (n + 0.5));
            for (int iter = 0; iter < 100; iter++)
            {
                var (p, dp) = Legendre(n, z);
                double dz = p / dp;
                z -= dz;
                if (Math.Abs(dz) < 1e-16) break;
            }
            double d = Legendre(n, z).Derivative;
            x[i] = -z; x[n - 1 - i] = z;
            w[i] = w[n - 1 - i] = 2 / ((1 - z * z) * d * d);
        }
        if (n % 2 == 1) x[n / 2] = 0;
        return (x, w);
    }

    /// <summary>P_n(z) by the three-term recurrence, and P_n'(z) = n (z P_n − P_{n−1}) / (z² − 1) (|z| &lt; 1).</summary>
    private static (double Value, double Derivative) Legendre(int n, double z)
    {
        double pn = z, pm = 1;
        for (int k = 2; k <= n; k++)
        {
            double pk = ((2 * k - 1) * z * pn - (k - 1) * pm) / k;
            pm = pn; pn = pk;
        }
        return (pn, n * (z * pn - pm) / (z * z - 1));
    }
}
