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
    public void FCN32sHasVggKeysBilinearUpscoreAndCropsToInput()
    {
        // Building the full 136M-parameter net takes too long for a unit test: check the 1/16-width copy against the
        // closed-form count, whose full-width value is the documented 136,152,917 (VGG-16 features 14,714,688).
        static long Count(int d, int k)
        {
            long vgg = 0, ch = 3;
            foreach (int c in new[] { 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512 }) { vgg += ch * (c / d) * 9 + c / d; ch = c / d; }
            long fc = 4096 / d;
            return vgg + (ch * fc * 49 + fc) + (fc * fc + fc) + (fc * k + k) + (long)k * k * 64 * 64;
        }
        Assert.Equal(136_152_917, Count(1, 21));
        var small = new FCN32s(3, 16, new Generator(10));
        Assert.Equal(Count(16, 3), small.ParameterCount());
        AssertKeys(small,
            ("features.0.weight", [4, 3, 3, 3]),
            ("features.28.weight", [32, 32, 3, 3]),
            ("fc6.weight", [256, 32, 7, 7]),
            ("fc7.weight", [256, 256, 1, 1]),
            ("score_fr.weight", [3, 256, 1, 1]),
            ("upscore.weight", [3, 3, 64, 64]));
        Assert.DoesNotContain("upscore.bias", small.StateDict().Keys);
        // torchvision vgg16's conv indices.
        Assert.Equal(new[] { 0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28 }.Select(i => $"features.{i}.weight"),
            small.StateDict().Keys.Where(k => k.StartsWith("features.", StringComparison.Ordinal) && k.EndsWith(".weight", StringComparison.Ordinal)));
        // The output is cropped back to any input size.
        Assert.Equal([1, 3, 9, 13], small.Forward(Input(1, 3, 9, 13)).Shape.ToArray());
        // A constant score map upsampled by the bilinear kernel stays constant inside the crop.
        var up = small.NamedModules().Single(t => t.Name == "upscore").Module;
        var ones = Tensor.Zeros([1, 3, 4, 4]).AddScalar(1);
        var v = up.Forward(ones).Narrow(2, 32, 64).Narrow(3, 32, 64).Read<float>().ToArray();
        Assert.All(v, e => Assert.Equal(1f, e, 1e-5f));
    }

    [Fact]
    public void YoloModelsHavePaperShapesAndCounts()
    {
        var yolo = new YoloV3(generator: new Generator(11));
        Assert.Equal(61_949_149, yolo.ParameterCount());
        AssertKeys(yolo,
            ("backbone.stem.0.weight", [32, 3, 3, 3]),
            ("backbone.layer3.8.conv2.0.weight", [256, 128, 3, 3]),
            ("backbone.layer5.4.conv1.1.running_mean", [512]),
            ("head2.0.0.weight", [256, 768, 1, 1]),
            ("out1.1.weight", [255, 1024, 1, 1]),
            ("out3.1.bias", [255]),
            ("lateral2.0.weight", [128, 256, 1, 1]));
        yolo.Eval();
        var maps = yolo.ForwardScales(Input(1, 3, 64, 64));
        Assert.Equal([[1, 255, 2, 2], [1, 255, 4, 4], [1, 255, 8, 8]], maps.Select(t => t.Shape.ToArray()).ToArray());
        var flat = yolo.Forward(Input(1, 3, 64, 64));
        Assert.Equal([1, 3 * (4 + 16 + 64), 85], flat.Shape.ToArray());
        Assert.StartsWith("YoloV3:", Assert.Throws<ArgumentException>(() => yolo.Forward(Input(1, 3, 48, 64))).Message);

        Assert.Equal(40_584_928, yolo.NamedParameters().Where(p => p.Name.StartsWith("backbone.", StringComparison.Ordinal)).Sum(p => (long)p.Parameter.Numel));
        var darknet = new Darknet53(generator: new Generator(12));
        Assert.Equal(41_609_928, darknet.ParameterCount());
        Assert.Equal([2, 1000], darknet.Eval().Forward(Input(2, 3, 32, 32)).Shape.ToArray());

        var head = new YoloV1Head(S: 7, B: 2, C: 20, inChannels: 8, hidden: 16, generator: new Generator(13));
        Assert.Equal(8 * 49 * 16 + 16 + 16 * 1470 + 1470, head.ParameterCount());
        AssertKeys(head, ("fc.1.weight", [16, 392]), ("fc.4.weight", [1470, 16]));
        Assert.Equal([2, 7, 7, 30], head.Forward(Input(2, 8, 7, 7)).Shape.ToArray());
        Assert.StartsWith("YoloV1Head:", Assert.Throws<ArgumentException>(() => head.Forward(Input(2, 8, 6, 7))).Message);
    }

    [Fact]
    public void ZooModernCreatesEveryNamedModel()
    {
        Assert.Subset(Zoo.Names.ToHashSet(), new HashSet<string> { "mobilenet_v2", "densenet121", "squeezenet1_1", "mobilenet_v1", "unet", "fcn32s", "darknet53", "yolov3", "yolov1_head" });
        Assert.IsType<SqueezeNet11>(Zoo.Create("squeezenet1_1", 10));
        Assert.Equal(10, ((MobileNetV1)Zoo.Create("mobilenet_v1", 10)).Classifier.OutFeatures);
        Assert.StartsWith("zoo:", Assert.Throws<ArgumentException>(() => Zoo.Create("resnet1000", 10)).Message);
        Assert.StartsWith("MobileNetV2:", Assert.Throws<ArgumentException>(() => new MobileNetV2(0)).Message);
        Assert.StartsWith("DenseNet:", Assert.Throws<ArgumentException>(() => new DenseNet(32, [6, 0], 64, 4, 10)).Message);
    }
}
