using ConvLab.NN;
using ConvLab.NN.Functional;
using CsCheck;
using Xunit;

namespace ConvLab.Tests;

public class ActivationTests
{
    /// <summary>Every activation with random parameters: (name, function, points where it has a kink).</summary>
    private static (string Name, Func<Tensor, Tensor> F, double[] Kinks)[] Activations(double a, double b) =>
    [
        ("relu", F.Relu, [0]),
        ("leaky_relu", x => F.LeakyRelu(x, a), [0]),
        ("sigmoid", F.Sigmoid, []),
        ("tanh", F.Tanh, []),
        ("gelu", x => F.Gelu(x), []),
        ("gelu_tanh", x => F.Gelu(x, "tanh"), []),
        ("silu", F.Silu, []),
        ("elu", x => F.Elu(x, a), [0]),
        ("hardswish", F.Hardswish, [-3, 3]),
        ("relu6", F.Relu6, [0, 6]),
        ("softplus", x => F.Softplus(x, b, 2 * b), [2]),
        ("hardsigmoid", F.Hardsigmoid, [-3, 3]),
    ];

    /// <summary>Moves elements away from kinks so finite differences never straddle one.</summary>
    private static Tensor AwayFromKinks(Tensor x, double[] kinks)
    {
        var d = x.ToDoubleArray();
        for (int i = 0; i < d.Length; i++)
            foreach (var k in kinks)
                if (Math.Abs(d[i] - k) < 1e-3) d[i] = k + 1e-2;
        return Tensor.FromArray(d, x.Shape.ToArray()).RequiresGrad_();
    }

    [Fact]
    public void EveryActivationPassesGradCheckOnRandomShapesAndParameters()
    {
        Gen.Select(Gen.Int[1, 3].Array[0, 3], Gen.Double[0.01, 2], Gen.Double[0.5, 3], Gen.Double[0.5, 4], Gen.UInt).Sample((shape, a, beta, scale, seed) =>
        {
            var g = new Generator(seed);
            foreach (var (name, f, kinks) in Activations(a, beta))
            {
                var x = AwayFromKinks(Tensor.Randn(shape, g, std: scale, dtype: DType.Float64), kinks);
                var r = Autograd.GradCheck.Check(t => f(t[0]), [x]);
                Assert.True(r.Ok, $"{name}: {r.Message}");
            }
        }, iter: 15, threads: 1);
    }

    [Fact]
    public void GradientsAtKinksFollowPyTorch()
    {
        static double Grad(Func<Tensor, Tensor> f, double v)
        {
            var x = Tensor.FromArray([v], 1).RequiresGrad_();
            f(x).Sum().Backward();
            return x.Grad!.Item();
        }
        Assert.Equal(0, Grad(F.Relu, 0));
        Assert.Equal(0.2, Grad(x => F.LeakyRelu(x, 0.2), 0), 12);
        Assert.Equal(0, Grad(F.Relu6, 0));
        Assert.Equal(0, Grad(F.Relu6, 6));
        Assert.Equal(1, Grad(F.Relu6, 3));
        Assert.Equal(-0.5, Grad(F.Hardswish, -3), 12);
        Assert.Equal(1.5, Grad(F.Hardswish, 3), 12);
        Assert.Equal(0, Grad(F.Hardswish, -4));
        Assert.Equal(0, Grad(F.Hardsigmoid, 3));
        Assert.Equal(1.0 / 6, Grad(F.Hardsigmoid, 0), 12);
        Assert.Equal(1.5, Grad(x => F.Elu(x, 1.5), 0), 12);
        Assert.Equal(1, Grad(x => F.Softplus(x, 1, 20), 25));
        Assert.Equal(0.5, Grad(x => F.Gelu(x), 0), 12);
    }

    [Fact]
    public void ValuesMatchClosedForms()
    {
        var x = Tensor.FromArray([-30, -5, -3, -1, -1e-3, 0, 1e-3, 0.5, 2, 3, 7, 40.0], 12);
        var xs = x.ToDoubleArray();
        void Check(Func<Tensor, Tensor> f, Func<double, double> want, double tol = 1e-13)
        {
            var y = f(x).ToDoubleArray();
            for (int i = 0; i < xs.Length; i++) Assert.True(Math.Abs(y[i] - want(xs[i])) <= tol * (1 + Math.Abs(want(xs[i]))), $"x={xs[i]}: {y[i]} vs {want(xs[i])}");
        }
        Check(F.Sigmoid, v => 1 / (1 + Math.Exp(-v)));
        Check(F.Tanh, Math.Tanh);
        Check(F.Relu, v => Math.Max(v, 0));
        Check(F.Silu, v => v / (1 + Math.Exp(-v)));
        Check(x => F.Elu(x, 2), v => v > 0 ? v : 2 * (Math.Exp(v) - 1));
        Check(F.Hardswish, v => v * Math.Clamp(v + 3, 0, 6) / 6);
        Check(F.Hardsigmoid, v => Math.Clamp(v + 3, 0, 6) / 6);
        Check(F.Relu6, v => Math.Clamp(v, 0, 6));
        Check(x => F.Softplus(x, 2, 20), v => 2 * v > 20 ? v : Math.Log(1 + Math.Exp(2 * v)) / 2);
        Check(x => F.Gelu(x, "tanh"), v => 0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v))));
        // float32 runs the same kernels (and the TensorPrimitives fast paths).
        var y32 = F.Silu(x.Float()).ToDoubleArray(); var y64 = F.Silu(x).ToDoubleArray();
        for (int i = 0; i < xs.Length; i++) Assert.Equal(y64[i], y32[i], 1e-5 * (1 + Math.Abs(y64[i])));
    }

    [Theory]
    [InlineData(0.1, 0.112462916018284892203275071744)]
    [InlineData(0.5, 0.520499877813046537682746653892)]
    [InlineData(1.0, 0.842700792949714869341220635083)]
    [InlineData(2.0, 0.995322265018952734162069256367)]
    [InlineData(2.5, 0.999593047982555041060435784260)]
    [InlineData(3.0, 0.999977909503001414558627223870)]
    [InlineData(4.0, 0.999999984582742099719981147840)]
    [InlineData(-1.5, -0.966105146475310713936933729949)]
    [InlineData(1e-9, 1.128379167095512573896158903122e-9)]
    [InlineData(7.0, 1.0)]
    public void ErfIsAccurateToAboutOneEMinus15(double x, double want)
    {
        double got = Kernels.Activation.Erf(x);
        Assert.True(Math.Abs(got - want) <= 2e-15 * Math.Abs(want), $"erf({x}) = {got:R}, expected {want:R}");
    }

    [Fact]
    public void SoftmaxAndLogSoftmaxGradCheckOnRandomDims()
    {
        Gen.Select(Gen.Int[1, 3].Array[1, 4], Gen.Int[-4, 3], Gen.Double[0.5, 5], Gen.UInt).Sample((shape, dim, scale, seed) =>
        {
            int d = ((dim % shape.Length) + shape.Length) % shape.Length;
            var g = new Generator(seed);
            var x = Tensor.Randn(shape, g, std: scale, dtype: DType.Float64).RequiresGrad_();
            TestUtil.AssertGradCheck(t => F.Softmax(t[0], d), [x]);
            TestUtil.AssertGradCheck(t => F.LogSoftmax(t[0], d - shape.Length), [x]);
            using var _ = new Autograd.NoGrad();
            var s = F.Softmax(x, d);
            Assert.True(s.Sum(d).AllClose(Tensor.Ones(s.Sum(d).Shape, DType.Float64), 1e-12, 1e-12));
            Assert.True(F.LogSoftmax(x, d).AllClose(s.Log(), 1e-10, 1e-12));
        }, iter: 20, threads: 1);
    }

    [Fact]
    public void SoftmaxIsStableForLargeInputs()
    {
        var x = Tensor.FromArray([1000f, 1001f, 999f, -1000f], 1, 4);
        var s = F.Softmax(x, 1).ToArray();
        Assert.All(s, v => Assert.False(float.IsNaN(v)));
        Assert.Equal(1.0, s.Sum(), 5);
        var l = F.LogSoftmax(x, -1).ToArray();
        Assert.Equal(-2001.4076, l[3], 3);
        var t = F.Softmax(Tensor.FromArray([1000f, -1000f, 1000f, 1000f], 2, 2), 0).ToArray();
        Assert.Equal([0.5f, 0f, 0.5f, 1f], t);
    }

    [Fact]
    public void InvalidArgumentsThrowArgumentExceptionNamingTheOp()
    {
        Gen.Select(Gen.Int[1, 3].Array[0, 3], Gen.Int[-5, 5], Gen.Double[-0.5, 1.5], Gen.UInt).Sample((shape, dim, p, seed) =>
        {
            var x = Tensor.Randn(shape, new Generator(seed));
            int r = Math.Max(shape.Length, 1);
            bool dimOk = dim >= -r && dim < r;
            NormTests.Expect("softmax", dimOk, shape, () => F.Softmax(x, dim));
            NormTests.Expect("log_softmax", dimOk, shape, () => F.LogSoftmax(x, dim));
            NormTests.Expect("dropout", p >= 0 && p <= 1, shape, () => F.Dropout(x, p, generator: new Generator(seed)));
            NormTests.Expect("dropout2d", p >= 0 && p <= 1 && shape.Length >= 2, shape, () => F.Dropout2d(x, p, generator: new Generator(seed)));
            NormTests.Expect("gelu", p < 0.5, shape, () => F.Gelu(x, p < 0.5 ? "tanh" : "exact"));
            NormTests.Expect("relu", true, shape, () => F.Relu(x));
        }, iter: 300, threads: 1);
        TestUtil.AssertOpError("sigmoid", () => F.Sigmoid(Tensor.Zeros([2], DType.Int64)));
        TestUtil.AssertOpError("GELU", () => new GELU("fast"));
    }

    [Fact]
    public void ActivationModulesMatchTheFunctionalOps()
    {
        var x = Tensor.Randn([2, 3, 4], new Generator(8));
        var pairs = new (Module M, Tensor Want)[]
        {
            (new ReLU(), F.Relu(x)), (new LeakyReLU(0.2), F.LeakyRelu(x, 0.2)), (new Sigmoid(), F.Sigmoid(x)),
            (new Tanh(), F.Tanh(x)), (new GELU("tanh"), F.Gelu(x, "tanh")), (new SiLU(), F.Silu(x)),
            (new ELU(0.5), F.Elu(x, 0.5)), (new Hardswish(), F.Hardswish(x)), (new Hardsigmoid(), F.Hardsigmoid(x)),
            (new ReLU6(), F.Relu6(x)), (new Softplus(2, 10), F.Softplus(x, 2, 10)), (new Softmax(1), F.Softmax(x, 1)),
            (new LogSoftmax(-1), F.LogSoftmax(x, -1)),
        };
        foreach (var (m, want) in pairs)
        {
            Assert.Empty(m.StateDict());
            Assert.Equal(want.ToArray(), m.Forward(x).ToArray());
        }
    }
}
