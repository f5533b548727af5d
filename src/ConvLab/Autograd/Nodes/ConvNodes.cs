using ConvLab.Kernels;

namespace ConvLab.Autograd.Nodes;

/// <summary>
/// Backward of convolution and transposed convolution. Both share one geometry (that of the
/// convolution); a transposed convolution's gradients are the convolution's passes with the roles of
/// input and output exchanged: dX = conv(dY), dW = Σ dY-columns ⊗ X. Each pass runs on the algorithm the
/// dispatcher resolves from the (possibly forced) <see cref="ConvAlgorithm"/>.
/// </summary>
internal sealed class ConvBackward(Tensor x, Tensor w, ConvGeometry geo, bool transposed, bool hasBias, string op, ConvAlgorithm algorithm) : Node
{
    private Tensor? _x = x, _w = w;

    public override string Name => op + "Backward";

    protected internal override Tensor?[] Apply(Tensor g)
    {
        var gy = g.Contiguous();
        var x = _x!; var w = _w!;
        Tensor? gx = null, gw = null, gb = null;
        if (NeedsGrad(0))
        {
            // Every algorithm writes all of dst; the gradient is this node's alone, so a leaf may keep it as is.
            gx = Tensor.Uninitialized(x.Shape.ToArray(), x.DType);
            gx.FreshGradient = true;
            Run(transposed ? ConvPass.Forward : ConvPass.BackwardInput, gy, w, gx, geo, algorithm);
        }
        if (NeedsGrad(1))
        {
            gw = Tensor.Uninitialized(w.Shape.ToArray(), w.DType);
            gw.FreshGradient = true;
            if (transposed) Run(ConvPass.BackwardWeight, gy, x, gw, geo, algorithm);
            else Run(ConvPass.BackwardWeight, x, gy, gw, geo, algorithm);
        }
        if (hasBias && NeedsGrad(2))
            gb = gy.Sum(Enumerable.Range(0, gy.Rank).Where(d => d != 1).ToArray());
        return [gx, gw, gb];
    }

    protected override void ReleaseSaved() => (_x, _w) = (null, null);

    /// <summary>Runs a convolution pass on dense tensors of the same dtype; dst is overwritten.</summary>
    internal static void Run(ConvPass pass, Tensor a, Tensor b, Tensor dst, ConvGeometry geo, ConvAlgorithm algorithm)
    {
        if (dst.DType == DType.Float32)
            ConvDispatch.Run(algorithm, pass, a.Buffer<float>(), a.StorageOffset, b.Buffer<float>(), b.StorageOffset, dst.Buffer<float>(), dst.StorageOffset, geo);
        else
            ConvDispatch.Run(algorithm, pass, a.Buffer<double>(), a.StorageOffset, b.Buffer<double>(), b.StorageOffset, dst.Buffer<double>(), dst.StorageOffset, geo);
    }
}
