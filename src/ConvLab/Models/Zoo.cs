namespace ConvLab.Models;

/// <summary>Creates zoo models by their lower-case torchvision names ("resnet50", "vgg16_bn", "mobilenet_v2", ...); models torchvision lacks use descriptive names ("unet", "yolov3").</summary>
public static class Zoo
{
    private static readonly Dictionary<string, Func<int, Generator?, NN.Module>> Factories = new()
    {
        ["alexnet"] = (n, g) => new AlexNet(n, generator: g),
        ["vgg11"] = (n, g) => VGG.Vgg11(false, n, g),
        ["vgg13"] = (n, g) => VGG.Vgg13(false, n, g),
        ["vgg16"] = (n, g) => VGG.Vgg16(false, n, g),
        ["vgg19"] = (n, g) => VGG.Vgg19(false, n, g),
        ["vgg11_bn"] = (n, g) => VGG.Vgg11(true, n, g),
        ["vgg13_bn"] = (n, g) => VGG.Vgg13(true, n, g),
        ["vgg16_bn"] = (n, g) => VGG.Vgg16(true, n, g),
        ["vgg19_bn"] = (n, g) => VGG.Vgg19(true, n, g),
        ["resnet18"] = (n, g) => ResNet.ResNet18(n, g),
        ["resnet34"] = (n, g) => ResNet.ResNet34(n, g),
        ["resnet50"] = (n, g) => ResNet.ResNet50(n, g),
        ["resnet101"] = (n, g) => ResNet.ResNet101(n, g),
        ["resnet152"] = (n, g) => ResNet.ResNet152(n, g),
        ["cifar_resnet18"] = (n, g) => ResNet.CifarResNet18(n, g),
        ["mobilenet_v1"] = (n, g) => new MobileNetV1(n, generator: g),
        ["mobilenet_v2"] = (n, g) => new MobileNetV2(n, generator: g),
        ["densenet121"] = (n, g) => new DenseNet121(n, g),
        ["squeezenet1_1"] = (n, g) => new SqueezeNet11(n, g),
        // U-Net: 1 input channel, numClasses output maps; FCN-32s on VGG-16; YOLO: numClasses = C.
        ["unet"] = (n, g) => new UNet(numClasses: n, generator: g),
        ["fcn32s"] = (n, g) => new FCN32s(n, g),
        ["darknet53"] = (n, g) => new Darknet53(n, g),
        ["yolov3"] = (n, g) => new YoloV3(n, g),
        ["tiny_yolo"] = (n, g) => new TinyYolo(n, generator: g),
        ["yolov1_head"] = (n, g) => new YoloV1Head(C: n, generator: g),
        // The default model of `convlab train` (1x28x28 inputs).
        ["simple_cnn"] = (n, g) => new SimpleCnn(n, generator: g),
        ["scale_pyramid"] = (n, g) => new ScalePyramid(n, generator: g),
        ["lenet5"] = (n, g) => new LeNet5(n, generator: g),
    };

    /// <summary>Every name <see cref="Create"/> accepts, in a fixed order.</summary>
    public static IReadOnlyList<string> Names { get; } = [.. Factories.Keys];

    /// <summary>Creates the model named <paramref name="name"/> (case-insensitive) for <paramref name="numClasses"/> classes.</summary>
    public static NN.Module Create(string name, int numClasses = 1000, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!Factories.TryGetValue(name.ToLowerInvariant(), out var factory))
            throw new ArgumentException($"zoo: unknown model '{name}'; known: {string.Join(", ", Names)}");
        return factory(numClasses, generator);
    }
}
