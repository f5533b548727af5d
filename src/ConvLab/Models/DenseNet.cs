using ConvLab.NN;
using ConvLab.NN.Functional;

namespace ConvLab.Models;

/// <summary>
/// DenseNet (Huang et al., 2017) with torchvision's structure, key names and initialisation: <c>features.conv0/norm0/relu0/pool0</c>,
/// <c>features.denseblockB.denselayerL.{norm1,conv1,norm2,conv2}</c>, <c>features.transitionB.{norm,conv,pool}</c>,
/// <c>features.norm5</c>, <c>classifier</c>. <see cref="DenseNet121"/> builds the 121-layer variant (7,978,856 parameters).
/// </summary>
public class DenseNet : Module
{
    /// <summary>Creates a DenseNet with the given growth rate, layers per block, initial features and bottleneck width factor.</summary>
    public DenseNet(int growthRate, int[] blockConfig, int numInitFeatures, int bnSize, int numClasses, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(blockConfig);
        if (numClasses < 1) throw new ArgumentException($"DenseNet: num_classes must be positive, got {numClasses}");
        if (growthRate < 1 || bnSize < 1 || numInitFeatures < 1 || blockConfig.Length == 0 || blockConfig.Any(n => n < 1))
            throw new ArgumentException($"DenseNet: growth_rate ({growthRate}), bn_size ({bnSize}), num_init_features ({numInitFeatures}) and every block size ([{string.Join(", ", blockConfig)}]) must be positive");
        var features = new NamedSequential()
            .Add("conv0", new Conv2d(3, numInitFeatures, 7, stride: 2, padding: 3, bias: false, generator: generator))
            .Add("norm0", new BatchNorm2d(numInitFeatures))
            .Add("relu0", new ReLU())
            .Add("pool0", new MaxPool2d(3, 2, 1));
        int ch = numInitFeatures;
        for (int b = 0; b < blockConfig.Length; b++)
        {
            var block = new NamedSequential(); // each dense layer appends its features to the running tensor
            for (int l = 0; l < blockConfig[b]; l++)
                block.Add($"denselayer{l + 1}", new DenseLayer(ch + l * growthRate, growthRate, bnSize, generator));
            features.Add($"denseblock{b + 1}", block);
            ch += blockConfig[b] * growthRate;
            if (b != blockConfig.Length - 1)
            {
                features.Add($"transition{b + 1}", new NamedSequential()
                    .Add("norm", new BatchNorm2d(ch))
                    .Add("relu", new ReLU())
                    .Add("conv", new Conv2d(ch, ch / 2, 1, bias: false, generator: generator))
                    .Add("pool", new AvgPool2d(2, 2)));
                ch /= 2;
            }
        }
        features.Add("norm5", new BatchNorm2d(ch));
        Features = RegisterModule("features", features);
        Classifier = RegisterModule("classifier", new Linear(ch, numClasses, generator: generator));
        ModelParts.InitKaimingNormal(this, "fan_in", null, generator);
    }

    /// <summary>Stem, dense blocks, transitions and the final batch norm.</summary>
    public Module Features { get; }

    /// <summary>The final linear layer.</summary>
    public Linear Classifier { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        var x = F.GlobalAvgPool2d(F.Relu(Features.Call(input)));
        return Classifier.Call(x.Flatten(1));
    }

    /// <summary>Bottleneck layer: BN-ReLU-1x1 conv (bn_size·growth channels), BN-ReLU-3x3 conv (growth channels); output is its input with the new features appended.</summary>
    private sealed class DenseLayer : Module
    {
        private readonly Module _body;

        public DenseLayer(int inCh, int growth, int bnSize, Generator? g)
        {
            _body = new NamedSequential()
                .Add("norm1", new BatchNorm2d(inCh))
                .Add("relu1", new ReLU())
                .Add("conv1", new Conv2d(inCh, bnSize * growth, 1, bias: false, generator: g))
                .Add("norm2", new BatchNorm2d(bnSize * growth))
                .Add("relu2", new ReLU())
                .Add("conv2", new Conv2d(bnSize * growth, growth, 3, padding: 1, bias: false, generator: g));
            // torchvision registers the layers directly on _DenseLayer, so hoist them for the keys.
            foreach (var (name, m) in _body.NamedChildren()) RegisterModule(name, m);
        }

        public override Tensor Forward(Tensor input) => Tensor.Cat([input, _body.Call(input)], 1);
    }
}

/// <summary>DenseNet-121 (torchvision's <c>densenet121</c>): growth 32, blocks (6, 12, 24, 16), 64 initial features, bn_size 4; 7,978,856 parameters for 1000 classes.</summary>
public sealed class DenseNet121(int numClasses = 1000, Generator? generator = null)
    : DenseNet(32, [6, 12, 24, 16], 64, 4, numClasses, generator);
