using ConvLab.NN.Functional;

namespace ConvLab.NN;

/// <summary>Resizes spatial dimensions (PyTorch's <c>nn.Upsample</c>); see <see cref="F.Interpolate"/> for the modes.</summary>
public sealed class Upsample : Module
{
    /// <summary>Creates the layer; give exactly one of <paramref name="size"/> and <paramref name="scaleFactor"/>.</summary>
    public Upsample(int[]? size = null, double[]? scaleFactor = null, string mode = "nearest", bool? alignCorners = null)
    {
        if ((size == null) == (scaleFactor == null))
            throw new ArgumentException("Upsample: exactly one of size and scale_factor must be given");
        if (size is { Length: 0 } || scaleFactor is { Length: 0 })
            throw new ArgumentException("Upsample: size / scale_factor must have at least one entry");
        if (size != null && size.Any(s => s <= 0))
            throw new ArgumentException($"Upsample: size must be positive, got [{string.Join(", ", size)}]");
        if (scaleFactor != null && scaleFactor.Any(s => !(s > 0) || double.IsInfinity(s)))
            throw new ArgumentException($"Upsample: scale_factor must be positive and finite, got [{string.Join(", ", scaleFactor)}]");
        if (mode is not ("nearest" or "linear" or "bilinear" or "trilinear"))
            throw new ArgumentException($"Upsample: unsupported mode '{mode}' (expected nearest, linear, bilinear or trilinear)");
        if (mode == "nearest" && alignCorners != null)
            throw new ArgumentException("Upsample: align_corners can only be set with the linear modes (linear, bilinear, trilinear)");
        Size = size?.ToArray(); ScaleFactor = scaleFactor?.ToArray(); Mode = mode; AlignCorners = alignCorners;
    }

    /// <summary>Output spatial size, or null when a scale factor is used.</summary>
    public int[]? Size { get; }
    /// <summary>Scale factor per spatial dimension, or null when a size is used.</summary>
    public double[]? ScaleFactor { get; }
    /// <summary>Interpolation mode.</summary>
    public string Mode { get; }
    /// <summary>Corner alignment for the linear modes (null = false).</summary>
    public bool? AlignCorners { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => F.Interpolate(input, Size, ScaleFactor, Mode, AlignCorners);

    /// <inheritdoc/>
    protected override string ExtraRepr() =>
        (Size != null ? $"size=({string.Join(", ", Size)})" : $"scale_factor=({string.Join(", ", ScaleFactor!.Select(s => s.ToString("0.0##", System.Globalization.CultureInfo.InvariantCulture)))})")
        + $", mode={Mode}" + (AlignCorners != null ? $", align_corners={(AlignCorners.Value ? "True" : "False")}" : "");
}

/// <summary>(*, C·r², H, W) → (*, C, H·r, W·r) (PyTorch's <c>nn.PixelShuffle</c>).</summary>
public sealed class PixelShuffle : Module
{
    /// <summary>Creates the layer; <paramref name="upscaleFactor"/> must be positive.</summary>
    public PixelShuffle(int upscaleFactor)
    {
        if (upscaleFactor <= 0) throw new ArgumentException($"PixelShuffle: upscale_factor must be positive, got {upscaleFactor}");
        UpscaleFactor = upscaleFactor;
    }

    /// <summary>Upscale factor r.</summary>
    public int UpscaleFactor { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => F.PixelShuffle(input, UpscaleFactor);

    /// <inheritdoc/>
    protected override string ExtraRepr() => $"upscale_factor={UpscaleFactor}";
}

/// <summary>(*, C, H·r, W·r) → (*, C·r², H, W) (PyTorch's <c>nn.PixelUnshuffle</c>).</summary>
public sealed class PixelUnshuffle : Module
{
    /// <summary>Creates the layer; <paramref name="downscaleFactor"/> must be positive.</summary>
    public PixelUnshuffle(int downscaleFactor)
    {
        if (downscaleFactor <= 0) throw new ArgumentException($"PixelUnshuffle: downscale_factor must be positive, got {downscaleFactor}");
        DownscaleFactor = downscaleFactor;
    }

    /// <summary>Downscale factor r.</summary>
    public int DownscaleFactor { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => F.PixelUnshuffle(input, DownscaleFactor);

    /// <inheritdoc/>
    protected override string ExtraRepr() => $"downscale_factor={DownscaleFactor}";
}

/// <summary>Interleaves channels across groups (PyTorch's <c>nn.ChannelShuffle</c>, ShuffleNet).</summary>
public sealed class ChannelShuffle : Module
{
    /// <summary>Creates the layer; <paramref name="groups"/> must be positive.</summary>
    public ChannelShuffle(int groups)
    {
        if (groups <= 0) throw new ArgumentException($"ChannelShuffle: groups must be positive, got {groups}");
        Groups = groups;
    }

    /// <summary>Number of channel groups.</summary>
    public int Groups { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => F.ChannelShuffle(input, Groups);

    /// <inheritdoc/>
    protected override string ExtraRepr() => $"groups={Groups}";
}
