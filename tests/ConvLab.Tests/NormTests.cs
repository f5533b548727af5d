using ConvLab.Autograd;
using ConvLab.NN;
using ConvLab.NN.Functional;
using CsCheck;
using Xunit;

namespace ConvLab.Tests;

public class NormTests
{
    private static readonly Gen<double> Eps = Gen.OneOf(Gen.Const(1e-5), Gen.Const(1e-3), Gen.Const(0.1));
    private static readonly Gen<int[]> Spatial = Gen.Int[0, 2].SelectMany(r => Gen.Int[1, 3].Array[r]);

    private static int[] Concat(int n, int c, int[] spatial) => [n, c, .. spatial];

    private static Tensor? Maybe(bool present, Generator g, params int[] shape) => present ? TestUtil.RandD(g, shape) : null;

    private static Tensor PositiveD(Generator g, int c) => Tensor.Rand([c], g, 0.5, 2, DType.Float64);

    [Fact]
    public void BatchNormGradCheckTrainingAndEval()
    {
        Gen.Select(Gen.Int[1, 3], Gen.Int[1, 3], Spatial, Eps, Gen.Double[0, 1], Gen.Bool, Gen.Bool, Gen.UInt).Sample((n, c, spatial, eps, momentum, affine, training, seed) =>
        {
            var shape = Concat(n, c, spatial);
            if (training && n * spatial.Aggregate(1, (a, b) => a * b) == 1) shape[0] = 2;
            var g = new Generator(seed);
            var x = TestUtil.RandD(g, shape);
            Tensor? w = Maybe(affine, g, c), b = Maybe(affine, g, c);
            var rm = Tensor.Randn([c], g, dtype: DType.Float64); var rv = PositiveD(g, c);
            var inputs = new[] { x, w, b }.Where(t => t != null).Select(t => t!).ToArray();
            TestUtil.AssertGradCheck(_ => F.BatchNorm(x, rm, rv, w, b, training, momentum, eps), inputs);
        }, iter: 15, threads: 1);
    }

    [Fact]
    public void BatchNormTrainingUpdatesRunningStatsAsHandComputed()
    {
        var g = new Generator(7);
        var x = Tensor.Randn([3, 2, 4], g, dtype: DType.Float64);
        var rm = Tensor.FromArray([0.5, -1.0], 2); var rv = Tensor.FromArray([2.0, 0.25], 2);
        double momentum = 0.3, eps = 1e-3;
        var xs = x.ToDoubleArray();
        var (rm0, rv0) = (rm.ToDoubleArray(), rv.ToDoubleArray());
        var y = F.BatchNorm(x, rm, rv, null, null, training: true, momentum, eps).ToDoubleArray();
        for (int c = 0; c < 2; c++)
        {
            var vals = new List<double>();
            for (int n = 0; n < 3; n++) for (int s = 0; s < 4; s++) vals.Add(xs[(n * 2 + c) * 4 + s]);
            double mean = vals.Average(), ss = vals.Sum(v => (v - mean) * (v - mean));
            Assert.Equal((1 - momentum) * rm0[c] + momentum * mean, rm.ToDoubleArray()[c], 12);
            Assert.Equal((1 - momentum) * rv0[c] + momentum * ss / (vals.Count - 1), rv.ToDoubleArray()[c], 12);
            for (int n = 0; n < 3; n++)
                for (int s = 0; s < 4; s++)
                {
                    int i = (n * 2 + c) * 4 + s;
                    Assert.Equal((xs[i] - mean) / Math.Sqrt(ss / vals.Count + eps), y[i], 12);
                }
        }
        // Eval normalises with the (now updated) running statistics and leaves them alone.
        var (rm1, rv1) = (rm.ToDoubleArray(), rv.ToDoubleArray());
        var ye = F.BatchNorm(x, rm, rv, null, null, training: false, momentum, eps).ToDoubleArray();
        Assert.Equal(rm1, rm.ToDoubleArray()); Assert.Equal(rv1, rv.ToDoubleArray());
        Assert.Equal((xs[2] - rm1[0]) / Math.Sqrt(rv1[0] + eps), ye[2], 12);
        Assert.Equal((xs[4 * 3 + 1] - rm1[1]) / Math.Sqrt(rv1[1] + eps), ye[4 * 3 + 1], 12);
    }

    [Fact]
    public void InstanceNormUpdatesRunningStatsWithTheBatchAverage()
    {
        var g = new Generator(3);
        var x = Tensor.Randn([2, 3, 5], g, dtype: DType.Float64);
        var rm = Tensor.Zeros([3], DType.Float64); var rv = Tensor.Ones([3], DType.Float64);
        F.InstanceNorm(x, rm, rv, momentum: 0.5);
        var xs = x.ToDoubleArray();
        for (int c = 0; c < 3; c++)
        {
            double mSum = 0, vSum = 0;
            for (int n = 0; n < 2; n++)
            {
                var v = xs.Skip((n * 3 + c) * 5).Take(5).ToArray();
                double m = v.Average();
                mSum += m; vSum += v.Sum(e => (e - m) * (e - m)) / 4;
            }
            Assert.Equal(0.5 * mSum / 2, rm.ToDoubleArray()[c], 12);
            Assert.Equal(0.5 + 0.5 * vSum / 2, rv.ToDoubleArray()[c], 12);
        }
    }

    [Fact]
    public void LayerNormGradCheckOverOneToThreeTrailingDims()
    {
        Gen.Select(Gen.Int[1, 3].Array[1, 4], Gen.Int[1, 3], Eps, Gen.Bool, Gen.Bool, Gen.UInt).Sample((shape, k, eps, hasW, hasB, seed) =>
        {
            k = Math.Min(k, shape.Length);
            var ns = shape[^k..];
            var g = new Generator(seed);
            var x = TestUtil.RandD(g, shape);
            Tensor? w = Maybe(hasW, g, ns), b = Maybe(hasB, g, ns);
            var inputs = new[] { x, w, b }.Where(t => t != null).Select(t => t!).ToArray();
            TestUtil.AssertGradCheck(_ => F.LayerNorm(x, ns, w, b, eps), inputs);
        }, iter: 15, threads: 1);
    }

    [Fact]
    public void GroupNormGradCheckOverValidGroupCounts()
    {
        Gen.Select(Gen.Int[1, 2], Gen.Int[1, 3], Gen.Int[1, 2], Spatial, Eps, Gen.Bool, Gen.UInt).Sample((n, groups, perGroup, spatial, eps, affine, seed) =>
        {
            int c = groups * perGroup;
            var shape = Concat(n, c, spatial);
            if (perGroup * spatial.Aggregate(1, (a, b) => a * b) == 1) shape = [.. shape, 2];
            var g = new Generator(seed);
            var x = TestUtil.RandD(g, shape);
            Tensor? w = Maybe(affine, g, c), b = Maybe(affine, g, c);
            var inputs = new[] { x, w, b }.Where(t => t != null).Select(t => t!).ToArray();
            TestUtil.AssertGradCheck(_ => F.GroupNorm(x, groups, w, b, eps), inputs);
        }, iter: 15, threads: 1);
    }

    [Fact]
    public void InstanceNormGradCheckWithAndWithoutInputStats()
    {
        Gen.Select(Gen.Int[1, 2], Gen.Int[1, 3], Gen.Int[2, 4], Eps, Gen.Bool, Gen.Bool, Gen.UInt).Sample((n, c, l, eps, affine, useInput, seed) =>
        {
            var g = new Generator(seed);
            var x = TestUtil.RandD(g, n, c, l);
            Tensor? w = Maybe(affine, g, c), b = Maybe(affine, g, c);
            var rm = Tensor.Randn([c], g, dtype: DType.Float64); var rv = PositiveD(g, c);
            var inputs = new[] { x, w, b }.Where(t => t != null).Select(t => t!).ToArray();
            TestUtil.AssertGradCheck(_ => F.InstanceNorm(x, rm, rv, w, b, useInput, 0.1, eps), inputs);
        }, iter: 12, threads: 1);
    }

    [Fact]
    public void NormalisationMatchesReferenceFormulaInFloat32()
    {
        // float32 goes through the same generic kernel; check it against the float64 result.
        var g = new Generator(11);
        var x = Tensor.Randn([2, 6, 3, 3], g, mean: 5, std: 3);
        var w = Tensor.Randn([6], g); var b = Tensor.Randn([6], g);
        var y32 = F.GroupNorm(x, 3, w, b);
        var y64 = F.GroupNorm(x.Double(), 3, w.Double(), b.Double());
        Assert.True(y32.AllClose(y64, 1e-4, 1e-5));
        var l32 = F.LayerNorm(x, [3, 3]); var l64 = F.LayerNorm(x.Double(), [3, 3]);
        Assert.True(l32.AllClose(l64, 1e-4, 1e-5));
    }

    [Fact]
    public void InvalidArgumentsThrowArgumentExceptionNamingTheOp()
    {
        Gen.Select(Gen.Int[0, 5], Gen.Int[0, 4], Gen.Int[-1, 5], Gen.Int[0, 5], Gen.Bool, Gen.Int[0, 3], Gen.UInt).Sample((rank, c, groups, wLen, training, k, seed) =>
        {
            var g = new Generator(seed);
            var shape = Enumerable.Range(0, rank).Select(i => i == 1 ? c : 1 + g.NextInt(3)).ToArray();
            var x = Tensor.Randn(shape, g);
            var w = Tensor.Ones(wLen); var rm = Tensor.Zeros(wLen); var rv = Tensor.Ones(wLen);
            int spatial = rank >= 2 ? shape[2..].Aggregate(1, (a, b) => a * b) : 0;

            bool bnValid = rank >= 2 && wLen == c && !(training && shape[0] * spatial == 1);
            Expect("batch_norm", bnValid, shape, () => F.BatchNorm(x, rm, rv, w, w, training));
            bool gnValid = rank >= 2 && groups > 0 && c % groups == 0 && wLen == c;
            Expect("group_norm", gnValid, shape, () => F.GroupNorm(x, groups, w, null));
            bool inValid = rank >= 2 && wLen == c && spatial > 1;
            Expect("instance_norm", inValid, shape, () => F.InstanceNorm(x, null, null, w, null));
            var ns = Enumerable.Range(0, k).Select(_ => 1 + g.NextInt(3)).ToArray();
            bool lnValid = k >= 1 && rank >= k && shape[^k..].SequenceEqual(ns);
            Expect("layer_norm", lnValid, shape, () => F.LayerNorm(x, ns));
        }, iter: 300, threads: 1);
    }

    internal static void Expect(string op, bool valid, int[] shape, Func<Tensor> f)
    {
        if (valid) Assert.Equal(shape, f().Shape.ToArray());
        else TestUtil.AssertOpError(op, () => f());
    }

    [Fact]
    public void BatchNormWithOneValuePerChannelInTrainingIsRejectedAsPyTorchDoes()
    {
        var e = TestUtil.AssertOpError("batch_norm", () => F.BatchNorm(Tensor.Ones(1, 3), Tensor.Zeros(3), Tensor.Ones(3), training: true));
        Assert.Contains("Expected more than 1 value per channel when training", e.Message);
        Assert.Equal([1, 3], F.BatchNorm(Tensor.Ones(1, 3), Tensor.Zeros(3), Tensor.Ones(3), training: false).Shape.ToArray());
        TestUtil.AssertOpError("batch_norm", () => F.BatchNorm(Tensor.Ones(2, 3), null, null, training: false));
    }

    [Fact]
    public void BatchNormModuleHasPyTorchStateDictAndTracksBatches()
    {
        var bn = new BatchNorm2d(3);
        var sd = bn.StateDict();
        Assert.Equal(["weight", "bias", "running_mean", "running_var", "num_batches_tracked"], sd.Keys.ToArray());
        Assert.Equal(DType.Int64, sd["num_batches_tracked"].DType);
        Assert.Equal(0, sd["num_batches_tracked"].Rank);
        Assert.All(bn.Weight!.ToArray(), v => Assert.Equal(1f, v));
        Assert.All(bn.Bias!.ToArray(), v => Assert.Equal(0f, v));
        Assert.Equal(["weight", "bias"], bn.NamedParameters().Select(p => p.Name).ToArray());

        var g = new Generator(5);
        var x = Tensor.Randn([4, 3, 2, 2], g, mean: 2);
        var y = bn.Forward(x);
        Assert.Equal(1, bn.NumBatchesTracked!.Item());
        var expected = x.Mean([0, 2, 3]).MulScalar(0.1);
        Assert.True(bn.RunningMean!.AllClose(expected, 1e-5, 1e-6));
        Assert.True(Math.Abs(y.Mean().Item()) < 1e-5);

        bn.Eval();
        var ye = bn.Forward(x);
        Assert.Equal(1, bn.NumBatchesTracked!.Item());
        var manual = F.BatchNorm(x, bn.RunningMean!.Clone(), bn.RunningVar!.Clone(), bn.Weight, bn.Bias, training: false);
        Assert.True(ye.AllClose(manual));
        Assert.False(ye.AllClose(y, 1e-3, 1e-3));

        TestUtil.AssertOpError("BatchNorm2d", () => bn.Forward(Tensor.Ones(2, 3, 4)));
        TestUtil.AssertOpError("BatchNorm2d", () => bn.Forward(Tensor.Ones(2, 4, 2, 2)));
        TestUtil.AssertOpError("BatchNorm1d", () => new BatchNorm1d(0));
    }

    [Fact]
    public void BatchNormModuleVariants()
    {
        var noAffine = new BatchNorm1d(2, affine: false);
        Assert.Equal(["running_mean", "running_var", "num_batches_tracked"], noAffine.StateDict().Keys.ToArray());
        var noStats = new BatchNorm3d(2, trackRunningStats: false);
        Assert.Equal(["weight", "bias"], noStats.StateDict().Keys.ToArray());
        var x = Tensor.Randn([2, 2, 2, 2, 2], new Generator(1));
        noStats.Eval();
        Assert.True(noStats.Forward(x).AllClose(F.BatchNorm(x, null, null, noStats.Weight, noStats.Bias, training: true)));

        // momentum null: a cumulative average over the batches seen.
        var cum = new BatchNorm1d(2, momentum: null);
        var a = Tensor.Randn([4, 2], new Generator(2)); var b = Tensor.Randn([4, 2], new Generator(3));
        cum.Forward(a); cum.Forward(b);
        Assert.Equal(2, cum.NumBatchesTracked!.Item());
        Assert.True(cum.RunningMean!.AllClose(a.Mean(0).Add(b.Mean(0)).MulScalar(0.5), 1e-5, 1e-6));
    }

    [Fact]
    public void LayerGroupInstanceNormModules()
    {
        var ln = new LayerNorm([2, 3]);
        Assert.Equal(["weight", "bias"], ln.StateDict().Keys.ToArray());
        Assert.Equal([2, 3], ln.Weight!.Shape.ToArray());
        Assert.Empty(new LayerNorm(4, elementwiseAffine: false).StateDict());
        var gn = new GroupNorm(2, 4);
        Assert.Equal([4], gn.Weight!.Shape.ToArray());
        TestUtil.AssertOpError("GroupNorm", () => new GroupNorm(3, 4));
        var inorm = new InstanceNorm2d(3);
        Assert.Empty(inorm.StateDict());
        Assert.Equal(["weight", "bias", "running_mean", "running_var", "num_batches_tracked"], new InstanceNorm2d(3, affine: true, trackRunningStats: true).StateDict().Keys.ToArray());
        var x = Tensor.Randn([2, 3, 4, 4], new Generator(9));
        Assert.True(inorm.Forward(x).AllClose(F.InstanceNorm(x)));
        Assert.True(inorm.Forward(x.Select(0, 1)).AllClose(F.InstanceNorm(x).Select(0, 1), 1e-5, 1e-6));
        Assert.True(gn.Forward(Tensor.Randn([2, 4, 3], new Generator(4))).Shape.SequenceEqual([2, 4, 3]));
    }

    [Fact]
    public void DropoutIsSeededScaledAndIdentityInEval()
    {
        var x = Tensor.Ones(1000).RequiresGrad_();
        var y1 = F.Dropout(x, 0.3, generator: new Generator(42));
        var y2 = F.Dropout(x, 0.3, generator: new Generator(42));
        Assert.Equal(y1.ToArray(), y2.ToArray());
        var vals = y1.ToArray();
        Assert.All(vals, v => Assert.True(v == 0 || Math.Abs(v - 1 / 0.7) < 1e-6));
        int dropped = vals.Count(v => v == 0);
        Assert.InRange(dropped, 200, 400);
        y1.Sum().Backward();
        Assert.Equal(vals, x.Grad!.ToArray());
        Assert.Same(x, F.Dropout(x, 0.3, training: false));
        Assert.All(F.Dropout(x, 1.0).ToArray(), v => Assert.Equal(0f, v));
        foreach (var p in new[] { -0.1, 1.1, double.NaN })
        {
            TestUtil.AssertOpError("dropout", () => F.Dropout(x, p));
            TestUtil.AssertOpError("Dropout", () => new Dropout(p));
        }

        var m = new Dropout(0.5, new Generator(1));
        Assert.NotEqual(x.ToArray(), m.Forward(x).ToArray());
        m.Eval();
        Assert.Equal(x.ToArray(), m.Forward(x).ToArray());
    }

    [Fact]
    public void Dropout2dZeroesWholeChannels()
    {
        var x = Tensor.Ones(4, 8, 3, 3);
        var y = new Dropout2d(0.5, new Generator(3)).Forward(x);
        int zeroChannels = 0;
        for (int n = 0; n < 4; n++)
            for (int c = 0; c < 8; c++)
            {
                var v = y.Select(0, n).Select(0, c).ToArray();
                Assert.True(v.All(e => e == 0) || v.All(e => e == 2f));
                if (v[0] == 0) zeroChannels++;
            }
        Assert.InRange(zeroChannels, 4, 28);
        TestUtil.AssertOpError("dropout2d", () => F.Dropout2d(Tensor.Ones(3), 0.5));
        TestUtil.AssertOpError("Dropout2d", () => new Dropout2d(2));
    }
}
