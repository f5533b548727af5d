using ConvLab.Autograd;
using ConvLab.NN.Functional;

namespace ConvLab.Experiments.Claims;

/// <summary>‖f(T x) − T' f(x)‖ / ‖T' f(x)‖ for one layer and transform.</summary>
internal sealed record EquivarianceRow(string Case, int Shift, double RelativeError);

/// <summary>Fraction of pooled outputs that keep their value when the input moves by <paramref name="Shift"/> pixels.</summary>
internal sealed record PoolToleranceRow(string Pool, int Window, int Stride, int Shift, double FractionUnchanged);

/// <summary>A zero-padding error map and the share of its squared error within the padding's reach of a border or the wrap seam.</summary>
internal sealed record BorderError(int Shift, double[,] Map, double FractionNearSeams);

/// <summary>The GAP vector of an edge image, and the one predicted for it from another image it is a circular shift of.</summary>
internal sealed record EdgeGap(string Image, string PredictedFrom, float[] Pixels, double[] G, double[] Predicted, double RelativeError);

/// <summary>One shift of the seed's edge: the MLP neuron's pre-activation and response, and the conv neuron's (max over positions).</summary>
internal sealed record NeuronShift(int Shift, double MlpPreactivation, double MlpResponse, double ConvMaxPreactivation);

internal sealed record EquivarianceResult(List<EquivarianceRow> Rows, List<PoolToleranceRow> Pools, List<BorderError> Borders,
    List<EdgeGap> Edges, List<NeuronShift> Neuron);

/// <summary>
/// Translation equivariance of convolution (exact with circular padding, broken at the borders by zero padding, only
/// for shifts that are multiples of the stride, never for rotation), invariance of global average pooling, tolerance
/// of max vs average pooling to shifts below the stride, and an MLP neuron's lack of it.
/// </summary>
internal static class EquivarianceStudy
{
    public static EquivarianceResult Run(int size, int[] shifts, Generator g)
    {
        using var _ = new NoGrad();
        var x = Tensor.Randn([2, 3, size, size], g);
        var w = Tensor.Randn([8, 3, 3, 3], g, std: 1 / Math.Sqrt(27));
        var b = Tensor.Randn([8], g, std: 0.1);
        Tensor Conv(Tensor t, string mode, int stride = 1) => F.Conv2d(t, w, b, stride: [stride, stride], padding: [1, 1], paddingMode: mode);
        Tensor Gap(Tensor t, string mode) => F.GlobalAvgPool2d(F.Relu(Conv(t, mode)));

        var rows = new List<EquivarianceRow>();
        var borders = new List<BorderError>();
        foreach (int d in shifts)
        {
            var shifted = Shifts.Roll(x, d, d);
            rows.Add(new("conv_circular", d, Shifts.RelativeError(Conv(shifted, "circular"), Shifts.Roll(Conv(x, "circular"), d, d))));
            var zeros = Conv(shifted, "zeros");
            var expected = Shifts.Roll(Conv(x, "zeros"), d, d);
            rows.Add(new("conv_zeros", d, Shifts.RelativeError(zeros, expected)));
            var map = Shifts.ErrorMap(zeros, expected);
            borders.Add(new(d, map, NearSeams(map, d, reach: 1)));
            // Stride 2: the output can only follow a shift by d/2 output pixels, which exists for even d.
            rows.Add(new("conv_stride2", d, Shifts.RelativeError(Conv(shifted, "circular", 2), Shifts.Roll(Conv(x, "circular", 2), d / 2, d / 2))));
            rows.Add(new("gap_circular", d, Shifts.RelativeError(Gap(shifted, "circular"), Gap(x, "circular"))));
            rows.Add(new("gap_zeros", d, Shifts.RelativeError(Gap(shifted, "zeros"), Gap(x, "zeros"))));
        }
        rows.Add(new("conv_rot90", 90, Shifts.RelativeError(Conv(Shifts.Rot90(x), "circular"), Shifts.Rot90(Conv(x, "circular")))));

        var pools = new List<PoolToleranceRow>();
        var features = Tensor.Rand([2, 4, size, size], g);
        foreach (var (window, stride) in new[] { (2, 2), (3, 2) })
            foreach (var pool in new[] { "max", "avg" })
            {
                Tensor Pool(Tensor t) => pool == "max" ? F.MaxPool2d(t, [window, window], [stride, stride]) : F.AvgPool2d(t, [window, window], [stride, stride]);
                var reference = Pool(features).ToArray();
                for (int d = 0; d <= 3; d++)
                {
                    var moved = Pool(Shifts.Roll(features, 0, d)).ToArray();
                    int same = 0;
                    for (int i = 0; i < moved.Length; i++) if (Math.Abs(moved[i] - reference[i]) <= 1e-6f) same++;
                    pools.Add(new(pool, window, stride, d, (double)same / moved.Length));
                }
            }
        return new(rows, pools, borders, EdgeGaps(g), NeuronShifts());
    }

    /// <summary>Share of the squared error in pixels within <paramref name="reach"/> of an edge of the map or of the seam the roll by <paramref name="d"/> made.</summary>
    private static double NearSeams(double[,] map, int d, int reach)
    {
        int n = map.GetLength(0);
        bool Near(int i) => new[] { 0, n - 1, d % n, (d - 1 + n) % n }.Any(s => Math.Abs(i - s) <= reach);
        double all = 0, near = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < map.GetLength(1); j++)
            {
                all += map[i, j];
                if (Near(i) || Near(j)) near += map[i, j];
            }
        return all == 0 ? 1 : near / all;
    }

    /// <summary>
    /// The seed's question: with circular padding and global average pooling, x3 (x1 moved right by 2) and x4 (x2 moved
    /// down by 3) must give exactly the g-vectors of x1 and x2. A conv(circular) → ReLU → GAP network confirms it.
    /// </summary>
    private static List<EdgeGap> EdgeGaps(Generator g)
    {
        const int n = 8;
        var x1 = new float[n * n]; var x2 = new float[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                x1[i * n + j] = j < n / 2 ? 1 : 0; // vertical edge
                x2[i * n + j] = i < n / 2 ? 1 : 0; // horizontal edge
            }
        var t1 = Tensor.FromArray(x1, 1, 1, n, n);
        var t2 = Tensor.FromArray(x2, 1, 1, n, n);
        var t3 = Shifts.Roll(t1, 0, 2);
        var t4 = Shifts.Roll(t2, 3, 0);
        var w = Tensor.Randn([4, 1, 3, 3], g);
        double[] G(Tensor t) => F.GlobalAvgPool2d(F.Relu(F.Conv2d(t, w, padding: [1, 1], paddingMode: "circular"))).ToDoubleArray();
        double[] g1 = G(t1), g2 = G(t2);
        EdgeGap Row(string name, Tensor t, string from, double[] predicted)
        {
            var v = G(t);
            return new(name, from, t.Contiguous().ToArray(), v, predicted, Shifts.RelativeError(Tensor.FromArray(v, v.Length), Tensor.FromArray(predicted, predicted.Length)));
        }
        return [Row("x1", t1, "x1", g1), Row("x2", t2, "x2", g2), Row("x3", t3, "x1", g1), Row("x4", t4, "x2", g2)];
    }

    /// <summary>
    /// The seed's MLP neuron: weight 1 on pixel 4 of an 8-pixel row whose edge ramps 0, 128, 255 at pixels 2..4. Moving the
    /// edge right by one pixel at a time drops its pre-activation 255 → 128 → 0; the same weight slid as a convolution
    /// (maximum over positions, circular) keeps 255.
    /// </summary>
    private static List<NeuronShift> NeuronShifts()
    {
        float[] row = [0, 0, 0, 128, 255, 255, 255, 255];
        var weight = new float[8];
        weight[4] = 1;
        var result = new List<NeuronShift>();
        for (int d = 0; d <= 2; d++)
        {
            var x = Shifts.Roll(Tensor.FromArray(row, 1, 1, 1, 8), 0, d);
            double pre = F.Linear(x.Reshape(1, 8), Tensor.FromArray(weight, 1, 8)).Item();
            double conv = F.Conv2d(x, Tensor.FromArray([1f], 1, 1, 1, 1)).Max().Item();
            result.Add(new(d, pre, 1 / (1 + Math.Exp(-pre)), conv));
        }
        return result;
    }
}
