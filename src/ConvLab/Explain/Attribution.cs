namespace ConvLab.Explain;

/// <summary>
/// The result of one attribution method, raw and unnormalised.
/// </summary>
/// <param name="Method">The method's name (Captum / pytorch-grad-cam vocabulary: <c>saliency</c>, <c>integrated_gradients</c>, <c>grad_cam</c>, ...).</param>
/// <param name="Map">
/// Float32 attributions: (N, C, H, W) like the input for input-space methods; (N, 1, h, w) at the layer's resolution
/// for CAM-style methods.
/// </param>
/// <param name="Targets">The class each sample's target resolved to (-1 for a function target).</param>
/// <param name="Delta">Integrated gradients' completeness delta per sample: sum(attributions) − (f(input) − f(baseline)); null for other methods.</param>
/// <param name="Layer">The module path of the explained layer for layer methods (with the call index when it was given), else null.</param>
/// <param name="Upsampled">CAM-style methods: <see cref="Map"/> bilinearly resized (align_corners false) to the input's (N, 1, H, W); else null.</param>
public sealed record Attribution(string Method, Tensor Map, int[] Targets, double[]? Delta = null, string? Layer = null, Tensor? Upsampled = null);

/// <summary>Where integrated gradients evaluate the gradient along the path from the baseline to the input.</summary>
public enum IntegrationRule
{
    /// <summary>α_i = i/n, weights 1/n (i = 0..n-1).</summary>
    RiemannLeft,
    /// <summary>α_i = (i+1)/n, weights 1/n.</summary>
    RiemannRight,
    /// <summary>α_i = (i+½)/n, weights 1/n.</summary>
    RiemannMiddle,
    /// <summary>α_i = i/(n-1), weights 1/(n-1) with both end weights halved (they sum to 1; Captum's sum to (n-1)/n).</summary>
    RiemannTrapezoid,
    /// <summary>The n-point Gauss–Legendre nodes and weights mapped to [0, 1] (exact for polynomials of degree 2n-1); Captum's default.</summary>
    GaussLegendre,
}

/// <summary>
/// A reference input: integrated gradients' baseline, and the image deletion writes (insertion starts from).
/// </summary>
public abstract class Baseline
{
    private Baseline() { }

    /// <summary>All zeros.</summary>
    public static Baseline Zeros { get; } = new ZerosBaseline();

    /// <summary>The input blurred by a Gaussian of standard deviation <paramref name="sigma"/> pixels (separable, edges replicated).</summary>
    public static Baseline Blurred(double sigma = 5) =>
        sigma > 0 && double.IsFinite(sigma) ? new BlurredBaseline(sigma) : throw new ArgumentException($"baseline: blur sigma must be positive, got {sigma}");

    /// <summary>Independent uniform noise in [<paramref name="low"/>, <paramref name="high"/>), seeded by the method's seed.</summary>
    public static Baseline UniformNoise(double low = 0, double high = 1) =>
        high > low ? new NoiseBaseline(low, high) : throw new ArgumentException($"baseline: uniform noise needs low < high, got [{low}, {high})");

    /// <summary>A given tensor, of the input's shape (or of one sample's shape (1, C, H, W), broadcast over the batch).</summary>
    public static Baseline Given(Tensor baseline)
    {
        ArgumentNullException.ThrowIfNull(baseline);
        return new GivenBaseline(baseline);
    }

    /// <summary>The baseline for <paramref name="input"/> (N, C, H, W), detached, of the input's shape and dtype.</summary>
    internal abstract Tensor For(Tensor input, int seed, string op);

    /// <inheritdoc/>
    public abstract override string ToString();

    private sealed class ZerosBaseline : Baseline
    {
        internal override Tensor For(Tensor input, int seed, string op) => Tensor.Zeros(input.Shape, input.DType);
        public override string ToString() => "zeros";
    }

    private sealed class BlurredBaseline(double sigma) : Baseline
    {
        internal override Tensor For(Tensor input, int seed, string op) => Perturb.GaussianBlur(input, sigma, op);
        public override string ToString() => $"blurred (sigma {sigma:G4})";
    }

    private sealed class NoiseBaseline(double low, double high) : Baseline
    {
        internal override Tensor For(Tensor input, int seed, string op) =>
            Tensor.Rand(input.Shape, new Generator((ulong)seed), low, high, input.DType);
        public override string ToString() => $"uniform noise [{low:G4}, {high:G4})";
    }

    private sealed class GivenBaseline(Tensor t) : Baseline
    {
        internal override Tensor For(Tensor input, int seed, string op)
        {
            bool same = t.Shape.SequenceEqual(input.Shape);
            bool one = t.Rank == input.Rank && t.Rank > 0 && t.Shape[0] == 1 && t.Shape[1..].SequenceEqual(input.Shape[1..]);
            if (!same && !one)
                throw new ArgumentException($"{op}: baseline has shape {ShapeUtil.Format(t.Shape)} but the input has {ShapeUtil.Format(input.Shape)}");
            var b = t.Detach().To(input.DType);
            return same ? b.Contiguous() : b.Expand(input.Shape.ToArray()).Contiguous();
        }
        public override string ToString() => "given";
    }
}

/// <summary>Options of <see cref="Attributions.IntegratedGradients"/> (Captum's <c>n_steps</c>, <c>method</c>, <c>baselines</c>, <c>internal_batch_size</c>).</summary>
public sealed record IntegratedGradientsOptions
{
    /// <summary>Points on the path (Captum's <c>n_steps</c>); at least 1 (2 for the trapezoid rule).</summary>
    public int Steps { get; init; } = 50;

    /// <summary>The quadrature rule.</summary>
    public IntegrationRule Rule { get; init; } = IntegrationRule.GaussLegendre;

    /// <summary>The path's start.</summary>
    public Baseline Baseline { get; init; } = Baseline.Zeros;

    /// <summary>Perturbed inputs per forward/backward pass: at most this many are held at a time.</summary>
    public int InternalBatchSize { get; init; } = 16;

    /// <summary>Seed for a noise baseline.</summary>
    public int Seed { get; init; }
}
