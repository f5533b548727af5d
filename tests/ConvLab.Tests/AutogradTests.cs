using CsCheck;
using ConvLab.Autograd;
using ConvLab.NN.Functional;
using Xunit;

namespace ConvLab.Tests;

public class AutogradTests
{
    [Fact]
    public void ALeafKeepsAConvGradientWithoutAliasingAnotherUse()
    {
        // The engine hands a convolution's fresh weight gradient to the leaf without copying it; a second use of the
        // same weight must then accumulate into it, and the input's gradient must not alias anything either.
        var g = new Generator(3);
        var x = Tensor.Randn([2, 3, 6, 6], g).RequiresGrad_();
        var w = Tensor.Randn([4, 3, 3, 3], g).RequiresGrad_();
        var once = F.Conv2d(x, w, padding: [1, 1]);
        once.Sum().Backward();
        var gw1 = w.Grad!.ToArray(); var gx1 = x.Grad!.ToArray();
        x.Grad = null; w.Grad = null;
        var twice = F.Conv2d(x, w, padding: [1, 1]).Add(F.Conv2d(x, w, padding: [1, 1])).Add(x.Sum());
        twice.Sum().Backward();
        Assert.Equal(gw1.Select(v => 2 * v), w.Grad!.ToArray(), new ToleranceComparer(1e-5));
        Assert.Equal(gx1.Select(v => 2 * v + 2 * 4 * 6 * 6), x.Grad!.ToArray(), new ToleranceComparer(1e-4));
        Assert.False(ReferenceEquals(w.Grad.Storage, x.Grad.Storage));
    }

    private sealed class ToleranceComparer(double tol) : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) <= tol * Math.Max(1, Math.Abs(a));
        public int GetHashCode(float v) => 0;
    }

    [Fact]
    public void GradientsAccumulateAcrossUsesAndCalls()
    {
        var x = Tensor.Of(2, 3).RequiresGrad_();
        var y = (x * x + x).Sum();  // dy/dx = 2x + 1
        y.Backward();
        Assert.Equal([5f, 7], x.Grad!.ToArray());
        (x * 3).Sum().Backward();
        Assert.Equal([8f, 10], x.Grad!.ToArray());
    }

    [Fact]
    public void SecondBackwardNeedsRetainGraph()
    {
        var x = Tensor.Of(1, 2).RequiresGrad_();
        var y = (x * x).Sum();
        y.Backward(retainGraph: true);
        y.Backward();
        Assert.Equal([4f, 8], x.Grad!.ToArray());
        var ex = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains("second time", ex.Message);
    }

    [Fact]
    public void NonScalarBackwardNeedsAnUpstreamGradient()
    {
        var x = Tensor.Of(1, 2, 3).RequiresGrad_();
        var y = x * 2;
        Assert.Throws<InvalidOperationException>(() => y.Backward());
        y.Backward(Tensor.Of(1, 10, 100));
        Assert.Equal([2f, 20, 200], x.Grad!.ToArray());
        Assert.Throws<ArgumentException>(() => (x * 2).Backward(Tensor.Of(1, 2)));
    }

    [Fact]
    public void NoGradAndDetachRecordNothing()
    {
        var x = Tensor.Of(1, 2).RequiresGrad_();
        using (new NoGrad())
        {
            var y = x * 2;
            Assert.False(y.RequiresGrad);
            Assert.Null(y.GradFn);
        }
        Assert.True((x * 2).RequiresGrad);
        var d = x.Detach();
        Assert.False(d.RequiresGrad);
        Assert.Same(x.Storage, d.Storage);
        Assert.Throws<InvalidOperationException>(() => (x * 2).Sum().Detach().Backward());
    }

    [Fact]
    public void InPlaceChangesOfTensorsThatRequireGradAreRefused()
    {
        var x = Tensor.Of(1, 2).RequiresGrad_();
        Assert.Throws<InvalidOperationException>(() => x.Fill_(0));
        using (new NoGrad()) x.Fill_(0);
        Assert.Equal([0f, 0], x.ToArray());
        Assert.Throws<InvalidOperationException>(() => Tensor.FromArray([1L], 1).RequiresGrad_());
    }

    [Fact]
    public void DeepChainDoesNotOverflowTheStack()
    {
        var x = Tensor.Of(1).RequiresGrad_();
        var y = x;
        for (int i = 0; i < 20000; i++) y = y.AddScalar(1);
        y.Sum().Backward();
        Assert.Equal(1f, x.Grad!.ToArray()[0]);
    }

    private static readonly Gen<int[]> SmallShape = Gen.Int[1, 4].Array[1, 3];

    [Fact]
    public void BroadcastBinaryOpsPassGradCheck()
    {
        Gen.Select(SmallShape, Gen.Int[0, 3], Gen.Int[0, 7], Gen.Int[0, 1000]).Sample((shape, op, mask, seed) =>
        {
            var g = new Generator((ulong)seed);
            // Broadcast partner: some dims set to 1, maybe fewer leading dims.
            var other = shape.Select((s, i) => (mask >> i & 1) == 1 ? 1 : s).Skip(mask % 2).ToArray();
            var a = TestUtil.RandD(g, shape);
            var b = Tensor.Rand(other, g, 0.5, 2, DType.Float64).RequiresGrad_();
            TestUtil.AssertGradCheck(x => op switch { 0 => x[0].Add(x[1]), 1 => x[0].Sub(x[1]), 2 => x[0].Mul(x[1]), _ => x[0].Div(x[1]) }, [a, b]);
        }, iter: 30);
    }

    [Fact]
    public void ViewsAndReductionsPassGradCheck()
    {
        Gen.Select(Gen.Int[1, 3], Gen.Int[2, 4], Gen.Int[1, 4], Gen.Bool, Gen.Int[0, 1000]).Sample((a0, a1, a2, keep, seed) =>
        {
            var g = new Generator((ulong)seed);
            var x = TestUtil.RandD(g, a0, a1, a2);
            TestUtil.AssertGradCheck(t => t[0].Permute(2, 0, 1).Reshape(-1, a0).Mul(t[0].Transpose(0, 2).Reshape(-1, a0)), [x]);
            TestUtil.AssertGradCheck(t => t[0].Slice(1, 1, a1, 2).Sum([0, 2], keep), [x]);
            TestUtil.AssertGradCheck(t => t[0].Mean([1], keep).Unsqueeze(0).Expand(2, -1, -1, -1).Squeeze(), [x]);
            TestUtil.AssertGradCheck(t => t[0].Max(1, keep).Values, [x]);
            TestUtil.AssertGradCheck(t => Tensor.Cat([t[0], t[0].Exp()], 2).Split(2, 2)[0], [x]);
            TestUtil.AssertGradCheck(t => Tensor.Stack([t[0], t[0].Pow(2)], 1).Flatten(0, 1), [x]);
            var p = Tensor.Rand([a0, a1, a2], g, 0.5, 3, DType.Float64).RequiresGrad_();
            TestUtil.AssertGradCheck(t => t[0].Log().Abs().AddScalar(0.1).Sqrt(), [p]);
        }, iter: 12);
    }

    [Fact]
    public void MatmulPassesGradCheckIncludingVectorAndBroadcastForms()
    {
        Gen.Select(Gen.Int[1, 4], Gen.Int[1, 4], Gen.Int[1, 4], Gen.Int[0, 4], Gen.Int[0, 1000]).Sample((n, m, p, form, seed) =>
        {
            var g = new Generator((ulong)seed);
            Tensor a, b;
            switch (form)
            {
                case 0: a = TestUtil.RandD(g, n, m); b = TestUtil.RandD(g, m, p); break;
                case 1: a = TestUtil.RandD(g, 2, n, m); b = TestUtil.RandD(g, m); break;
                case 2: a = TestUtil.RandD(g, m); b = TestUtil.RandD(g, 3, m, p); break;
                case 3: a = TestUtil.RandD(g, 2, 1, n, m); b = TestUtil.RandD(g, 3, m, p); break;
                default: a = TestUtil.RandD(g, 2, n, m); b = TestUtil.RandD(g, 2, m, p); break;
            }
            TestUtil.AssertGradCheck(t => form == 4 ? t[0].Bmm(t[1]) : t[0].Matmul(t[1]), [a, b]);
        }, iter: 25);
    }

    [Fact]
    public void TensorOpsRejectInvalidArgumentsWithNamedErrors()
    {
        Gen.Select(Gen.Int[-2, 4].Array[0, 4], Gen.Int[-5, 5], Gen.Int[-5, 5]).Sample((shape, d0, d1) =>
        {
            Tensor t;
            try { t = Tensor.Zeros(shape); }
            catch (ArgumentException e) { Assert.StartsWith("shape:", e.Message); return; }
            void Check(string op, Func<object> f)
            {
                try { f(); }
                catch (ArgumentException e) { Assert.StartsWith(op + ":", e.Message); }
            }
            Check("sum", () => t.Sum([d0]));
            Check("transpose", () => t.Transpose(d0, d1));
            Check("slice", () => t.Slice(d0, d1, d1 + 2));
            Check("unsqueeze", () => t.Unsqueeze(d0));
            Check("flatten", () => t.Flatten(d0, d1));
            Check("narrow", () => t.Narrow(d0, d1, 2));
            Check("select", () => t.Select(d0, d1));
            Check("expand", () => t.Expand(d0 < 0 ? [3] : [.. shape, 2]));
            Check("reshape", () => t.Reshape(d0, d1));
            Check("permute", () => t.Permute(Enumerable.Range(0, shape.Length).Select(i => (i + d0 + 10) % Math.Max(1, shape.Length)).ToArray()));
            Check("max", () => t.Max(d0));
        }, iter: 300);
    }
}
