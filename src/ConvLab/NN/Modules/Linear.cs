using ConvLab.NN.Functional;

namespace ConvLab.NN;

/// <summary>Fully connected layer y = x·Wᵀ + b (PyTorch's <c>nn.Linear</c>, same initialisation).</summary>
public sealed class Linear : Module
{
    /// <summary>Creates the layer; weight (out, in) and bias (out) are initialised as in PyTorch: U(-1/√in, 1/√in).</summary>
    public Linear(int inFeatures, int outFeatures, bool bias = true, Generator? generator = null)
    {
        if (inFeatures < 0 || outFeatures < 0)
            throw new ArgumentException($"Linear: in_features ({inFeatures}) and out_features ({outFeatures}) must be non-negative");
        InFeatures = inFeatures; OutFeatures = outFeatures;
        Weight = RegisterParameter("weight", Tensor.Zeros(outFeatures, inFeatures))!;
        Init.KaimingUniform_(Weight, a: Math.Sqrt(5), generator: generator);
        if (bias)
        {
            Bias = RegisterParameter("bias", Tensor.Zeros(outFeatures));
            double bound = inFeatures > 0 ? 1 / Math.Sqrt(inFeatures) : 0;
            Init.Uniform_(Bias!, -bound, bound, generator);
        }
    }

    /// <summary>Input features.</summary>
    public int InFeatures { get; }
    /// <summary>Output features.</summary>
    public int OutFeatures { get; }
    /// <summary>Weight (out_features, in_features).</summary>
    public Tensor Weight { get; }
    /// <summary>Bias (out_features) or null.</summary>
    public Tensor? Bias { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => F.Linear(input, Weight, Bias);

    /// <inheritdoc/>
    protected override string ExtraRepr() => $"in_features={InFeatures}, out_features={OutFeatures}, bias={(Bias != null ? "True" : "False")}";
}

/// <summary>Flattens dimensions start_dim..end_dim (PyTorch's <c>nn.Flatten</c>, default from dim 1).</summary>
public sealed class Flatten(int startDim = 1, int endDim = -1) : Module
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => input.Flatten(startDim, endDim);

    /// <inheritdoc/>
    protected override string ExtraRepr() => $"start_dim={startDim}, end_dim={endDim}";
}
