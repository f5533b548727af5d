using ConvLab.Models;
using ConvLab.NN;
using Xunit;

namespace ConvLab.Tests;

/// <summary>
/// AlexNet, VGG and ResNet against torchvision 0.14: parameter counts, state-dict keys and shapes,
/// initialisation and small forward passes. Big models are constructed once per test and never run.
/// </summary>
public class ZooClassicTests
{
    private static Tensor Weight(Module m, string key) => m.StateDict()[key];

    private static (double Mean, double Std) Stats(Tensor t)
    {
        var v = t.Read<float>();
        double mean = 0, sq = 0;
        foreach (var x in v) mean += x;
        mean /= v.Length;
        foreach (var x in v) sq += (x - mean) * (x - mean);
        return (mean, Math.Sqrt(sq / v.Length));
    }

    private static Conv2d Conv(Module model, string name) => (Conv2d)model.NamedModules().Single(m => m.Name == name).Module;

    [Fact]
    public void AlexNetMatchesTorchvisionAndRunsAtItsSmallestInput()
    {
        var net = new AlexNet(generator: new Generator(1));
        Assert.Equal(61_100_840, net.ParameterCount());
        var sd = net.StateDict();
        Assert.Equal(["features.0.weight", "features.0.bias", "features.3.weight", "features.3.bias", "features.6.weight", "features.6.bias",
            "features.8.weight", "features.8.bias", "features.10.weight", "features.10.bias", "classifier.1.weight", "classifier.1.bias",
            "classifier.4.weight", "classifier.4.bias", "classifier.6.weight", "classifier.6.bias"], sd.Keys.ToArray());
        Assert.Equal([64, 3, 11, 11], sd["features.0.weight"].Shape);
        Assert.Equal([4096, 9216], sd["classifier.1.weight"].Shape);
        Assert.Equal([1000, 4096], sd["classifier.6.weight"].Shape);
        // torchvision keeps PyTorch's default init for AlexNet: U(±1/sqrt(fan_in)) biases.
        Assert.All(sd["classifier.6.bias"].Read<float>().ToArray(), b => Assert.InRange(b, -1 / 64f, 1 / 64f));

        net.Eval();
        var y = net.Forward(Tensor.Randn([1, 3, 63, 63], new Generator(2)));
        Assert.Equal([1, 1000], y.Shape);
        Assert.All(y.Read<float>().ToArray(), v => Assert.True(float.IsFinite(v)));
        // 62x62 leaves a 2x2 map before the last 3x3 max pool.
        Assert.ThrowsAny<ArgumentException>(() => net.Forward(Tensor.Zeros([1, 3, 62, 62])));
    }

    private const long VggClassifierParams = 25088L * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000;

    [Fact]
    public void Vgg16BnMatchesTorchvisionKeysCountsAndInit()
    {
        var net = VGG.Vgg16(batchNorm: true, generator: new Generator(3));
        Assert.Equal(138_365_992, net.ParameterCount());
        Assert.Equal(VggClassifierParams, net.Classifier.ParameterCount());
        var sd = net.StateDict();
        Assert.Equal(13 * 7 + 6, sd.Count); // 13 conv+bn pairs (2 + 5 entries), 3 linears
        Assert.Equal([64], sd["features.1.running_mean"].Shape);
        Assert.Equal([512, 512, 3, 3], sd["features.40.weight"].Shape);
        Assert.Equal([1000, 4096], sd["classifier.6.weight"].Shape);
        Assert.Equal([4096, 25088], sd["classifier.0.weight"].Shape);
        Assert.False(sd.ContainsKey("features.43.weight")); // ReLU/MaxPool at the end

        // torchvision init: kaiming normal fan_out for convs, zero conv bias, BN 1/0, linears N(0, 0.01) with zero bias.
        var (_, convStd) = Stats(sd["features.3.weight"]);
        Assert.InRange(convStd, 0.95 * Math.Sqrt(2.0 / (64 * 9)), 1.05 * Math.Sqrt(2.0 / (64 * 9)));
        Assert.All(sd["features.0.bias"].Read<float>().ToArray(), b => Assert.Equal(0f, b));
        Assert.All(sd["features.1.weight"].Read<float>().ToArray(), w => Assert.Equal(1f, w));
        var (fcMean, fcStd) = Stats(sd["classifier.6.weight"]);
        Assert.InRange(fcStd, 0.0099, 0.0101);
        Assert.InRange(fcMean, -1e-4, 1e-4);
        Assert.All(sd["classifier.3.bias"].Read<float>().ToArray(), b => Assert.Equal(0f, b));

        net.Eval();
        Assert.Equal([1, 1000], net.Forward(Tensor.Randn([1, 3, 32, 32], new Generator(4))).Shape);
    }

    [Theory]
    [InlineData(11, false, 132_863_336)]
    [InlineData(13, false, 133_047_848)]
    [InlineData(16, false, 138_357_544)]
    [InlineData(19, false, 143_667_240)]
    [InlineData(11, true, 132_868_840)]
    [InlineData(13, true, 133_053_736)]
    [InlineData(16, true, 138_365_992)]
    [InlineData(19, true, 143_678_248)]
    public void VggParameterCounts(int depth, bool batchNorm, long expected)
    {
        // The classifier is the same for every depth (checked on a full vgg16_bn above); building only the
        // features keeps eight 130M-parameter constructions out of the test run.
        var features = VGG.MakeLayers(depth, batchNorm);
        Assert.Equal(expected, features.ParameterCount() + VggClassifierParams);
        int convs = features.NamedChildren().Count(c => c.Module is Conv2d);
        Assert.Equal(depth - 3, convs);
        Assert.Equal(batchNorm ? convs : 0, features.NamedChildren().Count(c => c.Module is BatchNorm2d));
    }

    [Fact]
    public void VggRejectsBadArguments()
    {
        TestUtil.AssertOpError("VGG", () => VGG.MakeLayers(15, false));
        TestUtil.AssertOpError("VGG", () => new VGG(new Sequential(), numClasses: 0));
        Assert.Contains("vgg13_bn", Zoo.Names);
    }

    [Theory]
    [InlineData("resnet18", 11_689_512, 122)]
    [InlineData("resnet34", 21_797_672, 218)]
    [InlineData("resnet50", 25_557_032, 320)]
    [InlineData("resnet101", 44_549_160, 626)]
    [InlineData("resnet152", 60_192_808, 932)]
    public void ResNetParameterCountsAndStateDictSizes(string name, long parameters, int entries)
    {
        var net = (ResNet)Zoo.Create(name);
        Assert.Equal(parameters, net.ParameterCount());
        var sd = net.StateDict();
        Assert.Equal(entries, sd.Count);
        Assert.Equal(["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked", "layer1.0.conv1.weight"],
            sd.Keys.Take(7).ToArray());
        Assert.Equal(["fc.weight", "fc.bias"], sd.Keys.TakeLast(2).ToArray());
        Assert.Equal([64, 3, 7, 7], sd["conv1.weight"].Shape);
        Assert.Equal(sd.Count, sd.Keys.Distinct().Count());
    }

    [Fact]
    public void ResNet50KeysShapesAndV15Strides()
    {
        var net = ResNet.ResNet50(generator: new Generator(5));
        var sd = net.StateDict();
        Assert.Equal([256, 64, 1, 1], sd["layer1.0.downsample.0.weight"].Shape);
        Assert.Equal([256], sd["layer1.0.downsample.1.running_var"].Shape);
        Assert.Equal([2048], sd["layer4.2.bn3.running_var"].Shape);
        Assert.Equal([1000], sd["fc.bias"].Shape);
        Assert.Equal([1000, 2048], sd["fc.weight"].Shape);
        Assert.Equal([128, 128, 3, 3], sd["layer2.0.conv2.weight"].Shape);
        Assert.False(sd.ContainsKey("layer1.1.downsample.0.weight"));
        Assert.False(sd.ContainsKey("layer4.3.conv1.weight"));
        Assert.Equal(DType.Int64, sd["layer3.5.bn2.num_batches_tracked"].DType);
        // v1.5: the 3x3 conv strides, the 1x1 reduction does not.
        Assert.Equal([1, 1], Conv(net, "layer2.0.conv1").Stride);
        Assert.Equal([2, 2], Conv(net, "layer2.0.conv2").Stride);
        Assert.Equal([2, 2], Conv(net, "layer2.0.downsample.0").Stride);
        Assert.Null(Conv(net, "layer2.0.downsample.0").Bias);
        var (_, std) = Stats(sd["layer3.0.conv3.weight"]); // fan_out = 1024
        Assert.InRange(std, 0.97 * Math.Sqrt(2.0 / 1024), 1.03 * Math.Sqrt(2.0 / 1024));
    }

    [Fact]
    public void ResNet18RunsAndTrainsAtSmallInputs()
    {
        var net = ResNet.ResNet18(generator: new Generator(6));
        var sd = net.StateDict();
        Assert.Equal([128, 64, 1, 1], sd["layer2.0.downsample.0.weight"].Shape);
        Assert.False(sd.ContainsKey("layer1.0.downsample.0.weight"));
        Assert.All(sd["layer4.1.bn2.weight"].Read<float>().ToArray(), w => Assert.Equal(1f, w));
        var (_, std) = Stats(sd["layer1.0.conv1.weight"]); // fan_out = 64 * 9
        Assert.InRange(std, 0.95 * Math.Sqrt(2.0 / 576), 1.05 * Math.Sqrt(2.0 / 576));

        var y = net.Forward(Tensor.Randn([1, 3, 64, 64], new Generator(7)));
        Assert.Equal([1, 1000], y.Shape);
        y.Sum().Backward();
        Assert.Equal(net.Conv1.Weight.Shape, net.Conv1.Weight.Grad!.Shape);
        Assert.Equal(1, (int)sd["bn1.num_batches_tracked"].Item());
        net.Eval();
        Assert.All(net.Forward(Tensor.Randn([1, 3, 64, 64], new Generator(8))).Read<float>().ToArray(), v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void CifarResNet18HasTheResNet18KeysWithASmallStem()
    {
        var net = (ResNet)Zoo.Create("cifar_resnet18", 10, new Generator(9));
        Assert.Equal(11_173_962, net.ParameterCount());
        var sd = net.StateDict();
        Assert.Equal(122, sd.Count);
        Assert.Equal([64, 3, 3, 3], sd["conv1.weight"].Shape);
        Assert.Equal([10, 512], sd["fc.weight"].Shape);
        Assert.Equal([1, 1], net.Conv1.Stride);
        Assert.IsType<Identity>(net.MaxPool);
        net.Eval();
        var y = net.Forward(Tensor.Randn([2, 3, 32, 32], new Generator(10)));
        Assert.Equal([2, 10], y.Shape);
    }

    [Fact]
    public void ResidualBlocksAddTheShortcutBeforeTheFinalRelu()
    {
        var g = new Generator(11);
        var x = Tensor.Randn([2, 8, 5, 5], g);
        // With the last conv zeroed and batch norm in eval mode at its initial state, the residual branch is 0,
        // so the block returns relu(shortcut(x)).
        var basic = new BasicBlock(8, 8, generator: g);
        using (new Autograd.NoGrad()) Conv(basic, "conv2").Weight.Fill_(0);
        basic.Eval();
        Assert.Equal(x.Read<float>().ToArray().Select(v => Math.Max(v, 0f)), basic.Forward(x).Read<float>().ToArray());

        var bottleneck = new Bottleneck(8, 2, generator: g);
        using (new Autograd.NoGrad()) Conv(bottleneck, "conv3").Weight.Fill_(0);
        bottleneck.Eval();
        Assert.Equal(x.Read<float>().ToArray().Select(v => Math.Max(v, 0f)), bottleneck.Forward(x).Read<float>().ToArray());

        var down = new Sequential(new Conv2d(8, 16, 1, stride: 2, bias: false, generator: g), new BatchNorm2d(16));
        var strided = new Bottleneck(8, 4, 2, down, g);
        using (new Autograd.NoGrad()) Conv(strided, "conv3").Weight.Fill_(0);
        strided.Eval();
        var y = strided.Forward(x);
        Assert.Equal([2, 16, 3, 3], y.Shape);
        var expected = down.Forward(x).Read<float>().ToArray().Select(v => Math.Max(v, 0f)).ToArray();
        Assert.Equal(expected, y.Read<float>().ToArray());
        Assert.Equal(["conv1.weight", "bn1.weight"], strided.StateDict().Keys.Take(2).ToArray());
        Assert.Contains("downsample.0.weight", strided.StateDict().Keys);
    }

    [Fact]
    public void ZooListsItsModelsAndRejectsUnknownNames()
    {
        Assert.Equal(["alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
            "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "cifar_resnet18"], Zoo.Names.Take(15));
        TestUtil.AssertOpError("zoo", () => Zoo.Create("resnet19"));
        TestUtil.AssertOpError("ResNet", () => new ResNet(false, [2, 2, 2]));
        TestUtil.AssertOpError("ResNet", () => ResNet.ResNet18(numClasses: 0));
        TestUtil.AssertOpError("AlexNet", () => new AlexNet(0));
    }
}
