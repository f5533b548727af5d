using ConvLab.NN.Functional;

namespace ConvLab.Conformance.Ops;

/// <summary>Conformance handlers for the element-wise activations, softmax and log-softmax.</summary>
internal static class ActivationOps
{
    private static IReadOnlyDictionary<string, Tensor> Out(Tensor t) => new Dictionary<string, Tensor> { ["output"] = t };

    [ReferenceOp("relu", "leaky_relu", "sigmoid", "tanh", "gelu", "silu", "elu", "hardswish", "relu6", "softplus", "hardsigmoid")]
    public static IReadOnlyDictionary<string, Tensor> Activation(OpArgs a)
    {
        var x = a.Input("input");
        return Out(a.Case.Op switch
        {
            "relu" => F.Relu(x),
            "leaky_relu" => F.LeakyRelu(x, a.Double("negative_slope")),
            "sigmoid" => F.Sigmoid(x),
            "tanh" => F.Tanh(x),
            "gelu" => F.Gelu(x, a.String("approximate", "none")),
            "silu" => F.Silu(x),
            "elu" => F.Elu(x, a.Double("alpha")),
            "hardswish" => F.Hardswish(x),
            "relu6" => F.Relu6(x),
            "softplus" => F.Softplus(x, a.Double("beta"), a.Double("threshold")),
            _ => F.Hardsigmoid(x),
        });
    }

    [ReferenceOp("softmax")]
    public static IReadOnlyDictionary<string, Tensor> Softmax(OpArgs a) => Out(F.Softmax(a.Input("input"), a.Int("dim")));

    [ReferenceOp("log_softmax")]
    public static IReadOnlyDictionary<string, Tensor> LogSoftmax(OpArgs a) => Out(F.LogSoftmax(a.Input("input"), a.Int("dim")));
}
