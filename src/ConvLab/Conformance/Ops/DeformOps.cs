using ConvLab.NN.Functional;

namespace ConvLab.Conformance.Ops;

/// <summary>Conformance handler for torchvision's deform_conv2d (v1 and v2).</summary>
internal static class DeformOps
{
    [ReferenceOp("deform_conv2d")]
    public static IReadOnlyDictionary<string, Tensor> DeformConv2d(OpArgs a) => new Dictionary<string, Tensor>
    {
        ["output"] = F.DeformConv2d(a.Input("input"), a.Input("offset"), a.Input("weight"), a.OptionalInput("bias"),
            a.Ints("stride"), a.Ints("padding"), a.Ints("dilation"), a.OptionalInput("mask")),
    };
}
