using ConvLab.Models;
using ConvLab.NN;
using Xunit;

namespace ConvLab.Tests;

public class ZooModernTests
{
    private static Tensor Input(params int[] shape) => Tensor.Randn(shape, new Generator(7));

    private static void AssertKeys(Module m, params (string Key, int[] Shape)[] expected)
    {
        var sd = m.StateDict();
        foreach (var (key, shape) in expected)
        {
            Assert.True(sd.ContainsKey(key), $"missing key {key}");
            Assert.Equal(shape, sd[key].Shape.ToArray());
        }
    }

    [Fact]
    public void MobileNetV2MatchesTorchvision()
    {
        var m = new MobileNetV2(generator: new Generator(1));
        Assert.Equal(3_504_872, m.ParameterCount());
        // 52 convs, 52 batch norms (weight, bias, running_mean, running_var, num_batches_tracked), classifier weight + bias.
        Assert.Equal(314, m.StateDict().Count);
        AssertKeys(m,
            ("features.0.0.weight", [32, 3, 3, 3]),
            ("features.1.conv.0.0.weight", [32, 1, 3, 3]),   // expand ratio 1: depthwise first
            ("features.1.conv.1.weight", [16, 32, 1, 1]),
            ("features.1.conv.2.num_batches_tracked", []),
            ("features.2.conv.0.0.weight", [96, 16, 1, 1]),
            ("features.2.conv.1.0.weight", [96, 1, 3, 3]),
            ("features.2.conv.3.running_var", [24]),
            ("features.17.conv.2.weight", [320, 960, 1, 1]),
            ("features.18.0.weight", [1280, 320, 1, 1]),
            ("features.18.1.running_mean", [1280]),
            ("classifier.1.weight", [1000, 1280]));
        Assert.DoesNotContain(m.StateDict().Keys, k => k.StartsWith("classifier.0", StringComparison.Ordinal));
        // torchvision init: zero linear bias, BN weight 1, small linear weights.
        Assert.All(m.StateDict()["classifier.1.bias"].Read<float>().ToArray(), v => Assert.Equal(0f, v));
        Assert.All(m.StateDict()["features.18.1.weight"].Read<float>().ToArray(), v => Assert.Equal(1f, v));
        Assert.InRange(m.StateDict()["classifier.1.weight"].Read<float>().ToArray().Max(v => MathF.Abs(v)), 0.02f, 0.1f);

        m.Eval();
        Assert.Equal([1, 1000], m.Forward(Input(1, 3, 64, 64)).Shape.ToArray());
    }

    [Fact]
    public void DenseNet121MatchesTorchvision()
    {
        var m = new DenseNet121(generator: new Generator(2));
        Assert.Equal(7_978_856, m.ParameterCount());
        // 120 convs, 121 batch norms x 5 entries, classifier weight + bias.
        Assert.Equal(727, m.StateDict().Count);
        Assert.Equal(120 + 121 * 5 + 2, m.StateDict().Count);
        AssertKeys(m,
            ("features.conv0.weight", [64, 3, 7, 7]),
            ("features.norm0.num_batches_tracked", []),
            ("features.denseblock1.denselayer1.norm1.weight", [64]),
            ("features.denseblock1.denselayer1.conv1.weight", [128, 64, 1, 1]),
            ("features.denseblock1.denselayer6.conv2.weight", [32, 128, 3, 3]),
            ("features.transition1.conv.weight", [128, 256, 1, 1]),
            ("features.transition3.conv.weight", [512, 1024, 1, 1]),
            ("features.denseblock4.denselayer16.conv2.weight", [32, 128, 3, 3]),
            ("features.denseblock4.denselayer16.norm1.running_mean", [992]),
            ("features.norm5.running_var", [1024]),
            ("classifier.weight", [1000, 1024]));
        m.Eval();
        Assert.Equal([1, 1000], m.Forward(Input(1, 3, 32, 32)).Shape.ToArray());
    }

    [Fact]
    public void SqueezeNet11MatchesTorchvision()
    {
        var m = new SqueezeNet11(generator: new Generator(3));
        Assert.Equal(1_235_496, m.ParameterCount());
        Assert.Equal(52, m.StateDict().Count);
        AssertKeys(m,
            ("features.0.weight", [64, 3, 3, 3]),
            ("features.3.squeeze.weight", [16, 64, 1, 1]),
            ("features.3.expand1x1.bias", [64]),
            ("features.3.expand3x3.weight", [64, 16, 3, 3]),
            ("features.12.expand3x3.weight", [256, 64, 3, 3]),
            ("classifier.1.weight", [1000, 512, 1, 1]),
            ("classifier.1.bias", [1000]));
        m.Eval();
        Assert.Equal([2, 10], new SqueezeNet11(10).Eval().Forward(Input(2, 3, 64, 64)).Shape.ToArray());
    }

    [Fact]
    public void MobileNetV1HasPaperStructure()
    {
        var m = new MobileNetV1(generator: new Generator(4));
        Assert.Equal(4_231_976, m.ParameterCount());
        Assert.Equal(27 + 27 * 5 + 2, m.StateDict().Count);
        AssertKeys(m,
            ("features.0.0.weight", [32, 3, 3, 3]),
            ("features.1.0.weight", [32, 1, 3, 3]),
            ("features.1.3.weight", [64, 32, 1, 1]),
            ("features.13.4.running_mean", [1024]),
            ("classifier.weight", [1000, 1024]));
        Assert.DoesNotContain(m.StateDict().Keys, k => k.EndsWith(".0.bias", StringComparison.Ordinal) || k.EndsWith(".3.bias", StringComparison.Ordinal));
        m.Eval();
        Assert.Equal([1, 1000], m.Forward(Input(1, 3, 32, 32)).Shape.ToArray());
    }

    [Fact]
    public void UNetKeepsSpatialSizeAndCountsParameters()
    {
        var m = new UNet(generator: new Generator(5));
        // 31,037,698 is the 3-input-channel count (milesial's default); one input channel saves 2 x 64 x 3 x 3 weights.
        Assert.Equal(31_036_546, m.ParameterCount());
        Assert.Equal(31_037_698, new UNet(inChannels: 3).ParameterCount());
        AssertKeys(m,
            ("inc.double_conv.0.weight", [64, 1, 3, 3]),
            ("inc.double_conv.4.running_var", [64]),
            ("down1.maxpool_conv.1.double_conv.0.weight", [128, 64, 3, 3]),
            ("down4.maxpool_conv.1.double_conv.3.weight", [1024, 1024, 3, 3]),
            ("up1.up.weight", [1024, 512, 2, 2]),
            ("up1.up.bias", [512]),
            ("up1.conv.double_conv.0.weight", [512, 1024, 3, 3]),
            ("up4.conv.double_conv.3.weight", [64, 64, 3, 3]),
            ("outc.conv.weight", [2, 64, 1, 1]));
        m.Eval();
        Assert.Equal([1, 2, 32, 32], m.Forward(Input(1, 1, 32, 32)).Shape.ToArray());
    }

    [Fact]
    public void SmallUNetVariantsHandleOddSizesAndBackward()
    {
        // Bilinear: no up-conv parameters, deepest level and decoder halved (milesial's port).
        var bil = new UNet(3, 4, baseChannels: 8, depth: 3, bilinear: true, generator: new Generator(6));
        Assert.DoesNotContain(bil.StateDict().Keys, k => k.Contains(".up.", StringComparison.Ordinal));
        AssertKeys(bil, ("down3.maxpool_conv.1.double_conv.3.weight", [32, 32, 3, 3]), ("up1.conv.double_conv.0.weight", [32, 64, 3, 3]));
        var x = Input(2, 3, 19, 13).RequiresGrad_();
        var y = bil.Forward(x);
        Assert.Equal([2, 4, 19, 13], y.Shape.ToArray());
        y.Sum().Backward();
        Assert.Equal(x.Shape.ToArray(), x.Grad!.Shape.ToArray());

        var tr = new UNet(1, 2, baseChannels: 4, depth: 2, generator: new Generator(8));
        Assert.Equal([1, 2, 11, 10], tr.Forward(Input(1, 1, 11, 10)).Shape.ToArray());
        tr.Eval(); // in training mode batch norm would reject the 1x1 level first
        Assert.StartsWith("UNet:", Assert.Throws<ArgumentException>(() => tr.Forward(Input(1, 1, 2, 2))).Message);
        Assert.StartsWith("UNet:", Assert.Throws<ArgumentException>(() => new UNet(depth: 0)).Message);
    }

    [Fact]
    public void ZooModernCreatesEveryNamedModel()
    {
        Assert.Equal(["mobilenet_v2", "densenet121", "squeezenet1_1", "mobilenet_v1", "unet"], ZooModern.Names);
        Assert.IsType<SqueezeNet11>(ZooModern.Create("squeezenet1_1", 10));
        Assert.Equal(10, ((MobileNetV1)ZooModern.Create("mobilenet_v1", 10)).Classifier.OutFeatures);
        Assert.StartsWith("zoo:", Assert.Throws<ArgumentException>(() => ZooModern.Create("resnet1000", 10)).Message);
        Assert.StartsWith("MobileNetV2:", Assert.Throws<ArgumentException>(() => new MobileNetV2(0)).Message);
        Assert.StartsWith("DenseNet:", Assert.Throws<ArgumentException>(() => new DenseNet(32, [6, 0], 64, 4, 10)).Message);
    }
}
