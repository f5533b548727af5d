using ConvLab.NN.Functional;

namespace ConvLab.NN;

/// <summary>Inverted dropout (PyTorch's <c>nn.Dropout</c>): active in training, the identity in evaluation.</summary>
public class Dropout : Module
{
    private readonly Generator? _generator;

    /// <summary>Creates the layer; the mask is drawn from <paramref name="generator"/> (or the default generator).</summary>
    public Dropout(double p = 0.5, Generator? generator = null) : this("Dropout", p, generator) { }

    private protected Dropout(string name, double p, Generator? generator)
    {
        if (!(p >= 0 && p <= 1))
            throw new ArgumentException($"{name}: dropout probability has to be between 0 and 1, but got {p}");
        P = p; _generator = generator;
    }

    /// <summary>Probability of zeroing an element.</summary>
    public double P { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => F.Dropout(input, P, Training, _generator);

    private protected Generator? Gen => _generator;

    /// <inheritdoc/>
    protected override string ExtraRepr() => $"p={P}, inplace=False";
}

/// <summary>Channel dropout over (N, C, *) (PyTorch's <c>nn.Dropout2d</c>): whole channels are zeroed.</summary>
public sealed class Dropout2d(double p = 0.5, Generator? generator = null) : Dropout("Dropout2d", p, generator)
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => F.Dropout2d(input, P, Training, Gen);
}
