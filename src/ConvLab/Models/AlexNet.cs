using ConvLab.NN;

namespace ConvLab.Models;

/// <summary>
/// AlexNet as in torchvision 0.14 (the single-GPU "one weird trick" variant): five convolutions, an
/// adaptive 6x6 average pool and a three-layer classifier with dropout. Keys and shapes match
/// torchvision (<c>features.0.weight</c>, <c>classifier.6.weight</c>, ...); 61,100,840 parameters for
/// 1000 classes. PyTorch default initialisation, as torchvision. Inputs of at least 63x63.
/// </summary>
public sealed class AlexNet : Module
{
    /// <summary>Creates AlexNet for <paramref name="numClasses"/> classes with dropout probability <paramref name="dropout"/>.</summary>
    public AlexNet(int numClasses = 1000, double dropout = 0.5, Generator? generator = null)
    {
        if (numClasses < 1) throw new ArgumentException($"AlexNet: num_classes must be positive, got {numClasses}");
        Features = RegisterModule("features", new Sequential(
            new Conv2d(3, 64, 11, stride: 4, padding: 2, generator: generator), new ReLU(), new MaxPool2d(3, 2),
            new Conv2d(64, 192, 5, padding: 2, generator: generator), new ReLU(), new MaxPool2d(3, 2),
            new Conv2d(192, 384, 3, padding: 1, generator: generator), new ReLU(),
            new Conv2d(384, 256, 3, padding: 1, generator: generator), new ReLU(),
            new Conv2d(256, 256, 3, padding: 1, generator: generator), new ReLU(), new MaxPool2d(3, 2)));
        AvgPool = RegisterModule("avgpool", new AdaptiveAvgPool2d(6, 6));
        Classifier = RegisterModule("classifier", new Sequential(
            new Dropout(dropout, generator), new Linear(256 * 6 * 6, 4096, generator: generator), new ReLU(),
            new Dropout(dropout, generator), new Linear(4096, 4096, generator: generator), new ReLU(),
            new Linear(4096, numClasses, generator: generator)));
    }

    /// <summary>Convolution and pooling stages.</summary>
    public Sequential Features { get; }

    /// <summary>Adaptive average pooling to 6x6.</summary>
    public AdaptiveAvgPool2d AvgPool { get; }

    /// <summary>Fully connected head.</summary>
    public Sequential Classifier { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => Classifier.Call(AvgPool.Call(Features.Call(input)).Flatten(1));
}
