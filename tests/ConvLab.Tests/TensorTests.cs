using CsCheck;
using ConvLab.Autograd;
using Xunit;

namespace ConvLab.Tests;

public class TensorTests
{
    private static Tensor Seq(params int[] shape) => Tensor.Arange(0, ShapeUtil.Numel(shape)).Reshape(shape);

    [Fact]
    public void ViewsShareStorageAndHaveExpectedStrides()
    {
        var t = Seq(2, 3, 4);
        var p = t.Permute(2, 0, 1);
        Assert.Equal([4, 2, 3], p.Shape.ToArray());
        Assert.Equal([1, 12, 4], p.Strides.ToArray());
        Assert.False(p.IsContiguous);
        Assert.Same(t.Storage, p.Storage);
        Assert.Equal(t[1, 2, 3], p[3, 1, 2]);
        var s = t.Slice(2, 1, 4, 2);
        Assert.Equal([2, 3, 2], s.Shape.ToArray());
        Assert.Equal(t[1, 1, 3], s[1, 1, 1]);
        Assert.Same(t.Storage, t.Reshape(6, 4).Storage);
        var e = Tensor.Of(1, 2, 3).Reshape(3, 1).Expand(3, 4);
        Assert.Equal(0, e.Strides[1]);
        Assert.Equal(3.0, e[2, 3]);
        Assert.Equal([2, 1, 3, 4], t.Unsqueeze(1).Shape.ToArray());
        Assert.Equal([2, 3, 4], t.Unsqueeze(-1).Squeeze().Shape.ToArray());
        Assert.Equal([2, 12], t.Flatten(1).Shape.ToArray());
        Assert.Equal(t[1, 2, 3], t.Select(0, -1)[2, 3]);
    }

    [Fact]
    public void ReshapeOfNonContiguousCopiesAndViewRefuses()
    {
        var t = Seq(2, 3).T;
        Assert.Throws<InvalidOperationException>(() => t.View(6));
        Assert.Equal([0f, 3, 1, 4, 2, 5], t.Reshape(6).ToArray());
        Assert.Equal([3, 2], t.Reshape(-1, 2).Shape.ToArray());
        TestUtil.AssertOpError("reshape", () => t.Reshape(4, -1));
        TestUtil.AssertOpError("view", () => Seq(6).View(-1, -1));
    }

    [Fact]
    public void BroadcastingArithmeticMatchesHandComputation()
    {
        var a = Tensor.FromArray([1f, 2, 3], 3, 1);
        var b = Tensor.FromArray([10f, 20], 2);
        Assert.Equal([11f, 21, 12, 22, 13, 23], (a + b).ToArray());
        Assert.Equal([-9f, -19, -8, -18, -7, -17], (a - b).ToArray());
        Assert.Equal([10f, 20, 20, 40, 30, 60], (a * b).ToArray());
        Assert.Equal([2f, 4, 6], (a * 2).ToArray());
        Assert.Equal([0.5f, 1, 1.5f], (a / 2).ToArray());
        TestUtil.AssertOpError("add", () => Tensor.Zeros(2, 3).Add(Tensor.Zeros(4)));
        var d = Tensor.FromArray([1.0, 2.0], 2);
        Assert.Equal(DType.Float64, (d + Tensor.Of(1, 1)).DType);
    }

    [Fact]
    public void ReductionsOverDims()
    {
        var t = Seq(2, 3, 4);
        Assert.Equal(276.0, t.Sum().Item());
        Assert.Equal([1, 3, 1], t.Sum([0, 2], keepdim: true).Shape.ToArray());
        Assert.Equal([12f + 13 + 14 + 15 + 0 + 1 + 2 + 3, 16 + 17 + 18 + 19 + 4 + 5 + 6 + 7, 20 + 21 + 22 + 23 + 8 + 9 + 10 + 11], t.Sum([0, 2]).ToArray());
        Assert.Equal(11.5, t.Mean().Item(), 6);
        var (v, i) = Tensor.FromArray([3f, 7, 7, 1, 9, 2], 2, 3).Max(1);
        Assert.Equal([7f, 9], v.ToArray());
        Assert.Equal([1L, 1], i.ToInt64Array());
        Assert.Equal(4L, Tensor.FromArray([3f, 7, 7, 1, 9, 2], 2, 3).ArgMax().ToInt64Array()[0]);
        TestUtil.AssertOpError("sum", () => t.Sum([3]));
        TestUtil.AssertOpError("sum", () => t.Sum([1, -2]));
    }

    [Fact]
    public void MatmulFollowsPyTorchRules()
    {
        var a = Seq(2, 3); var b = Seq(3, 2);
        Assert.Equal([10f, 13, 28, 40], a.Matmul(b).ToArray());
        Assert.Equal([5f, 14], a.Matmul(Tensor.Of(0, 1, 2)).ToArray());
        Assert.Equal(new[] { 4, 2, 5 }, Tensor.Zeros(4, 2, 3).Matmul(Tensor.Zeros(3, 5)).Shape.ToArray());
        Assert.Equal(new[] { 2, 4, 2, 5 }, Tensor.Zeros(4, 2, 3).Matmul(Tensor.Zeros(2, 1, 3, 5)).Shape.ToArray());
        TestUtil.AssertOpError("matmul", () => Seq(2, 3).Matmul(Seq(2, 3)));
        TestUtil.AssertOpError("bmm", () => Seq(2, 2, 3).Bmm(Seq(3, 3, 2)));
    }

    [Fact]
    public void GemmMatchesNaiveProductOnOddSizesAndTransposes()
    {
        Gen.Select(Gen.Int[1, 37], Gen.Int[1, 37], Gen.Int[0, 300], Gen.Bool, Gen.Bool).Sample((m, n, k, ta, tb) =>
        {
            var g = new Generator((ulong)(m * 1000 + n * 10 + k));
            var a = Tensor.Randn([ta ? k : m, ta ? m : k], g, dtype: DType.Float64).Buffer<double>();
            var b = Tensor.Randn([tb ? n : k, tb ? k : n], g, dtype: DType.Float64).Buffer<double>();
            var c = new double[m * n];
            Kernels.Gemm.Run(ta, tb, m, n, k, a, 0, ta ? m : k, b, 0, tb ? k : n, c, 0, n, false);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double s = 0;
                    for (int p = 0; p < k; p++) s += (ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
                    Assert.Equal(s, c[i * n + j], 1e-9 * (1 + Math.Abs(s)));
                }
        }, iter: 40);
    }

    [Fact]
    public void CatStackSplit()
    {
        var a = Seq(2, 2); var b = Seq(2, 1) + 100;
        var c = Tensor.Cat([a, b], 1);
        Assert.Equal([0f, 1, 100, 2, 3, 101], c.ToArray());
        Assert.Equal([2, 2, 2], Tensor.Stack([a, a], 2).Shape.ToArray());
        var parts = Seq(7).Split(3);
        Assert.Equal([3, 3, 1], parts.Select(p => p.Numel).ToArray());
        Assert.Equal([2, 5], Seq(7).Split([2, 5]).Select(p => p.Numel).ToArray());
        TestUtil.AssertOpError("cat", () => Tensor.Cat([a, Seq(3, 1)], 1));
        TestUtil.AssertOpError("stack", () => Tensor.Stack([a, b]));
        TestUtil.AssertOpError("split", () => Seq(7).Split([2, 4]));
    }

    [Fact]
    public void RandomGeneratorsAreSeededAndInitialisersUsePyTorchBounds()
    {
        var x1 = Tensor.Randn([1000], new Generator(7));
        var x2 = Tensor.Randn([1000], new Generator(7));
        Assert.Equal(x1.ToArray(), x2.ToArray());
        Assert.InRange(x1.Mean().Item(), -0.15, 0.15);
        var u = Tensor.Rand([1000], new Generator(3), -2, 2);
        Assert.All(u.ToArray(), v => Assert.InRange(v, -2f, 2f));
        var w = Tensor.Zeros(64, 3, 3, 3);
        NN.Init.KaimingUniform_(w, a: Math.Sqrt(5), generator: new Generator(1));
        double bound = 1 / Math.Sqrt(27); // gain sqrt(2/(1+5)) * sqrt(3/fan_in)
        Assert.All(w.ToArray(), v => Assert.InRange(v, -bound, bound));
        Assert.True(w.Abs().Max().Item() > 0.9 * bound);
        var xav = Tensor.Zeros(20, 30);
        NN.Init.XavierUniform_(xav, generator: new Generator(1));
        Assert.All(xav.ToArray(), v => Assert.InRange(v, -Math.Sqrt(6.0 / 50), Math.Sqrt(6.0 / 50)));
        Assert.Equal((27, 576), NN.Init.CalculateFanInAndFanOut(w));
    }

    [Fact]
    public void PrettyPrintingLooksLikePyTorch()
    {
        Assert.Equal("tensor([[ 1.5000, -2.0000],\n        [ 0.2500,  3.0000]])", Tensor.FromArray([1.5f, -2, 0.25f, 3], 2, 2).ToString());
        Assert.Equal("tensor([1., 2., 3.])", Tensor.Of(1, 2, 3).ToString());
        Assert.Equal("tensor([0, 2], dtype=int64)", Tensor.FromArray([0L, 2], 2).ToString());
        Assert.Contains("...", Tensor.Zeros(2000).ToString());
        Assert.Contains("requires_grad=True", Tensor.Zeros(2).RequiresGrad_().ToString());
    }
}
