using System.Diagnostics;
using ConvLab.Analysis;
using ConvLab.Autograd;
using ConvLab.Data;
using ConvLab.NN;
using ConvLab.NN.Functional;
using ConvLab.Training;

namespace ConvLab.Experiments.Claims;

/// <summary>Settings of one deformable run.</summary>
internal sealed record DeformableSettings(string Deform, int TrainImages, int TestImages, int ProbeImages, int Epochs, int BatchSize, int Width,
    double Lr, double OffsetLrFactor, double OffsetL2, bool Modulated, int TimingReps);

/// <summary>One trained variant: parameters, accuracy per epoch and the test accuracy at the end.</summary>
internal sealed record DeformableVariant(string Name, long Params, double TestAccuracy, IReadOnlyList<EpochRecord> History, double BytesAllocatedPerStep);

/// <summary>Offset magnitudes of one deformable layer after an epoch (epoch 0 = before training), over the probe images.</summary>
internal sealed record OffsetRecord(int Epoch, string Layer, double MeanAbs, double MeanNorm, double MaxNorm);

/// <summary>Time and memory of one training step of each net, measured in one process.</summary>
internal sealed record StepCost(double PlainSeconds, double DeformSeconds, double MedianPairRatio, double PlainCpuSeconds, double DeformCpuSeconds,
    MeasuredMemory PlainMemory, MeasuredMemory DeformMemory, int Batch, int Reps)
{
    public double TimeRatio => DeformSeconds / PlainSeconds;
    public double CpuRatio => DeformCpuSeconds / PlainCpuSeconds;
    public double MemoryRatio => (double)DeformMemory.StepBytes / PlainMemory.StepBytes;
}

/// <summary>Everything the experiment reports.</summary>
internal sealed record DeformableOutcome(DeformableVariant Plain, DeformableVariant Deformable, List<OffsetRecord> Offsets, double FirstForwardMaxAbsDiff,
    double FirstForwardMaxAbs, StepCost Cost, List<(Tensor Image, long Label, SamplingPoints Plain, SamplingPoints Deformable)> Samples, long OffsetParams);

/// <summary>
/// Deformable vs plain convolution on geometrically deformed Fashion-MNIST: the same <see cref="DeformableNet"/> with
/// plain or deformable later layers, started from the same weights, trained by the library's <see cref="Trainer"/> (the
/// offset branch in its own Adam group at a fraction of the rate, an optional L2 penalty on the offsets), then measured:
/// test accuracy, offset magnitudes per epoch, sampling locations on test images, time and memory of a training step.
/// </summary>
internal static class DeformableStudy
{
    /// <summary>The deformations <c>--set deform=</c> accepts.</summary>
    public static readonly string[] Deformations = ["affine", "rotate", "scale", "elastic", "mixed"];

    /// <summary>The transform behind a deformation name and a phrase describing it; an error naming the option otherwise.</summary>
    public static (Transform Transform, string Description) Deformation(string name) => name switch
    {
        "rotate" => (new RandomAffine(60), "rotation by up to ±60°"),
        "scale" => (new RandomAffine(0, scale: [0.5, 1.1]), "scaling by 0.5–1.1"),
        "elastic" => (new ElasticDeformation(34, 4), "elastic deformation, α = 34 px, σ = 4 px (Simard et al.'s MNIST setting)"),
        "affine" => (new RandomAffine(45, scale: [0.6, 1.1]), "rotation by up to ±45° and scaling by 0.6–1.1"),
        "mixed" => (new Compose(new RandomAffine(45, scale: [0.6, 1.1]), new ElasticDeformation(34, 4)),
            "rotation by up to ±45°, scaling by 0.6–1.1, then elastic deformation with α = 34 px, σ = 4 px"),
        _ => throw new ArgumentException($"experiment deformable: --set deform={name} is not a deformation; expected one of {string.Join(", ", Deformations)}"),
    };

    /// <summary>Each image deformed once, by a generator seeded from (seed, index): the same images every epoch and every run.</summary>
    internal sealed class Deformed(IDataset inner, Transform transform, ulong seed) : IDataset
    {
        public int Count => inner.Count;

        public (Tensor Input, long Label) Get(int index)
        {
            var (x, y) = inner.Get(index);
            return (transform.Apply(x, new Generator(seed * 0x9E3779B97F4A7C15UL + (ulong)index)), y);
        }
    }

    /// <summary>Cross-entropy plus <c>l2</c> · Σ_layers mean(offset²) over the deformable layers' offsets of the same forward pass.</summary>
    internal sealed class OffsetPenalty(ClassificationObjective inner, double l2) : ITrainingObjective
    {
        public int StepsPerEpoch => inner.StepsPerEpoch;
        public IEnumerable<object> Batches(int epoch) => inner.Batches(epoch);
        public void BeginEpoch() => inner.BeginEpoch();
        public void StepDone(object batch, double loss) => inner.StepDone(batch, loss);
        public (double Loss, double Score, long Samples) Running => inner.Running;
        public (double Loss, double Score)? Validate(Module model) => inner.Validate(model);

        public Tensor Loss(Module model, object batch)
        {
            var loss = inner.Loss(model, batch);
            if (l2 > 0 && model is DeformableNet net)
                foreach (var offset in net.LastOffsets) loss = loss + l2 * (offset * offset).Mean();
            return loss;
        }
    }

    /// <summary>Calls back after every epoch (the offsets are measured there).</summary>
    private sealed class EpochHook(Action<EpochRecord> done) : ITrainingProgress
    {
        public void EpochStarted(int epoch, int epochs, int steps) { }
        public void StepCompleted(StepProgress progress) { }
        public void Evaluating(int epoch) { }
        public void EpochCompleted(EpochRecord record) => done(record);
    }

    public static DeformableOutcome Run(ExperimentData data, DeformableSettings s, ulong seed, Action<string>? log)
    {
        var transform = Deformation(s.Deform).Transform;
        IDataset First(IDataset d, int n) => n < d.Count ? new Subset(d, [.. Enumerable.Range(0, n)]) : d;
        var train = new Deformed(First(data.Train, s.TrainImages), transform, seed + 100);
        var test = new Deformed(First(data.Test, s.TestImages), transform, seed + 200);
        var probe = First(test, s.ProbeImages);

        var plain = Create(s, false, seed);
        var deform = Create(s, true, seed);
        LoadMain(deform, plain);
        var (diff, scale) = FirstForward(plain, deform, probe);
        log?.Invoke($"first forward: max |deformable - plain| = {diff:G3} (max |logit| {scale:G3})");
        log?.Invoke($"parameters: plain {plain.ParameterCount()}, deformable {deform.ParameterCount()}");

        var offsets = new List<OffsetRecord>();
        offsets.AddRange(Offsets(deform, probe, 0));
        var plainVariant = Train("plain", plain, train, test, s, seed, log, null);
        var deformVariant = Train("deformable", deform, train, test, s, seed, log, e =>
        {
            var rows = Offsets(deform, probe, e.Epoch);
            offsets.AddRange(rows);
            foreach (var r in rows) log?.Invoke($"deformable epoch {e.Epoch}: {r.Layer} mean |offset| {r.MeanAbs:F4} px, mean offset length {r.MeanNorm:F4} px");
        });

        var samples = new List<(Tensor, long, SamplingPoints, SamplingPoints)>();
        for (int i = 0; i < Math.Min(6, test.Count); i++)
        {
            var (x, y) = test.Get(i);
            samples.Add((x, y, plain.Sample(x), deform.Sample(x)));
        }
        var cost = MeasureStep(s, seed, plain, deform, train, log);
        long offsetParams = deform.OffsetParameters().Sum(p => (long)p.Numel);
        return new DeformableOutcome(plainVariant, deformVariant, offsets, diff, scale, cost, samples, offsetParams);
    }

    internal static DeformableNet Create(DeformableSettings s, bool deformable, ulong seed) =>
        new(s.Width, deformable, s.Modulated, new Generator(seed + 1));

    /// <summary>Copies the plain net's weights into the deformable one (everything but the offset branches, which stay zero).</summary>
    internal static void LoadMain(DeformableNet deform, DeformableNet plain)
    {
        var (missing, unexpected) = deform.LoadStateDict(plain.StateDict(), strict: false);
        if (unexpected.Count > 0 || missing.Any(k => !k.Contains(".conv_offset.", StringComparison.Ordinal)))
            throw new InvalidOperationException($"experiment deformable: the two nets differ beyond the offset branches (missing {string.Join(", ", missing)}; unexpected {string.Join(", ", unexpected)})");
    }

    /// <summary>Largest |logit difference| between the two nets on <paramref name="data"/> before training, and the largest |logit|.</summary>
    internal static (double MaxAbsDiff, double MaxAbs) FirstForward(Module plain, Module deform, IDataset data)
    {
        var a = ClaimsTraining.Outputs(plain, data);
        var b = ClaimsTraining.Outputs(deform, data);
        double diff = 0, max = 0;
        for (int i = 0; i < a.Length; i++)
            for (int j = 0; j < a[i].Length; j++)
            {
                diff = Math.Max(diff, Math.Abs(a[i][j] - b[i][j]));
                max = Math.Max(max, Math.Abs(a[i][j]));
            }
        return (diff, max);
    }

    /// <summary>Adam with the offset branches in a second group at <c>OffsetLrFactor</c> × the rate.</summary>
    internal static Adam Optimizer(DeformableNet net, DeformableSettings s)
    {
        var groups = new List<ParamGroup> { new(net.MainParameters(), s.Lr) };
        if (net.IsDeformable) groups.Add(new ParamGroup(net.OffsetParameters(), s.Lr * s.OffsetLrFactor));
        return new Adam(groups, s.Lr);
    }

    private static DeformableVariant Train(string name, DeformableNet net, IDataset train, IDataset test, DeformableSettings s, ulong seed,
        Action<string>? log, Action<EpochRecord>? afterEpoch)
    {
        var objective = new OffsetPenalty(new ClassificationObjective(train, test, 10, s.BatchSize, seed), s.OffsetL2);
        var trainer = new Trainer(net, Optimizer(net, s), null, objective, new TrainerOptions { Epochs = s.Epochs, BatchSize = s.BatchSize, Seed = seed });
        trainer.Fit(new EpochHook(e =>
        {
            log?.Invoke($"{name} epoch {e.Epoch}: train loss {e.TrainLoss:F4}, test accuracy {e.TestAccuracy:P2} ({e.Seconds:F1} s)");
            afterEpoch?.Invoke(e);
        }));
        return new DeformableVariant(name, net.ParameterCount(), trainer.History[^1].TestAccuracy, trainer.History, trainer.BytesAllocatedPerStep);
    }

    /// <summary>Mean |offset| (over dy and dx), mean and largest offset length per deformable layer on the probe images, in that layer's input pixels.</summary>
    internal static List<OffsetRecord> Offsets(DeformableNet net, IDataset probe, int epoch)
    {
        bool training = net.Training;
        net.Eval();
        int layers = net.DeformLayers.Count;
        var (abs, norm, max, pairs) = (new double[layers], new double[layers], new double[layers], new long[layers]);
        try
        {
            var loader = new DataLoader(probe, 256, prefetch: false);
            using (new NoGrad())
                foreach (var (x, _) in loader.GetEpoch(0))
                {
                    net.Forward(x);
                    for (int l = 0; l < layers; l++)
                    {
                        var o = net.LastOffsets[l].Contiguous();
                        int n = o.Size(0), taps = o.Size(1) / 2, positions = o.Size(2) * o.Size(3);
                        var a = o.ToArray();
                        for (int b = 0; b < n; b++)
                            for (int t = 0; t < taps; t++)
                            {
                                int dyRow = (b * 2 * taps + 2 * t) * positions, dxRow = dyRow + positions;
                                for (int p = 0; p < positions; p++)
                                {
                                    double dy = a[dyRow + p], dx = a[dxRow + p], length = Math.Sqrt(dy * dy + dx * dx);
                                    abs[l] += Math.Abs(dy) + Math.Abs(dx);
                                    norm[l] += length;
                                    max[l] = Math.Max(max[l], length);
                                }
                            }
                        pairs[l] += (long)n * taps * positions;
                    }
                }
        }
        finally { net.Train(training); }
        return [.. net.DeformLayers.Select((d, l) => new OffsetRecord(epoch, d.Name, abs[l] / (2.0 * pairs[l]), norm[l] / pairs[l], max[l]))];
    }

    /// <summary>
    /// Training-step time (forward, backward, Adam step on one fixed batch, storage recycled as the Trainer does) of clones of
    /// both trained nets, interleaved so load changes hit both alike; medians. Memory: the live bytes of a step
    /// (<see cref="MemoryProbe"/>: parameters, gradients, Adam state and what the graph keeps for backward).
    /// </summary>
    private static StepCost MeasureStep(DeformableSettings s, ulong seed, DeformableNet plainTrained, DeformableNet deformTrained, IDataset train, Action<string>? log)
    {
        var plain = Create(s, false, seed);
        plain.LoadStateDict(plainTrained.StateDict());
        var deform = Create(s, true, seed);
        deform.LoadStateDict(deformTrained.StateDict());
        var (x, y) = new DataLoader(train, s.BatchSize, prefetch: false).GetEpoch(0).First();
        var steps = new[] { Stepper(plain, s, x, y), Stepper(deform, s, x, y) };
        foreach (var step in steps) { step(); step(); }
        var times = new[] { new double[s.TimingReps], new double[s.TimingReps] };
        var cpu = new double[2];
        var process = Process.GetCurrentProcess();
        for (int r = 0; r < s.TimingReps; r++)
            for (int k = 0; k < 2; k++)
            {
                process.Refresh();
                var cpu0 = process.TotalProcessorTime;
                var clock = Stopwatch.StartNew();
                steps[k]();
                times[k][r] = clock.Elapsed.TotalSeconds;
                process.Refresh();
                // Process CPU time (all threads) counts the work done whatever share of the cores the machine's load leaves.
                cpu[k] += (process.TotalProcessorTime - cpu0).TotalSeconds;
            }
        var ratios = Enumerable.Range(0, s.TimingReps).Select(r => times[1][r] / times[0][r]).ToArray();
        double tp = Median(times[0]), td = Median(times[1]);
        log?.Invoke($"training step at batch {s.BatchSize}: plain {tp * 1e3:F1} ms, deformable {td * 1e3:F1} ms (medians of {s.TimingReps}); CPU time {cpu[0] / s.TimingReps * 1e3:F1} vs {cpu[1] / s.TimingReps * 1e3:F1} ms per step");
        int[] input = [1, 28, 28];
        var memPlain = MemoryProbe.MeasureTrainingStep(() => Create(s, false, seed), input, s.BatchSize, "adam");
        var memDeform = MemoryProbe.MeasureTrainingStep(() => Create(s, true, seed), input, s.BatchSize, "adam");
        log?.Invoke($"training step memory: plain {memPlain.StepBytes / 1e6:F2} MB, deformable {memDeform.StepBytes / 1e6:F2} MB");
        return new StepCost(tp, td, Median(ratios), cpu[0] / s.TimingReps, cpu[1] / s.TimingReps, memPlain, memDeform, s.BatchSize, s.TimingReps);
    }

    private static Action Stepper(DeformableNet net, DeformableSettings s, Tensor x, Tensor y)
    {
        var optimizer = Optimizer(net, s);
        var recycler = new StorageRecycler();
        net.Train();
        return () =>
        {
            recycler.Begin();
            try
            {
                var loss = F.CrossEntropy(net.Forward(x), y);
                optimizer.ZeroGrad(setToNone: false);
                loss.Backward();
                optimizer.Step();
            }
            finally { recycler.End(net); }
        };
    }

    internal static double Median(IReadOnlyList<double> values)
    {
        var a = values.Order().ToArray();
        int n = a.Length;
        return n == 0 ? double.NaN : n % 2 == 1 ? a[n / 2] : (a[n / 2 - 1] + a[n / 2]) / 2;
    }
}
