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
            Tensor.Gemm(false, false, rows, inF, outF, gy, gy.StorageOffset, outF, w, w.StorageOffset, inF, gx, 0, inF);
        }
        if (NeedsGrad(1))
        {
            gw = Tensor.Zeros([outF, inF], x.DType);
            Tensor.Gemm(true, false, outF, inF, rows, gy, gy.StorageOffset, outF, x, x.StorageOffset, inF, gw, 0, inF);
        }
        if (hasBias && NeedsGrad(2)) gb = gy.Reshape(rows, outF).Sum(0);
        return [gx, gw, gb];
    }

    protected override void ReleaseSaved() => (_x, _w) = (null, null);
}
