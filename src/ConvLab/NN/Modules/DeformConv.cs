using ConvLab.NN.Functional;

namespace ConvLab.NN;

/// <summary>
/// Deformable convolution layer (DCN v1, or v2 with <c>modulated</c>) that predicts its own offsets:
/// a regular convolution <c>conv_offset</c> with the same kernel size, stride, padding and dilation maps the
/// input to 2·offset_groups·kh·kw offset channels (plus offset_groups·kh·kw mask logits when modulated,
/// passed through a sigmoid), which then drive <see cref="F.DeformConv2d"/> with the main kernel.
/// State-dict keys: <c>weight</c>, <c>bias</c> (main kernel, PyTorch's conv initialisation) and
/// <c>conv_offset.weight</c>, <c>conv_offset.bias</c>.
/// The offset branch starts at exactly zero, so a fresh layer computes a plain convolution; when modulated,
/// the zero mask logits give a mask of sigmoid(0) = 0.5, i.e. a fresh modulated layer is 0.5·conv(x) + bias.
/// </summary>
public sealed class DeformConv2d : Module
{
    private readonly OffsetConv2d _convOffset;

    /// <summary>Creates the layer with per-dimension sizes (two entries, or a single entry for both).</summary>
    public DeformConv2d(int inChannels, int outChannels, int[] kernelSize, int[]? stride = null, int[]? padding = null, int[]? dilation = null,
        int groups = 1, int offsetGroups = 1, bool bias = true, bool modulated = false, Generator? generator = null)
    {
        const string name = "DeformConv2d";
        if (inChannels < 1 || outChannels < 1)
            throw new ArgumentException($"{name}: in_channels ({inChannels}) and out_channels ({outChannels}) must be positive");
        if (groups < 1 || inChannels % groups != 0 || outChannels % groups != 0)
            throw new ArgumentException($"{name}: groups must be positive and divide in_channels {inChannels} and out_channels {outChannels}, got {groups}");
        if (offsetGroups < 1 || inChannels % offsetGroups != 0)
            throw new ArgumentException($"{name}: offset_groups must be positive and divide in_channels {inChannels}, got {offsetGroups}");
        ArgumentNullException.ThrowIfNull(kernelSize);
        KernelSize = Sizes(kernelSize, 1, 1, "kernel_size");
        Stride = Sizes(stride, 1, 1, "stride");
        Padding = Sizes(padding, 0, 0, "padding");
        Dilation = Sizes(dilation, 1, 1, "dilation");
        InChannels = inChannels; OutChannels = outChannels; Groups = groups; OffsetGroups = offsetGroups; Modulated = modulated;

        Weight = RegisterParameter("weight", Tensor.Zeros(outChannels, inChannels / groups, KernelSize[0], KernelSize[1]))!;
        Init.KaimingUniform_(Weight, a: Math.Sqrt(5), generator: generator);
        if (bias)
        {
            Bias = RegisterParameter("bias", Tensor.Zeros(outChannels));
            double bound = 1 / Math.Sqrt(Init.CalculateFanInAndFanOut(Weight).FanIn);
            Init.Uniform_(Bias!, -bound, bound, generator);
        }
        int taps = KernelSize[0] * KernelSize[1];
        _convOffset = RegisterModule("conv_offset", new OffsetConv2d(inChannels, (modulated ? 3 : 2) * offsetGroups * taps, this));
    }

    /// <summary>Creates the layer with integer sizes (square kernel, same stride/padding/dilation in both dimensions).</summary>
    public DeformConv2d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, int dilation = 1,
        int groups = 1, int offsetGroups = 1, bool bias = true, bool modulated = false, Generator? generator = null)
        : this(inChannels, outChannels, [kernelSize], [stride], [padding], [dilation], groups, offsetGroups, bias, modulated, generator) { }

    /// <summary>Input channels.</summary>
    public int InChannels { get; }
    /// <summary>Output channels.</summary>
    public int OutChannels { get; }
    /// <summary>(kh, kw).</summary>
    public int[] KernelSize { get; }
    /// <summary>(sh, sw).</summary>
    public int[] Stride { get; }
    /// <summary>(ph, pw).</summary>
    public int[] Padding { get; }
    /// <summary>(dh, dw).</summary>
    public int[] Dilation { get; }
    /// <summary>Weight groups of the main kernel.</summary>
    public int Groups { get; }
    /// <summary>Groups of input channels that share one offset field (and mask).</summary>
    public int OffsetGroups { get; }
    /// <summary>True for DCN v2 (a predicted sigmoid mask modulates every sample).</summary>
    public bool Modulated { get; }
    /// <summary>Main kernel (out, in/groups, kh, kw).</summary>
    public Tensor Weight { get; }
    /// <summary>Main bias (out) or null.</summary>
    public Tensor? Bias { get; }
    /// <summary>Offset branch kernel (2·offset_groups·kh·kw, or 3·… when modulated, in, kh, kw); zero at construction.</summary>
    public Tensor OffsetWeight => _convOffset.Weight;
    /// <summary>Offset branch bias; zero at construction.</summary>
    public Tensor OffsetBias => _convOffset.Bias;

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        var (offset, mask) = PredictOffsets(input);
        return Forward(input, offset, mask);
    }

    /// <summary>
    /// What the offset branch predicts for <paramref name="input"/>: offsets (N, 2·offset_groups·kh·kw, H_out, W_out) as
    /// (dy, dx) pairs per tap, and the sigmoid mask (N, offset_groups·kh·kw, H_out, W_out) when modulated (else null).
    /// Together with <see cref="Forward(Tensor, Tensor, Tensor?)"/> it is <see cref="Forward(Tensor)"/>, split so a caller can
    /// inspect or penalise the offsets of the same forward pass.
    /// </summary>
    public (Tensor Offset, Tensor? Mask) PredictOffsets(Tensor input)
    {
        var branch = _convOffset.Call(input);
        int offsetChannels = 2 * OffsetGroups * KernelSize[0] * KernelSize[1];
        var offset = branch.Narrow(1, 0, offsetChannels);
        Tensor? mask = null;
        if (Modulated)
        {
            var logits = branch.Narrow(1, offsetChannels, offsetChannels / 2);
            mask = logits.Neg().Exp().AddScalar(1).Pow(-1); // sigmoid
        }
        return (offset, mask);
    }

    /// <summary>The layer's deformable convolution of <paramref name="input"/> with given offsets and mask (shapes as <see cref="PredictOffsets"/> returns).</summary>
    public Tensor Forward(Tensor input, Tensor offset, Tensor? mask) =>
        F.DeformConv2d(input, offset, Weight, Bias, Stride, Padding, Dilation, mask);

    /// <inheritdoc/>
    protected override string ExtraRepr() =>
        $"{InChannels}, {OutChannels}, kernel_size=({KernelSize[0]}, {KernelSize[1]}), stride=({Stride[0]}, {Stride[1]}), padding=({Padding[0]}, {Padding[1]}), " +
        $"dilation=({Dilation[0]}, {Dilation[1]}), groups={Groups}, offset_groups={OffsetGroups}, bias={(Bias != null ? "True" : "False")}, modulated={(Modulated ? "True" : "False")}";

    private static int[] Sizes(int[]? v, int fallback, int min, string what)
    {
        int[] r = v switch
        {
            null => [fallback, fallback],
            [var a] => [a, a],
            [var a, var b] => [a, b],
            _ => throw new ArgumentException($"DeformConv2d: {what} must have 1 or 2 values, got {v.Length}"),
        };
        if (r[0] < min || r[1] < min)
            throw new ArgumentException($"DeformConv2d: {what} must be {(min == 0 ? "non-negative" : "positive")}, got [{r[0]}, {r[1]}]");
        return r;
    }

    /// <summary>
    /// The offset branch: a plain 2-D convolution with the owner's geometry, weight and bias zero-initialised, run by
    /// <c>F.Conv2d</c> (a deformable convolution with zero offsets gives the same numbers, 2–4x slower: BENCHMARKS.md).
    /// </summary>
    private sealed class OffsetConv2d : Module
    {
        private readonly DeformConv2d _owner;

        public OffsetConv2d(int inChannels, int outChannels, DeformConv2d owner)
        {
            _owner = owner;
            Weight = RegisterParameter("weight", Tensor.Zeros(outChannels, inChannels, owner.KernelSize[0], owner.KernelSize[1]))!;
            Bias = RegisterParameter("bias", Tensor.Zeros(outChannels))!;
        }

        public Tensor Weight { get; }
        public Tensor Bias { get; }

        public override Tensor Forward(Tensor input)
        {
            var o = _owner;
            if (input.Rank != 4)
                throw new ArgumentException($"DeformConv2d: expected a 4-D input (N, C, H, W), got shape {ShapeUtil.Format(input.Shape)}");
            long ho = OutSize(input.Shape[2], o.KernelSize[0], o.Stride[0], o.Padding[0], o.Dilation[0]);
            long wo = OutSize(input.Shape[3], o.KernelSize[1], o.Stride[1], o.Padding[1], o.Dilation[1]);
            if (ho < 1 || wo < 1)
                throw new ArgumentException($"DeformConv2d: input of spatial size [{input.Shape[2]}, {input.Shape[3]}] is too small for the dilated kernel with padding [{o.Padding[0]}, {o.Padding[1]}]");
            if ((long)input.Shape[0] * 2 * o.KernelSize[0] * o.KernelSize[1] * ho * wo > Array.MaxLength)
                throw new ArgumentException($"DeformConv2d: output size [{ho}, {wo}] is too large");
            if (input.Shape[1] != Weight.Shape[1])
                throw new ArgumentException($"deform_conv2d: input has {input.Shape[1]} channels but DeformConv2d expects in_channels = {Weight.Shape[1]}");
            return F.Conv2d(input, Weight, Bias, o.Stride, o.Padding, o.Dilation);
        }

        private static long OutSize(int size, int k, int s, int p, int d)
        {
            long span = size + 2L * p - ((long)d * (k - 1) + 1);
            return span < 0 ? 0 : span / s + 1;
        }

        protected override string ExtraRepr() =>
            $"{Weight.Shape[1]}, {Weight.Shape[0]}, kernel_size=({Weight.Shape[2]}, {Weight.Shape[3]}), stride=({_owner.Stride[0]}, {_owner.Stride[1]}), " +
            $"padding=({_owner.Padding[0]}, {_owner.Padding[1]}), dilation=({_owner.Dilation[0]}, {_owner.Dilation[1]})";
    }
}
