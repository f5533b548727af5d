using ConvLab.NN;

namespace ConvLab.Models;

/// <summary>
/// VGG (Simonyan and Zisserman, 2014) as in torchvision 0.14: 3x3 convolutions (optionally each followed
/// by batch norm) with 2x2 max pooling, an adaptive 7x7 average pool and a three-layer classifier.
/// Keys match torchvision (<c>features.0.weight</c>, <c>features.1.running_mean</c> with batch norm,
/// <c>classifier.6.bias</c>). torchvision's initialisation: convs kaiming normal (fan_out, relu) with zero
/// bias, batch norm weight 1 and bias 0, linears N(0, 0.01) with zero bias. Parameters for 1000 classes:
/// vgg11 132,863,336; vgg13 133,047,848; vgg16 138,357,544; vgg19 143,667,240; with batch norm
/// 132,868,840; 133,053,736; 138,365,992; 143,678,248.
/// </summary>
public sealed class VGG : Module
{
    private const int M = 0; // max pool marker in the configurations
    private static readonly int[] CfgA = [64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M];
    private static readonly int[] CfgB = [64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M];
    private static readonly int[] CfgD = [64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M];
    private static readonly int[] CfgE = [64, 64, M, 128, 128, M, 256, 256, 256, 256, M, 512, 512, 512, 512, M, 512, 512, 512, 512, M];

    /// <summary>Creates a VGG from a feature extractor whose output has 512 channels.</summary>
    public VGG(Sequential features, int numClasses = 1000, double dropout = 0.5, bool initWeights = true, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(features);
        if (numClasses < 1) throw new ArgumentException($"VGG: num_classes must be positive, got {numClasses}");
        Features = RegisterModule("features", features);
        AvgPool = RegisterModule("avgpool", new AdaptiveAvgPool2d(7, 7));
        Classifier = RegisterModule("classifier", new Sequential(
            new Linear(512 * 7 * 7, 4096, generator: generator), new ReLU(), new Dropout(dropout, generator),
            new Linear(4096, 4096, generator: generator), new ReLU(), new Dropout(dropout, generator),
            new Linear(4096, numClasses, generator: generator)));
        if (initWeights)
        {
            ModelParts.InitKaimingNormal(this, "fan_out", 0.01, generator);
        }
    }

    /// <summary>VGG-11 (configuration A).</summary>
    public static VGG Vgg11(bool batchNorm = false, int numClasses = 1000, Generator? generator = null) => Create(11, batchNorm, numClasses, generator);

    /// <summary>VGG-13 (configuration B).</summary>
    public static VGG Vgg13(bool batchNorm = false, int numClasses = 1000, Generator? generator = null) => Create(13, batchNorm, numClasses, generator);

    /// <summary>VGG-16 (configuration D).</summary>
    public static VGG Vgg16(bool batchNorm = false, int numClasses = 1000, Generator? generator = null) => Create(16, batchNorm, numClasses, generator);

    /// <summary>VGG-19 (configuration E).</summary>
    public static VGG Vgg19(bool batchNorm = false, int numClasses = 1000, Generator? generator = null) => Create(19, batchNorm, numClasses, generator);

    private static VGG Create(int depth, bool batchNorm, int numClasses, Generator? generator) =>
        new(MakeLayers(depth, batchNorm, generator), numClasses, generator: generator);

    /// <summary>The <c>features</c> stack of VGG-<paramref name="depth"/> (11, 13, 16 or 19), PyTorch default init.</summary>
    internal static Sequential MakeLayers(int depth, bool batchNorm, Generator? generator = null)
    {
        int[] cfg = depth switch
        {
            11 => CfgA, 13 => CfgB, 16 => CfgD, 19 => CfgE,
            _ => throw new ArgumentException($"VGG: depth must be 11, 13, 16 or 19, got {depth}"),
        };
        var layers = new Sequential();
        int inChannels = 3;
        foreach (int v in cfg)
        {
            if (v == M) { layers.Append(new MaxPool2d(2, 2)); continue; }
            layers.Append(new Conv2d(inChannels, v, 3, padding: 1, generator: generator));
            if (batchNorm) layers.Append(new BatchNorm2d(v));
            layers.Append(new ReLU());
            inChannels = v;
        }
        return layers;
    }

    /// <summary>Convolution and pooling stages.</summary>
    public Sequential Features { get; }

    /// <summary>Adaptive average pooling to 7x7.</summary>
    public AdaptiveAvgPool2d AvgPool { get; }

    /// <summary>Fully connected head.</summary>
    public Sequential Classifier { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => Classifier.Call(AvgPool.Call(Features.Call(input)).Flatten(1));
}
