using ConvLab.NN;
using ConvLab.NN.Functional;
using CsCheck;
using Xunit;

namespace ConvLab.Tests;

public class PoolTests
{
    // ------------------------------------------------------------------ helpers

    /// <summary>Random sliding-pool geometry for nd = 1..3; padding is clamped to kernel/2, sizes leave every window a tap.</summary>
    private sealed record Geo(int Nd, int[] K, int[] S, int[] P, int[] D, int[] In, bool Ceil, uint Seed)
    {
        public override string ToString() =>
            $"nd={Nd} k=[{string.Join(",", K)}] s=[{string.Join(",", S)}] p=[{string.Join(",", P)}] d=[{string.Join(",", D)}] in=[{string.Join(",", In)}] ceil={Ceil}";
    }

    private static Gen<Geo> GeoGen(bool dilated, int maxKernel) =>
        Gen.Select(Gen.Int[1, 3], Gen.Int[1, maxKernel].Array[3], Gen.Int[1, 3].Array[3], Gen.Int[0, 1].Array[3], Gen.Int[1, 2].Array[3],
                   Gen.Int[0, 2].Array[3], Gen.Bool, Gen.UInt)
           .Select((nd, k, s, p, d, extra, ceil, seed) =>
           {
               k = k[..nd]; s = s[..nd];
               d = dilated ? d[..nd] : [.. Enumerable.Repeat(1, nd)];
               p = [.. Enumerable.Range(0, nd).Select(i => Math.Min(p[i], k[i] / 2))];
               // in >= effective kernel: no window then consists of padding only.
               var inS = Enumerable.Range(0, nd).Select(i => (k[i] - 1) * d[i] + 1 + extra[i]).ToArray();
               return new Geo(nd, k, s, p, d, inS, ceil, seed);
           });

    private static (Tensor Output, Tensor Indices) MaxWI(int nd, Tensor x, int[] k, int[]? s, int[]? p, int[]? d, bool ceil) => nd switch
    {
        1 => F.MaxPool1dWithIndices(x, k, s, p, d, ceil),
        2 => F.MaxPool2dWithIndices(x, k, s, p, d, ceil),
        _ => F.MaxPool3dWithIndices(x, k, s, p, d, ceil),
    };

    private static Tensor Avg(int nd, Tensor x, int[] k, int[]? s, int[]? p, bool ceil, bool incl, int? div) => nd switch
    {
        1 => F.AvgPool1d(x, k, s, p, ceil, incl),
        2 => F.AvgPool2d(x, k, s, p, ceil, incl, div),
        _ => F.AvgPool3d(x, k, s, p, ceil, incl, div),
    };

    private static Tensor AdaptiveAvg(int nd, Tensor x, int?[] o) => nd switch
    {
        1 => F.AdaptiveAvgPool1d(x, o),
        2 => F.AdaptiveAvgPool2d(x, o),
        _ => F.AdaptiveAvgPool3d(x, o),
    };

    private static (Tensor Output, Tensor Indices) AdaptiveMaxWI(int nd, Tensor x, int?[] o) => nd switch
    {
        1 => F.AdaptiveMaxPool1dWithIndices(x, o),
        2 => F.AdaptiveMaxPool2dWithIndices(x, o),
        _ => F.AdaptiveMaxPool3dWithIndices(x, o),
    };

    /// <summary>Distinct values (a shuffled ramp) so that every window has a unique maximum and the gradient is defined.</summary>
    private static Tensor Distinct(int[] shape, uint seed)
    {
        int n = shape.Aggregate(1, (a, b) => a * b);
        var perm = Tensor.RandPerm(n, new Generator(seed)).ToDoubleArray();
        return Tensor.FromArray(perm.Select(v => v - n / 2.0).ToArray(), shape).RequiresGrad_();
    }

    private static int[] Batched(Geo g, int n, int c) => [n, c, .. g.In];

    /// <summary>PyTorch's output size, written out independently of the library.</summary>
    private static int OutSize(int n, int k, int s, int p, int d, bool ceil)
    {
        int o = (int)Math.Floor((n + 2.0 * p - d * (k - 1) - 1 + (ceil ? s - 1 : 0)) / s) + 1;
        if (ceil && (o - 1) * s >= n + p) o--;
        return o;
    }

    /// <summary>
    /// Brute-force pooling over (planes, *in): for every output multi-index, taps(dim, o) lists the window's positions
    /// (also those in the padding) and fullSpan(dim, o) its size clipped to input+padding.
    /// </summary>
    private static (double[] Y, long[] Idx) Naive(double[] x, int planes, int[] inS, int[] outS, Func<int, int, int[]> taps,
        Func<int, int, int> fullSpan, bool max, bool incl, int? div)
    {
        int nd = inS.Length, inPlane = inS.Aggregate(1, (a, b) => a * b), outPlane = outS.Aggregate(1, (a, b) => a * b);
        var y = new double[planes * outPlane]; var idx = new long[planes * outPlane];
        for (int pl = 0; pl < planes; pl++)
            for (int oi = 0; oi < outPlane; oi++)
            {
                var o = new int[nd];
                for (int r = oi, dim = nd - 1; dim >= 0; dim--) { o[dim] = r % outS[dim]; r /= outS[dim]; }
                var lists = Enumerable.Range(0, nd).Select(dim => taps(dim, o[dim]).Where(v => v >= 0 && v < inS[dim]).ToArray()).ToArray();
                double best = double.NegativeInfinity, sum = 0; long bi = -1; int count = 0;
                int total = lists.Aggregate(1, (a, l) => a * l.Length);
                for (int t = 0; t < total; t++)
                {
                    long flat = 0;
                    for (int r = t, dim = 0, stride = total; dim < nd; dim++)
                    {
                        stride /= lists[dim].Length;
                        flat = flat * inS[dim] + lists[dim][r / stride]; r %= stride;
                    }
                    double v = x[pl * inPlane + flat];
                    if (bi < 0 || v > best || double.IsNaN(v)) { best = v; bi = flat; }
                    sum += v; count++;
                }
                double divisor = div ?? (incl ? Enumerable.Range(0, nd).Aggregate(1.0, (a, dim) => a * fullSpan(dim, o[dim])) : count);
                y[pl * outPlane + oi] = max ? best : sum / divisor;
                idx[pl * outPlane + oi] = bi;
            }
        return (y, idx);
    }

    private static void AssertClose(double[] want, double[] got, string what)
    {
        Assert.Equal(want.Length, got.Length);
        for (int i = 0; i < want.Length; i++)
            Assert.True(Math.Abs(want[i] - got[i]) <= 1e-12 + 1e-12 * Math.Abs(want[i]), $"{what}: element {i} is {got[i]}, expected {want[i]}");
    }

    // ------------------------------------------------------------------ forward against brute force

    [Fact]
    public void SlidingPoolsMatchBruteForce()
    {
        Gen.Select(GeoGen(true, 4), Gen.Int[1, 2], Gen.Bool, Gen.Int[0, 4]).Sample((g, c, incl, div) =>
        {
            var shape = Batched(g, 2, c);
            var x = Tensor.Randn(shape, new Generator(g.Seed), dtype: DType.Float64);
            var xs = x.ToDoubleArray();
            var outS = Enumerable.Range(0, g.Nd).Select(i => OutSize(g.In[i], g.K[i], g.S[i], g.P[i], g.D[i], g.Ceil)).ToArray();
            int[] Taps(int[] d, int dim, int o) => [.. Enumerable.Range(0, g.K[dim]).Select(j => o * g.S[dim] - g.P[dim] + j * d[dim])];
            int Span(int dim, int o) { int st = o * g.S[dim] - g.P[dim]; return Math.Min(st + g.K[dim], g.In[dim] + g.P[dim]) - st; }

            var (y, idx) = MaxWI(g.Nd, x, g.K, g.S, g.P, g.D, g.Ceil);
            Assert.Equal([2, c, .. outS], y.Shape.ToArray());
            var want = Naive(xs, 2 * c, g.In, outS, (dim, o) => Taps(g.D, dim, o), Span, true, true, null);
            AssertClose(want.Y, y.ToDoubleArray(), "max");
            Assert.Equal(want.Idx, idx.ToInt64Array());

            int? divisor = g.Nd > 1 && div > 0 ? div : null;
            var ones = Enumerable.Repeat(1, g.Nd).ToArray();
            var a = Avg(g.Nd, x, g.K, g.S, g.P, g.Ceil, incl, divisor);
            // avg windows have no dilation, so their output size is that of the undilated kernel.
            var outA = Enumerable.Range(0, g.Nd).Select(i => OutSize(g.In[i], g.K[i], g.S[i], g.P[i], 1, g.Ceil)).ToArray();
            Assert.Equal([2, c, .. outA], a.Shape.ToArray());
            AssertClose(Naive(xs, 2 * c, g.In, outA, (dim, o) => Taps(ones, dim, o), Span, false, incl, divisor).Y, a.ToDoubleArray(), "avg");
        }, iter: 60);
    }

    [Fact]
    public void AdaptivePoolsMatchBruteForce()
    {
        Gen.Select(Gen.Int[1, 3], Gen.Int[1, 7].Array[3], Gen.Int[1, 5].Array[3], Gen.UInt).Sample((nd, inS, outS, seed) =>
        {
            inS = inS[..nd]; outS = outS[..nd];
            var x = Tensor.Randn([3, .. inS], new Generator(seed), dtype: DType.Float64); // unbatched (C, *)
            int[] Taps(int dim, int o)
            {
                int st = (int)Math.Floor((double)o * inS[dim] / outS[dim]), en = (int)Math.Ceiling((double)(o + 1) * inS[dim] / outS[dim]);
                return [.. Enumerable.Range(st, en - st)];
            }
            var size = outS.Select(v => (int?)v).ToArray();
            var (y, idx) = AdaptiveMaxWI(nd, x, size);
            var want = Naive(x.ToDoubleArray(), 3, inS, outS, Taps, (dim, o) => Taps(dim, o).Length, true, false, null);
            Assert.Equal([3, .. outS], y.Shape.ToArray());
            AssertClose(want.Y, y.ToDoubleArray(), "adaptive max");
            Assert.Equal(want.Idx, idx.ToInt64Array());
            var a = AdaptiveAvg(nd, x, size);
            AssertClose(Naive(x.ToDoubleArray(), 3, inS, outS, Taps, (dim, o) => 0, false, false, null).Y, a.ToDoubleArray(), "adaptive avg");
        }, iter: 60);
    }

    [Fact]
    public void LargeInputsTakeTheParallelPathWithTheSameResults()
    {
        // 4·8 planes of 40×40 with 3×3 windows is above the kernels' parallel threshold.
        var x = Tensor.Randn([4, 8, 40, 40], new Generator(11), dtype: DType.Float64).RequiresGrad_();
        var xs = x.ToDoubleArray();
        int[] inS = [40, 40], outS = [20, 20];
        int[] Taps(int dim, int o) => [o * 2 - 1, o * 2, o * 2 + 1];
        int Span(int dim, int o) => Math.Min(o * 2 + 2, 41) - (o * 2 - 1);
        var (y, idx) = F.MaxPool2dWithIndices(x, [3], [2], [1]);
        var want = Naive(xs, 32, inS, outS, Taps, Span, true, true, null);
        AssertClose(want.Y, y.ToDoubleArray(), "max");
        Assert.Equal(want.Idx, idx.ToInt64Array());
        var a = F.AvgPool2d(x, [3], [2], [1]);
        AssertClose(Naive(xs, 32, inS, outS, Taps, Span, false, true, null).Y, a.ToDoubleArray(), "avg");

        // Backward: each output's gradient lands on its argmax / spreads over its window.
        y.Add(a).Sum().Backward();
        var grad = new double[xs.Length];
        for (int i = 0; i < want.Idx.Length; i++) grad[i / 400 * 1600 + want.Idx[i]] += 1;
        for (int p = 0; p < 32; p++)
            for (int o = 0; o < 400; o++)
                foreach (int r in Taps(0, o / 20)) foreach (int c in Taps(1, o % 20))
                    if (r >= 0 && r < 40 && c >= 0 && c < 40) grad[p * 1600 + r * 40 + c] += 1.0 / 9;
        AssertClose(grad, x.Grad!.ToDoubleArray(), "grad");
    }

    // ------------------------------------------------------------------ gradients

    [Fact]
    public void MaxPoolGradCheck()
    {
        GeoGen(true, 3).Sample(g =>
        {
            var x = Distinct(Batched(g, 1, 2), g.Seed);
            TestUtil.AssertGradCheck(t => MaxWI(g.Nd, t[0], g.K, g.S, g.P, g.D, g.Ceil).Output, [x]);
        }, iter: 15);
    }

    [Fact]
    public void AvgPoolGradCheck()
    {
        Gen.Select(GeoGen(false, 3), Gen.Bool, Gen.Int[0, 3]).Sample((g, incl, div) =>
        {
            var x = TestUtil.RandD(new Generator(g.Seed), Batched(g, 2, 1));
            int? divisor = g.Nd > 1 && div > 0 ? div : null;
            TestUtil.AssertGradCheck(t => Avg(g.Nd, t[0], g.K, g.S, g.P, g.Ceil, incl, divisor), [x]);
        }, iter: 15);
    }

    [Fact]
    public void AdaptivePoolGradCheck()
    {
        Gen.Select(Gen.Int[1, 3], Gen.Int[1, 5].Array[3], Gen.Int[1, 4].Array[3], Gen.UInt).Sample((nd, inS, outS, seed) =>
        {
            int[] shape = [2, .. inS[..nd]];
            var size = outS[..nd].Select(v => (int?)v).ToArray();
            TestUtil.AssertGradCheck(t => AdaptiveAvg(nd, t[0], size), [TestUtil.RandD(new Generator(seed), shape)]);
            TestUtil.AssertGradCheck(t => AdaptiveMaxWI(nd, t[0], size).Output, [Distinct(shape, seed)]);
        }, iter: 15);
    }

    [Fact]
    public void OverlappingMaxWindowsAccumulateTheGradientAtTheSharedArgmax()
    {
        var x = Tensor.FromArray(new double[] { 0, 9, 1, 2 }, 1, 1, 4).RequiresGrad_();
        F.MaxPool1d(x, [2], [1]).Sum().Backward(); // windows [0,9] [9,1] [1,2]
        Assert.Equal([0.0, 2, 0, 1], x.Grad!.ToDoubleArray());
    }

    // ------------------------------------------------------------------ indices and edge semantics

    [Fact]
    public void IndicesGatherTheOutputFromTheInput()
    {
        Gen.Select(GeoGen(true, 4), Gen.Bool).Sample((g, adaptive) =>
        {
            var x = Tensor.Randn(Batched(g, 2, 2), new Generator(g.Seed));
            var (y, idx) = adaptive ? AdaptiveMaxWI(g.Nd, x, [.. g.K.Select(v => (int?)v)]) : MaxWI(g.Nd, x, g.K, g.S, g.P, g.D, g.Ceil);
            int inPlane = g.In.Aggregate(1, (a, b) => a * b), outPlane = y.Numel / 4;
            var xs = x.ToArray(); var ys = y.ToArray(); var ids = idx.ToInt64Array();
            Assert.Equal(DType.Int64, idx.DType);
            for (int i = 0; i < ys.Length; i++)
            {
                Assert.InRange(ids[i], 0, inPlane - 1);
                Assert.Equal(xs[i / outPlane * inPlane + ids[i]], ys[i]);
            }
        }, iter: 40);
    }

    [Fact]
    public void MaxPoolPaddingNeverWinsTiesPickTheFirstAndNaNPropagates()
    {
        var neg = Tensor.FromArray(new float[] { -3, -1, -2, -5 }, 1, 4);
        var (y, i) = F.MaxPool1dWithIndices(neg, [3], [1], [1]);
        Assert.Equal([-1f, -1, -1, -2], y.ToArray());
        Assert.Equal([1L, 1, 1, 2], i.ToInt64Array());

        var ties = Tensor.FromArray(new float[] { 4, 4, 4, 4 }, 1, 2, 2);
        Assert.Equal([0L], F.MaxPool2dWithIndices(ties, [2]).Indices.ToInt64Array());

        var nan = Tensor.FromArray(new float[] { 1, float.NaN, 7, 3 }, 1, 4);
        var (yn, iN) = F.MaxPool1dWithIndices(nan, [2]);
        Assert.True(float.IsNaN(yn.ToArray()[0]));
        Assert.Equal([1L, 2], iN.ToInt64Array());
        Assert.True(float.IsNaN(F.AdaptiveMaxPool1d(nan, [1]).ToArray()[0]));
    }

    [Fact]
    public void AvgPoolDivisorRulesAtTheBorders()
    {
        var x = Tensor.FromArray(new float[] { 1, 2, 3, 4, 5, 6 }, 1, 6);
        // k3 s2 p1 ceil: windows start at -1, 1, 3, 5; the last is clipped to input+pad (7), so with count_include_pad
        // the divisors are 3, 3, 3, 2, and without they count the input taps only: 2, 3, 3, 1.
        Assert.Equal([1.5f, 3, 5, 6], F.AvgPool1d(x, [3], [2], [1], ceilMode: true, countIncludePad: false).ToArray());
        Assert.Equal([1f, 3, 5, 3], F.AvgPool1d(x, [3], [2], [1], ceilMode: true, countIncludePad: true).ToArray());
        var x2 = Tensor.Ones(1, 1, 2, 2);
        Assert.Equal([4f / 3], F.AvgPool2d(x2, [2], divisorOverride: 3).ToArray());
    }

    [Fact]
    public void UnbatchedInputMatchesBatchedAndAdaptiveKeepsNullDims()
    {
        var x = Tensor.Randn([3, 5, 6], new Generator(5));
        var b = x.Unsqueeze(0);
        Assert.Equal(F.MaxPool2d(b, [2], [1]).Squeeze(0).ToArray(), F.MaxPool2d(x, [2], [1]).ToArray());
        Assert.Equal(F.AvgPool2d(b, [3], [2], [1]).Squeeze(0).ToArray(), F.AvgPool2d(x, [3], [2], [1]).ToArray());
        Assert.Equal([3, 2, 6], F.AdaptiveAvgPool2d(x, [2, null]).Shape.ToArray());
        Assert.Equal([3, 5, 4], F.AdaptiveMaxPool2d(x, [null, 4]).Shape.ToArray());
        var g = F.GlobalAvgPool2d(b);
        Assert.Equal([1, 3, 1, 1], g.Shape.ToArray());
        Assert.Equal(b.Mean([2, 3]).ToArray(), g.Flatten(1).ToArray(), new FloatTolerance(1e-6f));
    }

    private sealed class FloatTolerance(float tol) : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) <= tol;
        public int GetHashCode(float v) => 0;
    }

    // ------------------------------------------------------------------ validation

    [Fact]
    public void KernelLargerThanPaddedInputIsRejectedWithTheSizes()
    {
        var e = TestUtil.AssertOpError("max_pool2d", () => F.MaxPool2d(Tensor.Zeros(1, 1, 4, 4), [5], padding: [0]));
        Assert.Contains("kernel 5 is larger than padded input 4", e.Message);
        TestUtil.AssertOpError("max_pool2d", () => F.MaxPool2d(Tensor.Zeros(1, 1, 4, 4), [4], padding: [3]));
        TestUtil.AssertOpError("avg_pool1d", () => F.AvgPool1d(Tensor.Zeros(1, 1, 4), [2], [0]));
        TestUtil.AssertOpError("avg_pool2d", () => F.AvgPool2d(Tensor.Zeros(1, 1, 4, 4), [2], divisorOverride: 0));
        TestUtil.AssertOpError("max_pool3d", () => F.MaxPool3d(Tensor.Zeros(4, 4), [2]));
        TestUtil.AssertOpError("max_pool1d", () => F.MaxPool1d(Tensor.FromArray(new long[] { 1, 2 }, 1, 2), [2]));
        TestUtil.AssertOpError("adaptive_avg_pool2d", () => F.AdaptiveAvgPool2d(Tensor.Zeros(1, 4, 4), [0, 2]));
        // Dilated taps that all fall into the padding (PyTorch would read outside the plane).
        TestUtil.AssertOpError("max_pool1d", () => F.MaxPool1d(Tensor.Zeros(1, 4), [2], [1], [1], [5]));
    }

    /// <summary>Any attribute combination either gives PyTorch's output shape or is refused with the op's name; never another exception.</summary>
    [Fact]
    public void RandomAttributesGiveTheExpectedShapeOrANamedArgumentException()
    {
        Gen.Select(Gen.Int[1, 3], Gen.Int[-1, 1], Gen.Int[-1, 6].Array[1, 3], Gen.Int[-1, 3].Array[0, 3], Gen.Int[-1, 3].Array[0, 3],
                   Gen.Int[-1, 3].Array[1, 3], Gen.Int[0, 5].Array[4], Gen.Select(Gen.Bool, Gen.Int[0, 2])).Sample(
            (nd, rankDelta, k, s, p, d, dims, flags) =>
        {
            var (ceil, kind) = flags;
            int rank = nd + 1 + Math.Max(0, rankDelta) + (rankDelta < 0 ? -1 : 0);
            var shape = dims.Take(Math.Max(rank, 0)).ToArray();
            var x = Tensor.Zeros(shape, DType.Float64);
            string op = (kind == 0 ? "max_pool" : kind == 1 ? "avg_pool" : "adaptive_avg_pool") + nd + "d";

            // The expected result, derived independently: null = must be refused.
            int[]? expected = null;
            int[] Full(int[] v, int dflt) => v.Length == 0 ? [.. Enumerable.Repeat(dflt, nd)] : v.Length == 1 ? [.. Enumerable.Repeat(v[0], nd)] : v;
            bool rankOk = shape.Length == nd + 1 || shape.Length == nd + 2;
            bool spatialOk = rankOk && shape[^nd..].All(v => v > 0);
            if (kind == 2)
            {
                if (spatialOk && (k.Length == 1 || k.Length == nd) && k.All(v => v > 0))
                    expected = [.. shape[..^nd], .. Full(k, 0)];
            }
            else
            {
                var kk = Full(k, 0); var ss = s.Length == 0 ? kk : Full(s, 0); var pp = Full(p, 0);
                var dd = kind == 0 ? Full(d, 1) : [.. Enumerable.Repeat(1, nd)];
                bool lengthsOk = new[] { kk, ss, pp, dd }.All(v => v.Length == nd);
                if (spatialOk && lengthsOk && Enumerable.Range(0, nd).All(i => kk[i] > 0 && ss[i] > 0 && dd[i] > 0 && pp[i] >= 0 && pp[i] <= kk[i] / 2
                        && (kk[i] - 1) * dd[i] + 1 <= shape[^nd..][i] + 2 * pp[i]))
                {
                    var outS = Enumerable.Range(0, nd).Select(i => OutSize(shape[^nd..][i], kk[i], ss[i], pp[i], dd[i], ceil)).ToArray();
                    // A max window whose taps all land in the padding has no value.
                    bool tapless = kind == 0 && Enumerable.Range(0, nd).Any(i => Enumerable.Range(0, outS[i]).Any(o =>
                        Enumerable.Range(0, kk[i]).All(j => o * ss[i] - pp[i] + j * dd[i] is var t && (t < 0 || t >= shape[^nd..][i]))));
                    if (!tapless) expected = [.. shape[..^nd], .. outS];
                }
            }

            Tensor? got = null;
            try
            {
                got = kind switch
                {
                    0 => MaxWI(nd, x, k, s, p, d, ceil).Output,
                    1 => Avg(nd, x, k, s, p, ceil, true, null),
                    _ => AdaptiveAvg(nd, x, [.. k.Select(v => (int?)v)]),
                };
            }
            catch (ArgumentException e)
            {
                Assert.StartsWith(op + ":", e.Message);
                Assert.True(expected == null, $"{op} refused a valid call on {ShapeUtil.Format(shape)}: {e.Message}");
            }
            if (got != null)
            {
                Assert.True(expected != null, $"{op} accepted an invalid call on {ShapeUtil.Format(shape)} giving {ShapeUtil.Format(got.Shape)}");
                Assert.Equal(expected, got.Shape.ToArray());
            }
        }, iter: 400);
    }

    // ------------------------------------------------------------------ modules

    [Fact]
    public void ModulesHaveNoParametersAndMatchTheFunctionalApi()
    {
        var x = Tensor.Randn([2, 3, 6, 7], new Generator(3));
        Module[] all =
        [
            new MaxPool1d([2]), new MaxPool2d([3], [2], [1]), new MaxPool3d([2]), new AvgPool1d([2]), new AvgPool2d([2], ceilMode: true),
            new AvgPool3d([2]), new AdaptiveAvgPool1d(3), new AdaptiveAvgPool2d(2, 3), new AdaptiveAvgPool3d(1), new AdaptiveMaxPool1d([2]),
            new AdaptiveMaxPool2d([2]), new AdaptiveMaxPool3d([1]), new GlobalAvgPool2d(),
        ];
        foreach (var m in all)
        {
            Assert.Empty(m.StateDict());
            Assert.Equal(0, m.ParameterCount());
        }
        Assert.Equal(F.MaxPool2d(x, [3], [2], [1]).ToArray(), all[1].Forward(x).ToArray());
        Assert.Equal(F.AvgPool2d(x, [2], ceilMode: true).ToArray(), all[4].Forward(x).ToArray());
        Assert.Equal(F.AdaptiveAvgPool2d(x, [2, 3]).ToArray(), all[7].Forward(x).ToArray());
        Assert.Equal([2, 3, 1, 1], all[12].Forward(x).Shape.ToArray());
        Assert.Equal([2, 3], new GlobalAvgPool2d(flatten: true).Forward(x).Shape.ToArray());
        Assert.Equal([3], new GlobalAvgPool2d(flatten: true).Forward(x.Select(0, 0)).Shape.ToArray());
        Assert.Contains("MaxPool2d(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1), ceil_mode=False)", all[1].ToString());
    }

    [Fact]
    public void MaxPoolModuleReturnsIndicesOnRequest()
    {
        var x = Tensor.Randn([1, 2, 4, 4], new Generator(9));
        var m = new MaxPool2d([2], returnIndices: true);
        var y = m.Forward(x);
        var (y2, idx) = m.ForwardWithIndices(x);
        Assert.Equal(y.ToArray(), y2.ToArray());
        Assert.Equal(idx.ToInt64Array(), m.LastIndices!.ToInt64Array());
        Assert.Null(new MaxPool2d([2]).Also(p => p.Forward(x)).LastIndices);
        var am = new AdaptiveMaxPool2d([1], returnIndices: true);
        am.Forward(x);
        Assert.Equal(F.AdaptiveMaxPool2dWithIndices(x, [1]).Indices.ToInt64Array(), am.LastIndices!.ToInt64Array());
    }

    [Fact]
    public void ModuleConstructorsValidateTheirAttributes()
    {
        TestUtil.AssertOpError("MaxPool2d", () => new MaxPool2d([0]));
        TestUtil.AssertOpError("MaxPool2d", () => new MaxPool2d([3], padding: [2]));
        TestUtil.AssertOpError("MaxPool1d", () => new MaxPool1d([2, 2]));
        TestUtil.AssertOpError("AvgPool3d", () => new AvgPool3d([2], [-1]));
        TestUtil.AssertOpError("AvgPool2d", () => new AvgPool2d([2], divisorOverride: 0));
        TestUtil.AssertOpError("AdaptiveAvgPool2d", () => new AdaptiveAvgPool2d(1, 2, 3));
        TestUtil.AssertOpError("AdaptiveMaxPool1d", () => new AdaptiveMaxPool1d([-2]));
        // Input-dependent errors come from the functional op.
        TestUtil.AssertOpError("max_pool2d", () => new MaxPool2d([5]).Forward(Tensor.Zeros(1, 4, 4)));
    }
}

internal static class ObjectExtensions
{
    public static T Also<T>(this T value, Action<T> action) { action(value); return value; }
}
