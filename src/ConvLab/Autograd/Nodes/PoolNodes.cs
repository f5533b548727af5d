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

/// <summary>Backward of plain 2-d max pooling (<see cref="Pool.Plain2d"/>): the gradient goes to each window's argmax tap.</summary>
internal sealed class MaxPool2dTapsBackward(string name, byte[] taps, int[] inputShape, int planes, PoolWindows w, (int Kh, int Kw, int Sh, int Sw) geometry) : Node
{
    private byte[]? _taps = taps;

    public override string Name => name;

    protected internal override Tensor?[] Apply(Tensor g)
    {
        var gy = g.Contiguous();
        var gx = Tensor.Zeros(inputShape, g.DType);
        if (g.DType == DType.Float32)
            Pool.MaxBackward2d(gy.Buffer<float>(), gy.StorageOffset, _taps!, gx.Buffer<float>(), planes, w, geometry);
        else
            Pool.MaxBackward2d(gy.Buffer<double>(), gy.StorageOffset, _taps!, gx.Buffer<double>(), planes, w, geometry);
        return [gx];
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
