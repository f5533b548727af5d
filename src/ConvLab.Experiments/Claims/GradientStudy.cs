using ConvLab.Autograd;
using ConvLab.NN;
using ConvLab.NN.Functional;
using ConvLab.Training;

namespace ConvLab.Experiments.Claims;

/// <summary>Spread of a conv weight-gradient entry over random inputs and upstream gradients at image size <paramref name="N"/>.</summary>
internal sealed record GradStdRow(int N, double Measured, double Theory);

/// <summary>A residual stack of total depth <paramref name="Depth"/> (stem, Depth − 2 blocks, head) at one scaling.</summary>
internal sealed record ResidualRow(double Gamma, int Depth, double ActivationVar, double BottomGradNorm, double[] VarPerBlock);

/// <summary>Pooling's gradient routing on a 4x4 input: the input gradient of each pool for an upstream gradient.</summary>
internal sealed record PoolRouting(float[] Input, float[] Upstream, float[] MaxGrad, float[] AvgGrad);

/// <summary>One SGD step on a single-channel conv: w1 = w0 − lr·Σ dy·patch, and how far autograd and the optimizer are from it.</summary>
internal sealed record SgdStep(float[] Image, float[] W0, float[] W1, float[] PatchSum, double PatchIdentityError, double StepIdentityError, double DiagonalCorrelation, int Kernel, int Size);

internal sealed record GradientResult(double PatchIdentityError, SgdStep Step, List<GradStdRow> GradStd, double Slope, PoolRouting Routing, List<ResidualRow> Residual);

/// <summary>
/// Convolution weight gradients are sums of input patches weighted by the upstream gradient; their spread grows with the
/// number of output positions (n − k + 1)·σ_x·σ_g; max pooling routes the gradient to the argmax, average pooling
/// spreads it; scaling residual sums by γ = 1/√2 keeps the activation variance flat and scales the bottom gradient by
/// γ^(L−2).
/// </summary>
internal static class GradientStudy
{
    public static GradientResult Run(int[] sizes, int trials, int[] depths, Generator g)
    {
        return new(PatchIdentity(g), OneSgdStep(g), GradStd(sizes, trials, g, out double slope), slope, Routing(), Residual(depths, g));
    }

    /// <summary>dw[o, c, u, v] = Σ_{n,i,j} dy[n, o, i, j]·x[n, c, i + u, j + v], computed by loops in float64.</summary>
    public static double[] PatchSum(double[] x, int[] xs, double[] dy, int[] ys, int k)
    {
        int n = xs[0], c = xs[1], h = xs[2], w = xs[3], o = ys[1], oh = ys[2], ow = ys[3];
        var dw = new double[o * c * k * k];
        for (int b = 0; b < n; b++)
            for (int oc = 0; oc < o; oc++)
                for (int ic = 0; ic < c; ic++)
                    for (int u = 0; u < k; u++)
                        for (int v = 0; v < k; v++)
                        {
                            double s = 0;
                            for (int i = 0; i < oh; i++)
                                for (int j = 0; j < ow; j++)
                                    s += dy[((b * o + oc) * oh + i) * ow + j] * x[((b * c + ic) * h + i + u) * w + j + v];
                            dw[((oc * c + ic) * k + u) * k + v] += s;
                        }
        return dw;
    }

    private static double MaxRelative(double[] a, double[] b)
    {
        double scale = b.Max(Math.Abs), d = 0;
        for (int i = 0; i < a.Length; i++) d = Math.Max(d, Math.Abs(a[i] - b[i]));
        return d / scale;
    }

    /// <summary>Autograd's conv weight gradient (float32) against the patch sum, max relative difference.</summary>
    private static double PatchIdentity(Generator g)
    {
        var x = Tensor.Randn([2, 3, 12, 12], g);
        var w = Tensor.Randn([4, 3, 3, 3], g).RequiresGrad_();
        var y = F.Conv2d(x, w);
        var dy = Tensor.Randn(y.Shape, g);
        y.Backward(dy);
        return MaxRelative(w.Grad!.ToDoubleArray(), PatchSum(x.ToDoubleArray(), x.Shape.ToArray(), dy.ToDoubleArray(), dy.Shape.ToArray(), 3));
    }

    /// <summary>One SGD step of a 5x5 filter on a 16x16 image with loss sum(y·dy): the weights move by −lr times the dy-weighted patch sum.</summary>
    private static SgdStep OneSgdStep(Generator g)
    {
        const int n = 16, k = 5;
        const double lr = 0.05;
        // A bright diagonal bar: the patch sum then visibly looks like the image's structure.
        var img = new float[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                img[i * n + j] = Math.Abs(i - j) <= 1 ? 1f : 0.1f * (float)g.NextDouble();
        var x = Tensor.FromArray(img, 1, 1, n, n);
        var conv = new Conv2d(1, 1, k, bias: false, generator: g);
        var w0 = conv.Weight.ToArray();
        var dy = Tensor.Rand([1, 1, n - k + 1, n - k + 1], g);
        var sgd = new SGD(conv.Parameters(), lr);
        sgd.ZeroGrad();
        conv.Call(x).Mul(dy).Sum().Backward();
        var patch = PatchSum(x.ToDoubleArray(), [1, 1, n, n], dy.ToDoubleArray(), [1, 1, n - k + 1, n - k + 1], k);
        double gradError = MaxRelative(conv.Weight.Grad!.ToDoubleArray(), patch);
        sgd.Step();
        var w1 = conv.Weight.ToArray();
        var expected = w0.Select((v, i) => v - lr * patch[i]).ToArray();
        double stepError = MaxRelative(w1.Select(v => (double)v).ToArray(), expected);
        var band = Enumerable.Range(0, k * k).Select(i => Math.Abs(i / k - i % k) <= 1 ? 1.0 : 0.0).ToArray();
        double diagonal = Stats.Correlation.Pearson(patch, band);
        return new(img, w0, w1, patch.Select(v => (float)v).ToArray(), gradError, stepError, diagonal, k, n);
    }

    /// <summary>Std of dw over random x ~ N(0, 1), dy ~ N(0, 1) for a 3x3 filter on n x n images; theory (n − k + 1)·σ_x·σ_g.</summary>
    private static List<GradStdRow> GradStd(int[] sizes, int trials, Generator g, out double slope)
    {
        const int k = 3;
        var rows = new List<GradStdRow>();
        foreach (int n in sizes)
        {
            double sum = 0, sq = 0;
            int count = 0;
            for (int t = 0; t < trials; t++)
            {
                var x = Tensor.Randn([1, 1, n, n], g);
                var w = Tensor.Zeros(1, 1, k, k).RequiresGrad_();
                var y = F.Conv2d(x, w);
                y.Backward(Tensor.Randn(y.Shape, g));
                foreach (var v in w.Grad!.ToDoubleArray()) { sum += v; sq += v * v; count++; }
            }
            double mean = sum / count;
            rows.Add(new(n, Math.Sqrt((sq - count * mean * mean) / (count - 1)), n - k + 1));
        }
        // Least-squares slope of log(measured) on log(n − k + 1): 1 when the spread is proportional to the output size.
        var lx = rows.Select(r => Math.Log(r.Theory)).ToArray();
        var ly = rows.Select(r => Math.Log(r.Measured)).ToArray();
        double mx = lx.Average(), my = ly.Average();
        slope = lx.Zip(ly).Sum(p => (p.First - mx) * (p.Second - my)) / lx.Sum(v => (v - mx) * (v - mx));
        return rows;
    }

    /// <summary>2x2/2 max and average pooling of a 4x4 input with distinct values, upstream gradient 1..4.</summary>
    private static PoolRouting Routing()
    {
        float[] input = [1, 3, 2, 1, 4, 2, 0, 5, 1, 1, 6, 2, 0, 2, 3, 3];
        float[] up = [1, 2, 3, 4];
        float[] Grad(Func<Tensor, Tensor> pool)
        {
            var x = Tensor.FromArray(input, 1, 1, 4, 4).RequiresGrad_();
            pool(x).Backward(Tensor.FromArray(up, 1, 1, 2, 2));
            return x.Grad!.ToArray();
        }
        return new(input, up, Grad(x => F.MaxPool2d(x, [2, 2])), Grad(x => F.AvgPool2d(x, [2, 2])));
    }

    /// <summary>
    /// Stem conv → (L − 2) blocks x ← γ·(x + conv(relu(conv(x)))) → GAP → linear, no biases or normalisation, the same
    /// weights for every γ; loss = sum(output·r). Every layer is positively homogeneous, so the stem's gradient at γ is
    /// exactly γ^(L−2) times the one at γ = 1, while the activation variance grows like (2γ²)^block.
    /// </summary>
    private static List<ResidualRow> Residual(int[] depths, Generator g)
    {
        const int c = 8, n = 16;
        var rows = new List<ResidualRow>();
        foreach (int depth in depths)
        {
            var seed = g.NextUInt64();
            foreach (double gamma in new[] { 1.0, 1 / Math.Sqrt(2) })
            {
                var gen = new Generator(seed);
                var stem = Tensor.Randn([c, 1, 3, 3], gen, std: Math.Sqrt(2.0 / 9)).RequiresGrad_();
                var blocks = Enumerable.Range(0, depth - 2).Select(_ => (
                    Tensor.Randn([c, c, 3, 3], gen, std: Math.Sqrt(2.0 / (9 * c))),
                    Tensor.Randn([c, c, 3, 3], gen, std: Math.Sqrt(1.0 / (9 * c))))).ToList();
                var head = Tensor.Randn([4, c], gen, std: Math.Sqrt(1.0 / c));
                var x = Tensor.Randn([4, 1, n, n], gen);
                var r = Tensor.Randn([4, 4], gen);
                var h = F.Conv2d(x, stem, padding: [1, 1]);
                var vars = new List<double>();
                foreach (var (w1, w2) in blocks)
                {
                    h = (h + F.Conv2d(F.Relu(F.Conv2d(h, w1, padding: [1, 1])), w2, padding: [1, 1])) * gamma;
                    vars.Add(Variance(h));
                }
                var logits = F.Linear(F.GlobalAvgPool2d(h).Flatten(1), head);
                logits.Mul(r).Sum().Backward();
                var grad = stem.Grad!.ToDoubleArray();
                rows.Add(new(gamma, depth, vars.Count > 0 ? vars[^1] : Variance(h), Math.Sqrt(grad.Sum(v => v * v)), vars.ToArray()));
            }
        }
        return rows;
    }

    private static double Variance(Tensor t)
    {
        var a = t.ToDoubleArray();
        double m = a.Average();
        return a.Sum(v => (v - m) * (v - m)) / a.Length;
    }
}
