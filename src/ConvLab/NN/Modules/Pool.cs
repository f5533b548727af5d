using ConvLab.NN.Functional;

namespace ConvLab.NN;

/// <summary>Formatting shared by the pooling modules' ExtraRepr.</summary>
internal static class PoolRepr
{
    public static string Sizes(int[] v) => v.Length == 1 ? v[0].ToString() : "(" + string.Join(", ", v) + ")";
    public static string Sizes(int?[] v) => v.Length == 1 ? v[0]?.ToString() ?? "None" : "(" + string.Join(", ", v.Select(e => e?.ToString() ?? "None")) + ")";
    public static string Bool(bool b) => b ? "True" : "False";

    /// <summary>Validates an adaptive output size (length and positivity) and returns a private copy.</summary>
    public static int?[] CheckOutputSize(string module, int nd, int?[] outputSize)
    {
        F.AdaptiveSizes(module, nd, null, outputSize);
        return outputSize.ToArray();
    }
}

/// <summary>Base of the max-pooling modules: <see cref="Forward"/> gives the output, <see cref="ForwardWithIndices"/> also the argmax.</summary>
public abstract class MaxPoolingModule : Module
{
    private protected MaxPoolingModule(bool returnIndices) => ReturnIndices = returnIndices;

    /// <summary>When true, <see cref="Forward"/> keeps the argmax indices of its last call in <see cref="LastIndices"/>.</summary>
    public bool ReturnIndices { get; }
    /// <summary>Indices of the last <see cref="Forward"/> call when <see cref="ReturnIndices"/> is set (for max-unpooling).</summary>
    public Tensor? LastIndices { get; private set; }

    /// <inheritdoc/>
    protected internal override IEnumerable<Tensor?> ForwardState() => [LastIndices];

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        if (!ReturnIndices) return ForwardOutput(input);
        var (y, idx) = ForwardWithIndices(input);
        if (ReturnIndices) LastIndices = idx;
        return y;
    }

    /// <summary>The pooled output and the int64 argmax indices (flat within each (N, C) plane).</summary>
    public abstract (Tensor Output, Tensor Indices) ForwardWithIndices(Tensor input);

    // The output alone lets the plain 2-d kernel skip writing int64 indices.
    private protected abstract Tensor ForwardOutput(Tensor input);
}

/// <summary>Base of MaxPool1d/2d/3d: attributes validated at construction, no parameters.</summary>
public abstract class MaxPoolNd : MaxPoolingModule
{
    private readonly int _nd;

    private protected MaxPoolNd(int nd, int[] kernelSize, int[]? stride, int[]? padding, int[]? dilation, bool returnIndices, bool ceilMode) : base(returnIndices)
    {
        _nd = nd;
        (KernelSize, Stride, Padding, Dilation) = F.PoolAttrs(GetType().Name, nd, kernelSize, stride, padding, dilation);
        CeilMode = ceilMode;
    }

    /// <summary>Window size per spatial dim.</summary>
    public int[] KernelSize { get; }
    /// <summary>Stride per spatial dim (defaults to the kernel size).</summary>
    public int[] Stride { get; }
    /// <summary>Implicit −∞ padding per spatial dim.</summary>
    public int[] Padding { get; }
    /// <summary>Spacing between window taps per spatial dim.</summary>
    public int[] Dilation { get; }
    /// <summary>Ceil instead of floor in the output size.</summary>
    public bool CeilMode { get; }

    /// <inheritdoc/>
    public override (Tensor Output, Tensor Indices) ForwardWithIndices(Tensor input) => _nd switch
    {
        1 => F.MaxPool1dWithIndices(input, KernelSize, Stride, Padding, Dilation, CeilMode),
        2 => F.MaxPool2dWithIndices(input, KernelSize, Stride, Padding, Dilation, CeilMode),
        _ => F.MaxPool3dWithIndices(input, KernelSize, Stride, Padding, Dilation, CeilMode),
    };

    private protected override Tensor ForwardOutput(Tensor input) => _nd switch
    {
        1 => F.MaxPool1d(input, KernelSize, Stride, Padding, Dilation, CeilMode),
        2 => F.MaxPool2d(input, KernelSize, Stride, Padding, Dilation, CeilMode),
        _ => F.MaxPool3d(input, KernelSize, Stride, Padding, Dilation, CeilMode),
    };

    /// <inheritdoc/>
    protected override string ExtraRepr() =>
        $"kernel_size={PoolRepr.Sizes(KernelSize)}, stride={PoolRepr.Sizes(Stride)}, padding={PoolRepr.Sizes(Padding)}, dilation={PoolRepr.Sizes(Dilation)}, ceil_mode={PoolRepr.Bool(CeilMode)}";
}

/// <summary>1-D max pooling (PyTorch's <c>nn.MaxPool1d</c>).</summary>
public sealed class MaxPool1d(int[] kernelSize, int[]? stride = null, int[]? padding = null, int[]? dilation = null, bool returnIndices = false, bool ceilMode = false)
    : MaxPoolNd(1, kernelSize, stride, padding, dilation, returnIndices, ceilMode)
{
    /// <summary>Same size in every dimension (PyTorch's <c>MaxPool1d(2)</c>); stride defaults to the kernel size.</summary>
    public MaxPool1d(int kernelSize, int? stride = null, int padding = 0, int dilation = 1, bool returnIndices = false, bool ceilMode = false)
        : this([kernelSize], stride is int s ? [s] : null, [padding], [dilation], returnIndices, ceilMode) { }
}

/// <summary>2-D max pooling (PyTorch's <c>nn.MaxPool2d</c>).</summary>
public sealed class MaxPool2d(int[] kernelSize, int[]? stride = null, int[]? padding = null, int[]? dilation = null, bool returnIndices = false, bool ceilMode = false)
    : MaxPoolNd(2, kernelSize, stride, padding, dilation, returnIndices, ceilMode)
{
    /// <summary>Same size in every dimension (PyTorch's <c>MaxPool2d(2)</c>); stride defaults to the kernel size.</summary>
    public MaxPool2d(int kernelSize, int? stride = null, int padding = 0, int dilation = 1, bool returnIndices = false, bool ceilMode = false)
        : this([kernelSize], stride is int s ? [s] : null, [padding], [dilation], returnIndices, ceilMode) { }
}

/// <summary>3-D max pooling (PyTorch's <c>nn.MaxPool3d</c>).</summary>
public sealed class MaxPool3d(int[] kernelSize, int[]? stride = null, int[]? padding = null, int[]? dilation = null, bool returnIndices = false, bool ceilMode = false)
    : MaxPoolNd(3, kernelSize, stride, padding, dilation, returnIndices, ceilMode)
{
    /// <summary>Same size in every dimension (PyTorch's <c>MaxPool3d(2)</c>); stride defaults to the kernel size.</summary>
    public MaxPool3d(int kernelSize, int? stride = null, int padding = 0, int dilation = 1, bool returnIndices = false, bool ceilMode = false)
        : this([kernelSize], stride is int s ? [s] : null, [padding], [dilation], returnIndices, ceilMode) { }
}

/// <summary>Base of AvgPool1d/2d/3d: attributes validated at construction, no parameters.</summary>
public abstract class AvgPoolNd : Module
{
    private readonly int _nd;

    private protected AvgPoolNd(int nd, int[] kernelSize, int[]? stride, int[]? padding, bool ceilMode, bool countIncludePad, int? divisorOverride)
    {
        _nd = nd;
        (KernelSize, Stride, Padding, _) = F.PoolAttrs(GetType().Name, nd, kernelSize, stride, padding, null);
        if (divisorOverride == 0) throw new ArgumentException($"{GetType().Name}: divisor_override must be non-zero, got 0");
        CeilMode = ceilMode; CountIncludePad = countIncludePad; DivisorOverride = divisorOverride;
    }

    /// <summary>Window size per spatial dim.</summary>
    public int[] KernelSize { get; }
    /// <summary>Stride per spatial dim (defaults to the kernel size).</summary>
    public int[] Stride { get; }
    /// <summary>Implicit zero padding per spatial dim.</summary>
    public int[] Padding { get; }
    /// <summary>Ceil instead of floor in the output size.</summary>
    public bool CeilMode { get; }
    /// <summary>Whether padded zeros count in the divisor.</summary>
    public bool CountIncludePad { get; }
    /// <summary>Fixed divisor replacing the window size, or null.</summary>
    public int? DivisorOverride { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => _nd switch
    {
        1 => F.AvgPool1d(input, KernelSize, Stride, Padding, CeilMode, CountIncludePad),
        2 => F.AvgPool2d(input, KernelSize, Stride, Padding, CeilMode, CountIncludePad, DivisorOverride),
        _ => F.AvgPool3d(input, KernelSize, Stride, Padding, CeilMode, CountIncludePad, DivisorOverride),
    };

    /// <inheritdoc/>
    protected override string ExtraRepr() =>
        $"kernel_size={PoolRepr.Sizes(KernelSize)}, stride={PoolRepr.Sizes(Stride)}, padding={PoolRepr.Sizes(Padding)}, ceil_mode={PoolRepr.Bool(CeilMode)}, count_include_pad={PoolRepr.Bool(CountIncludePad)}" +
        (DivisorOverride is int d ? $", divisor_override={d}" : "");
}

/// <summary>1-D average pooling (PyTorch's <c>nn.AvgPool1d</c>).</summary>
public sealed class AvgPool1d(int[] kernelSize, int[]? stride = null, int[]? padding = null, bool ceilMode = false, bool countIncludePad = true)
    : AvgPoolNd(1, kernelSize, stride, padding, ceilMode, countIncludePad, null)
{
    /// <summary>Scalar sizes (PyTorch's <c>AvgPool1d(2)</c>); stride defaults to the kernel size.</summary>
    public AvgPool1d(int kernelSize, int? stride = null, int padding = 0, bool ceilMode = false, bool countIncludePad = true)
        : this([kernelSize], stride is int s ? [s] : null, [padding], ceilMode, countIncludePad) { }
}

/// <summary>2-D average pooling (PyTorch's <c>nn.AvgPool2d</c>).</summary>
public sealed class AvgPool2d(int[] kernelSize, int[]? stride = null, int[]? padding = null, bool ceilMode = false, bool countIncludePad = true, int? divisorOverride = null)
    : AvgPoolNd(2, kernelSize, stride, padding, ceilMode, countIncludePad, divisorOverride)
{
    /// <summary>Same size in every dimension (PyTorch's <c>AvgPool2d(2)</c>); stride defaults to the kernel size.</summary>
    public AvgPool2d(int kernelSize, int? stride = null, int padding = 0, bool ceilMode = false, bool countIncludePad = true, int? divisorOverride = null)
        : this([kernelSize], stride is int s ? [s] : null, [padding], ceilMode, countIncludePad, divisorOverride) { }
}

/// <summary>3-D average pooling (PyTorch's <c>nn.AvgPool3d</c>).</summary>
public sealed class AvgPool3d(int[] kernelSize, int[]? stride = null, int[]? padding = null, bool ceilMode = false, bool countIncludePad = true, int? divisorOverride = null)
    : AvgPoolNd(3, kernelSize, stride, padding, ceilMode, countIncludePad, divisorOverride)
{
    /// <summary>Same size in every dimension (PyTorch's <c>AvgPool3d(2)</c>); stride defaults to the kernel size.</summary>
    public AvgPool3d(int kernelSize, int? stride = null, int padding = 0, bool ceilMode = false, bool countIncludePad = true, int? divisorOverride = null)
        : this([kernelSize], stride is int s ? [s] : null, [padding], ceilMode, countIncludePad, divisorOverride) { }
}

/// <summary>Base of AdaptiveAvgPool1d/2d/3d: a validated output size, no parameters.</summary>
public abstract class AdaptiveAvgPoolNd : Module
{
    private readonly int _nd;

    private protected AdaptiveAvgPoolNd(int nd, int?[] outputSize) => (_nd, OutputSize) = (nd, PoolRepr.CheckOutputSize(GetType().Name, nd, outputSize));

    /// <summary>Output size per spatial dim (one entry = every dim; null = keep the input size).</summary>
    public int?[] OutputSize { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => _nd switch
    {
        1 => F.AdaptiveAvgPool1d(input, OutputSize),
        2 => F.AdaptiveAvgPool2d(input, OutputSize),
        _ => F.AdaptiveAvgPool3d(input, OutputSize),
    };

    /// <inheritdoc/>
    protected override string ExtraRepr() => $"output_size={PoolRepr.Sizes(OutputSize)}";
}

/// <summary>Adaptive 1-D average pooling (PyTorch's <c>nn.AdaptiveAvgPool1d</c>).</summary>
public sealed class AdaptiveAvgPool1d(params int?[] outputSize) : AdaptiveAvgPoolNd(1, outputSize);

/// <summary>Adaptive 2-D average pooling (PyTorch's <c>nn.AdaptiveAvgPool2d</c>).</summary>
public sealed class AdaptiveAvgPool2d(params int?[] outputSize) : AdaptiveAvgPoolNd(2, outputSize);

/// <summary>Adaptive 3-D average pooling (PyTorch's <c>nn.AdaptiveAvgPool3d</c>).</summary>
public sealed class AdaptiveAvgPool3d(params int?[] outputSize) : AdaptiveAvgPoolNd(3, outputSize);

/// <summary>Base of AdaptiveMaxPool1d/2d/3d: a validated output size, no parameters.</summary>
public abstract class AdaptiveMaxPoolNd : MaxPoolingModule
{
    private readonly int _nd;

    private protected AdaptiveMaxPoolNd(int nd, int?[] outputSize, bool returnIndices) : base(returnIndices) =>
        (_nd, OutputSize) = (nd, PoolRepr.CheckOutputSize(GetType().Name, nd, outputSize));

    /// <summary>Output size per spatial dim (one entry = every dim; null = keep the input size).</summary>
    public int?[] OutputSize { get; }

    /// <inheritdoc/>
    public override (Tensor Output, Tensor Indices) ForwardWithIndices(Tensor input) => _nd switch
    {
        1 => F.AdaptiveMaxPool1dWithIndices(input, OutputSize),
        2 => F.AdaptiveMaxPool2dWithIndices(input, OutputSize),
        _ => F.AdaptiveMaxPool3dWithIndices(input, OutputSize),
    };

    private protected override Tensor ForwardOutput(Tensor input) => _nd switch
    {
        1 => F.AdaptiveMaxPool1d(input, OutputSize),
        2 => F.AdaptiveMaxPool2d(input, OutputSize),
        _ => F.AdaptiveMaxPool3d(input, OutputSize),
    };

    /// <inheritdoc/>
    protected override string ExtraRepr() => $"output_size={PoolRepr.Sizes(OutputSize)}";
}

/// <summary>Adaptive 1-D max pooling (PyTorch's <c>nn.AdaptiveMaxPool1d</c>).</summary>
public sealed class AdaptiveMaxPool1d(int?[] outputSize, bool returnIndices = false) : AdaptiveMaxPoolNd(1, outputSize, returnIndices);

/// <summary>Adaptive 2-D max pooling (PyTorch's <c>nn.AdaptiveMaxPool2d</c>).</summary>
public sealed class AdaptiveMaxPool2d(int?[] outputSize, bool returnIndices = false) : AdaptiveMaxPoolNd(2, outputSize, returnIndices);

/// <summary>Adaptive 3-D max pooling (PyTorch's <c>nn.AdaptiveMaxPool3d</c>).</summary>
public sealed class AdaptiveMaxPool3d(int?[] outputSize, bool returnIndices = false) : AdaptiveMaxPoolNd(3, outputSize, returnIndices);

/// <summary>Global average pooling to 1×1; with <paramref name="flatten"/>, (N, C, H, W) → (N, C) (or (C, H, W) → (C)).</summary>
public sealed class GlobalAvgPool2d(bool flatten = false) : Module
{
    /// <summary>Whether the trailing 1×1 dims are dropped.</summary>
    public bool FlattenOutput { get; } = flatten;

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        var y = F.GlobalAvgPool2d(input);
        return FlattenOutput ? y.Flatten(y.Rank - 3) : y;
    }

    /// <inheritdoc/>
    protected override string ExtraRepr() => $"flatten={PoolRepr.Bool(FlattenOutput)}";
}
