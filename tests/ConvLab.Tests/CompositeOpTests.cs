using CsCheck;
using ConvLab.NN;
using ConvLab.NN.Functional;
using Xunit;

namespace ConvLab.Tests;

/// <summary>Gradient and validation properties of the ops that are compositions or live outside a family file: linear, dropout, global pooling, separable convolution.</summary>
public class CompositeOpTests
{
    [Fact]
    public void LinearPassesGradCheckOverRandomShapes()
    {
        Gen.Select(Gen.Int[0, 2], Gen.Int[1, 4], Gen.Int[1, 5], Gen.Int[1, 4], Gen.Bool, Gen.Int[0, 1000]).Sample((lead, rows, inF, outF, bias, seed) =>
        {
            var g = new Generator((ulong)seed);
            int[] shape = lead switch { 0 => [inF], 1 => [rows, inF], _ => [2, rows, inF] };
            var x = TestUtil.RandD(g, shape);
            var w = TestUtil.RandD(g, outF, inF);
            var b = TestUtil.RandD(g, outF);
            TestUtil.AssertGradCheck(t => F.Linear(t[0], t[1], bias ? t[2] : null), [x, w, b]);
            Assert.Equal([.. shape[..^1], outF], F.Linear(x, w, b).Shape.ToArray());
        }, iter: 25);
    }

    [Fact]
    public void LinearRejectsInvalidShapesWithNamedErrors()
    {
        Gen.Select(Gen.Int[0, 3].Array[0, 3], Gen.Int[0, 3].Array[0, 3], Gen.Int[0, 3].Array[0, 2]).Sample((xs, ws, bs) =>
        {
            var x = Tensor.Zeros(xs); var w = Tensor.Zeros(ws); var b = Tensor.Zeros(bs);
            bool valid = ws.Length == 2 && xs.Length >= 1 && xs[^1] == ws[1] && bs.Length == 1 && bs[0] == ws[0];
            if (valid) Assert.Equal([.. xs[..^1], ws[0]], F.Linear(x, w, b).Shape.ToArray());
            else TestUtil.AssertOpError("linear", () => F.Linear(x, w, b));
        }, iter: 400);
    }

    [Fact]
    public void DropoutWithAFixedMaskPassesGradCheck()
    {
        Gen.Select(Gen.Int[1, 3], Gen.Int[1, 4], Gen.Int[1, 4], Gen.Double[0, 0.9], Gen.Int[0, 1000]).Sample((n, c, h, p, seed) =>
        {
            var x = TestUtil.RandD(new Generator((ulong)seed), n, c, h, 3);
            // A fresh generator with the same seed in every evaluation gives the same mask, so the op is a fixed linear map.
            TestUtil.AssertGradCheck(t => F.Dropout(t[0], p, generator: new Generator((ulong)seed)), [x]);
            TestUtil.AssertGradCheck(t => F.Dropout2d(t[0], p, generator: new Generator((ulong)seed)), [x]);
        }, iter: 15);
    }

    [Fact]
    public void GlobalAveragePoolingIsTheSpatialMeanAndPassesGradCheck()
    {
        Gen.Select(Gen.Int[1, 3], Gen.Int[1, 4], Gen.Int[1, 5], Gen.Int[1, 5], Gen.Int[0, 1000]).Sample((n, c, h, w, seed) =>
        {
            var x = TestUtil.RandD(new Generator((ulong)seed), n, c, h, w);
            var y = F.GlobalAvgPool2d(x);
            Assert.Equal([n, c, 1, 1], y.Shape.ToArray());
            Assert.True(y.AllClose(x.Mean([2, 3], keepdim: true), 1e-12, 1e-12));
            TestUtil.AssertGradCheck(t => F.GlobalAvgPool2d(t[0]), [x]);
        }, iter: 15);
    }

    [Fact]
    public void DepthwiseSeparableModuleIsDepthwiseThenPointwiseAndPassesGradCheck()
    {
        Gen.Select(Gen.Int[1, 3], Gen.Int[1, 4], Gen.Int[1, 2], Gen.Int[1, 2], Gen.Int[0, 1000]).Sample((cin, cout, mult, stride, seed) =>
        {
            var m = new DepthwiseSeparableConv2d(cin, cout, 3, stride: stride, padding: 1, depthMultiplier: mult, generator: new Generator((ulong)seed));
            var x = Tensor.Randn([2, cin, 5, 6], new Generator((ulong)seed + 1));
            var want = F.Conv2d(F.Conv2d(x, m.Depthwise.Weight, m.Depthwise.Bias, [stride, stride], [1, 1], groups: cin), m.Pointwise.Weight, m.Pointwise.Bias);
            Assert.True(m.Forward(x).AllClose(want, 1e-6, 1e-6));
            Assert.Equal([cin * mult, 1, 3, 3], m.Depthwise.Weight.Shape.ToArray());
            Assert.Equal([cout, cin * mult, 1, 1], m.Pointwise.Weight.Shape.ToArray());
            // The same composition in float64, checked numerically.
            var g = new Generator((ulong)seed + 2);
            var xd = TestUtil.RandD(g, 1, cin, 4, 5);
            var dw = TestUtil.RandD(g, cin * mult, 1, 3, 3);
            var pw = TestUtil.RandD(g, cout, cin * mult, 1, 1);
            TestUtil.AssertGradCheck(t => F.Conv2d(F.Conv2d(t[0], t[1], null, [stride, stride], [1, 1], groups: cin), t[2]), [xd, dw, pw]);
        }, iter: 10);
        Assert.Equal(["depthwise.weight", "depthwise.bias", "pointwise.weight", "pointwise.bias"],
            new DepthwiseSeparableConv2d(4, 8, 3).StateDict().Keys.ToArray());
    }
}
