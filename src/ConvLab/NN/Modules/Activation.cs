using ConvLab.NN.Functional;

namespace ConvLab.NN;

/// <summary>PyTorch's <c>nn.ReLU</c>.</summary>
public sealed class ReLU : Module
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => F.Relu(input);
}

/// <summary>PyTorch's <c>nn.LeakyReLU</c>.</summary>
public sealed class LeakyReLU(double negativeSlope = 0.01) : Module
{
    /// <summary>Slope for negative inputs.</summary>
    public double NegativeSlope => negativeSlope;
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => F.LeakyRelu(input, negativeSlope);
    /// <inheritdoc/>
    protected override string ExtraRepr() => $"negative_slope={negativeSlope}";
}

/// <summary>PyTorch's <c>nn.Sigmoid</c>.</summary>
public sealed class Sigmoid : Module
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => F.Sigmoid(input);
}

/// <summary>PyTorch's <c>nn.Tanh</c>.</summary>
public sealed class Tanh : Module
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => F.Tanh(input);
}

/// <summary>PyTorch's <c>nn.GELU</c> (approximate "none" or "tanh").</summary>
public sealed class GELU : Module
{
    /// <summary>Creates the layer, validating <paramref name="approximate"/>.</summary>
    public GELU(string approximate = "none")
    {
        if (approximate is not ("none" or "tanh"))
            throw new ArgumentException($"GELU: approximate argument must be either none or tanh, got '{approximate}'");
        Approximate = approximate;
    }

    /// <summary>"none" (exact, erf) or "tanh".</summary>
    public string Approximate { get; }
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => F.Gelu(input, Approximate);
    /// <inheritdoc/>
    protected override string ExtraRepr() => $"approximate='{Approximate}'";
}

/// <summary>PyTorch's <c>nn.SiLU</c>.</summary>
public sealed class SiLU : Module
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => F.Silu(input);
}

/// <summary>PyTorch's <c>nn.ELU</c>.</summary>
public sealed class ELU(double alpha = 1.0) : Module
{
    /// <summary>Scale of the negative branch.</summary>
    public double Alpha => alpha;
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => F.Elu(input, alpha);
    /// <inheritdoc/>
    protected override string ExtraRepr() => $"alpha={alpha}";
}

/// <summary>PyTorch's <c>nn.Hardswish</c>.</summary>
public sealed class Hardswish : Module
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => F.Hardswish(input);
}

/// <summary>PyTorch's <c>nn.Hardsigmoid</c>.</summary>
public sealed class Hardsigmoid : Module
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => F.Hardsigmoid(input);
}

/// <summary>PyTorch's <c>nn.ReLU6</c>.</summary>
public sealed class ReLU6 : Module
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => F.Relu6(input);
}

/// <summary>PyTorch's <c>nn.Softplus</c>.</summary>
public sealed class Softplus(double beta = 1, double threshold = 20) : Module
{
    /// <summary>Sharpness β.</summary>
    public double Beta => beta;
    /// <summary>Above β·x &gt; threshold the layer is the identity.</summary>
    public double Threshold => threshold;
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => F.Softplus(input, beta, threshold);
    /// <inheritdoc/>
    protected override string ExtraRepr() => $"beta={beta}, threshold={threshold}";
}

/// <summary>PyTorch's <c>nn.Softmax</c> along <c>dim</c>.</summary>
public sealed class Softmax(int dim) : Module
{
    /// <summary>The dimension normalised.</summary>
    public int Dim => dim;
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => F.Softmax(input, dim);
    /// <inheritdoc/>
    protected override string ExtraRepr() => $"dim={dim}";
}

/// <summary>PyTorch's <c>nn.LogSoftmax</c> along <c>dim</c>.</summary>
public sealed class LogSoftmax(int dim) : Module
{
    /// <summary>The dimension normalised.</summary>
    public int Dim => dim;
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => F.LogSoftmax(input, dim);
    /// <inheritdoc/>
    protected override string ExtraRepr() => $"dim={dim}";
}
