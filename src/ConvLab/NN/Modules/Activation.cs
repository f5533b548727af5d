using ConvLab.NN.Functional;

namespace ConvLab.NN;

/// <summary>A parameter-free layer that applies one functional op (the activation modules).</summary>
public abstract class ActivationModule(Func<Tensor, Tensor> f, string extraRepr = "") : Module
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => f(input);

    /// <inheritdoc/>
    protected override string ExtraRepr() => extraRepr;
}

/// <summary>PyTorch's <c>nn.ReLU</c>.</summary>
public sealed class ReLU() : ActivationModule(F.Relu);

/// <summary>PyTorch's <c>nn.Sigmoid</c>.</summary>
public sealed class Sigmoid() : ActivationModule(F.Sigmoid);

/// <summary>PyTorch's <c>nn.Tanh</c>.</summary>
public sealed class Tanh() : ActivationModule(F.Tanh);

/// <summary>PyTorch's <c>nn.SiLU</c>.</summary>
public sealed class SiLU() : ActivationModule(F.Silu);

/// <summary>PyTorch's <c>nn.Hardswish</c>.</summary>
public sealed class Hardswish() : ActivationModule(F.Hardswish);

/// <summary>PyTorch's <c>nn.Hardsigmoid</c>.</summary>
public sealed class Hardsigmoid() : ActivationModule(F.Hardsigmoid);

/// <summary>PyTorch's <c>nn.ReLU6</c>.</summary>
public sealed class ReLU6() : ActivationModule(F.Relu6);

/// <summary>PyTorch's <c>nn.LeakyReLU</c>.</summary>
public sealed class LeakyReLU(double negativeSlope = 0.01) : ActivationModule(x => F.LeakyRelu(x, negativeSlope), $"negative_slope={negativeSlope}")
{
    /// <summary>Slope for negative inputs.</summary>
    public double NegativeSlope => negativeSlope;
}

/// <summary>PyTorch's <c>nn.GELU</c> (approximate "none" or "tanh").</summary>
public sealed class GELU(string approximate = "none")
    : ActivationModule(x => F.Gelu(x, approximate), $"approximate='{Validate(approximate)}'")
{
    /// <summary>"none" (exact, erf) or "tanh".</summary>
    public string Approximate => approximate;

    private static string Validate(string approximate) => approximate is "none" or "tanh" ? approximate
        : throw new ArgumentException($"GELU: approximate argument must be either none or tanh, got '{approximate}'");
}

/// <summary>PyTorch's <c>nn.ELU</c>.</summary>
public sealed class ELU(double alpha = 1.0) : ActivationModule(x => F.Elu(x, alpha), $"alpha={alpha}")
{
    /// <summary>Scale of the negative branch.</summary>
    public double Alpha => alpha;
}

/// <summary>PyTorch's <c>nn.Softplus</c>.</summary>
public sealed class Softplus(double beta = 1, double threshold = 20) : ActivationModule(x => F.Softplus(x, beta, threshold), $"beta={beta}, threshold={threshold}")
{
    /// <summary>Sharpness β.</summary>
    public double Beta => beta;
    /// <summary>Above β·x &gt; threshold the layer is the identity.</summary>
    public double Threshold => threshold;
}

/// <summary>PyTorch's <c>nn.Softmax</c> along <c>dim</c>.</summary>
public sealed class Softmax(int dim) : ActivationModule(x => F.Softmax(x, dim), $"dim={dim}")
{
    /// <summary>The dimension normalised.</summary>
    public int Dim => dim;
}

/// <summary>PyTorch's <c>nn.LogSoftmax</c> along <c>dim</c>.</summary>
public sealed class LogSoftmax(int dim) : ActivationModule(x => F.LogSoftmax(x, dim), $"dim={dim}")
{
    /// <summary>The dimension normalised.</summary>
    public int Dim => dim;
}
