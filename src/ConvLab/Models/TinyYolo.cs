using ConvLab.NN;
using ConvLab.NN.Functional;

namespace ConvLab.Models;

/// <summary>
/// A small YOLOv3-style detector in the spirit of YOLOv3-tiny: a Darknet-style <c>backbone</c> of six conv-BN-LeakyReLU(0.1)
/// 3x3 layers with widths w, 2w, …, 32w and 2x2 max pooling between them (stride 32 at the end, the stride-16 features
/// taken before the last pooling), and two detection scales: <c>head1</c> (1x1 to 16w) with <c>out1</c> (3x3 to 32w, then
/// the 1x1 prediction conv) at stride 32, and <c>lateral</c> (1x1 to 8w, 2x nearest upsampling, concatenated with the
/// stride-16 features) with <c>out2</c> at stride 16. Each scale predicts <see cref="AnchorsPerScale"/> anchors x
/// (5 + classes) channels, anchor-major (tx, ty, tw, th, objectness, class logits), as <c>yolo_v3_decode</c> reads them.
/// Inputs must be positive multiples of 32 on both sides.
/// </summary>
public sealed class TinyYolo : Module, Detection.IYoloDetector
{
    private readonly Sequential _backbone, _last, _head, _out1, _lateral, _out2;

    /// <summary>Creates the detector for <paramref name="numClasses"/> classes with base width <paramref name="width"/>.</summary>
    public TinyYolo(int numClasses = 4, int width = 8, int anchorsPerScale = 3, Generator? generator = null)
    {
        if (numClasses < 1) throw new ArgumentException($"TinyYolo: num_classes must be positive, got {numClasses}");
        if (width < 1) throw new ArgumentException($"TinyYolo: width must be positive, got {width}");
        if (anchorsPerScale < 1) throw new ArgumentException($"TinyYolo: anchors per scale must be positive, got {anchorsPerScale}");
        (NumClasses, Width, AnchorsPerScale) = (numClasses, width, anchorsPerScale);
        var g = generator;
        int w = width;
        // Indices 0..13: conv blocks and pools alternate; the stride-16 features are the output of index 8.
        _backbone = RegisterModule("backbone", new Sequential(
            Darknet53.ConvBnLeaky(3, w, 3, 1, g), new MaxPool2d(2),
            Darknet53.ConvBnLeaky(w, 2 * w, 3, 1, g), new MaxPool2d(2),
            Darknet53.ConvBnLeaky(2 * w, 4 * w, 3, 1, g), new MaxPool2d(2),
            Darknet53.ConvBnLeaky(4 * w, 8 * w, 3, 1, g), new MaxPool2d(2),
            Darknet53.ConvBnLeaky(8 * w, 16 * w, 3, 1, g)));
        _last = RegisterModule("last", new Sequential(new MaxPool2d(2), Darknet53.ConvBnLeaky(16 * w, 32 * w, 3, 1, g)));
        int k = anchorsPerScale * (5 + numClasses);
        _head = RegisterModule("head1", Darknet53.ConvBnLeaky(32 * w, 16 * w, 1, 1, g));
        _out1 = RegisterModule("out1", new Sequential(Darknet53.ConvBnLeaky(16 * w, 32 * w, 3, 1, g), new Conv2d(32 * w, k, 1, generator: g)));
        _lateral = RegisterModule("lateral", Darknet53.ConvBnLeaky(16 * w, 8 * w, 1, 1, g));
        _out2 = RegisterModule("out2", new Sequential(Darknet53.ConvBnLeaky(24 * w, 16 * w, 3, 1, g), new Conv2d(16 * w, k, 1, generator: g)));
        // Objectness starts at a prior of about 1 % (bias -4.6), as RetinaNet and Ultralytics initialise it: nearly every anchor
        // is a negative, and a 0.5 prior would make their loss swamp the few positives in the first steps.
        using (new Autograd.NoGrad())
            foreach (var head in new[] { _out1, _out2 })
            {
                var bias = ((Conv2d)head[1]).Bias!;
                for (int a = 0; a < anchorsPerScale; a++) bias[a * (5 + numClasses) + 4] = ObjectnessPriorBias;
            }
    }

    /// <summary>Initial bias of the objectness outputs: log(0.01 / 0.99).</summary>
    public const double ObjectnessPriorBias = -4.59512;

    /// <summary>Number of classes.</summary>
    public int NumClasses { get; }

    /// <summary>Base width w (channels of the first convolution).</summary>
    public int Width { get; }

    /// <summary>Anchors predicted per cell at each scale.</summary>
    public int AnchorsPerScale { get; }

    /// <summary>Strides of the maps <see cref="ForwardScales"/> returns, in order.</summary>
    public static IReadOnlyList<int> Strides { get; } = [32, 16];

    /// <summary>Checks that an input side is usable (a positive multiple of 32) and names the option otherwise.</summary>
    public static void CheckInputSize(int size, string option = "input size")
    {
        if (size <= 0 || size % 32 != 0)
            throw new ArgumentException($"TinyYolo: {option} {size} is not a positive multiple of 32 (YOLOv3 downsamples by 32)");
    }

    /// <summary>Raw prediction maps (N, A·(5 + classes), H/s, W/s) for strides 32 and 16.</summary>
    public Tensor[] ForwardScales(Tensor input)
    {
        if (input.Rank != 4 || input.Shape[1] != 3)
            throw new ArgumentException($"TinyYolo: expected input (N, 3, H, W), got {ShapeUtil.Format(input.Shape)}");
        CheckInputSize(input.Shape[2], "input height");
        CheckInputSize(input.Shape[3], "input width");
        var c4 = _backbone.Call(input);
        var h = _head.Call(_last.Call(c4));
        var p1 = _out1.Call(h);
        var up = F.Interpolate(_lateral.Call(h), scaleFactor: [2.0], mode: "nearest");
        var p2 = _out2.Call(Tensor.Cat([up, c4], 1));
        return [p1, p2];
    }

    /// <inheritdoc/>
    /// <remarks>All scales as (N, Σ A·H·W, 5 + classes), rows anchor, then row, then column per scale (as <see cref="YoloV3.Forward"/>).</remarks>
    public override Tensor Forward(Tensor input)
    {
        var maps = ForwardScales(input);
        int k = 5 + NumClasses, a = AnchorsPerScale;
        return Tensor.Cat([.. maps.Select(m => m.Reshape(m.Shape[0], a, k, m.Shape[2], m.Shape[3]).Permute(0, 1, 3, 4, 2).Reshape(m.Shape[0], -1, k))], 1);
    }
}
