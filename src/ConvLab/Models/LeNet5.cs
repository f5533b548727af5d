using ConvLab.NN;

namespace ConvLab.Models;

/// <summary>
/// LeNet-5 (LeCun et al., 1998) as taught in courses: two 5x5 convolutions with tanh and 2x2 average
/// pooling (subsampling), then three fully connected layers. Takes 1x28x28 inputs (the first conv pads
/// by 2, which is the classic 32x32 input) and has 61,706 parameters. Keys: <c>features.0.weight</c>,
/// <c>classifier.0.weight</c>, ...
/// </summary>
public sealed class LeNet5 : Module
{
    /// <summary>Creates LeNet-5 for <paramref name="numClasses"/> classes and <paramref name="inChannels"/> input channels.</summary>
    public LeNet5(int numClasses = 10, int inChannels = 1, Generator? generator = null)
    {
        Features = RegisterModule("features", new Sequential(
            new Conv2d(inChannels, 6, 5, padding: 2, generator: generator), new Tanh(), new AvgPool2d(2),
            new Conv2d(6, 16, 5, generator: generator), new Tanh(), new AvgPool2d(2)));
        Classifier = RegisterModule("classifier", new Sequential(
            new Flatten(),
            new Linear(16 * 5 * 5, 120, generator: generator), new Tanh(),
            new Linear(120, 84, generator: generator), new Tanh(),
            new Linear(84, numClasses, generator: generator)));
    }

    /// <summary>Convolution and pooling stages.</summary>
    public Sequential Features { get; }

    /// <summary>Fully connected head.</summary>
    public Sequential Classifier { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => Classifier.Call(Features.Call(input));
}
