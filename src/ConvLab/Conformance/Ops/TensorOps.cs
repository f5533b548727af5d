using ConvLab.NN.Functional;

namespace ConvLab.Conformance.Ops;

/// <summary>Conformance handlers for tensor arithmetic, reductions, shape ops and linear.</summary>
internal static class TensorOps
{
    private static IReadOnlyDictionary<string, Tensor> Out(Tensor t) => new Dictionary<string, Tensor> { ["output"] = t };

    [ReferenceOp("add", "sub", "mul", "div")]
    public static IReadOnlyDictionary<string, Tensor> Binary(OpArgs a)
    {
        var x = a.Input("input"); var y = a.Input("other");
        return Out(a.Case.Op switch { "add" => x.Add(y), "sub" => x.Sub(y), "mul" => x.Mul(y), _ => x.Div(y) });
    }

    [ReferenceOp("matmul")]
    public static IReadOnlyDictionary<string, Tensor> Matmul(OpArgs a) => Out(a.Input("input").Matmul(a.Input("other")));

    [ReferenceOp("bmm")]
    public static IReadOnlyDictionary<string, Tensor> Bmm(OpArgs a) => Out(a.Input("input").Bmm(a.Input("other")));

    [ReferenceOp("sum", "mean")]
    public static IReadOnlyDictionary<string, Tensor> SumMean(OpArgs a)
    {
        var x = a.Input("input"); var dims = a.Ints("dim"); bool keep = a.Bool("keepdim", false);
        return Out(a.Case.Op == "sum" ? x.Sum(dims, keep) : x.Mean(dims, keep));
    }

    [ReferenceOp("max")]
    public static IReadOnlyDictionary<string, Tensor> Max(OpArgs a)
    {
        var (v, i) = a.Input("input").Max(a.Int("dim"), a.Bool("keepdim", false));
        return new Dictionary<string, Tensor> { ["values"] = v, ["indices"] = i };
    }

    [ReferenceOp("permute")]
    public static IReadOnlyDictionary<string, Tensor> Permute(OpArgs a) => Out(a.Input("input").Permute(a.Ints("dims")));

    [ReferenceOp("flatten")]
    public static IReadOnlyDictionary<string, Tensor> Flatten(OpArgs a) => Out(a.Input("input").Flatten(a.Int("start_dim", 0), a.Int("end_dim", -1)));

    [ReferenceOp("linear")]
    public static IReadOnlyDictionary<string, Tensor> Linear(OpArgs a) => Out(F.Linear(a.Input("input"), a.Input("weight"), a.OptionalInput("bias")));
}
