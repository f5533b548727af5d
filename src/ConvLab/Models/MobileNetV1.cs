using ConvLab.NN;
using ConvLab.NN.Functional;

namespace ConvLab.Models;

/// <summary>
/// MobileNetV1 (Howard et al., 2017). torchvision has no such model, so the keys follow the common PyTorch port:
/// <c>features.0</c> = 3x3/2 conv-BN-ReLU stem (keys .0, .1), <c>features.1</c>–<c>features.13</c> depthwise-separable blocks
/// (depthwise conv .0, BN .1, ReLU .2, pointwise conv .3, BN .4, ReLU .5), global average pooling, <c>classifier</c> linear.
/// Convolutions have no bias. Channels are scaled by the width multiplier and rounded to multiples of 8 (torchvision's
/// <c>_make_divisible</c>). 4,231,976 parameters for 1000 classes at width 1.0.
/// </summary>
public sealed class MobileNetV1 : Module
{
    private static readonly (int C, int S)[] Blocks =
        [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)];

    /// <summary>Creates MobileNetV1 for <paramref name="numClasses"/> classes; <paramref name="widthMult"/> is the paper's α.</summary>
    public MobileNetV1(int numClasses = 1000, double widthMult = 1.0, Generator? generator = null)
    {
        if (numClasses < 1) throw new ArgumentException($"MobileNetV1: num_classes must be positive, got {numClasses}");
        if (!(widthMult > 0)) throw new ArgumentException($"MobileNetV1: width_mult must be positive, got {widthMult}");
        var g = generator;
        int ch = ModelParts.MakeDivisible(32 * widthMult);
        Features = RegisterModule("features", new Sequential(ModelParts.ConvBnAct(3, ch, 3, 2, 1, new ReLU(), g)));
        foreach (var (c, s) in Blocks)
        {
            int outCh = ModelParts.MakeDivisible(c * widthMult);
            var dw = ModelParts.ConvBnAct(ch, ch, 3, s, ch, new ReLU(), g);
            var pw = ModelParts.ConvBnAct(ch, outCh, 1, 1, 1, new ReLU(), g);
            Features.Append(new Sequential(dw[0], dw[1], dw[2], pw[0], pw[1], pw[2]));
            ch = outCh;
        }
        Classifier = RegisterModule("classifier", new Linear(ch, numClasses, generator: g));
        ModelParts.InitKaimingNormal(this, "fan_out", 0.01, g);
    }

    /// <summary>Stem and depthwise-separable blocks.</summary>
    public Sequential Features { get; }

    /// <summary>The final linear layer.</summary>
    public Linear Classifier { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => Classifier.Call(F.GlobalAvgPool2d(Features.Call(input)).Flatten(1));
}
