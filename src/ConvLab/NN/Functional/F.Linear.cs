using ConvLab.Autograd;
using ConvLab.Autograd.Nodes;

namespace ConvLab.NN.Functional;

/// <summary>
/// The functional API (PyTorch's <c>torch.nn.functional</c>): stateless ops that validate their
/// arguments, run a kernel and record an autograd node. Modules call these.
/// </summary>
public static partial class F
{
    /// <summary>y = x·Wᵀ + b over the last dimension of <paramref name="input"/> (*, in_features).</summary>
    public static Tensor Linear(Tensor input, Tensor weight, Tensor? bias = null)
    {
        input.RequireFloat("linear");
        if (weight.Rank != 2)
            throw new ArgumentException($"linear: weight must be 2-D (out_features, in_features), got shape {ShapeUtil.Format(weight.Shape)}");
        if (input.Rank < 1 || input.Shape[^1] != weight.Shape[1])
            throw new ArgumentException($"linear: input has {(input.Rank < 1 ? 0 : input.Shape[^1])} features (shape {ShapeUtil.Format(input.Shape)}) but weight expects {weight.Shape[1]}");
        if (bias != null && (bias.Rank != 1 || bias.Shape[0] != weight.Shape[0]))
            throw new ArgumentException($"linear: bias must have shape [{weight.Shape[0]}], got {ShapeUtil.Format(bias.Shape)}");
        if (weight.DType != input.DType || (bias != null && bias.DType != input.DType))
            throw new ArgumentException($"linear: input ({input.DType}), weight ({weight.DType}) and bias must have the same dtype");

        int outF = weight.Shape[0], inF = weight.Shape[1];
        int rows = input.Numel / Math.Max(inF, 1);
        if (inF == 0) rows = ShapeUtil.Numel(input.Shape[..^1]);
        var yShape = input.Shape.ToArray(); yShape[^1] = outF;
        if (input.IsMeta) return Analysis.MetaOps.Linear(input, yShape, inF, outF, bias != null);
        var x = input.Detach().Contiguous();
        var w = weight.Detach().Contiguous();
        var y = Tensor.Zeros(yShape, input.DType);
        Tensor.Gemm(false, true, rows, outF, inF, x, x.StorageOffset, inF, w, w.StorageOffset, inF, y, 0, outF);
        if (bias != null)
            using (new NoGrad()) y = y.Add(bias.Detach());
        Analysis.OpRecorder.Record(y, "linear", [input, weight, bias]);
        if (!Engine.WillRecord(input, weight, bias)) return y;
        return Engine.Record(y, new LinearBackward(x, w, rows, inF, outF, bias != null), input, weight, bias);
    }
}
