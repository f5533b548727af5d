namespace ConvLab.Experiments.Claims;

/// <summary>The spatial transforms the equivariance claims are about, on (N, C, H, W) tensors, and the error measure.</summary>
internal static class Shifts
{
    /// <summary>Circular shift by (dy, dx) pixels (torch.roll over the last two dimensions).</summary>
    public static Tensor Roll(Tensor x, int dy, int dx) => RollDim(RollDim(x, 2, dy), 3, dx);

    private static Tensor RollDim(Tensor x, int dim, int shift)
    {
        int n = x.Size(dim);
        shift = ((shift % n) + n) % n;
        if (shift == 0) return x;
        return Tensor.Cat([x.Narrow(dim, n - shift, shift), x.Narrow(dim, 0, n - shift)], dim);
    }

    /// <summary>Rotation by 90° counter-clockwise in the (H, W) plane (torch.rot90(x, 1, (2, 3)) on a square map).</summary>
    public static Tensor Rot90(Tensor x)
    {
        var s = x.Shape.ToArray();
        if (s[2] != s[3]) throw new ArgumentException($"rot90: expects square maps, got {s[2]}x{s[3]}");
        int n = s[2], planes = s[0] * s[1];
        var a = x.Contiguous().ToArray();
        var r = new float[a.Length];
        for (int p = 0; p < planes; p++)
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                    r[p * n * n + i * n + j] = a[p * n * n + j * n + (n - 1 - i)];
        return Tensor.FromArray(r, s);
    }

    /// <summary>‖a − b‖ / ‖b‖ in float64.</summary>
    public static double RelativeError(Tensor a, Tensor b)
    {
        var x = a.Contiguous().ToDoubleArray();
        var y = b.Contiguous().ToDoubleArray();
        if (x.Length != y.Length) throw new ArgumentException($"relative error: {x.Length} vs {y.Length} elements");
        double num = 0, den = 0;
        for (int i = 0; i < x.Length; i++) { num += (x[i] - y[i]) * (x[i] - y[i]); den += y[i] * y[i]; }
        return den == 0 ? Math.Sqrt(num) : Math.Sqrt(num / den);
    }

    /// <summary>Per-pixel squared difference summed over batch and channels: an (H, W) map.</summary>
    public static double[,] ErrorMap(Tensor a, Tensor b)
    {
        var s = a.Shape.ToArray();
        var x = a.Contiguous().ToDoubleArray();
        var y = b.Contiguous().ToDoubleArray();
        int h = s[2], w = s[3];
        var map = new double[h, w];
        for (int p = 0; p < s[0] * s[1]; p++)
            for (int i = 0; i < h; i++)
                for (int j = 0; j < w; j++)
                {
                    double d = x[(p * h + i) * w + j] - y[(p * h + i) * w + j];
                    map[i, j] += d * d;
                }
        return map;
    }
}
