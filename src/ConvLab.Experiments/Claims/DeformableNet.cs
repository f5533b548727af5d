using ConvLab.NN;
using ConvLab.NN.Functional;

namespace ConvLab.Experiments.Claims;

/// <summary>
/// The deformable experiment's classifier for 1 x 28 x 28 images: conv1 (w) → BN → ReLU → max-pool 2 → conv2 (2w) → BN →
/// ReLU → max-pool 2 → conv3 (2w) → BN → ReLU → global average pool → fc. All convolutions are 3x3 with padding 1; with
/// <c>deformable</c>, conv2 and conv3 (the later layers) are <see cref="DeformConv2d"/>s whose zero-initialised offset
/// branch predicts 2·3·3 offsets per position (plus a mask when modulated). Both variants share every other state-dict
/// key, so the plain net's weights load into the deformable one with only the <c>conv_offset.*</c> keys missing.
/// </summary>
internal sealed class DeformableNet : Module
{
    private readonly Module _conv1, _conv2, _conv3;
    private readonly BatchNorm2d _bn1, _bn2, _bn3;
    private readonly Linear _fc;
    private readonly List<Tensor> _offsets = [];

    public DeformableNet(int width, bool deformable, bool modulated, Generator generator)
    {
        if (width < 1) throw new ArgumentException($"experiment deformable: width must be positive, got {width}");
        Width = width;
        IsDeformable = deformable;
        _conv1 = RegisterModule("conv1", new Conv2d(1, width, 3, padding: 1, generator: generator));
        _bn1 = RegisterModule("bn1", new BatchNorm2d(width));
        _conv2 = RegisterModule("conv2", Conv(width, 2 * width, deformable, modulated, generator));
        _bn2 = RegisterModule("bn2", new BatchNorm2d(2 * width));
        _conv3 = RegisterModule("conv3", Conv(2 * width, 2 * width, deformable, modulated, generator));
        _bn3 = RegisterModule("bn3", new BatchNorm2d(2 * width));
        _fc = RegisterModule("fc", new Linear(2 * width, 10, generator: generator));
    }

    /// <summary>Channels of conv1 (conv2 and conv3 have twice as many).</summary>
    public int Width { get; }

    /// <summary>True when conv2 and conv3 are deformable.</summary>
    public bool IsDeformable { get; }

    /// <summary>The deformable layers by state-dict name (empty for the plain net).</summary>
    public IReadOnlyList<(string Name, DeformConv2d Layer)> DeformLayers =>
        [.. new[] { ("conv2", _conv2), ("conv3", _conv3) }.Where(l => l.Item2 is DeformConv2d).Select(l => (l.Item1, (DeformConv2d)l.Item2))];

    /// <summary>The offsets (N, 18, H, W) that the last forward pass predicted, one per deformable layer (graph attached while training).</summary>
    public IReadOnlyList<Tensor> LastOffsets => _offsets;

    /// <inheritdoc/>
    /// <remarks>The offsets outlive the call: a no-grad call inside a recycler step must not hand their storage back.</remarks>
    protected override IEnumerable<Tensor?> ForwardState() => _offsets;

    /// <summary>Offset-branch parameters (the optimiser's slow group).</summary>
    public IEnumerable<Tensor> OffsetParameters() => DeformLayers.SelectMany(l => new[] { l.Layer.OffsetWeight, l.Layer.OffsetBias });

    /// <summary>Every other parameter.</summary>
    public IEnumerable<Tensor> MainParameters()
    {
        var offset = new HashSet<Tensor>(OffsetParameters(), ReferenceEqualityComparer.Instance);
        return Parameters().Where(p => !offset.Contains(p));
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        _offsets.Clear();
        var h = F.MaxPool2d(F.Relu(_bn1.Call(_conv1.Call(input))), [2]);
        h = F.MaxPool2d(F.Relu(_bn2.Call(Apply(_conv2, h))), [2]);
        h = F.Relu(_bn3.Call(Apply(_conv3, h)));
        return _fc.Call(F.GlobalAvgPool2d(h).Flatten(1));
    }

    /// <summary>
    /// Where the most active conv3 unit of one image looks: the 9 points conv3 samples (in conv3's input grid) and, through
    /// conv2's own offsets there, the 81 points conv2 samples, both mapped to image pixels. The unit is the conv3 position
    /// with the largest channel sum after ReLU. For the plain net these are the regular 3x3 and 9x9 grids.
    /// </summary>
    public SamplingPoints Sample(Tensor image)
    {
        bool training = Training;
        Eval();
        try
        {
            using var noGrad = new Autograd.NoGrad();
            var x = image.Reshape(1, 1, image.Size(-2), image.Size(-1));
            var a1 = F.MaxPool2d(F.Relu(_bn1.Call(_conv1.Call(x))), [2]);
            var (off2, y2) = OffsetsAndOutput(_conv2, a1);
            var a2 = F.MaxPool2d(F.Relu(_bn2.Call(y2)), [2]);
            var (off3, y3) = OffsetsAndOutput(_conv3, a2);
            var act = F.Relu(_bn3.Call(y3)).Sum(1).Contiguous().ToArray();
            int h3 = y3.Size(2), w3 = y3.Size(3), h2 = y2.Size(2), w2 = y2.Size(3);
            int unit = Array.IndexOf(act, act.Max());
            int uy = unit / w3, ux = unit % w3;
            var o3 = off3?.Contiguous().ToArray();
            var o2 = off2?.Contiguous().ToArray();
            var first = new List<(double X, double Y)>();
            var second = new List<(double X, double Y)>();
            for (int t = 0; t < 9; t++)
            {
                // conv3 tap t of unit (uy, ux) in conv3's input grid (pad 1, stride 1, dilation 1).
                double y = uy - 1 + t / 3 + (o3 == null ? 0 : o3[(2 * t) * h3 * w3 + unit]);
                double xx = ux - 1 + t % 3 + (o3 == null ? 0 : o3[(2 * t + 1) * h3 * w3 + unit]);
                // A cell of the 2x2/2 max pool covers conv2 outputs 2u and 2u + 1: its centre is 2u + 0.5.
                double y2c = 2 * y + 0.5, x2c = 2 * xx + 0.5;
                first.Add((Image(x2c), Image(y2c)));
                for (int s = 0; s < 9; s++)
                {
                    double dy = o2 == null ? 0 : Bilinear(o2, 2 * s, h2, w2, y2c, x2c);
                    double dx = o2 == null ? 0 : Bilinear(o2, 2 * s + 1, h2, w2, y2c, x2c);
                    second.Add((Image(x2c - 1 + s % 3 + dx), Image(y2c - 1 + s / 3 + dy)));
                }
            }
            return new SamplingPoints(Image(Image(ux)), Image(Image(uy)), first, second);
        }
        finally { Train(training); }

        // conv2's input grid (after the first 2x2/2 pool) to image pixels.
        static double Image(double u) => 2 * u + 0.5;
    }

    private static (Tensor? Offset, Tensor Output) OffsetsAndOutput(Module conv, Tensor h)
    {
        if (conv is not DeformConv2d d) return (null, conv.Call(h));
        var (offset, mask) = d.PredictOffsets(h);
        return (offset, d.Forward(h, offset, mask));
    }

    /// <summary>Channel <paramref name="c"/> of a (C, H, W) field read bilinearly at (y, x), clamped to the border (a point may lie outside the grid).</summary>
    private static double Bilinear(float[] field, int c, int h, int w, double y, double x)
    {
        y = Math.Clamp(y, 0, h - 1);
        x = Math.Clamp(x, 0, w - 1);
        int y0 = Math.Min((int)y, h - 1), x0 = Math.Min((int)x, w - 1);
        int y1 = Math.Min(y0 + 1, h - 1), x1 = Math.Min(x0 + 1, w - 1);
        double fy = y - y0, fx = x - x0;
        int b = c * h * w;
        return (1 - fy) * ((1 - fx) * field[b + y0 * w + x0] + fx * field[b + y0 * w + x1]) + fy * ((1 - fx) * field[b + y1 * w + x0] + fx * field[b + y1 * w + x1]);
    }

    private Tensor Apply(Module conv, Tensor h)
    {
        if (conv is not DeformConv2d d) return conv.Call(h);
        var (offset, mask) = d.PredictOffsets(h);
        _offsets.Add(offset);
        return d.Forward(h, offset, mask);
    }

    private static Module Conv(int cin, int cout, bool deformable, bool modulated, Generator g) => deformable
        ? new DeformConv2d(cin, cout, 3, padding: 1, modulated: modulated, generator: g)
        : new Conv2d(cin, cout, 3, padding: 1, generator: g);
}

/// <summary>Sampling locations of one unit in image pixels (x = column, y = row; pixel centres at integers).</summary>
/// <param name="UnitX">Column of the unit's receptive-field centre.</param>
/// <param name="UnitY">Row of the unit's receptive-field centre.</param>
/// <param name="Last">The 9 points the last layer (conv3) samples.</param>
/// <param name="Second">The 81 points conv2 samples for them.</param>
internal sealed record SamplingPoints(double UnitX, double UnitY, IReadOnlyList<(double X, double Y)> Last, IReadOnlyList<(double X, double Y)> Second);
