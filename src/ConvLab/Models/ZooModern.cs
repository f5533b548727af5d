using ConvLab.NN;

namespace ConvLab.Models;

/// <summary>Creates the modern zoo models by their lower-case torchvision names (<c>mobilenet_v2</c>, <c>densenet121</c>, ...).</summary>
public static class ZooModern
{
    private static readonly Dictionary<string, Func<int, Generator?, Module>> Factories = new()
    {
        ["mobilenet_v2"] = (n, g) => new MobileNetV2(n, generator: g),
        ["densenet121"] = (n, g) => new DenseNet121(n, g),
        ["squeezenet1_1"] = (n, g) => new SqueezeNet11(n, g),
        ["mobilenet_v1"] = (n, g) => new MobileNetV1(n, generator: g),
        ["unet"] = (n, g) => new UNet(numClasses: n, generator: g),
        ["fcn32s"] = (n, g) => new FCN32s(n, g),
        ["darknet53"] = (n, g) => new Darknet53(n, g),
        ["yolov3"] = (n, g) => new YoloV3(n, g),
        ["yolov1_head"] = (n, g) => new YoloV1Head(C: n, generator: g),
    };

    /// <summary>Every name <see cref="Create"/> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } = [.. Factories.Keys];

    /// <summary>Creates the model called <paramref name="name"/> for <paramref name="numClasses"/> classes (U-Net: 1 input channel, <paramref name="numClasses"/> output maps; YOLO: C classes).</summary>
    public static Module Create(string name, int numClasses = 1000, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        return Factories.TryGetValue(name, out var f) ? f(numClasses, generator)
            : throw new ArgumentException($"zoo: unknown model '{name}'; known: {string.Join(", ", Names)}");
    }
}
