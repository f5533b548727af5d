using ConvLab.NN.Functional;

namespace ConvLab.Conformance.Ops;

/// <summary>Conformance handlers for batch, layer, group and instance normalisation.</summary>
internal static class NormOps
{
    private static IReadOnlyDictionary<string, Tensor> Out(Tensor t) => new Dictionary<string, Tensor> { ["output"] = t };

    [ReferenceOp("batch_norm")]
    public static IReadOnlyDictionary<string, Tensor> BatchNorm(OpArgs a)
    {
        var rm = a.Input("running_mean"); var rv = a.Input("running_var");
        var y = F.BatchNorm(a.Input("input"), rm, rv, a.OptionalInput("weight"), a.OptionalInput("bias"),
            a.Bool("training"), a.Double("momentum"), a.Double("eps"));
        return new Dictionary<string, Tensor> { ["output"] = y, ["running_mean"] = rm, ["running_var"] = rv };
    }

    [ReferenceOp("layer_norm")]
    public static IReadOnlyDictionary<string, Tensor> LayerNorm(OpArgs a) =>
        Out(F.LayerNorm(a.Input("input"), a.Ints("normalized_shape"), a.OptionalInput("weight"), a.OptionalInput("bias"), a.Double("eps")));

    [ReferenceOp("group_norm")]
    public static IReadOnlyDictionary<string, Tensor> GroupNorm(OpArgs a) =>
        Out(F.GroupNorm(a.Input("input"), a.Int("num_groups"), a.OptionalInput("weight"), a.OptionalInput("bias"), a.Double("eps")));

    [ReferenceOp("instance_norm")]
    public static IReadOnlyDictionary<string, Tensor> InstanceNorm(OpArgs a) =>
        Out(F.InstanceNorm(a.Input("input"), a.OptionalInput("running_mean"), a.OptionalInput("running_var"),
            a.OptionalInput("weight"), a.OptionalInput("bias"), useInputStats: true, momentum: a.Double("momentum", 0.1), eps: a.Double("eps")));
}
