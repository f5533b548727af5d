using ConvLab.NN;

namespace ConvLab.Models;

/// <summary>
/// The default model of <c>convlab train</c>: two conv(3x3, pad 1)-BatchNorm-ReLU-maxpool(2) blocks (1→32→64
/// channels) and two fully connected layers (64·7·7 → 128 → classes): 421,834 parameters for 1x28x28 inputs and 10
/// classes. Keys as the equivalent PyTorch <c>nn.Sequential</c>s: <c>features.0.weight</c> (conv), <c>features.1.*</c>
/// (batch norm), <c>features.4.*</c>, <c>features.5.*</c>, <c>classifier.1.*</c>, <c>classifier.3.*</c> (linear).
/// </summary>
public sealed class SimpleCnn : Module
{
    /// <summary>Creates the network for <paramref name="numClasses"/> classes on <paramref name="inChannels"/> x <paramref name="imageSize"/>² inputs (the size must be divisible by 4).</summary>
    public SimpleCnn(int numClasses = 10, int inChannels = 1, int imageSize = 28, Generator? generator = null)
    {
        if (numClasses <= 0 || inChannels <= 0 || imageSize <= 0 || imageSize % 4 != 0)
            throw new ArgumentException($"simple_cnn: expected positive classes/channels and an image size divisible by 4, got classes={numClasses}, channels={inChannels}, size={imageSize}");
        Features = RegisterModule("features", new Sequential(
            new Conv2d(inChannels, 32, 3, padding: 1, generator: generator), new BatchNorm2d(32), new ReLU(), new MaxPool2d(2),
            new Conv2d(32, 64, 3, padding: 1, generator: generator), new BatchNorm2d(64), new ReLU(), new MaxPool2d(2)));
        int side = imageSize / 4;
        Classifier = RegisterModule("classifier", new Sequential(
            new Flatten(),
            new Linear(64 * side * side, 128, generator: generator), new ReLU(),
            new Linear(128, numClasses, generator: generator)));
    }

    /// <summary>The two convolution blocks.</summary>
    public Sequential Features { get; }

    /// <summary>The fully connected head.</summary>
    public Sequential Classifier { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => Classifier.Call(Features.Call(input));
}
