using ConvLab.NN;
using ConvLab.NN.Functional;
using CsCheck;
using Xunit;

namespace ConvLab.Tests;

public class LossTests
{
    private static readonly string[] Reductions = ["none", "mean", "sum"];

    /// <summary>A random classification problem: input shape, element shape (input without the class dim), class count.</summary>
    private static (int[] input, int[] elem, int c) ClassShape(int n, int c, int spatial, bool unbatched, Generator g)
    {
        if (unbatched) return ([c], [], c);
        var sp = Enumerable.Range(0, spatial).Select(_ => 1 + g.NextInt(2)).ToArray();
        return ([n, c, .. sp], [n, .. sp], c);
    }

    /// <summary>PyTorch 1.13's cross_entropy written out element by element (naive, independent of the kernel).</summary>
    private static double[] NaiveCrossEntropy(double[] x, int[] inShape, double[]? probs, long[]? idx, double[]? w, long ignore, double eps, string reduction, bool logits)
    {
        bool unbatched = inShape.Length == 1;
        int n = unbatched ? 1 : inShape[0], c = unbatched ? inShape[0] : inShape[1];
        int s = x.Length / Math.Max(1, n * c);
        var losses = new double[n * s]; double denom = 0;
        for (int b = 0; b < n; b++)
            for (int j = 0; j < s; j++)
            {
                double Xv(int k) => x[(b * c + k) * s + j];
                double max = Enumerable.Range(0, c).Max(Xv);
                double lse = max + Math.Log(Enumerable.Range(0, c).Sum(k => Math.Exp(Xv(k) - max)));
                double Logp(int k) => logits ? Xv(k) - lse : Xv(k);
                double W(int k) => w?[k] ?? 1;
                double l = 0;
                if (idx != null)
                {
                    long t = idx[b * s + j];
                    if (t == ignore) continue;
                    l = -(1 - eps) * W((int)t) * Logp((int)t);
                    if (eps > 0) for (int k = 0; k < c; k++) l -= eps / c * W(k) * Logp(k);
                    denom += W((int)t);
                }
                else
                {
                    for (int k = 0; k < c; k++) l -= W(k) * ((1 - eps) * probs![(b * c + k) * s + j] + eps / c) * Logp(k);
                    denom += 1;
                }
                losses[b * s + j] = l;
            }
        return reduction switch { "none" => losses, "sum" => [losses.Sum()], _ => [losses.Sum() / denom] };
    }

    [Fact]
    public void CrossEntropyAndNllMatchNaiveFormulaAndGradCheck()
    {
        Gen.Select(Gen.Int[1, 3], Gen.Int[1, 4], Gen.Int[0, 2], Gen.Int[0, 7], Gen.Int[0, 2], Gen.Int[0, 2], Gen.UInt)
            .Sample((n, c, spatial, flags, red, smoothing, seed) =>
            {
                var g = new Generator(seed);
                bool unbatched = (flags & 1) != 0 && spatial == 0, weighted = (flags & 2) != 0, prob = (flags & 4) != 0;
                bool nll = !prob && g.NextInt(3) == 0;
                double eps = nll ? 0 : new[] { 0.0, 0.1, 0.35 }[smoothing];
                string reduction = Reductions[red];
                var (inShape, elemShape, _) = ClassShape(n, c, spatial, unbatched, g);
                var x = TestUtil.RandD(g, inShape);
                if (nll) using (new Autograd.NoGrad()) x = x.Detach().MulScalar(0.5).RequiresGrad_();
                var w = weighted ? Tensor.Rand([c], g, 0.5, 2.0, DType.Float64) : null;
                long ignore = !prob && c > 1 && g.NextInt(2) == 0 ? g.NextInt(c) : -100;
                Tensor target;
                if (prob)
                {
                    var raw = Tensor.Rand(inShape, g, 0.0, 1.0, DType.Float64);
                    target = raw.Div(raw.Sum([unbatched ? 0 : 1], keepdim: true)).Detach().RequiresGrad_();
                }
                else
                {
                    var t = Tensor.RandInt(0, c, elemShape, g).ToInt64Array();
                    if (t.Length > 0 && t.All(v => v == ignore)) t[0] = (ignore + 1) % c;
                    target = Tensor.FromArray(t, elemShape);
                }
                Func<Tensor[], Tensor> f = nll
                    ? a => F.NllLoss(a[0], target, w, ignore, reduction)
                    : a => F.CrossEntropy(a[0], a.Length > 1 ? a[1] : target, w, ignore, reduction, eps);

                var got = f(prob ? [x, target] : [x]).ToDoubleArray();
                var want = NaiveCrossEntropy(x.ToDoubleArray(), inShape, prob ? target.ToDoubleArray() : null, prob ? null : target.ToInt64Array(),
                    w?.ToDoubleArray(), ignore, eps, reduction, !nll);
                Assert.Equal(want.Length, got.Length);
                for (int i = 0; i < want.Length; i++) Assert.Equal(want[i], got[i], 1e-9);
                TestUtil.AssertGradCheck(f, prob ? [x, target] : [x]);
            }, iter: 40);
    }

    [Fact]
    public void CrossEntropyIsStableForHugeLogitsAndNllSkipsMinusInfinityOfUnusedClasses()
    {
        var x = Tensor.FromArray(new float[] { 1000, -1000, 0, 2000, 2000, 1999 }, 2, 3).RequiresGrad_();
        var loss = F.CrossEntropy(x, Tensor.FromArray(new long[] { 0, 2 }, 2), reduction: "none");
        Assert.Equal(0, loss[0], 4);
        Assert.Equal(1 + Math.Log(2 + Math.Exp(-1)), loss[1], 3);
        loss.Sum().Backward();
        Assert.True(x.Grad!.ToArray().All(float.IsFinite));

        var logp = Tensor.FromArray(new double[] { 0, double.NegativeInfinity }, 1, 2);
        Assert.Equal(0, F.NllLoss(logp, Tensor.FromArray(new long[] { 0 }, 1)).Item());
    }

    [Fact]
    public void AllIgnoredMeanIsNaNAsPyTorch()
    {
        var x = Tensor.Randn([3, 4], new Generator(1));
        Assert.True(double.IsNaN(F.CrossEntropy(x, Tensor.FromArray(new long[] { 1, 1, 1 }, 3), ignoreIndex: 1).Item()));
        Assert.Equal(0, F.CrossEntropy(x, Tensor.FromArray(new long[] { 1, 1, 1 }, 3), ignoreIndex: 1, reduction: "sum").Item());
    }

    [Fact]
    public void BceWithLogitsMatchesNaiveFormulaAndGradChecksInputAndTarget()
    {
        Gen.Select(Gen.Int[1, 3], Gen.Int[1, 4], Gen.Int[0, 3], Gen.Int[0, 2], Gen.UInt).Sample((rows, cls, flags, red, seed) =>
        {
            var g = new Generator(seed);
            int[] shape = (flags & 1) != 0 ? [rows, 2, cls] : [rows, cls];
            var x = TestUtil.RandD(g, shape).MulScalar(3).Detach().RequiresGrad_();
            var y = Tensor.Rand(shape, g, 0, 1, DType.Float64).RequiresGrad_();
            var w = (flags & 2) != 0 ? Tensor.Rand([shape[0], .. Enumerable.Repeat(1, shape.Length - 2), cls], g, 0.5, 2, DType.Float64) : null;
            var pw = g.NextInt(2) == 0 ? Tensor.Rand([cls], g, 0.5, 3, DType.Float64) : null;
            string reduction = Reductions[red];
            Func<Tensor[], Tensor> f = a => F.BinaryCrossEntropyWithLogits(a[0], a[1], w, pw, reduction);

            var xs = x.ToDoubleArray(); var ys = y.ToDoubleArray();
            var ws = w?.Expand(shape).ToDoubleArray(); var pws = pw?.Expand(shape).ToDoubleArray();
            var per = new double[xs.Length];
            for (int i = 0; i < xs.Length; i++)
            {
                double sig = 1 / (1 + Math.Exp(-xs[i]));
                per[i] = -(ws?[i] ?? 1) * ((pws?[i] ?? 1) * ys[i] * Math.Log(sig) + (1 - ys[i]) * Math.Log(1 - sig));
            }
            double[] want = reduction switch { "none" => per, "sum" => [per.Sum()], _ => [per.Average()] };
            var got = f([x, y]).ToDoubleArray();
            for (int i = 0; i < want.Length; i++) Assert.Equal(want[i], got[i], 1e-9);
            TestUtil.AssertGradCheck(f, [x, y]);
        }, iter: 25);
    }

    [Fact]
    public void RegressionLossesMatchNaiveFormulaAndGradCheckInputAndTargetWithBroadcasting()
    {
        Gen.Select(Gen.Int[0, 3], Gen.Int[1, 3], Gen.Int[1, 4], Gen.Int[0, 2], Gen.Bool, Gen.Double[0.0, 2.0], Gen.UInt)
            .Sample((kind, rows, cols, red, broadcast, param, seed) =>
            {
                var g = new Generator(seed);
                string reduction = Reductions[red];
                double p = kind == 3 ? param + 0.1 : param;
                var x = TestUtil.RandD(g, rows, cols);
                var y = TestUtil.RandD(g, broadcast ? [cols] : [rows, cols]);
                // Broadcasting is explicit (the losses refuse different sizes, see LooseEndsTests).
                Func<Tensor[], Tensor> f = kind switch
                {
                    0 => a => F.MseLoss(a[0], a[1].Expand(rows, cols), reduction),
                    1 => a => F.L1Loss(a[0], a[1].Expand(rows, cols), reduction),
                    2 => a => F.SmoothL1Loss(a[0], a[1].Expand(rows, cols), reduction, p),
                    _ => a => F.HuberLoss(a[0], a[1].Expand(rows, cols), reduction, p),
                };
                var xs = x.ToDoubleArray(); var ys = y.Expand(rows, cols).ToDoubleArray();
                var per = xs.Select((v, i) =>
                {
                    double d = v - ys[i], ad = Math.Abs(d);
                    return kind switch
                    {
                        0 => d * d,
                        1 => ad,
                        2 => ad < p ? 0.5 * d * d / p : ad - 0.5 * p,
                        _ => ad <= p ? 0.5 * d * d : p * (ad - 0.5 * p),
                    };
                }).ToArray();
                double[] want = reduction switch { "none" => per, "sum" => [per.Sum()], _ => [per.Average()] };
                var got = f([x, y]).ToDoubleArray();
                for (int i = 0; i < want.Length; i++) Assert.Equal(want[i], got[i], 1e-9);
                TestUtil.AssertGradCheck(f, [x, y]);
            }, iter: 40);
    }

    [Fact]
    public void DocumentedErrorMessages()
    {
        var x = Tensor.Randn([5, 5], new Generator(2));
        Assert.Equal("cross_entropy: target has 6 elements but input batch is 5",
            TestUtil.AssertOpError("cross_entropy", () => F.CrossEntropy(x, Tensor.Zeros([6], DType.Int64))).Message);
        Assert.StartsWith("cross_entropy: target class 7 is out of range for 5 classes",
            TestUtil.AssertOpError("cross_entropy", () => F.CrossEntropy(x, Tensor.FromArray(new long[] { 0, 1, 7, 2, 3 }, 5))).Message);
        Assert.Equal("nll_loss: weight must have 5 entries (one per class), got 4",
            TestUtil.AssertOpError("nll_loss", () => F.NllLoss(x, Tensor.Zeros([5], DType.Int64), Tensor.Ones(4))).Message);
        Assert.Contains("reduction must be 'none', 'mean' or 'sum'",
            TestUtil.AssertOpError("mse_loss", () => F.MseLoss(x, x, "avg")).Message);
        TestUtil.AssertOpError("cross_entropy", () => F.CrossEntropy(x, x.Softmax1(), ignoreIndex: 0));
        TestUtil.AssertOpError("nll_loss", () => F.NllLoss(x, x));
    }

    /// <summary>Random, often invalid, arguments: either the expected shape or an ArgumentException naming the op.</summary>
    [Fact]
    public void InvalidArgumentsThrowArgumentExceptionNamingTheOp()
    {
        Gen.Select(Gen.Int[0, 5], Gen.Int[0, 4], Gen.Int[-2, 4], Gen.Int[0, 3], Gen.Int[-1, 6], Gen.Double[-0.5, 1.5], Gen.UInt)
            .Sample((op, rank, c, tRank, tVal, param, seed) =>
            {
                var g = new Generator(seed);
                int cc = Math.Max(c, 0);
                int[] inShape = rank switch { 0 => [], 1 => [cc], _ => [2, cc, .. Enumerable.Repeat(2, rank - 2)] };
                var x = Tensor.Randn(inShape, g);
                int[] tShape = Enumerable.Range(0, tRank).Select(_ => 1 + g.NextInt(3)).ToArray();
                if (g.NextInt(2) == 0) tShape = rank switch { 0 => [], 1 => [], _ => [2, .. Enumerable.Repeat(2, rank - 2)] };
                var other = Tensor.Randn(g.NextInt(2) == 0 ? inShape : tShape, g);
                var idx = Tensor.Full(tShape, tVal, DType.Int64);
                var w = g.NextInt(3) == 0 ? Tensor.Ones(Math.Max(0, c + g.NextInt(3) - 1)) : null;
                string red = new[] { "mean", "sum", "none", "avg" }[g.NextInt(4)];
                var (name, call) = op switch
                {
                    0 => ("cross_entropy", () => F.CrossEntropy(x, idx, w, -100, red, param)),
                    1 => ("nll_loss", () => F.NllLoss(x, idx, w, 1, red)),
                    2 => ("cross_entropy", () => F.CrossEntropy(x, other, w, -100, red, param)),
                    3 => ("binary_cross_entropy_with_logits", () => F.BinaryCrossEntropyWithLogits(x, other, null, w, red)),
                    4 => ("smooth_l1_loss", () => F.SmoothL1Loss(x, other, red, param)),
                    _ => ("huber_loss", (Func<Tensor>)(() => F.HuberLoss(x, other, red, param))),
                };
                try
                {
                    var y = call();
                    int[] expected = red != "none" ? [] : op switch
                    {
                        0 or 1 => tShape,
                        2 => inShape.Where((_, i) => i != (rank == 1 ? 0 : 1)).ToArray(),
                        3 => inShape,
                        _ => ShapeUtil.Broadcast(inShape, other.Shape, "test"),
                    };
                    Assert.Equal(expected, y.Shape.ToArray());
                }
                catch (ArgumentException e) { Assert.StartsWith(name + ":", e.Message); }
            }, iter: 400);
    }

    [Fact]
    public void LossModulesRegisterBuffersAndMatchFunctional()
    {
        var g = new Generator(3);
        var w = Tensor.Rand([4], g, 0.5, 2);
        var ce = new CrossEntropyLoss(w, ignoreIndex: 1, labelSmoothing: 0.1);
        Assert.Equal(["weight"], ce.StateDict().Keys);
        Assert.Empty(ce.Parameters());
        Assert.Empty(new CrossEntropyLoss().StateDict());
        var bce = new BCEWithLogitsLoss(posWeight: Tensor.Ones(4));
        Assert.Equal(["pos_weight"], bce.StateDict().Keys);
        Assert.Equal(["weight", "pos_weight"], new BCEWithLogitsLoss(Tensor.Ones(4), posWeight: Tensor.Ones(4)).StateDict().Keys);
        Assert.Equal(["weight"], new NLLLoss(w).StateDict().Keys);

        var x = Tensor.Randn([3, 4], g); var t = Tensor.FromArray(new long[] { 0, 1, 3 }, 3);
        Assert.Equal(F.CrossEntropy(x, t, w, 1, "mean", 0.1).Item(), ce.Forward(x, t).Item());
        Assert.Equal(F.NllLoss(x, t, w, reduction: "sum").Item(), new NLLLoss(w, reduction: "sum").Call(x, t).Item());
        var y = Tensor.Randn([3, 4], g);
        Assert.Equal(F.MseLoss(x, y).Item(), new MSELoss().Forward(x, y).Item());
        Assert.Equal(F.L1Loss(x, y, "sum").Item(), new L1Loss("sum").Forward(x, y).Item());
        Assert.Equal(F.SmoothL1Loss(x, y, beta: 0.3).Item(), new SmoothL1Loss(beta: 0.3).Forward(x, y).Item());
        Assert.Equal(F.HuberLoss(x, y, delta: 0.3).ToArray(), new HuberLoss(delta: 0.3).Forward(x, y).ToArray());
        Assert.Equal(F.BinaryCrossEntropyWithLogits(x, y.Abs(), posWeight: Tensor.Ones(4)).Item(), bce.Forward(x, y.Abs()).Item());

        Assert.Throws<InvalidOperationException>(() => new MSELoss().Forward(x));
        Assert.StartsWith("MSELoss:", Assert.Throws<ArgumentException>(() => new MSELoss("avg")).Message);
        Assert.StartsWith("HuberLoss:", Assert.Throws<ArgumentException>(() => new HuberLoss(delta: 0)).Message);
        Assert.StartsWith("SmoothL1Loss:", Assert.Throws<ArgumentException>(() => new SmoothL1Loss(beta: -1)).Message);
        Assert.StartsWith("CrossEntropyLoss:", Assert.Throws<ArgumentException>(() => new CrossEntropyLoss(labelSmoothing: 2)).Message);
        Assert.Equal("HuberLoss(reduction=sum)", new HuberLoss("sum").ToString());
    }
}

internal static class LossTestExtensions
{
    /// <summary>Softmax over dim 1 built from core tensor ops (tests must not depend on another family's F.Softmax).</summary>
    public static Tensor Softmax1(this Tensor x)
    {
        var e = x.Exp();
        return e.Div(e.Sum([1], keepdim: true));
    }
}
