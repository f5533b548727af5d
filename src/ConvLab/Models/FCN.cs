using ConvLab.Autograd;
using ConvLab.NN;
using ConvLab.NN.Functional;

namespace ConvLab.Models;

/// <summary>
/// FCN-32s (Long et al., 2015) on a VGG-16 backbone. <c>features.N</c> has torchvision's <c>vgg16.features</c> keys and
/// shapes (so VGG-16 weights load by key), except that the first convolution pads by 100 and the max pools use ceil mode,
/// as in the original Caffe net, so every input size works. Then <c>fc6</c> (7x7 conv to 4096), <c>fc7</c> (1x1 conv),
/// each with ReLU and dropout 0.5, <c>score_fr</c> (1x1 conv to the classes, zero-initialised), <c>upscore</c>
/// (64x64 stride-32 transposed conv without bias, initialised to bilinear upsampling) and a crop at offset 19 back to the
/// input size. 136,152,917 parameters for 21 classes.
/// </summary>
public sealed class FCN32s : Module
{
    private static readonly int[] VggConfig = [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0];
    private readonly Conv2d _fc6, _fc7, _score;
    private readonly ConvTranspose2d _upscore;
    private readonly Dropout _drop6, _drop7;

    /// <summary>Creates FCN-32s for <paramref name="numClasses"/> classes (PASCAL VOC: 21).</summary>
    public FCN32s(int numClasses = 21, Generator? generator = null) : this(numClasses, 1, generator) { }

    /// <summary>Same structure with every width divided by <paramref name="widthDivisor"/> (small copies for tests).</summary>
    internal FCN32s(int numClasses, int widthDivisor, Generator? generator)
    {
        if (numClasses < 1) throw new ArgumentException($"FCN32s: num_classes must be positive, got {numClasses}");
        var g = generator;
        Features = RegisterModule("features", new Sequential());
        int ch = 3;
        foreach (int c in VggConfig)
        {
            if (c == 0) { Features.Append(new MaxPool2d(2, 2, ceilMode: true)); continue; }
            Features.Append(new Conv2d(ch, c / widthDivisor, 3, padding: Features.Count == 0 ? 100 : 1, generator: g)).Append(new ReLU());
            ch = c / widthDivisor;
        }
        int fc = 4096 / widthDivisor;
        _fc6 = RegisterModule("fc6", new Conv2d(ch, fc, 7, generator: g));
        _fc7 = RegisterModule("fc7", new Conv2d(fc, fc, 1, generator: g));
        _score = RegisterModule("score_fr", new Conv2d(fc, numClasses, 1, generator: g));
        _upscore = RegisterModule("upscore", new ConvTranspose2d(numClasses, numClasses, 64, stride: 32, bias: false, generator: g));
        _drop6 = RegisterModule("drop6", new Dropout(0.5, g));
        _drop7 = RegisterModule("drop7", new Dropout(0.5, g));

        // torchvision's VGG init for the convolutions; the paper's zero score layer and bilinear upsampling.
        ModelParts.InitKaimingNormal(this, "fan_out", null, g);
        Init.Zeros_(_score.Weight); Init.Zeros_(_score.Bias!);
        var w = new float[numClasses * numClasses * 64 * 64];
        for (int c = 0; c < numClasses; c++)
            for (int y = 0; y < 64; y++)
                for (int x = 0; x < 64; x++)
                    w[((c * numClasses + c) * 64 + y) * 64 + x] = (float)((1 - Math.Abs(y - 31.5) / 32) * (1 - Math.Abs(x - 31.5) / 32));
        using (new NoGrad()) _upscore.Weight.Copy_(Tensor.FromArray(w, numClasses, numClasses, 64, 64));
    }

    /// <summary>VGG-16 convolutions and pools.</summary>
    public Sequential Features { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        if (input.Rank != 4)
            throw new ArgumentException($"FCN32s: expected a 4-D input (N, C, H, W), got shape {ShapeUtil.Format(input.Shape)}");
        var x = _drop6.Call(F.Relu(_fc6.Call(Features.Call(input))));
        x = _drop7.Call(F.Relu(_fc7.Call(x)));
        x = _upscore.Call(_score.Call(x));
        // Offset 19 aligns the upsampled map with the input, undoing the 100-pixel padding of the first conv.
        return x.Narrow(2, 19, input.Shape[2]).Narrow(3, 19, input.Shape[3]).Contiguous();
    }
}
