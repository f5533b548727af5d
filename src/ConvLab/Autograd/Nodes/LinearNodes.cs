namespace ConvLab.Autograd.Nodes;

/// <summary>Backward of linear: dX = dY·W, dW = dYᵀ·X, db = Σ_rows dY.</summary>
internal sealed class LinearBackward(Tensor x, Tensor w, int rows, int inF, int outF, bool hasBias) : Node
{
    private Tensor? _x = x, _w = w;

    protected internal override Tensor?[] Apply(Tensor g)
    {
        var gy = g.Contiguous();
        var x = _x!; var w = _w!;
        Tensor? gx = null, gw = null, gb = null;
        if (NeedsGrad(0))
        {
            gx = Tensor.Zeros(x.Shape, x.DType);
            if (x.DType == DType.Float32)
                Kernels.Gemm.Run(false, false, rows, inF, outF, gy.Buffer<float>(), gy.StorageOffset, outF, w.Buffer<float>(), w.StorageOffset, inF, gx.Buffer<float>(), 0, inF, false);
            else
                Kernels.Gemm.Run(false, false, rows, inF, outF, gy.Buffer<double>(), gy.StorageOffset, outF, w.Buffer<double>(), w.StorageOffset, inF, gx.Buffer<double>(), 0, inF, false);
        }
        if (NeedsGrad(1))
        {
            gw = Tensor.Zeros([outF, inF], x.DType);
            if (x.DType == DType.Float32)
                Kernels.Gemm.Run(true, false, outF, inF, rows, gy.Buffer<float>(), gy.StorageOffset, outF, x.Buffer<float>(), x.StorageOffset, inF, gw.Buffer<float>(), 0, inF, false);
            else
                Kernels.Gemm.Run(true, false, outF, inF, rows, gy.Buffer<double>(), gy.StorageOffset, outF, x.Buffer<double>(), x.StorageOffset, inF, gw.Buffer<double>(), 0, inF, false);
        }
        if (hasBias && NeedsGrad(2)) gb = gy.Reshape(rows, outF).Sum(0);
        return [gx, gw, gb];
    }

    protected override void ReleaseSaved() => (_x, _w) = (null, null);
}
