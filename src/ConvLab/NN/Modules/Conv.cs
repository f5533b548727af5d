using ConvLab.NN.Functional;

namespace ConvLab.NN;

/// <summary>
/// Shared state of the convolution layers (PyTorch's <c>_ConvNd</c>): hyper-parameters, a <c>weight</c>
/// parameter — (out, in/groups, *k), or (in, out/groups, *k) when transposed — and an optional
/// <c>bias</c>, initialised as PyTorch does: kaiming_uniform(a=√5) and U(±1/√fan_in).
/// </summary>
public abstract class ConvBase : Module
{
    private protected ConvBase(string name, int dims, bool transposed, int inChannels, int outChannels, int weightInChannels, int[] kernelSize,
        int[]? stride, int[]? padding, string? paddingString, int[]? outputPadding, int[]? dilation, int groups, bool bias, string paddingMode, Generator? generator)
    {
        if (inChannels < 1 || outChannels < 1)
            throw new ArgumentException($"{name}: in_channels ({inChannels}) and out_channels ({outChannels}) must be positive");
        if (groups < 1)
            throw new ArgumentException($"{name}: groups must be positive, got {groups}");
        if (weightInChannels % groups != 0)
            throw new ArgumentException($"{name}: in_channels {weightInChannels} must be divisible by groups {groups}");
        if (outChannels % groups != 0)
            throw new ArgumentException($"{name}: out_channels {outChannels} must be divisible by groups {groups}");
        if (paddingMode is not ("zeros" or "reflect" or "replicate" or "circular") || (transposed && paddingMode != "zeros"))
            throw new ArgumentException($"{name}: padding_mode must be {(transposed ? "'zeros'" : "'zeros', 'reflect', 'replicate' or 'circular'")}, got '{paddingMode}'");
        Dims = dims; InChannels = inChannels; OutChannels = outChannels; Groups = groups; PaddingMode = paddingMode;
        ArgumentNullException.ThrowIfNull(kernelSize);
        KernelSize = F.ConvSizes(name, "kernel_size", kernelSize, dims, 1, 1);
        Stride = F.ConvSizes(name, "stride", stride, dims, 1, 1);
        Dilation = F.ConvSizes(name, "dilation", dilation, dims, 1, 1);
        OutputPadding = F.ConvSizes(name, "output_padding", outputPadding, dims, 0, 0);
        if (paddingString != null)
        {
            if (paddingString is not ("same" or "valid"))
                throw new ArgumentException($"{name}: padding must be 'same', 'valid' or a list of sizes, got '{paddingString}'");
            if (paddingString == "same" && Stride.Any(s => s != 1))
                throw new ArgumentException($"{name}: padding='same' is not supported for strided convolutions (stride [{string.Join(", ", Stride)}])");
            PaddingString = paddingString;
            Padding = new int[dims];
        }
        else Padding = F.ConvSizes(name, "padding", padding, dims, 0, 0);
        for (int i = 0; i < dims; i++)
            if (transposed && OutputPadding[i] >= Stride[i] && OutputPadding[i] >= Dilation[i])
                throw new ArgumentException($"{name}: output_padding must be smaller than either stride or dilation, got output_padding [{string.Join(", ", OutputPadding)}], stride [{string.Join(", ", Stride)}], dilation [{string.Join(", ", Dilation)}]");

        int[] wShape = transposed ? [weightInChannels, outChannels / groups, .. KernelSize] : [outChannels, weightInChannels / groups, .. KernelSize];
        Weight = RegisterParameter("weight", Tensor.Zeros(wShape))!;
        Init.KaimingUniform_(Weight, a: Math.Sqrt(5), generator: generator);
        if (bias)
        {
            Bias = RegisterParameter("bias", Tensor.Zeros(outChannels));
            int fanIn = Init.CalculateFanInAndFanOut(Weight).FanIn;
            double bound = fanIn > 0 ? 1 / Math.Sqrt(fanIn) : 0;
            Init.Uniform_(Bias!, -bound, bound, generator);
        }
    }

    /// <summary>Number of spatial dimensions (1, 2 or 3).</summary>
    public int Dims { get; }
    /// <summary>Input channels.</summary>
    public int InChannels { get; }
    /// <summary>Output channels.</summary>
    public int OutChannels { get; }
    /// <summary>Kernel size per spatial dimension.</summary>
    public int[] KernelSize { get; }
    /// <summary>Stride per spatial dimension.</summary>
    public int[] Stride { get; }
    /// <summary>Padding per spatial dimension (zeros when <see cref="PaddingString"/> is set).</summary>
    public int[] Padding { get; }
    /// <summary>"same" or "valid" when the padding was given as a string, else null.</summary>
    public string? PaddingString { get; }
    /// <summary>Extra size added to one side of a transposed convolution's output (zeros otherwise).</summary>
    public int[] OutputPadding { get; }
    /// <summary>Dilation per spatial dimension.</summary>
    public int[] Dilation { get; }
    /// <summary>Number of channel groups.</summary>
    public int Groups { get; }
    /// <summary>"zeros", "reflect", "replicate" or "circular".</summary>
    public string PaddingMode { get; }
    /// <summary>The kernel.</summary>
    public Tensor Weight { get; }
    /// <summary>Bias (out_channels) or null.</summary>
    public Tensor? Bias { get; private set; }

    /// <summary>Gives a bias-free convolution a zero bias (batch-norm folding needs somewhere to put the shift).</summary>
    internal Tensor EnsureBias() => Bias ??= RegisterParameter("bias", Tensor.Zeros([OutChannels], Weight.DType))!;
    /// <summary>
    /// The convolution algorithm of every pass (<see cref="ConvAlgorithm.Auto"/> by default). Forcing one that
    /// cannot run the layer's shape makes <c>Forward</c> throw an <see cref="ArgumentException"/>.
    /// </summary>
    public ConvAlgorithm Algorithm { get; set; }

    private static string List(int[] v) => "(" + string.Join(", ", v) + (v.Length == 1 ? ",)" : ")");

    /// <inheritdoc/>
    protected override string ExtraRepr()
    {
        var s = $"{InChannels}, {OutChannels}, kernel_size={List(KernelSize)}, stride={List(Stride)}";
        if (PaddingString != null) s += $", padding={PaddingString}";
        else if (Padding.Any(p => p != 0)) s += $", padding={List(Padding)}";
        if (Dilation.Any(d => d != 1)) s += $", dilation={List(Dilation)}";
        if (OutputPadding.Any(p => p != 0)) s += $", output_padding={List(OutputPadding)}";
        if (Groups != 1) s += $", groups={Groups}";
        if (Bias == null) s += ", bias=False";
        if (PaddingMode != "zeros") s += $", padding_mode={PaddingMode}";
        return s;
    }
}

/// <summary>N-d convolution layer; Conv1d/Conv2d/Conv3d fix the number of dimensions.</summary>
public abstract class ConvNd : ConvBase
{
    private readonly string _op;

    private protected ConvNd(string name, int dims, int inChannels, int outChannels, int[] kernelSize, int[]? stride, int[]? padding, string? paddingString,
        int[]? dilation, int groups, bool bias, string paddingMode, Generator? generator)
        : base(name, dims, false, inChannels, outChannels, inChannels, kernelSize, stride, padding, paddingString, null, dilation, groups, bias, paddingMode, generator)
        => _op = $"conv{dims}d";

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) =>
        F.ConvNd(_op, Dims, input, Weight, Bias, Stride, PaddingString == null ? Padding : null, PaddingString, Dilation, Groups, PaddingMode, Algorithm);
}

/// <summary>N-d transposed convolution layer; ConvTranspose1d/2d/3d fix the number of dimensions.</summary>
public abstract class ConvTransposeNd : ConvBase
{
    private readonly string _op;

    private protected ConvTransposeNd(string name, int dims, int inChannels, int outChannels, int[] kernelSize, int[]? stride, int[]? padding,
        int[]? outputPadding, int groups, bool bias, int[]? dilation, Generator? generator)
        : base(name, dims, true, inChannels, outChannels, inChannels, kernelSize, stride, padding, null, outputPadding, dilation, groups, bias, "zeros", generator)
        => _op = $"conv_transpose{dims}d";

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) =>
        F.ConvTransposeNd(_op, Dims, input, Weight, Bias, Stride, Padding, OutputPadding, Groups, Dilation, Algorithm);
}

/// <summary>1-d convolution (PyTorch's <c>nn.Conv1d</c>): input (N, C_in, L) or (C_in, L).</summary>
public sealed class Conv1d : ConvNd
{
    /// <summary>Creates the layer with per-dimension sizes (one entry, or a single entry for all).</summary>
    public Conv1d(int inChannels, int outChannels, int[] kernelSize, int[]? stride = null, int[]? padding = null, int[]? dilation = null, int groups = 1, bool bias = true, string paddingMode = "zeros", Generator? generator = null)
        : base("Conv1d", 1, inChannels, outChannels, kernelSize, stride, padding, null, dilation, groups, bias, paddingMode, generator) { }

    /// <summary>Creates the layer with integer sizes.</summary>
    public Conv1d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, int dilation = 1, int groups = 1, bool bias = true, string paddingMode = "zeros", Generator? generator = null)
        : this(inChannels, outChannels, [kernelSize], [stride], [padding], [dilation], groups, bias, paddingMode, generator) { }

    /// <summary>Creates the layer with padding "same" (stride 1 only) or "valid".</summary>
    public Conv1d(int inChannels, int outChannels, int kernelSize, string padding, int stride = 1, int dilation = 1, int groups = 1, bool bias = true, string paddingMode = "zeros", Generator? generator = null)
        : base("Conv1d", 1, inChannels, outChannels, [kernelSize], [stride], null, padding, [dilation], groups, bias, paddingMode, generator) { }
}

/// <summary>2-d convolution (PyTorch's <c>nn.Conv2d</c>): input (N, C_in, H, W) or (C_in, H, W).</summary>
public sealed class Conv2d : ConvNd
{
    /// <summary>Creates the layer with per-dimension sizes (two entries, or a single entry for both).</summary>
    public Conv2d(int inChannels, int outChannels, int[] kernelSize, int[]? stride = null, int[]? padding = null, int[]? dilation = null, int groups = 1, bool bias = true, string paddingMode = "zeros", Generator? generator = null)
        : base("Conv2d", 2, inChannels, outChannels, kernelSize, stride, padding, null, dilation, groups, bias, paddingMode, generator) { }

    /// <summary>Creates the layer with integer sizes (square kernel, same stride/padding/dilation in both dimensions).</summary>
    public Conv2d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, int dilation = 1, int groups = 1, bool bias = true, string paddingMode = "zeros", Generator? generator = null)
        : this(inChannels, outChannels, [kernelSize], [stride], [padding], [dilation], groups, bias, paddingMode, generator) { }

    /// <summary>Creates the layer with padding "same" (stride 1 only) or "valid".</summary>
    public Conv2d(int inChannels, int outChannels, int kernelSize, string padding, int stride = 1, int dilation = 1, int groups = 1, bool bias = true, string paddingMode = "zeros", Generator? generator = null)
        : base("Conv2d", 2, inChannels, outChannels, [kernelSize], [stride], null, padding, [dilation], groups, bias, paddingMode, generator) { }

    /// <summary>Creates the layer with per-dimension sizes and padding "same" (stride 1 only) or "valid".</summary>
    public Conv2d(int inChannels, int outChannels, int[] kernelSize, string padding, int[]? stride = null, int[]? dilation = null, int groups = 1, bool bias = true, string paddingMode = "zeros", Generator? generator = null)
        : base("Conv2d", 2, inChannels, outChannels, kernelSize, stride, null, padding, dilation, groups, bias, paddingMode, generator) { }
}

/// <summary>3-d convolution (PyTorch's <c>nn.Conv3d</c>): input (N, C_in, D, H, W) or (C_in, D, H, W).</summary>
public sealed class Conv3d : ConvNd
{
    /// <summary>Creates the layer with per-dimension sizes (three entries, or a single entry for all).</summary>
    public Conv3d(int inChannels, int outChannels, int[] kernelSize, int[]? stride = null, int[]? padding = null, int[]? dilation = null, int groups = 1, bool bias = true, string paddingMode = "zeros", Generator? generator = null)
        : base("Conv3d", 3, inChannels, outChannels, kernelSize, stride, padding, null, dilation, groups, bias, paddingMode, generator) { }

    /// <summary>Creates the layer with integer sizes.</summary>
    public Conv3d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, int dilation = 1, int groups = 1, bool bias = true, string paddingMode = "zeros", Generator? generator = null)
        : this(inChannels, outChannels, [kernelSize], [stride], [padding], [dilation], groups, bias, paddingMode, generator) { }

    /// <summary>Creates the layer with padding "same" (stride 1 only) or "valid".</summary>
    public Conv3d(int inChannels, int outChannels, int kernelSize, string padding, int stride = 1, int dilation = 1, int groups = 1, bool bias = true, string paddingMode = "zeros", Generator? generator = null)
        : base("Conv3d", 3, inChannels, outChannels, [kernelSize], [stride], null, padding, [dilation], groups, bias, paddingMode, generator) { }
}

/// <summary>1-d transposed convolution (PyTorch's <c>nn.ConvTranspose1d</c>); weight (in, out/groups, k).</summary>
public sealed class ConvTranspose1d : ConvTransposeNd
{
    /// <summary>Creates the layer with per-dimension sizes.</summary>
    public ConvTranspose1d(int inChannels, int outChannels, int[] kernelSize, int[]? stride = null, int[]? padding = null, int[]? outputPadding = null, int groups = 1, bool bias = true, int[]? dilation = null, Generator? generator = null)
        : base("ConvTranspose1d", 1, inChannels, outChannels, kernelSize, stride, padding, outputPadding, groups, bias, dilation, generator) { }

    /// <summary>Creates the layer with integer sizes.</summary>
    public ConvTranspose1d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, int outputPadding = 0, int groups = 1, bool bias = true, int dilation = 1, Generator? generator = null)
        : this(inChannels, outChannels, [kernelSize], [stride], [padding], [outputPadding], groups, bias, [dilation], generator) { }
}

/// <summary>2-d transposed convolution (PyTorch's <c>nn.ConvTranspose2d</c>); weight (in, out/groups, kH, kW).</summary>
public sealed class ConvTranspose2d : ConvTransposeNd
{
    /// <summary>Creates the layer with per-dimension sizes.</summary>
    public ConvTranspose2d(int inChannels, int outChannels, int[] kernelSize, int[]? stride = null, int[]? padding = null, int[]? outputPadding = null, int groups = 1, bool bias = true, int[]? dilation = null, Generator? generator = null)
        : base("ConvTranspose2d", 2, inChannels, outChannels, kernelSize, stride, padding, outputPadding, groups, bias, dilation, generator) { }

    /// <summary>Creates the layer with integer sizes.</summary>
    public ConvTranspose2d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, int outputPadding = 0, int groups = 1, bool bias = true, int dilation = 1, Generator? generator = null)
        : this(inChannels, outChannels, [kernelSize], [stride], [padding], [outputPadding], groups, bias, [dilation], generator) { }
}

/// <summary>3-d transposed convolution (PyTorch's <c>nn.ConvTranspose3d</c>); weight (in, out/groups, kD, kH, kW).</summary>
public sealed class ConvTranspose3d : ConvTransposeNd
{
    /// <summary>Creates the layer with per-dimension sizes.</summary>
    public ConvTranspose3d(int inChannels, int outChannels, int[] kernelSize, int[]? stride = null, int[]? padding = null, int[]? outputPadding = null, int groups = 1, bool bias = true, int[]? dilation = null, Generator? generator = null)
        : base("ConvTranspose3d", 3, inChannels, outChannels, kernelSize, stride, padding, outputPadding, groups, bias, dilation, generator) { }

    /// <summary>Creates the layer with integer sizes.</summary>
    public ConvTranspose3d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, int outputPadding = 0, int groups = 1, bool bias = true, int dilation = 1, Generator? generator = null)
        : this(inChannels, outChannels, [kernelSize], [stride], [padding], [outputPadding], groups, bias, [dilation], generator) { }
}

/// <summary>
/// CoordConv (Liu et al. 2018): a 2-d convolution over the input extended by coordinate channels yy,
/// xx (and r with <c>withR</c>); parameters <c>weight</c> (out, (in + 2 or 3)/groups, kH, kW) and <c>bias</c>.
/// </summary>
public sealed class CoordConv2d : ConvBase
{
    /// <summary>Creates the layer with per-dimension sizes.</summary>
    public CoordConv2d(int inChannels, int outChannels, int[] kernelSize, int[]? stride = null, int[]? padding = null, int[]? dilation = null, int groups = 1, bool bias = true, bool withR = false, Generator? generator = null)
        : base("CoordConv2d", 2, false, inChannels, outChannels, inChannels + (withR ? 3 : 2), kernelSize, stride, padding, null, null, dilation, groups, bias, "zeros", generator)
        => WithR = withR;

    /// <summary>Creates the layer with integer sizes.</summary>
    public CoordConv2d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, int dilation = 1, int groups = 1, bool bias = true, bool withR = false, Generator? generator = null)
        : this(inChannels, outChannels, [kernelSize], [stride], [padding], [dilation], groups, bias, withR, generator) { }

    /// <summary>True when the radius channel is added.</summary>
    public bool WithR { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => F.CoordConv2d(input, Weight, Bias, Stride, Padding, Dilation, Groups, WithR, Algorithm);
}

/// <summary>
/// Depthwise-separable convolution (MobileNet): a depthwise conv (groups = in, in·depthMultiplier
/// channels) followed by a 1x1 pointwise conv; children <c>depthwise</c> and <c>pointwise</c>.
/// </summary>
public sealed class DepthwiseSeparableConv2d : Module
{
    /// <summary>Creates the block with per-dimension sizes.</summary>
    public DepthwiseSeparableConv2d(int inChannels, int outChannels, int[] kernelSize, int[]? stride = null, int[]? padding = null, int[]? dilation = null, bool bias = true, int depthMultiplier = 1, Generator? generator = null)
    {
        if (depthMultiplier < 1)
            throw new ArgumentException($"DepthwiseSeparableConv2d: depth_multiplier must be positive, got {depthMultiplier}");
        if (inChannels < 1)
            throw new ArgumentException($"DepthwiseSeparableConv2d: in_channels must be positive, got {inChannels}");
        Depthwise = RegisterModule("depthwise", new Conv2d(inChannels, inChannels * depthMultiplier, kernelSize, stride, padding, dilation, inChannels, bias, generator: generator));
        Pointwise = RegisterModule("pointwise", new Conv2d(inChannels * depthMultiplier, outChannels, [1], bias: bias, generator: generator));
    }

    /// <summary>Creates the block with integer sizes.</summary>
    public DepthwiseSeparableConv2d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, int dilation = 1, bool bias = true, int depthMultiplier = 1, Generator? generator = null)
        : this(inChannels, outChannels, [kernelSize], [stride], [padding], [dilation], bias, depthMultiplier, generator) { }

    /// <summary>The per-channel spatial convolution.</summary>
    public Conv2d Depthwise { get; }
    /// <summary>The 1x1 channel-mixing convolution.</summary>
    public Conv2d Pointwise { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => Pointwise.Call(Depthwise.Call(input));
}
