using ConvLab.NN.Functional;

namespace ConvLab.NN;

/// <summary>
/// Shared state of batch and instance norm (PyTorch's <c>_NormBase</c>): parameters <c>weight</c> (ones) and
/// <c>bias</c> (zeros) when affine, buffers <c>running_mean</c>, <c>running_var</c> and the int64 scalar
/// <c>num_batches_tracked</c> when tracking running statistics.
/// </summary>
public abstract class NormBase : Module
{
    private protected NormBase(string name, int numFeatures, double eps, double? momentum, bool affine, bool trackRunningStats)
    {
        if (numFeatures <= 0) throw new ArgumentException($"{name}: num_features must be positive, got {numFeatures}");
        if (!(eps >= 0)) throw new ArgumentException($"{name}: eps must be non-negative, got {eps}");
        if (momentum is double m && !(m >= 0 && m <= 1)) throw new ArgumentException($"{name}: momentum must be in [0, 1] or null, got {m}");
        NumFeatures = numFeatures; Eps = eps; Momentum = momentum; Affine = affine; TrackRunningStats = trackRunningStats;
        if (affine)
        {
            Weight = RegisterParameter("weight", Tensor.Ones(numFeatures));
            Bias = RegisterParameter("bias", Tensor.Zeros(numFeatures));
        }
        if (trackRunningStats)
        {
            RunningMean = RegisterBuffer("running_mean", Tensor.Zeros(numFeatures));
            RunningVar = RegisterBuffer("running_var", Tensor.Ones(numFeatures));
            NumBatchesTracked = RegisterBuffer("num_batches_tracked", Tensor.Scalar(0, DType.Int64));
        }
    }

    /// <summary>Number of channels C.</summary>
    public int NumFeatures { get; }
    /// <summary>Added to the variance for numerical stability.</summary>
    public double Eps { get; }
    /// <summary>Running-average factor, or null for a cumulative average (batch norm).</summary>
    public double? Momentum { get; }
    /// <summary>Whether there are learnable weight and bias.</summary>
    public bool Affine { get; }
    /// <summary>Whether running statistics are kept.</summary>
    public bool TrackRunningStats { get; }
    /// <summary>Per-channel scale (C), or null.</summary>
    public Tensor? Weight { get; }
    /// <summary>Per-channel shift (C), or null.</summary>
    public Tensor? Bias { get; }
    /// <summary>Running mean (C), or null.</summary>
    public Tensor? RunningMean { get; }
    /// <summary>Running variance (C), or null.</summary>
    public Tensor? RunningVar { get; }
    /// <summary>Number of training batches seen (int64 scalar), or null.</summary>
    public Tensor? NumBatchesTracked { get; }

    /// <summary>Resets the running statistics to mean 0, variance 1 and zero batches.</summary>
    public void ResetRunningStats()
    {
        using var _ = new Autograd.NoGrad();
        RunningMean?.Fill_(0); RunningVar?.Fill_(1); NumBatchesTracked?.Fill_(0);
    }

    private protected void CheckRank(string name, Tensor input, int[] ranks)
    {
        if (!ranks.Contains(input.Rank))
            throw new ArgumentException($"{name}: expected {string.Join(" or ", ranks.Select(r => r + "D"))} input (got {input.Rank}D input of shape {ShapeUtil.Format(input.Shape)})");
    }

    /// <inheritdoc/>
    protected override string ExtraRepr() =>
        $"{NumFeatures}, eps={Eps}, momentum={(Momentum?.ToString() ?? "None")}, affine={(Affine ? "True" : "False")}, track_running_stats={(TrackRunningStats ? "True" : "False")}";
}

/// <summary>Batch normalisation over (N, C, *) (PyTorch's <c>_BatchNorm</c>); see the 1d/2d/3d subclasses.</summary>
public abstract class BatchNormNd : NormBase
{
    private readonly string _name;

    /// <summary>The convolution this layer was folded into by <see cref="Fusion.FoldBatchNorm"/> (its forward then passes the input through), or null.</summary>
    public string? FoldedInto { get; internal set; }
    private readonly int[] _ranks;

    private protected BatchNormNd(string name, int[] ranks, int numFeatures, double eps, double? momentum, bool affine, bool trackRunningStats)
        : base(name, numFeatures, eps, momentum, affine, trackRunningStats) => (_name, _ranks) = (name, ranks);

    /// <summary>
    /// Training (or no running statistics): normalises with batch statistics, updating the running ones and
    /// <c>num_batches_tracked</c>. Evaluation: normalises with the running statistics.
    /// </summary>
    public override Tensor Forward(Tensor input)
    {
        CheckRank(_name, input, _ranks);
        if (input.Shape[1] != NumFeatures)
            throw new ArgumentException($"{_name}: expected {NumFeatures} channels, got input of shape {ShapeUtil.Format(input.Shape)}");
        if (FoldedInto != null)
        {
            if (Training)
                throw new InvalidOperationException($"{_name}: its statistics were folded into the convolution '{FoldedInto}' for inference (Fusion.FoldBatchNorm); load the unfolded weights again to train");
            return input;
        }
        double factor = Momentum ?? 0;
        if (Training && TrackRunningStats)
        {
            using (new Autograd.NoGrad()) NumBatchesTracked!.Fill_(NumBatchesTracked!.Item() + 1);
            factor = Momentum ?? 1.0 / NumBatchesTracked!.Item();
        }
        bool useBatchStats = Training || RunningMean == null;
        bool passStats = !Training || TrackRunningStats;
        return F.BatchNorm(input, passStats ? RunningMean : null, passStats ? RunningVar : null, Weight, Bias, useBatchStats, factor, Eps);
    }
}

/// <summary>Batch norm over (N, C) or (N, C, L) (PyTorch's <c>nn.BatchNorm1d</c>).</summary>
public sealed class BatchNorm1d(int numFeatures, double eps = 1e-5, double? momentum = 0.1, bool affine = true, bool trackRunningStats = true)
    : BatchNormNd("BatchNorm1d", [2, 3], numFeatures, eps, momentum, affine, trackRunningStats);

/// <summary>Batch norm over (N, C, H, W) (PyTorch's <c>nn.BatchNorm2d</c>).</summary>
public sealed class BatchNorm2d(int numFeatures, double eps = 1e-5, double? momentum = 0.1, bool affine = true, bool trackRunningStats = true)
    : BatchNormNd("BatchNorm2d", [4], numFeatures, eps, momentum, affine, trackRunningStats);

/// <summary>Batch norm over (N, C, D, H, W) (PyTorch's <c>nn.BatchNorm3d</c>).</summary>
public sealed class BatchNorm3d(int numFeatures, double eps = 1e-5, double? momentum = 0.1, bool affine = true, bool trackRunningStats = true)
    : BatchNormNd("BatchNorm3d", [5], numFeatures, eps, momentum, affine, trackRunningStats);

/// <summary>
/// Instance normalisation (PyTorch's <c>_InstanceNorm</c>): per-sample, per-channel statistics; by default no
/// affine and no running statistics. An unbatched input (C, *) is treated as a batch of one.
/// </summary>
public abstract class InstanceNormNd : NormBase
{
    private readonly string _name;
    private readonly int _rank;

    private protected InstanceNormNd(string name, int rank, int numFeatures, double eps, double? momentum, bool affine, bool trackRunningStats)
        : base(name, numFeatures, eps, momentum ?? 0.1, affine, trackRunningStats) => (_name, _rank) = (name, rank);

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        CheckRank(_name, input, [_rank - 1, _rank]);
        bool unbatched = input.Rank == _rank - 1;
        var x = unbatched ? input.Unsqueeze(0) : input;
        if (x.Shape[1] != NumFeatures)
            throw new ArgumentException($"{_name}: expected {NumFeatures} channels, got input of shape {ShapeUtil.Format(input.Shape)}");
        var y = F.InstanceNorm(x, RunningMean, RunningVar, Weight, Bias, Training || !TrackRunningStats, Momentum ?? 0.1, Eps);
        return unbatched ? y.Squeeze(0) : y;
    }
}

/// <summary>Instance norm over (N, C, L) (PyTorch's <c>nn.InstanceNorm1d</c>).</summary>
public sealed class InstanceNorm1d(int numFeatures, double eps = 1e-5, double? momentum = 0.1, bool affine = false, bool trackRunningStats = false)
    : InstanceNormNd("InstanceNorm1d", 3, numFeatures, eps, momentum, affine, trackRunningStats);

/// <summary>Instance norm over (N, C, H, W) (PyTorch's <c>nn.InstanceNorm2d</c>).</summary>
public sealed class InstanceNorm2d(int numFeatures, double eps = 1e-5, double? momentum = 0.1, bool affine = false, bool trackRunningStats = false)
    : InstanceNormNd("InstanceNorm2d", 4, numFeatures, eps, momentum, affine, trackRunningStats);

/// <summary>Instance norm over (N, C, D, H, W) (PyTorch's <c>nn.InstanceNorm3d</c>).</summary>
public sealed class InstanceNorm3d(int numFeatures, double eps = 1e-5, double? momentum = 0.1, bool affine = false, bool trackRunningStats = false)
    : InstanceNormNd("InstanceNorm3d", 5, numFeatures, eps, momentum, affine, trackRunningStats);

/// <summary>Layer normalisation over the trailing <c>normalized_shape</c> (PyTorch's <c>nn.LayerNorm</c>).</summary>
public sealed class LayerNorm : Module
{
    /// <summary>Creates the layer; weight (ones) and bias (zeros) have shape <paramref name="normalizedShape"/> when elementwise_affine.</summary>
    public LayerNorm(int[] normalizedShape, double eps = 1e-5, bool elementwiseAffine = true)
    {
        if (normalizedShape.Length == 0 || normalizedShape.Any(s => s <= 0))
            throw new ArgumentException($"LayerNorm: normalized_shape must be non-empty with positive sizes, got {ShapeUtil.Format(normalizedShape)}");
        if (!(eps >= 0)) throw new ArgumentException($"LayerNorm: eps must be non-negative, got {eps}");
        NormalizedShape = normalizedShape.ToArray(); Eps = eps;
        if (elementwiseAffine)
        {
            Weight = RegisterParameter("weight", Tensor.Ones(NormalizedShape));
            Bias = RegisterParameter("bias", Tensor.Zeros(NormalizedShape));
        }
    }

    /// <summary>Creates the layer over the last dimension of size <paramref name="normalizedShape"/>.</summary>
    public LayerNorm(int normalizedShape, double eps = 1e-5, bool elementwiseAffine = true) : this([normalizedShape], eps, elementwiseAffine) { }

    /// <summary>The normalised trailing shape.</summary>
    public int[] NormalizedShape { get; }
    /// <summary>Added to the variance for numerical stability.</summary>
    public double Eps { get; }
    /// <summary>Element-wise scale, or null.</summary>
    public Tensor? Weight { get; }
    /// <summary>Element-wise shift, or null.</summary>
    public Tensor? Bias { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => F.LayerNorm(input, NormalizedShape, Weight, Bias, Eps);

    /// <inheritdoc/>
    protected override string ExtraRepr() => $"({string.Join(", ", NormalizedShape)},), eps={Eps}, elementwise_affine={(Weight != null ? "True" : "False")}";
}

/// <summary>Group normalisation (PyTorch's <c>nn.GroupNorm</c>).</summary>
public sealed class GroupNorm : Module
{
    /// <summary>Creates the layer; per-channel weight (ones) and bias (zeros) when affine.</summary>
    public GroupNorm(int numGroups, int numChannels, double eps = 1e-5, bool affine = true)
    {
        if (numGroups <= 0 || numChannels <= 0)
            throw new ArgumentException($"GroupNorm: num_groups ({numGroups}) and num_channels ({numChannels}) must be positive");
        if (numChannels % numGroups != 0)
            throw new ArgumentException($"GroupNorm: num_channels ({numChannels}) must be divisible by num_groups ({numGroups})");
        if (!(eps >= 0)) throw new ArgumentException($"GroupNorm: eps must be non-negative, got {eps}");
        NumGroups = numGroups; NumChannels = numChannels; Eps = eps;
        if (affine)
        {
            Weight = RegisterParameter("weight", Tensor.Ones(numChannels));
            Bias = RegisterParameter("bias", Tensor.Zeros(numChannels));
        }
    }

    /// <summary>Number of groups.</summary>
    public int NumGroups { get; }
    /// <summary>Number of channels C.</summary>
    public int NumChannels { get; }
    /// <summary>Added to the variance for numerical stability.</summary>
    public double Eps { get; }
    /// <summary>Per-channel scale, or null.</summary>
    public Tensor? Weight { get; }
    /// <summary>Per-channel shift, or null.</summary>
    public Tensor? Bias { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => F.GroupNorm(input, NumGroups, Weight, Bias, Eps);

    /// <inheritdoc/>
    protected override string ExtraRepr() => $"{NumGroups}, {NumChannels}, eps={Eps}, affine={(Weight != null ? "True" : "False")}";
}
