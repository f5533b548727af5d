namespace ConvLab.Stats;

/// <summary>Centred kernel alignment (Kornblith et al. 2019): how similar two representations of the same examples are.</summary>
public static class Cka
{
    /// <summary>
    /// Linear CKA of <paramref name="x"/> (n × p) and <paramref name="y"/> (n × q), rows the same n examples:
    /// ‖Ycᵀ Xc‖²_F / (‖Xcᵀ Xc‖_F ‖Ycᵀ Yc‖_F) with column-centred Xc, Yc, computed in float64 through the n × n Gram
    /// matrices (cheaper when features outnumber examples). 1 for identical representations; invariant to orthogonal
    /// transforms and isotropic scaling of either side; 0 when either has no variance.
    /// </summary>
    public static double Linear(Tensor x, Tensor y)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        if (x.Rank != 2 || y.Rank != 2 || x.Size(0) != y.Size(0) || x.Size(0) < 2)
            throw new ArgumentException($"cka: expected two (n, features) matrices over the same n ≥ 2 examples, got {ShapeUtil.Format(x.Shape)} and {ShapeUtil.Format(y.Shape)}");
        var kx = Gram(x);
        var ky = Gram(y);
        double xy = (kx * ky).Sum().Item(), xx = (kx * kx).Sum().Item(), yy = (ky * ky).Sum().Item();
        return xx == 0 || yy == 0 ? 0 : xy / Math.Sqrt(xx * yy);
    }

    private static Tensor Gram(Tensor m)
    {
        var d = m.Detach().Double();
        var c = d - d.Mean(0, keepdim: true);
        return c.Matmul(c.T);
    }
}
