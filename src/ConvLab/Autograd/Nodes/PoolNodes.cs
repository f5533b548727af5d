using ConvLab.Kernels;

namespace ConvLab.Autograd.Nodes;

/// <summary>Backward of max pooling (sliding or adaptive): the gradient goes to each window's argmax.</summary>
internal sealed class MaxPoolBackward(string name, Tensor indices, int[] inputShape, int planes, PoolWindows w) : Node
{
    private Tensor? _indices = indices;

    public override string Name => name;

    protected internal override Tensor?[] Apply(Tensor g)
    {
        var gy = g.Contiguous();
        var gx = Tensor.Zeros(inputShape, g.DType);
        var idx = _indices!.Buffer<long>();
        if (g.DType == DType.Float32)
            Pool.MaxBackward(gy.Buffer<float>(), gy.StorageOffset, idx, gx.Buffer<float>(), planes, w.InPlane, w.OutPlane);
        else
            Pool.MaxBackward(gy.Buffer<double>(), gy.StorageOffset, idx, gx.Buffer<double>(), planes, w.InPlane, w.OutPlane);
        return [gx];
    }

    protected override void ReleaseSaved() => _indices = null;
}

/// <summary>
/// The −∞-padded geometry of a padded 2-d max pooling: <paramref name="Full"/> windows over the padded plane, its plain
/// kernel <paramref name="Geometry"/>, the padding index maps (padded row/column → input row/column or −1) and the top
/// and left padding.
/// </summary>
internal sealed record MaxPadding(PoolWindows Full, (int Kh, int Kw, int Sh, int Sw) Geometry, int[] RowMap, int[] ColMap, int Top, int Left);

/// <summary>Backward of plain 2-d max pooling (<see cref="Pool.Plain2d"/>): the gradient goes to each window's argmax tap.</summary>
/// With <paramref name="padded"/>, the taps index windows of the −∞-padded input: the gradient is routed in the padded
/// layout and cropped back (the padding's share is always zero, as no argmax lies there).
internal sealed class MaxPool2dTapsBackward(string name, byte[] taps, int[] inputShape, int planes, PoolWindows w, (int Kh, int Kw, int Sh, int Sw) geometry,
    MaxPadding? padded = null) : Node
{
    private byte[]? _taps = taps;

    public override string Name => name;

    protected internal override Tensor?[] Apply(Tensor g)
    {
        var gy = g.Contiguous();
        var gx = Tensor.Zeros(inputShape, g.DType);
        if (g.DType == DType.Float32) Route(gy.Buffer<float>(), gy.StorageOffset, gx.Buffer<float>());
        else Route(gy.Buffer<double>(), gy.StorageOffset, gx.Buffer<double>());
        return [gx];
    }

    private void Route<T>(T[] gy, int gyOff, T[] gx) where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        if (padded == null) { Pool.MaxBackward2d(gy, gyOff, _taps!, gx, planes, w, geometry); return; }
        var gxPad = StorageRecycler.Take<T>(planes * w.InPlane);
        Pool.MaxBackward2d(gy, gyOff, _taps!, gxPad, planes, w, geometry);
        Pad.Transfer(true, gx, 0, gxPad, 0, planes, [inputShape[^2], inputShape[^1]], [padded.RowMap, padded.ColMap], T.Zero);
    }

    protected override void ReleaseSaved() => _taps = null;
}

/// <summary>Backward of average pooling (sliding or adaptive): each window's gradient spread over its taps.</summary>
internal sealed class AvgPoolBackward(string name, int[] inputShape, int planes, PoolWindows w, int divisorOverride) : Node
{
    public override string Name => name;

    protected internal override Tensor?[] Apply(Tensor g)
    {
        var gy = g.Contiguous();
        var gx = Tensor.Zeros(inputShape, g.DType);
        if (g.DType == DType.Float32)
            Pool.AvgBackward(gy.Buffer<float>(), gy.StorageOffset, gx.Buffer<float>(), planes, w, divisorOverride);
        else
            Pool.AvgBackward(gy.Buffer<double>(), gy.StorageOffset, gx.Buffer<double>(), planes, w, divisorOverride);
        return [gx];
    }
}
