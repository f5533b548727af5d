using ConvLab.NN;
using ConvLab.NN.Functional;

namespace ConvLab.Models;

/// <summary>
/// ResNet (He et al., 2015) as in torchvision 0.14 (v1.5: a bottleneck strides on its 3x3 conv). Keys match
/// torchvision: <c>conv1</c>, <c>bn1</c>, <c>layer1</c>..<c>layer4</c> (blocks <c>layerN.i</c> with
/// <c>conv1</c>/<c>bn1</c>/<c>conv2</c>/<c>bn2</c>[/<c>conv3</c>/<c>bn3</c>] and <c>downsample.0</c>/<c>downsample.1</c>),
/// <c>fc</c>. torchvision's initialisation: convs kaiming normal (fan_out, relu), batch norm weight 1 and
/// bias 0, the fc layer PyTorch's default. Parameters for 1000 classes: resnet18 11,689,512;
/// resnet34 21,797,672; resnet50 25,557,032; resnet101 44,549,160; resnet152 60,192,808.
/// <see cref="CifarResNet18"/>: 11,173,962 for 10 classes.
/// </summary>
public sealed class ResNet : Module
{
    /// <summary>
    /// Creates a ResNet from a block type and the number of blocks per stage. <paramref name="cifarStem"/>
    /// replaces the 7x7/2 conv and the max pool by a 3x3/1 conv, for 32x32 inputs.
    /// </summary>
    public ResNet(bool bottleneck, int[] layers, int numClasses = 1000, bool cifarStem = false, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(layers);
        if (layers.Length != 4 || layers.Any(n => n < 1))
            throw new ArgumentException($"ResNet: layers must be 4 positive block counts, got [{string.Join(", ", layers)}]");
        if (numClasses < 1) throw new ArgumentException($"ResNet: num_classes must be positive, got {numClasses}");
        int expansion = bottleneck ? Bottleneck.Expansion : BasicBlock.Expansion;
        Conv1 = RegisterModule("conv1", cifarStem
            ? new Conv2d(3, 64, 3, stride: 1, padding: 1, bias: false, generator: generator)
            : new Conv2d(3, 64, 7, stride: 2, padding: 3, bias: false, generator: generator));
        Bn1 = RegisterModule("bn1", new BatchNorm2d(64));
        RegisterModule("relu", new ReLU());
        MaxPool = RegisterModule<Module>("maxpool", cifarStem ? new Identity() : new MaxPool2d(3, 2, 1));
        int inplanes = 64;
        var stages = new Sequential[4];
        for (int i = 0; i < 4; i++)
        {
            int planes = 64 << i, stride = i == 0 ? 1 : 2;
            var stage = new Sequential();
            for (int b = 0; b < layers[i]; b++)
            {
                int s = b == 0 ? stride : 1;
                Sequential? downsample = null;
                if (b == 0 && (s != 1 || inplanes != planes * expansion))
                    downsample = new Sequential(
                        new Conv2d(inplanes, planes * expansion, 1, stride: s, bias: false, generator: generator),
                        new BatchNorm2d(planes * expansion));
                stage.Append(bottleneck
                    ? new Bottleneck(inplanes, planes, s, downsample, generator)
                    : new BasicBlock(inplanes, planes, s, downsample, generator));
                inplanes = planes * expansion;
            }
            stages[i] = RegisterModule($"layer{i + 1}", stage);
        }
        Layers = stages;
        AvgPool = RegisterModule("avgpool", new AdaptiveAvgPool2d(1, 1));
        Fc = RegisterModule("fc", new Linear(512 * expansion, numClasses, generator: generator));
        ModelParts.InitKaimingNormal(this, "fan_out", null, generator);
    }

    /// <summary>ResNet-18 (basic blocks 2-2-2-2).</summary>
    public static ResNet ResNet18(int numClasses = 1000, Generator? generator = null) => new(false, [2, 2, 2, 2], numClasses, generator: generator);

    /// <summary>ResNet-34 (basic blocks 3-4-6-3).</summary>
    public static ResNet ResNet34(int numClasses = 1000, Generator? generator = null) => new(false, [3, 4, 6, 3], numClasses, generator: generator);

    /// <summary>ResNet-50 (bottlenecks 3-4-6-3).</summary>
    public static ResNet ResNet50(int numClasses = 1000, Generator? generator = null) => new(true, [3, 4, 6, 3], numClasses, generator: generator);

    /// <summary>ResNet-101 (bottlenecks 3-4-23-3).</summary>
    public static ResNet ResNet101(int numClasses = 1000, Generator? generator = null) => new(true, [3, 4, 23, 3], numClasses, generator: generator);

    /// <summary>ResNet-152 (bottlenecks 3-8-36-3).</summary>
    public static ResNet ResNet152(int numClasses = 1000, Generator? generator = null) => new(true, [3, 8, 36, 3], numClasses, generator: generator);

    /// <summary>
    /// The common CIFAR ResNet-18: a 3x3 stride-1 first conv and no max pool (an <see cref="Identity"/> under
    /// the same key), otherwise ResNet-18; 11,173,962 parameters for 10 classes. Keys as torchvision's resnet18.
    /// </summary>
    public static ResNet CifarResNet18(int numClasses = 10, Generator? generator = null) => new(false, [2, 2, 2, 2], numClasses, cifarStem: true, generator: generator);

    /// <summary>The stem convolution.</summary>
    public Conv2d Conv1 { get; }

    /// <summary>The stem batch norm.</summary>
    public BatchNorm2d Bn1 { get; }

    /// <summary>The stem max pool (an identity in the CIFAR variant).</summary>
    public Module MaxPool { get; }

    /// <summary>The four stages <c>layer1</c>..<c>layer4</c>.</summary>
    public IReadOnlyList<Sequential> Layers { get; }

    /// <summary>Global average pooling.</summary>
    public AdaptiveAvgPool2d AvgPool { get; }

    /// <summary>The classifier.</summary>
    public Linear Fc { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        var x = MaxPool.Call(F.Relu(Bn1.Call(Conv1.Call(input))));
        foreach (var stage in Layers) x = stage.Call(x);
        return Fc.Call(AvgPool.Call(x).Flatten(1));
    }
}

/// <summary>ResNet's two-conv residual block (torchvision's <c>BasicBlock</c>): 3x3 (strided), 3x3, add, ReLU.</summary>
public sealed class BasicBlock : Module
{
    /// <summary>Output channels per <c>planes</c>.</summary>
    public const int Expansion = 1;

    private readonly Conv2d _conv1, _conv2;
    private readonly BatchNorm2d _bn1, _bn2;
    private readonly Module? _downsample;

    /// <summary>Creates the block; <paramref name="downsample"/> maps the input to the output shape when they differ.</summary>
    public BasicBlock(int inplanes, int planes, int stride = 1, Module? downsample = null, Generator? generator = null)
    {
        _conv1 = RegisterModule("conv1", new Conv2d(inplanes, planes, 3, stride: stride, padding: 1, bias: false, generator: generator));
        _bn1 = RegisterModule("bn1", new BatchNorm2d(planes));
        RegisterModule("relu", new ReLU());
        _conv2 = RegisterModule("conv2", new Conv2d(planes, planes, 3, padding: 1, bias: false, generator: generator));
        _bn2 = RegisterModule("bn2", new BatchNorm2d(planes));
        if (downsample != null) _downsample = RegisterModule("downsample", downsample);
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        var y = _bn2.Call(_conv2.Call(F.Relu(_bn1.Call(_conv1.Call(input)))));
        return F.Relu(y.Add(_downsample?.Call(input) ?? input));
    }
}

/// <summary>
/// ResNet's bottleneck block (torchvision's <c>Bottleneck</c>, v1.5): 1x1 reduce, 3x3 (strided), 1x1 expand
/// to 4x <c>planes</c>, add, ReLU.
/// </summary>
public sealed class Bottleneck : Module
{
    /// <summary>Output channels per <c>planes</c>.</summary>
    public const int Expansion = 4;

    private readonly Conv2d _conv1, _conv2, _conv3;
    private readonly BatchNorm2d _bn1, _bn2, _bn3;
    private readonly Module? _downsample;

    /// <summary>Creates the block; <paramref name="downsample"/> maps the input to the output shape when they differ.</summary>
    public Bottleneck(int inplanes, int planes, int stride = 1, Module? downsample = null, Generator? generator = null)
    {
        _conv1 = RegisterModule("conv1", new Conv2d(inplanes, planes, 1, bias: false, generator: generator));
        _bn1 = RegisterModule("bn1", new BatchNorm2d(planes));
        _conv2 = RegisterModule("conv2", new Conv2d(planes, planes, 3, stride: stride, padding: 1, bias: false, generator: generator));
        _bn2 = RegisterModule("bn2", new BatchNorm2d(planes));
        _conv3 = RegisterModule("conv3", new Conv2d(planes, planes * Expansion, 1, bias: false, generator: generator));
        _bn3 = RegisterModule("bn3", new BatchNorm2d(planes * Expansion));
        RegisterModule("relu", new ReLU());
        if (downsample != null) _downsample = RegisterModule("downsample", downsample);
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        var y = F.Relu(_bn1.Call(_conv1.Call(input)));
        y = F.Relu(_bn2.Call(_conv2.Call(y)));
        y = _bn3.Call(_conv3.Call(y));
        return F.Relu(y.Add(_downsample?.Call(input) ?? input));
    }
}
