using ConvLab.NN;
using ConvLab.NN.Functional;

namespace ConvLab.Models;

/// <summary>
/// U-Net (Ronneberger et al., 2015) with padded 3x3 convolutions, so the output has the input's spatial size. Structure
/// and keys follow the widely used PyTorch port (milesial/Pytorch-UNet): <c>inc.double_conv.*</c>,
/// <c>downK.maxpool_conv.1.double_conv.*</c>, <c>upK.up</c> (2x2/2 transposed conv, or bilinear upsampling without
/// parameters), <c>upK.conv.double_conv.*</c>, <c>outc.conv</c>. Each double conv is (3x3 conv without bias, BN, ReLU) x2.
/// With bilinear upsampling the deepest level and the decoder convs are halved, as in that port.
/// 31,036,546 parameters for 1 input channel, 2 classes, base 64, depth 4, transposed-conv upsampling
/// (31,037,698 for 3 input channels, the port's default).
/// Inputs whose size is not divisible by 2^depth work too: upsampled maps are zero-padded to the skip's size.
/// </summary>
public sealed class UNet : Module
{
    private readonly DoubleConv _inc;
    private readonly List<Down> _downs = [];
    private readonly List<Up> _ups = [];
    private readonly OutConv _outc;

    /// <summary>Creates a U-Net with <paramref name="depth"/> down/up levels and <paramref name="baseChannels"/> channels at full resolution.</summary>
    public UNet(int inChannels = 1, int numClasses = 2, int baseChannels = 64, int depth = 4, bool bilinear = false, Generator? generator = null)
    {
        if (inChannels < 1 || numClasses < 1 || baseChannels < 1 || depth < 1)
            throw new ArgumentException($"UNet: in_channels ({inChannels}), num_classes ({numClasses}), base_channels ({baseChannels}) and depth ({depth}) must be positive");
        if (bilinear && baseChannels % 2 != 0)
            throw new ArgumentException($"UNet: base_channels must be even with bilinear upsampling, got {baseChannels}");
        var g = generator;
        int factor = bilinear ? 2 : 1;
        _inc = RegisterModule("inc", new DoubleConv(inChannels, baseChannels, baseChannels, g));
        for (int i = 1; i <= depth; i++)
        {
            int inCh = baseChannels << (i - 1), outCh = baseChannels << i;
            _downs.Add(RegisterModule($"down{i}", new Down(inCh, i == depth ? outCh / factor : outCh, g)));
        }
        for (int i = 1; i <= depth; i++)
        {
            int inCh = baseChannels << (depth - i + 1), outCh = baseChannels << (depth - i);
            _ups.Add(RegisterModule($"up{i}", new Up(inCh, i == depth ? outCh : outCh / factor, bilinear, g)));
        }
        _outc = RegisterModule("outc", new OutConv(baseChannels, numClasses, g));
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        if (input.Rank != 4)
            throw new ArgumentException($"UNet: expected a 4-D input (N, C, H, W), got shape {ShapeUtil.Format(input.Shape)}");
        var skips = new List<Tensor> { _inc.Call(input) };
        foreach (var d in _downs) skips.Add(d.Call(skips[^1]));
        var x = skips[^1];
        for (int i = 0; i < _ups.Count; i++) x = _ups[i].Forward(x, skips[^(i + 2)]);
        return _outc.Call(x);
    }

    private sealed class DoubleConv : Module
    {
        private readonly Sequential _seq;

        public DoubleConv(int inCh, int outCh, int midCh, Generator? g) =>
            _seq = RegisterModule("double_conv", new Sequential(
                new Conv2d(inCh, midCh, 3, padding: 1, bias: false, generator: g), new BatchNorm2d(midCh), new ReLU(),
                new Conv2d(midCh, outCh, 3, padding: 1, bias: false, generator: g), new BatchNorm2d(outCh), new ReLU()));

        public override Tensor Forward(Tensor input) => _seq.Call(input);
    }

    private sealed class Down : Module
    {
        private readonly Sequential _seq;

        public Down(int inCh, int outCh, Generator? g) =>
            _seq = RegisterModule("maxpool_conv", new Sequential(new MaxPool2d(2), new DoubleConv(inCh, outCh, outCh, g)));

        public override Tensor Forward(Tensor input)
        {
            if (input.Shape[2] < 2 || input.Shape[3] < 2)
                throw new ArgumentException($"UNet: input too small for the network depth: a level has spatial size {input.Shape[2]}x{input.Shape[3]}, cannot be max-pooled by 2");
            return _seq.Call(input);
        }
    }

    private sealed class Up : Module
    {
        private readonly Module _up;
        private readonly DoubleConv _conv;

        public Up(int inCh, int outCh, bool bilinear, Generator? g)
        {
            if (bilinear)
            {
                _up = RegisterModule("up", new Upsample(scaleFactor: [2.0], mode: "bilinear", alignCorners: true));
                _conv = RegisterModule("conv", new DoubleConv(inCh, outCh, inCh / 2, g));
            }
            else
            {
                _up = RegisterModule("up", new ConvTranspose2d(inCh, inCh / 2, 2, stride: 2, generator: g));
                _conv = RegisterModule("conv", new DoubleConv(inCh, outCh, outCh, g));
            }
        }

        public override Tensor Forward(Tensor input) => throw new InvalidOperationException("UNet.Up needs the skip connection");

        public Tensor Forward(Tensor x, Tensor skip)
        {
            x = _up.Call(x);
            int dy = skip.Shape[2] - x.Shape[2], dx = skip.Shape[3] - x.Shape[3];
            if (dy != 0 || dx != 0) x = F.Pad(x, [dx / 2, dx - dx / 2, dy / 2, dy - dy / 2]);
            return _conv.Call(Tensor.Cat([skip, x], 1));
        }
    }

    private sealed class OutConv : Module
    {
        private readonly Conv2d _conv;

        public OutConv(int inCh, int outCh, Generator? g) => _conv = RegisterModule("conv", new Conv2d(inCh, outCh, 1, generator: g));

        public override Tensor Forward(Tensor input) => _conv.Call(input);
    }
}
