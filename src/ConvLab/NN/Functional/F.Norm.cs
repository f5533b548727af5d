using System.Numerics;
using ConvLab.Autograd;
using ConvLab.Autograd.Nodes;

namespace ConvLab.NN.Functional;

public static partial class F
{
    /// <summary>
    /// Batch normalisation over (N, C, *) (PyTorch's <c>F.batch_norm</c>). In training the batch mean and biased
    /// variance normalise the input, and <paramref name="runningMean"/>/<paramref name="runningVar"/> (if given)
    /// are updated in place with <paramref name="momentum"/> (the running variance uses the unbiased estimate);
    /// otherwise the running statistics normalise. Weight and bias (C) are optional.
    /// </summary>
    public static Tensor BatchNorm(Tensor input, Tensor? runningMean, Tensor? runningVar, Tensor? weight = null, Tensor? bias = null,
        bool training = false, double momentum = 0.1, double eps = 1e-5)
    {
        const string op = "batch_norm";
        int c = CheckChannelsFirst(op, input);
        CheckAffine(op, input, weight, bias, [c]);
        CheckRunningStats(op, runningMean, runningVar, c, required: !training);
        int n = input.Shape[0], s = ShapeUtil.Numel(input.Shape[2..]);
        long m = (long)n * s;
        if (training && m == 1)
            throw new ArgumentException($"{op}: Expected more than 1 value per channel when training, got input size {ShapeUtil.Format(input.Shape)}");
        var layout = new NormLayout(n, c, s, n, c, s);
        var y = NormCore(op, input, layout, training ? null : runningMean, training ? null : runningVar, eps, weight, bias, out var mean, out var var);
        if (training && runningMean != null && m > 0 && mean != null)
            UpdateRunningStats(runningMean, runningVar!, mean!, var!.MulScalar((double)m / (m - 1)), momentum);
        return Analysis.OpRecorder.Record(y, op, [input, weight, bias, runningMean, runningVar], ("training", training), ("momentum", momentum), ("eps", eps));
    }

    /// <summary>
    /// Layer normalisation over the trailing dimensions <paramref name="normalizedShape"/> (PyTorch's <c>F.layer_norm</c>),
    /// with optional element-wise weight and bias of that shape.
    /// </summary>
    public static Tensor LayerNorm(Tensor input, int[] normalizedShape, Tensor? weight = null, Tensor? bias = null, double eps = 1e-5)
    {
        const string op = "layer_norm";
        input.RequireFloat(op);
        if (normalizedShape.Length == 0)
            throw new ArgumentException($"{op}: expected normalized_shape to be at least 1-dimensional, but got normalized_shape = []");
        int k = normalizedShape.Length;
        if (input.Rank < k || !input.Shape[^k..].SequenceEqual(normalizedShape))
            throw new ArgumentException($"{op}: given normalized_shape={ShapeUtil.Format(normalizedShape)}, expected input with shape [*, {string.Join(", ", normalizedShape)}], but got input of size {ShapeUtil.Format(input.Shape)}");
        CheckAffine(op, input, weight, bias, normalizedShape);
        int d = ShapeUtil.Numel(normalizedShape), rows = ShapeUtil.Numel(input.Shape[..^k]);
        return NormCore(op, input, new NormLayout(1, rows, d, rows, d, 1), null, null, eps, weight, bias, out _, out _);
    }

    /// <summary>
    /// Group normalisation (PyTorch's <c>F.group_norm</c>): the C channels of (N, C, *) are split into
    /// <paramref name="numGroups"/> groups, each normalised over its channels and spatial positions; per-channel affine.
    /// </summary>
    public static Tensor GroupNorm(Tensor input, int numGroups, Tensor? weight = null, Tensor? bias = null, double eps = 1e-5)
    {
        const string op = "group_norm";
        int c = CheckChannelsFirst(op, input);
        if (numGroups <= 0)
            throw new ArgumentException($"{op}: num_groups must be positive, got {numGroups}");
        if (c % numGroups != 0)
            throw new ArgumentException($"{op}: expected number of channels in input to be divisible by num_groups, but got input of shape {ShapeUtil.Format(input.Shape)} and num_groups={numGroups}");
        CheckAffine(op, input, weight, bias, [c]);
        int n = input.Shape[0], s = ShapeUtil.Numel(input.Shape[2..]);
        return NormCore(op, input, new NormLayout(1, n * numGroups, c / numGroups * s, n, c, s), null, null, eps, weight, bias, out _, out _);
    }

    /// <summary>
    /// Instance normalisation (PyTorch's <c>F.instance_norm</c>): each (sample, channel) plane of (N, C, *) is
    /// normalised by its own statistics when <paramref name="useInputStats"/>, updating the running statistics
    /// (if given) with their batch average; otherwise the running statistics normalise. Optional per-channel affine.
    /// </summary>
    public static Tensor InstanceNorm(Tensor input, Tensor? runningMean = null, Tensor? runningVar = null, Tensor? weight = null,
        Tensor? bias = null, bool useInputStats = true, double momentum = 0.1, double eps = 1e-5)
    {
        const string op = "instance_norm";
        int c = CheckChannelsFirst(op, input);
        CheckAffine(op, input, weight, bias, [c]);
        CheckRunningStats(op, runningMean, runningVar, c, required: !useInputStats);
        int n = input.Shape[0], s = ShapeUtil.Numel(input.Shape[2..]);
        if (useInputStats && s == 1)
            throw new ArgumentException($"{op}: Expected more than 1 spatial element when training, got input size {ShapeUtil.Format(input.Shape)}");
        if (!useInputStats)
            return NormCore(op, input, new NormLayout(n, c, s, n, c, s), runningMean, runningVar, eps, weight, bias, out _, out _);
        var y = NormCore(op, input, new NormLayout(1, n * c, s, n, c, s), null, null, eps, weight, bias, out var mean, out var var);
        if (runningMean != null && n > 0 && mean != null)
            UpdateRunningStats(runningMean, runningVar!, mean!.Reshape(n, c).Mean(0), var!.MulScalar((double)s / (s - 1)).Reshape(n, c).Mean(0), momentum);
        return y;
    }

    private static int CheckChannelsFirst(string op, Tensor input)
    {
        input.RequireFloat(op);
        if (input.Rank < 2)
            throw new ArgumentException($"{op}: expected input of shape (N, C, *) with at least 2 dimensions, got {ShapeUtil.Format(input.Shape)}");
        return input.Shape[1];
    }

    private static void CheckAffine(string op, Tensor input, Tensor? weight, Tensor? bias, int[] shape)
    {
        foreach (var (t, name) in new[] { (weight, "weight"), (bias, "bias") })
        {
            if (t == null) continue;
            if (!t.Shape.SequenceEqual(shape))
                throw new ArgumentException($"{op}: {name} should have shape {ShapeUtil.Format(shape)}, got {ShapeUtil.Format(t.Shape)} (input {ShapeUtil.Format(input.Shape)})");
            if (t.DType != input.DType)
                throw new ArgumentException($"{op}: {name} has dtype {t.DType} but input has {input.DType}");
        }
    }

    private static void CheckRunningStats(string op, Tensor? runningMean, Tensor? runningVar, int c, bool required)
    {
        if ((runningMean == null) != (runningVar == null))
            throw new ArgumentException($"{op}: running_mean and running_var must both be given or both be null");
        if (runningMean == null)
        {
            if (required) throw new ArgumentException($"{op}: running_mean and running_var are required when not using input statistics");
            return;
        }
        foreach (var (t, name) in new[] { (runningMean, "running_mean"), (runningVar!, "running_var") })
        {
            t.RequireFloat(op);
            if (t.Rank != 1 || t.Shape[0] != c)
                throw new ArgumentException($"{op}: {name} should contain {c} elements (one per channel), got shape {ShapeUtil.Format(t.Shape)}");
        }
    }

    /// <summary>running = (1 - momentum)·running + momentum·batch, in place (buffers, never recorded).</summary>
    private static void UpdateRunningStats(Tensor runningMean, Tensor runningVar, Tensor mean, Tensor unbiasedVar, double momentum)
    {
        using var _ = new NoGrad();
        runningMean.Copy_(runningMean.MulScalar(1 - momentum).Add(mean.MulScalar(momentum)));
        runningVar.Copy_(runningVar.MulScalar(1 - momentum).Add(unbiasedVar.MulScalar(momentum)));
    }

    /// <summary>
    /// The shared normalisation: statistics over the [P, G, Q] view (from the batch, or the given fixed mean and
    /// variance per g), then the affine over [Outer, C, Inner]. Returns the batch mean and biased variance (G).
    /// </summary>
    private static Tensor NormCore(string op, Tensor input, NormLayout l, Tensor? fixedMean, Tensor? fixedVar, double eps,
        Tensor? weight, Tensor? bias, out Tensor? mean, out Tensor? var) =>
        input.IsMeta ? MetaNorm(op, input, weight, bias, out mean, out var)
        : input.DType == DType.Float32
            ? NormCore<float>(op, input, l, fixedMean, fixedVar, eps, weight, bias, out mean, out var)
            : NormCore<double>(op, input, l, fixedMean, fixedVar, eps, weight, bias, out mean, out var);

    private static Tensor MetaNorm(string op, Tensor input, Tensor? weight, Tensor? bias, out Tensor? mean, out Tensor? var)
    {
        mean = var = null;
        return Analysis.MetaOps.Norm(op, input, weight != null || bias != null);
    }

    private static Tensor NormCore<T>(string op, Tensor input, NormLayout l, Tensor? fixedMean, Tensor? fixedVar, double eps,
        Tensor? weight, Tensor? bias, out Tensor? meanT, out Tensor? varT) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var x = input.Detach().Contiguous();
        var shape = input.Shape.ToArray();
        var w = weight?.Detach().Contiguous(); var b = bias?.Detach().Contiguous();
        T[]? wArr = w?.Buffer<T>(), bArr = b?.Buffer<T>();
        int wOff = w?.StorageOffset ?? 0, bOff = b?.StorageOffset ?? 0;
        var mean = StorageRecycler.Take<T>(l.G);
        var var = fixedMean == null ? StorageRecycler.Take<T>(l.G) : null;
        var y = StorageRecycler.Take<T>(x.Numel);
        meanT = varT = null;
        // Batch and instance norm (one affine channel per statistics group) keep their statistics in double and
        // save only the input for backward; layer and group norm, whose affine varies inside a group, save xhat.
        bool fused = l.C > 0 && l.Q == l.Inner && (long)l.P * l.G == (long)l.Outer * l.C && (l.P == 1 || l.G % l.C == 0);
        Tensor saved, savedRstd; Tensor? savedMean;
        if (fused)
        {
            var meanD = StorageRecycler.Take<double>(l.G); var rstdD = StorageRecycler.Take<double>(l.G);
            if (fixedMean != null)
            {
                var fm = fixedMean.ToDoubleArray(); var fv = fixedVar!.ToDoubleArray();
                for (int i = 0; i < l.G; i++) { meanD[i] = fm[i]; rstdD[i] = 1 / Math.Sqrt(fv[i] + eps); }
            }
            Kernels.Norm.GroupAffineForward(x.Buffer<T>(), x.StorageOffset, l.P, l.G, l.Q, l.C, wArr, wOff, bArr, bOff, eps,
                fixedMean != null, meanD, rstdD, mean, var, y);
            (saved, savedMean, savedRstd) = (x, new Tensor(meanD, [l.G]), new Tensor(rstdD, [l.G]));
        }
        else
        {
            var rstd = StorageRecycler.Take<T>(l.G);
            if (fixedMean != null)
            {
                var fm = fixedMean.ToDoubleArray(); var fv = fixedVar!.ToDoubleArray();
                for (int i = 0; i < l.G; i++) { mean[i] = T.CreateTruncating(fm[i]); rstd[i] = T.CreateTruncating(1 / Math.Sqrt(fv[i] + eps)); }
            }
            else
            {
                Kernels.Norm.Moments(x.Buffer<T>(), x.StorageOffset, l.P, l.G, l.Q, mean, var!);
                for (int i = 0; i < l.G; i++) rstd[i] = T.CreateTruncating(1 / Math.Sqrt(double.CreateTruncating(var![i]) + eps));
            }
            var xhat = w != null || b != null ? StorageRecycler.Take<T>(x.Numel) : y;
            Kernels.Norm.Normalize(x.Buffer<T>(), x.StorageOffset, l.P, l.G, l.Q, mean, rstd, xhat);
            if (xhat != y) Kernels.Norm.ScaleShift(xhat, l.Outer, l.C, l.Inner, wArr, wOff, bArr, bOff, y);
            (saved, savedMean, savedRstd) = (new Tensor(xhat, shape), null, new Tensor(rstd, [l.G]));
        }
        if (var != null) { meanT = new Tensor(mean, [l.G]); varT = new Tensor(var, [l.G]); }
        var output = new Tensor(y, shape);
        if (!Engine.WillRecord(input, weight, bias)) return output;
        var affineShape = (weight ?? bias)?.Shape.ToArray() ?? [];
        var node = new NormBackward(op + "Backward", saved, savedMean, savedRstd, l, w, affineShape, fixedMean != null);
        return Engine.Record(output, node, input, weight, bias);
    }
}
