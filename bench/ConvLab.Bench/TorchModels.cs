using TorchSharp;
using TorchSharp.Modules;
using TT = TorchSharp.torch.Tensor;
using Nn = TorchSharp.torch.nn;

namespace ConvLab.Bench;

/// <summary>
/// The peer's models, built with TorchSharp's torch.nn under torchvision's structure and state-dict keys, so
/// ConvLab's weights copy over key by key and both sides run the very same network.
/// </summary>
static class TorchModels
{
    /// <summary>ResNet-18; <paramref name="cifar"/>: 3x3/1 stem and no max pool (ConvLab's cifar_resnet18).</summary>
    public static Nn.Module<TT, TT> ResNet18(int classes, bool cifar) => new ResNet(classes, cifar);

    /// <summary>LeNet-5 as ConvLab's (tanh, average pooling, padded first conv for 28x28 input).</summary>
    public static Nn.Module<TT, TT> LeNet5(int classes) => new LeNet(classes);

    /// <summary>Copies every parameter and buffer of <paramref name="from"/> into the peer by state-dict key; fails on a missing key or shape.</summary>
    public static void CopyWeights(NN.Module from, Nn.Module<TT, TT> to)
    {
        var src = from.StateDict();
        using var _ = torch.no_grad();
        foreach (var (key, dst) in to.state_dict())
        {
            if (key.EndsWith("num_batches_tracked", StringComparison.Ordinal)) continue;
            if (!src.TryGetValue(key, out var t) || !t.Shape.ToArray().Select(d => (long)d).SequenceEqual(dst.shape))
                throw new InvalidOperationException($"bench: the peer's '{key}' {string.Join("x", dst.shape)} has no ConvLab counterpart of that shape");
            dst.copy_(torch.tensor(t.ToArray(), dst.shape));
        }
    }

    private static double Conv(int n, int cin, int cout, int k, int hw) => 2.0 * n * cout * hw * hw * cin * k * k;

    /// <summary>Forward FLOPs (convolutions and the classifier; 2 per multiply-add) of ResNet-18 on n images of size x size.</summary>
    public static double ResNet18Flops(int n, int size, bool cifar, int classes)
    {
        int hw = cifar ? size : size / 2;
        double f = cifar ? Conv(n, 3, 64, 3, hw) : Conv(n, 3, 64, 7, hw);
        if (!cifar) hw /= 2;
        int inplanes = 64;
        for (int i = 0; i < 4; i++)
        {
            int planes = 64 << i;
            for (int b = 0; b < 2; b++)
            {
                int stride = i > 0 && b == 0 ? 2 : 1;
                int outHw = (hw - 1) / stride + 1;
                f += Conv(n, inplanes, planes, 3, outHw) + Conv(n, planes, planes, 3, outHw);
                if (stride != 1 || inplanes != planes) f += Conv(n, inplanes, planes, 1, outHw);
                inplanes = planes; hw = outHw;
            }
        }
        return f + 2.0 * n * 512 * classes;
    }

    /// <summary>Forward FLOPs of LeNet-5 (10 classes) on n 28x28 images.</summary>
    public static double LeNet5Flops(int n) =>
        Conv(n, 1, 6, 5, 28) + Conv(n, 6, 16, 5, 10) + 2.0 * n * (400 * 120 + 120 * 84 + 84 * 10);

    private sealed class BasicBlock : Nn.Module<TT, TT>
    {
        private readonly Conv2d _conv1, _conv2;
        private readonly BatchNorm2d _bn1, _bn2;
        private readonly Nn.Module<TT, TT>? _downsample;

        public BasicBlock(long inplanes, long planes, long stride) : base("BasicBlock")
        {
            _conv1 = Nn.Conv2d(inplanes, planes, 3, stride: stride, padding: 1, bias: false);
            _bn1 = Nn.BatchNorm2d(planes);
            _conv2 = Nn.Conv2d(planes, planes, 3, padding: 1, bias: false);
            _bn2 = Nn.BatchNorm2d(planes);
            register_module("conv1", _conv1); register_module("bn1", _bn1);
            register_module("conv2", _conv2); register_module("bn2", _bn2);
            if (stride != 1 || inplanes != planes)
            {
                _downsample = Nn.Sequential(Nn.Conv2d(inplanes, planes, 1, stride: stride, bias: false), Nn.BatchNorm2d(planes));
                register_module("downsample", _downsample);
            }
        }

        // torchvision: out = relu(bn2(conv2(relu(bn1(conv1(x))))) + identity), ReLUs in place.
        public override TT forward(TT x)
        {
            var o = Nn.functional.relu(_bn1.forward(_conv1.forward(x)), inplace: true);
            o = _bn2.forward(_conv2.forward(o));
            o.add_(_downsample is null ? x : _downsample.forward(x));
            return Nn.functional.relu(o, inplace: true);
        }
    }

    private sealed class ResNet : Nn.Module<TT, TT>
    {
        private readonly Nn.Module<TT, TT> _stem, _layers, _fc;

        public ResNet(int classes, bool cifar) : base("ResNet")
        {
            var conv1 = cifar ? Nn.Conv2d(3, 64, 3, stride: 1, padding: 1, bias: false) : Nn.Conv2d(3, 64, 7, stride: 2, padding: 3, bias: false);
            register_module("conv1", conv1);
            var bn1 = Nn.BatchNorm2d(64);
            register_module("bn1", bn1);
            var stem = new List<Nn.Module<TT, TT>> { conv1, bn1, Nn.ReLU(inplace: true) };
            if (!cifar) stem.Add(Nn.MaxPool2d(3, 2, 1));
            _stem = Nn.Sequential(stem);
            var stages = new List<Nn.Module<TT, TT>>();
            long inplanes = 64;
            for (int i = 0; i < 4; i++)
            {
                long planes = 64L << i;
                var stage = Nn.Sequential(new BasicBlock(inplanes, planes, i == 0 ? 1 : 2), new BasicBlock(planes, planes, 1));
                register_module($"layer{i + 1}", stage);
                stages.Add(stage);
                inplanes = planes;
            }
            _layers = Nn.Sequential(stages);
            _fc = Nn.Linear(512, classes);
            register_module("fc", _fc);
        }

        public override TT forward(TT x)
        {
            var h = _layers.forward(_stem.forward(x));
            return _fc.forward(Nn.functional.adaptive_avg_pool2d(h, [1, 1]).flatten(1));
        }
    }

    private sealed class LeNet : Nn.Module<TT, TT>
    {
        private readonly Nn.Module<TT, TT> _features, _classifier;

        public LeNet(int classes) : base("LeNet5")
        {
            _features = Nn.Sequential(Nn.Conv2d(1, 6, 5, padding: 2), Nn.Tanh(), Nn.AvgPool2d(2),
                Nn.Conv2d(6, 16, 5), Nn.Tanh(), Nn.AvgPool2d(2));
            _classifier = Nn.Sequential(Nn.Flatten(), Nn.Linear(400, 120), Nn.Tanh(), Nn.Linear(120, 84), Nn.Tanh(), Nn.Linear(84, classes));
            register_module("features", _features);
            register_module("classifier", _classifier);
        }

        public override TT forward(TT x) => _classifier.forward(_features.forward(x));
    }
}
