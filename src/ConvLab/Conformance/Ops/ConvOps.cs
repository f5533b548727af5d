using ConvLab.NN.Functional;

namespace ConvLab.Conformance.Ops;

/// <summary>Conformance handlers for convolutions, transposed convolutions, CoordConv and pad.</summary>
internal static class ConvOps
{
    private static IReadOnlyDictionary<string, Tensor> Out(Tensor t) => new Dictionary<string, Tensor> { ["output"] = t };

    /// <summary>Algorithm the convolution cases run with on this thread (tests run every case with each one forced).</summary>
    [ThreadStatic] internal static ConvAlgorithm Algorithm;

    [ReferenceOp("conv1d", "conv2d", "conv3d")]
    public static IReadOnlyDictionary<string, Tensor> Conv(OpArgs a)
    {
        int d = a.Case.Op[4] - '0';
        bool str = a.IsString("padding");
        return Out(F.ConvNd(a.Case.Op, d, a.Input("input"), a.Input("weight"), a.OptionalInput("bias"), a.Ints("stride"),
            str ? null : a.Ints("padding"), str ? a.String("padding") : null, a.Ints("dilation"), a.Int("groups", 1), a.String("padding_mode", "zeros"), Algorithm));
    }

    [ReferenceOp("conv_transpose1d", "conv_transpose2d", "conv_transpose3d")]
    public static IReadOnlyDictionary<string, Tensor> ConvTranspose(OpArgs a)
    {
        var x = a.Input("input"); var w = a.Input("weight"); var b = a.OptionalInput("bias");
        var (s, p, op, g, dil) = (a.Ints("stride"), a.Ints("padding"), a.Ints("output_padding"), a.Int("groups", 1), a.Ints("dilation"));
        return Out(a.Case.Op switch
        {
            "conv_transpose1d" => F.ConvTranspose1d(x, w, b, s, p, op, g, dil, Algorithm),
            "conv_transpose2d" => F.ConvTranspose2d(x, w, b, s, p, op, g, dil, Algorithm),
            _ => F.ConvTranspose3d(x, w, b, s, p, op, g, dil, Algorithm),
        });
    }

    [ReferenceOp("coord_conv2d")]
    public static IReadOnlyDictionary<string, Tensor> CoordConv(OpArgs a) =>
        Out(F.CoordConv2d(a.Input("input"), a.Input("weight"), a.OptionalInput("bias"), a.Ints("stride"), a.Ints("padding"),
            a.Ints("dilation"), a.Int("groups", 1), a.Bool("with_r", false), Algorithm));

    [ReferenceOp("pad")]
    public static IReadOnlyDictionary<string, Tensor> Pad(OpArgs a) =>
        Out(F.Pad(a.Input("input"), a.Ints("pad"), a.String("mode", "constant"), a.Double("value", 0)));
}
