using ConvLab.NN;
using ConvLab.NN.Functional;

namespace ConvLab.Models;

/// <summary>
/// MobileNetV2 (Sandler et al., 2018) with torchvision's structure, key names and initialisation:
/// <c>features.0</c> stem, <c>features.1</c>–<c>features.17</c> inverted residual blocks (<c>features.N.conv.*</c>),
/// <c>features.18</c> 1x1 conv to 1280 channels, <c>classifier.1</c> the final linear layer (after dropout 0.2).
/// 3,504,872 parameters for 1000 classes at width 1.0.
/// </summary>
public sealed class MobileNetV2 : Module
{
    private static readonly (int T, int C, int N, int S)[] Settings =
        [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];

    /// <summary>Creates MobileNetV2 for <paramref name="numClasses"/> classes; <paramref name="widthMult"/> scales every layer's channels.</summary>
    public MobileNetV2(int numClasses = 1000, double widthMult = 1.0, Generator? generator = null)
    {
        if (numClasses < 1) throw new ArgumentException($"MobileNetV2: num_classes must be positive, got {numClasses}");
        if (!(widthMult > 0)) throw new ArgumentException($"MobileNetV2: width_mult must be positive, got {widthMult}");
        int inCh = ModelParts.MakeDivisible(32 * widthMult);
        int lastCh = ModelParts.MakeDivisible(1280 * Math.Max(1.0, widthMult));
        Features = RegisterModule("features", new Sequential(ModelParts.ConvBnAct(3, inCh, 3, 2, 1, new ReLU6(), generator)));
        foreach (var (t, c, n, s) in Settings)
        {
            int outCh = ModelParts.MakeDivisible(c * widthMult);
            for (int i = 0; i < n; i++)
            {
                Features.Append(new InvertedResidual(inCh, outCh, i == 0 ? s : 1, t, generator));
                inCh = outCh;
            }
        }
        Features.Append(ModelParts.ConvBnAct(inCh, lastCh, 1, 1, 1, new ReLU6(), generator));
        Classifier = RegisterModule("classifier", new Sequential(new Dropout(0.2, generator), new Linear(lastCh, numClasses, generator: generator)));
        ModelParts.InitKaimingNormal(this, "fan_out", 0.01, generator);
    }

    /// <summary>Stem, inverted residual blocks and the final 1x1 convolution.</summary>
    public Sequential Features { get; }

    /// <summary>Dropout and the final linear layer.</summary>
    public Sequential Classifier { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        var x = F.GlobalAvgPool2d(Features.Call(input));
        return Classifier.Call(x.Flatten(1));
    }
}

/// <summary>
/// MobileNetV2's inverted residual block (torchvision keys <c>conv.0</c>, <c>conv.1</c>, ...): optional 1x1 expansion
/// (conv-BN-ReLU6), 3x3 depthwise conv-BN-ReLU6, linear 1x1 projection conv + BN; identity shortcut when stride is 1 and
/// the channel count is unchanged.
/// </summary>
public sealed class InvertedResidual : Module
{
    private readonly bool _residual;

    /// <summary>Creates a block from <paramref name="inChannels"/> to <paramref name="outChannels"/> with expansion <paramref name="expandRatio"/>.</summary>
    public InvertedResidual(int inChannels, int outChannels, int stride, int expandRatio, Generator? generator = null)
    {
        if (stride is not (1 or 2)) throw new ArgumentException($"InvertedResidual: stride must be 1 or 2, got {stride}");
        if (expandRatio < 1) throw new ArgumentException($"InvertedResidual: expand_ratio must be positive, got {expandRatio}");
        int hidden = inChannels * expandRatio;
        _residual = stride == 1 && inChannels == outChannels;
        var conv = new Sequential();
        if (expandRatio != 1) conv.Append(ModelParts.ConvBnAct(inChannels, hidden, 1, 1, 1, new ReLU6(), generator));
        conv.Append(ModelParts.ConvBnAct(hidden, hidden, 3, stride, hidden, new ReLU6(), generator));
        conv.Append(new Conv2d(hidden, outChannels, 1, bias: false, generator: generator));
        conv.Append(new BatchNorm2d(outChannels));
        Conv = RegisterModule("conv", conv);
    }

    /// <summary>The block's layers.</summary>
    public Sequential Conv { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        var y = Conv.Call(input);
        return _residual ? y.Add(input) : y;
    }
}
