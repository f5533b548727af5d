namespace ConvLab.Autograd.Nodes;

/// <summary>Backward of pad: scatter-add of the output gradient through the same index maps.</summary>
internal sealed class PadBackward(int[] inShape, int outer, int[] inSize, int[][] maps) : Node
{
    protected internal override Tensor?[] Apply(Tensor g)
    {
        var gy = g.Contiguous();
        var gx = Tensor.Zeros(inShape, gy.DType);
        if (gy.DType == DType.Float32)
            Kernels.Pad.Transfer(true, gx.Buffer<float>(), 0, gy.Buffer<float>(), gy.StorageOffset, outer, inSize, maps, 0f);
        else
            Kernels.Pad.Transfer(true, gx.Buffer<double>(), 0, gy.Buffer<double>(), gy.StorageOffset, outer, inSize, maps, 0.0);
        return [gx];
    }
}
