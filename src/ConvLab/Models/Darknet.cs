using ConvLab.NN;
using ConvLab.NN.Functional;

namespace ConvLab.Models;

/// <summary>
/// Darknet-53 (Redmon and Farhadi, 2018), the YOLOv3 backbone: every convolution is conv (no bias) - BN - LeakyReLU(0.1)
/// (keys <c>.0</c>, <c>.1</c>); <c>stem</c> 3x3 conv to 32 channels, then <c>layer1</c>–<c>layer5</c>, each a stride-2 3x3
/// conv doubling the channels (<c>layerK.0</c>) followed by 1, 2, 8, 8, 4 residual blocks (<c>layerK.i.conv1</c> 1x1 halving,
/// <c>layerK.i.conv2</c> 3x3 restoring). With a top (numClasses &gt; 0): global average pooling and <c>fc</c>.
/// 40,584,928 backbone parameters; 41,609,928 with a 1000-class top.
/// </summary>
public sealed class Darknet53 : Module
{
    private static readonly int[] Repeats = [1, 2, 8, 8, 4];
    private readonly Sequential _stem;
    private readonly Sequential[] _layers = new Sequential[5];
    private readonly Linear? _fc;

    /// <summary>Creates Darknet-53; <paramref name="numClasses"/> 0 builds the backbone only (no <c>fc</c>).</summary>
    public Darknet53(int numClasses = 1000, Generator? generator = null)
    {
        if (numClasses < 0) throw new ArgumentException($"Darknet53: num_classes must be non-negative (0 = no classifier), got {numClasses}");
        var g = generator;
        _stem = RegisterModule("stem", ConvBnLeaky(3, 32, 3, 1, g));
        int ch = 32;
        for (int i = 0; i < 5; i++)
        {
            var layer = new Sequential(ConvBnLeaky(ch, ch * 2, 3, 2, g));
            ch *= 2;
            for (int r = 0; r < Repeats[i]; r++) layer.Append(new DarkResidual(ch, g));
            _layers[i] = RegisterModule($"layer{i + 1}", layer);
        }
        if (numClasses > 0) _fc = RegisterModule("fc", new Linear(ch, numClasses, generator: g));
    }

    /// <summary>Conv (no bias) - BatchNorm - LeakyReLU(0.1), padded to keep the size at stride 1.</summary>
    internal static Sequential ConvBnLeaky(int inCh, int outCh, int kernel, int stride, Generator? g) =>
        ModelParts.ConvBnAct(inCh, outCh, kernel, stride, 1, new LeakyReLU(0.1), g);

    /// <summary>The outputs of layer3, layer4 and layer5 (strides 8, 16, 32; 256, 512, 1024 channels), as YOLOv3 uses them.</summary>
    public (Tensor C3, Tensor C4, Tensor C5) ForwardFeatures(Tensor input)
    {
        var x = _layers[1].Call(_layers[0].Call(_stem.Call(input)));
        var c3 = _layers[2].Call(x);
        var c4 = _layers[3].Call(c3);
        return (c3, c4, _layers[4].Call(c4));
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        var c5 = ForwardFeatures(input).C5;
        return _fc == null ? c5 : _fc.Call(F.GlobalAvgPool2d(c5).Flatten(1));
    }

    private sealed class DarkResidual : Module
    {
        private readonly Sequential _conv1, _conv2;

        public DarkResidual(int ch, Generator? g)
        {
            _conv1 = RegisterModule("conv1", ConvBnLeaky(ch, ch / 2, 1, 1, g));
            _conv2 = RegisterModule("conv2", ConvBnLeaky(ch / 2, ch, 3, 1, g));
        }

        public override Tensor Forward(Tensor input) => _conv2.Call(_conv1.Call(input)).Add(input);
    }
}

/// <summary>
/// YOLOv3 (Redmon and Farhadi, 2018): a <see cref="Darknet53"/> <c>backbone</c> and three detection heads at strides 32, 16
/// and 8, each predicting 3 anchors x (5 + classes) values per cell. <c>headK</c> is the five-conv block (1x1/3x3
/// alternating), <c>outK.0</c> a 3x3 conv-BN-leaky and <c>outK.1</c> the 1x1 prediction conv (with bias); <c>lateral1</c>/<c>lateral2</c>
/// are the 1x1 convs before the 2x nearest upsampling and concatenation with the backbone's stride-16/8 features.
/// 61,949,149 parameters for 80 classes (as darknet's yolov3.cfg). <see cref="Forward"/> returns the raw predictions of all
/// scales as (N, 3·(H/32·W/32 + H/16·W/16 + H/8·W/8), 5 + classes); <see cref="ForwardScales"/> gives the three maps.
/// </summary>
public sealed class YoloV3 : Module
{
    private readonly Darknet53 _backbone;
    private readonly Sequential[] _heads = new Sequential[3], _outs = new Sequential[3], _laterals = new Sequential[2];

    /// <summary>Creates YOLOv3 for <paramref name="numClasses"/> classes (COCO: 80).</summary>
    public YoloV3(int numClasses = 80, Generator? generator = null)
    {
        if (numClasses < 1) throw new ArgumentException($"YoloV3: num_classes must be positive, got {numClasses}");
        NumClasses = numClasses;
        var g = generator;
        _backbone = RegisterModule("backbone", new Darknet53(0, g));
        int[] inCh = [1024, 512 + 256, 256 + 128];
        for (int s = 0; s < 3; s++)
        {
            int c = 512 >> s; // 512, 256, 128 channels in the 1x1 convs of this scale
            _heads[s] = RegisterModule($"head{s + 1}", new Sequential(
                Darknet53.ConvBnLeaky(inCh[s], c, 1, 1, g), Darknet53.ConvBnLeaky(c, 2 * c, 3, 1, g),
                Darknet53.ConvBnLeaky(2 * c, c, 1, 1, g), Darknet53.ConvBnLeaky(c, 2 * c, 3, 1, g),
                Darknet53.ConvBnLeaky(2 * c, c, 1, 1, g)));
            _outs[s] = RegisterModule($"out{s + 1}", new Sequential(
                Darknet53.ConvBnLeaky(c, 2 * c, 3, 1, g), new Conv2d(2 * c, 3 * (5 + numClasses), 1, generator: g)));
            if (s < 2) _laterals[s] = RegisterModule($"lateral{s + 1}", Darknet53.ConvBnLeaky(c, c / 2, 1, 1, g));
        }
    }

    /// <summary>Number of classes.</summary>
    public int NumClasses { get; }

    /// <summary>Raw prediction maps (N, 3·(5 + classes), H/s, W/s) for strides 32, 16 and 8.</summary>
    public Tensor[] ForwardScales(Tensor input)
    {
        if (input.Rank != 4 || input.Shape[2] % 32 != 0 || input.Shape[3] % 32 != 0 || input.Shape[2] == 0 || input.Shape[3] == 0)
            throw new ArgumentException($"YoloV3: expected input (N, 3, H, W) with H and W positive multiples of 32, got {ShapeUtil.Format(input.Shape)}");
        var (c3, c4, c5) = _backbone.ForwardFeatures(input);
        Tensor[] skips = [c4, c3];
        var result = new Tensor[3];
        var x = c5;
        for (int s = 0; s < 3; s++)
        {
            if (s > 0) x = Tensor.Cat([F.Interpolate(_laterals[s - 1].Call(x), scaleFactor: [2.0], mode: "nearest"), skips[s - 1]], 1);
            x = _heads[s].Call(x);
            result[s] = _outs[s].Call(x);
        }
        return result;
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        var maps = ForwardScales(input);
        int k = 5 + NumClasses;
        // (N, 3k, H, W) -> (N, 3, H, W, k) -> (N, 3HW, k), the layout YOLO decoders and losses expect.
        return Tensor.Cat([.. maps.Select(m => m.Reshape(m.Shape[0], 3, k, m.Shape[2], m.Shape[3]).Permute(0, 1, 3, 4, 2).Reshape(m.Shape[0], -1, k))], 1);
    }
}
