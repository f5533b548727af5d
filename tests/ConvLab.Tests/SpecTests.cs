using CsCheck;
using ConvLab.Analysis;
using ConvLab.NN;
using Xunit;

namespace ConvLab.Tests;

/// <summary>The spec notation: exact models for the documented forms, random valid specs run with the predicted shapes, corrupted specs fail at a token.</summary>
public class SpecTests
{
    private static long Params(Module m) => m.Parameters().Sum(p => (long)p.Numel);

    [Fact]
    public void CourseNotationBuildsTheDocumentedLayersWithPyTorchNames()
    {
        var spec = SpecParser.Parse("INPUT 28x28x1, CONV3-10, POOL2, CONV3-10, POOL2, FLATTEN, FC-3");
        Assert.Equal([1, 28, 28], spec.InputShape);
        Assert.True(spec.InputFromSpec);
        Assert.Equal(new[] { "[10, 28, 28]", "[10, 14, 14]", "[10, 14, 14]", "[10, 7, 7]", "[490]", "[3]" },
            spec.Layers.Select(l => "[" + string.Join(", ", l.OutputShape) + "]"));
        Assert.Equal(new[] { "0.weight", "0.bias", "2.weight", "2.bias", "5.weight", "5.bias" }, spec.Module.NamedParameters().Select(p => p.Name));
        Assert.Equal(new[] { 100L, 0, 910, 0, 0, 1473 }, spec.Layers.Select(l => Params(l.Module)));
        var conv = Assert.IsType<Conv2d>(spec.Module[0]);
        Assert.Equal([1, 1], conv.Padding);
        Assert.IsType<MaxPool2d>(spec.Module[1]);
    }

    [Fact]
    public void PaperNotationCoversEveryLayerKind()
    {
        var spec = SpecParser.Parse(
            "input 227x227x3 -> conv 11x11/4 96 -> relu -> maxpool 3x3/2 -> conv 5x5 p2 256 -> bn -> dwconv 3x3 p1 -> pwconv 64\n" +
            "sepconv 3x3 128; deconv 4x4/2 p1 32; conv 3x3 d2 64; coordconv 7x7/2 64; deformconv 3x3 64 # comment\n" +
            "avgpool 2x2, gap, fc 1000, dropout 0.2, bn, softmax");
        string[] types = ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "BatchNorm2d", "Conv2d", "Conv2d", "DepthwiseSeparableConv2d", "ConvTranspose2d",
            "Conv2d", "CoordConv2d", "DeformConv2d", "AvgPool2d", "GlobalAvgPool2d", "Flatten", "Linear", "Dropout", "BatchNorm1d", "Softmax"];
        Assert.Equal(types, spec.Layers.Select(l => l.Module.GetType().Name));
        Assert.Equal([96, 55, 55], spec.Layers[0].OutputShape);      // floor((227 - 11)/4) + 1
        Assert.Equal([96, 27, 27], spec.Layers[2].OutputShape);
        Assert.Equal([256, 27, 27], spec.Layers[3].OutputShape);
        Assert.Equal([256, 27, 27], spec.Layers[5].OutputShape);     // dwconv keeps the channels
        Assert.Equal(256, ((Conv2d)spec.Module[5]).Groups);
        Assert.Equal([128, 25, 25], spec.Layers[7].OutputShape);
        Assert.Equal([32, 50, 50], spec.Layers[8].OutputShape);      // (25-1)*2 - 2 + 4
        Assert.Equal([64, 46, 46], spec.Layers[9].OutputShape);      // dilation 2 spans 5
        Assert.Equal([64, 20, 20], spec.Layers[10].OutputShape);
        Assert.Equal([64, 18, 18], spec.Layers[11].OutputShape);
        Assert.Equal([64, 9, 9], spec.Layers[12].OutputShape);
        Assert.Equal([64, 1, 1], spec.Layers[13].OutputShape);
        Assert.Equal([1000], spec.OutputShape);
        Assert.Equal(3, spec.Layers[^1].Line);
    }

    [Fact]
    public void ASpecModelTrains()
    {
        var g = new Generator(11);
        var spec = SpecParser.Parse("INPUT 8x8x1, CONV3-4, RELU, POOL2, FLATTEN, FC-2", generator: g);
        var x = Tensor.Randn([16, 1, 8, 8], g);
        var y = Tensor.RandInt(0, 2, [16], g);
        var opt = new ConvLab.Training.SGD(spec.Module.Parameters(), lr: 0.1, momentum: 0.9);
        double first = 0, last = 0;
        for (int step = 0; step < 30; step++)
        {
            opt.ZeroGrad();
            var loss = NN.Functional.F.CrossEntropy(spec.Module.Forward(x), y);
            loss.Backward();
            opt.Step();
            if (step == 0) first = loss.Item();
            last = loss.Item();
        }
        Assert.True(last < 0.5 * first, $"loss {first} -> {last}");
    }

    [Fact]
    public void RepeatedGroupsExpandWithFreshLayers()
    {
        var spec = SpecParser.Parse("INPUT 32x32x3, [CONV3-8, RELU]*2, [conv 3x3/2 p1 16, relu] x2, gap, fc 10");
        Assert.Equal(11, spec.Module.Count); // with the flatten inserted before fc
        Assert.Equal([16, 8, 8], spec.Layers[7].OutputShape);
        Assert.NotSame(spec.Module[0], spec.Module[2]);
        Assert.Equal(3, ((Conv2d)spec.Module[0]).InChannels);
        Assert.Equal(8, ((Conv2d)spec.Module[2]).InChannels);
    }

    [Fact]
    public void InputShapeCanBeGivenSeparatelyAndMustAgree()
    {
        var spec = SpecParser.Parse("conv 3x3 8, gap, fc 2", [3, 16, 16]);
        Assert.False(spec.InputFromSpec);
        Assert.Equal([8, 14, 14], spec.Layers[0].OutputShape);
        var e = Assert.Throws<SpecSyntaxException>(() => SpecParser.Parse("INPUT 16x16x3, conv 3x3 8", [1, 16, 16]));
        Assert.Contains("differs from the given input shape (1, 16, 16)", e.Message);
        e = Assert.Throws<SpecSyntaxException>(() => SpecParser.Parse("conv 3x3 8, gap"));
        Assert.Contains("expected 'INPUT HxWxC'", e.Message);
    }

    [Theory]
    [InlineData("INPUT 28x28x1, conv 96", 21, "96", "expected a kernel size like 3x3 after 'conv'")]
    [InlineData("INPUT 28x28x1, conv 3x3", 24, "", "expected the number of filters at the end of 'conv 3x3'")]
    [InlineData("INPUT 28x28x1, conv 3x3 q2 8", 25, "q2", "expected a channel count like 64, sN (stride), pN (padding)")]
    [InlineData("INPUT 28x28x1, CONV3-10, bogus 3", 26, "bogus", "unknown layer 'bogus'")]
    [InlineData("INPUT 28x28x1, POOL2 3", 22, "3", "unexpected '3' after 'POOL2'")]
    [InlineData("INPUT 3x224x224, fc 3", 7, "3x224x224", "looks like CxHxW; write 224x224x3")]
    [InlineData("INPUT 28x28x1, [CONV3-10, RELU*2", 31, "*", "unexpected '*' inside a layer")]
    [InlineData("INPUT 28x28x1, [CONV3-10, RELU]", 32, "", "expected a repeat count like *2 after ']'")]
    [InlineData("INPUT 4x4x1, conv 5x5 8", 14, "conv", "needs a window of 5 but the padded input is only 4 wide")]
    [InlineData("INPUT 8x8x1, fc 10, conv 3x3 4", 21, "conv", "needs a (C, H, W) input but the previous layer gives 10 flat features")]
    [InlineData("INPUT 8x8x4, conv 3x3 g3 6", 14, "conv", "groups 3 must divide the 4 input and 6 output channels")]
    [InlineData("INPUT 8x8x4, conv 3x3 99999999999", 23, "99999999999", "too large")]
    [InlineData("INPUT 8x8x4, maxpool 2x2 p2", 14, "maxpool", "padding 2 must be at most half the kernel size 2")]
    public void SyntaxErrorsPointAtTheTokenAndSayWhatWasExpected(string text, int column, string token, string expected)
    {
        var e = Assert.Throws<SpecSyntaxException>(() => SpecParser.Parse(text));
        Assert.Contains(expected, e.Message);
        Assert.Equal(column, e.Column);
        Assert.Equal(token, e.Token);
        Assert.StartsWith("spec: ", e.Message);
        var lines = e.Message.Split('\n');
        Assert.Equal("  " + text, lines[1]);
        Assert.Equal(column + 1, lines[2].IndexOf('^'));
    }

    [Fact]
    public void MultiLineErrorsNameTheLine()
    {
        var e = Assert.Throws<SpecSyntaxException>(() => SpecParser.Parse("INPUT 8x8x1\nconv 3x3 4\nmaxpool 3x3 x"));
        Assert.Equal(3, e.Line);
        Assert.Equal(13, e.Column);
        Assert.Contains("line 3, column 13", e.Message);
        Assert.Equal("  maxpool 3x3 x", e.Message.Split('\n')[1]);
    }

    // Layer templates that keep any spatial size >= 1 valid, so every generated spec must parse.
    private static readonly string[] SpatialLayers =
    [
        "conv 3x3 p1 {n}", "conv 3x3/2 p1 {n}", "conv 1x1 {n}", "CONV3-{n}", "conv 3x3 d2 p2 {n}", "dwconv 3x3 p1", "pwconv {n}",
        "sepconv 3x3 p1 {n}", "coordconv 3x3 p1 {n}", "deformconv 3x3 p1 {n}", "maxpool 3x3/2 p1", "avgpool 3x3/1 p1", "relu", "bn", "gap",
        "conv 1x1 nobias {n}", "[conv 3x3 p1 {n}, relu]*2", "deconv 3x3 p1 {n}",
    ];
    private static readonly string[] FlatLayers = ["fc {n}", "relu", "bn", "dropout 0.1", "tanh", "FC-{n}"];

    private static readonly Gen<string> ValidSpec =
        Gen.Select(Gen.Int[6, 12], Gen.Int[6, 12], Gen.Int[1, 3], Gen.Int[0, SpatialLayers.Length - 1].Array[1, 5], Gen.Int[0, FlatLayers.Length - 1].Array[0, 3],
                   Gen.Int[1, 5].Array[8], Gen.Bool)
           .Select((h, w, c, spatial, flat, ns, deconv) =>
           {
               int i = 0;
               string Fill(string t) => t.Replace("{n}", ns[i++ % ns.Length].ToString());
               var layers = new List<string> { $"INPUT {h}x{w}x{c}" };
               layers.AddRange(spatial.Select(s => Fill(SpatialLayers[s])));
               if (deconv) layers.Add(Fill("deconv 4x4/2 p1 {n}"));
               if (flat.Length > 0) layers.Add("flatten");
               layers.AddRange(flat.Select(s => Fill(FlatLayers[s])));
               return string.Join(", ", layers);
           });

    private static void AssertRunsWithPredictedShapes(SpecModel spec, ulong seed)
    {
        var x = Tensor.Randn([2, .. spec.InputShape], new Generator(seed)).RequiresGrad_();
        foreach (var layer in spec.Layers)
        {
            x = layer.Module.Forward(x);
            Assert.Equal([2, .. layer.OutputShape], x.Shape.ToArray());
        }
        x.Sum().Backward();
        Assert.All(spec.Module.Parameters(), p => Assert.NotNull(p.Grad));
    }

    [Fact]
    public void RandomValidSpecsBuildAndRunAForwardOfThePredictedShape()
    {
        Gen.Select(ValidSpec, Gen.ULong).Sample((text, seed) =>
        {
            var spec = SpecParser.Parse(text, generator: new Generator(seed));
            Assert.NotEmpty(spec.Layers);
            AssertRunsWithPredictedShapes(spec, seed);
        }, iter: 60);
    }

    private const string Noise = "x/,-[]*#p0123456789 abcdzCONV\n";

    [Fact]
    public void RandomCorruptedSpecsEitherParseOrFailAtAToken()
    {
        var mutation = Gen.Select(Gen.Int[0, 3], Gen.Int[0, 1000], Gen.Int[0, Noise.Length - 1]);
        Gen.Select(ValidSpec, mutation.Array[1, 3], Gen.ULong).Sample((text, muts, seed) =>
        {
            foreach (var (kind, at, ch) in muts)
            {
                if (text.Length == 0) break;
                int i = at % text.Length;
                text = kind switch
                {
                    0 => text.Remove(i, 1),
                    1 => text.Insert(i, Noise[ch].ToString()),
                    2 => text.Remove(i, 1).Insert(i, Noise[ch].ToString()),
                    _ => text.Insert(i, text[i..Math.Min(text.Length, i + 4)]),
                };
            }
            SpecModel spec;
            try { spec = SpecParser.Parse(text, generator: new Generator(seed)); }
            catch (SpecSyntaxException e)
            {
                Assert.InRange(e.Offset, 0, text.Length);
                Assert.Equal(text.Substring(e.Offset, e.Token.Length), e.Token);
                Assert.Contains("^", e.Message);
                Assert.StartsWith("spec: ", e.Message);
                return;
            }
            // A corruption may still be a valid spec (e.g. 10 -> 100 filters): then it must run as predicted.
            if (spec.Layers.Sum(l => (long)l.OutputShape.Aggregate(1L, (a, b) => a * b)) < 2_000_000)
                AssertRunsWithPredictedShapes(spec, seed);
        }, iter: 300);
    }
}
