using ConvLab.NN;
using ConvLab.NN.Functional;

namespace ConvLab.Models;

/// <summary>
/// SqueezeNet 1.1 (Iandola et al., 2016; torchvision's <c>squeezenet1_1</c>) with torchvision's key names and initialisation:
/// <c>features.N</c> (convs, max pools with ceil mode and <see cref="Fire"/> modules), <c>classifier.1</c> the final 1x1
/// convolution (after dropout 0.5, followed by ReLU and global average pooling). 1,235,496 parameters for 1000 classes.
/// </summary>
public sealed class SqueezeNet11 : Module
{
    /// <summary>Creates SqueezeNet 1.1 for <paramref name="numClasses"/> classes.</summary>
    public SqueezeNet11(int numClasses = 1000, Generator? generator = null)
    {
        if (numClasses < 1) throw new ArgumentException($"SqueezeNet11: num_classes must be positive, got {numClasses}");
        var g = generator;
        Features = RegisterModule("features", new Sequential(
            new Conv2d(3, 64, 3, stride: 2, generator: g), new ReLU(), new MaxPool2d(3, 2, ceilMode: true),
            new Fire(64, 16, 64, 64, g), new Fire(128, 16, 64, 64, g), new MaxPool2d(3, 2, ceilMode: true),
            new Fire(128, 32, 128, 128, g), new Fire(256, 32, 128, 128, g), new MaxPool2d(3, 2, ceilMode: true),
            new Fire(256, 48, 192, 192, g), new Fire(384, 48, 192, 192, g), new Fire(384, 64, 256, 256, g), new Fire(512, 64, 256, 256, g)));
        var finalConv = new Conv2d(512, numClasses, 1, generator: g);
        Classifier = RegisterModule("classifier", new Sequential(new Dropout(0.5, g), finalConv, new ReLU(), new GlobalAvgPool2d(flatten: true)));
        foreach (var (_, m) in NamedModules())
        {
            if (m is not Conv2d c) continue;
            if (c == finalConv) Init.Normal_(c.Weight, 0, 0.01, g);
            else Init.KaimingUniform_(c.Weight, generator: g);
            Init.Zeros_(c.Bias!);
        }
    }

    /// <summary>Stem, pools and fire modules.</summary>
    public Sequential Features { get; }

    /// <summary>Dropout, final 1x1 convolution, ReLU and global average pooling.</summary>
    public Sequential Classifier { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => Classifier.Call(Features.Call(input));
}

/// <summary>SqueezeNet's fire module: 1x1 squeeze conv + ReLU, then 1x1 and 3x3 expand convs (+ ReLU) concatenated on channels (keys <c>squeeze</c>, <c>expand1x1</c>, <c>expand3x3</c>).</summary>
public sealed class Fire : Module
{
    private readonly Conv2d _squeeze, _expand1x1, _expand3x3;

    /// <summary>Creates a fire module with <paramref name="expand1x1Channels"/> + <paramref name="expand3x3Channels"/> output channels.</summary>
    public Fire(int inChannels, int squeezeChannels, int expand1x1Channels, int expand3x3Channels, Generator? generator = null)
    {
        _squeeze = RegisterModule("squeeze", new Conv2d(inChannels, squeezeChannels, 1, generator: generator));
        RegisterModule("squeeze_activation", new ReLU());
        _expand1x1 = RegisterModule("expand1x1", new Conv2d(squeezeChannels, expand1x1Channels, 1, generator: generator));
        RegisterModule("expand1x1_activation", new ReLU());
        _expand3x3 = RegisterModule("expand3x3", new Conv2d(squeezeChannels, expand3x3Channels, 3, padding: 1, generator: generator));
        RegisterModule("expand3x3_activation", new ReLU());
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        var s = F.Relu(_squeeze.Call(input));
        return Tensor.Cat([F.Relu(_expand1x1.Call(s)), F.Relu(_expand3x3.Call(s))], 1);
    }
}
