using CsCheck;
using ConvLab.Models;
using ConvLab.NN.Functional;
using Xunit;

namespace ConvLab.Tests;

/// <summary>The scale-pyramid network: parameter formula, pyramid by 2x2 averaging, shapes at any size, shared weights, gradient flow.</summary>
public class ScalePyramidTests
{
    private static long Expected(int cin, int w, int scales, int layers, int classes) =>
        (cin * w * 9L + w) + layers * (2L * w * w * 9 + w) + (scales * w * (long)classes + classes);

    [Fact]
    public void ParametersFollowTheDocumentedFormulaAndTheZooName()
    {
        var m = Zoo.Create("scale_pyramid", 10);
        Assert.Equal(57_258, m.Parameters().Sum(p => (long)p.Numel));
        Assert.Equal(Expected(3, 32, 3, 3, 10), m.Parameters().Sum(p => (long)p.Numel));
        Assert.Equal(new[] { "stem.weight", "stem.bias", "layers.0.same.weight", "layers.0.same.bias", "layers.0.coarser.weight" },
            m.NamedParameters().Take(5).Select(p => p.Name));
        Gen.Select(Gen.Int[1, 4], Gen.Int[1, 6], Gen.Int[1, 4], Gen.Int[0, 3], Gen.Int[1, 5]).Sample((cin, w, s, l, k) =>
            Assert.Equal(Expected(cin, w, s, l, k), new ScalePyramid(k, cin, w, s, l).Parameters().Sum(p => (long)p.Numel)), iter: 30);
    }

    [Fact]
    public void PyramidIsRepeatedTwoByTwoAveraging()
    {
        var m = new ScalePyramid(numScales: 3, width: 2, numLayers: 1);
        var x = Tensor.Randn([1, 3, 9, 8], new Generator(1));
        var p = m.Pyramid(x);
        Assert.Equal([1, 3, 4, 4], p[1].Shape.ToArray());
        Assert.Equal([1, 3, 2, 2], p[2].Shape.ToArray());
        double avg = (x[0, 2, 2, 2] + x[0, 2, 2, 3] + x[0, 2, 3, 2] + x[0, 2, 3, 3]) / 4;
        Assert.Equal(avg, p[1][0, 2, 1, 1], 5);
        Assert.Throws<ArgumentException>(() => m.Pyramid(Tensor.Zeros(1, 3, 3, 8)));
        Assert.Throws<ArgumentException>(() => m.Forward(Tensor.Zeros(1, 1, 8, 8)));
    }

    [Fact]
    public void OutputsClassScoresAtAnySizeAndMatchesTheSharedWeightFormula()
    {
        var g = new Generator(3);
        var m = new ScalePyramid(numClasses: 4, inChannels: 2, width: 3, numScales: 2, numLayers: 1, generator: g);
        var x = Tensor.Randn([2, 2, 7, 5], g);
        var y = m.Forward(x);
        Assert.Equal([2, 4], y.Shape.ToArray());
        Assert.Equal([1, 4], m.Forward(Tensor.Randn([1, 2, 32, 32], g)).Shape.ToArray());

        // Reference: both scales through the same stem and the same layer-0 convolutions.
        var P = m.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
        Tensor Conv(Tensor t, string n, bool bias = true) => F.Conv2d(t, P[n + ".weight"], bias ? P[n + ".bias"] : null, padding: [1]);
        var f0 = F.Relu(Conv(x, "stem"));
        var f1 = F.Relu(Conv(F.AvgPool2d(x, [2]), "stem"));
        var g0 = F.Relu(Conv(f0, "layers.0.same").Add(Conv(F.Interpolate(f1, size: [7, 5]), "layers.0.coarser", false)));
        var g1 = F.Relu(Conv(f1, "layers.0.same"));
        var expected = F.Linear(Tensor.Cat([F.GlobalAvgPool2d(g0).Flatten(1), F.GlobalAvgPool2d(g1).Flatten(1)], 1), P["fc.weight"], P["fc.bias"]);
        Assert.Equal(expected.ToArray(), y.ToArray());
    }

    [Fact]
    public void GradientsReachEveryParameterAndTheInput()
    {
        var g = new Generator(5);
        var m = new ScalePyramid(numClasses: 3, width: 4, numScales: 3, numLayers: 2, generator: g);
        var x = Tensor.Randn([2, 3, 12, 12], g).RequiresGrad_();
        m.Forward(x).Pow(2).Sum().Backward();
        foreach (var (name, p) in m.NamedParameters())
            Assert.True(p.Grad!.Abs().Sum().Item() > 0, $"no gradient reached {name}");
        Assert.True(x.Grad!.Abs().Sum().Item() > 0);
    }
}
