using System.Collections.Concurrent;
using ConvLab.Cli;
using ConvLab.Data;
using ConvLab.NN;
using ConvLab.NN.Functional;
using ConvLab.Training;
using Xunit;
using Xunit.Abstractions;

namespace ConvLab.Tests;

/// <summary>Loose ends of wave 1 (issue 15, deliverable 4): each one a regression test.</summary>
public class LooseEndsTests(ITestOutputHelper output)
{
    private static Tensor[] NormGrads(Func<Tensor, Tensor, Tensor, Tensor> norm, Tensor x, Tensor w, Tensor b, Tensor gy)
    {
        x = x.Detach().RequiresGrad_(); w = w.Detach().RequiresGrad_(); b = b.Detach().RequiresGrad_();
        norm(x, w, b).Backward(gy);
        return [x.Grad!, w.Grad!, b.Grad!];
    }

    /// <summary>
    /// Layer and group norm backward on large planes in float32 against float64 on the same data. The upstream
    /// gradient has a large common part (1 + noise), so Σgy over a 2¹⁶-element group and the parameter sums over many
    /// rows are big: summed in float32 they lose digits that double accumulation (as batch norm has) keeps. Measured
    /// ratios of max error to max |value| (float32 sums → double accumulation): parameter gradients 1.6e-7..1.6e-5 →
    /// 2.3e-8..2.5e-7; group norm grad_input 2.0e-6 → 4.1e-7 (layer norm's 64-element groups: 5.9e-7 either way, the
    /// rounding of its terms).
    /// </summary>
    [Theory]
    [InlineData("group_norm")]
    [InlineData("layer_norm")]
    public void LayerAndGroupNormBackwardAccumulateInDouble(string op)
    {
        var g = new Generator(15);
        int[] shape = op == "group_norm" ? [2, 4, 128, 128] : [4096, 64];
        int[] affine = op == "group_norm" ? [4] : [64];
        Func<Tensor, Tensor, Tensor, Tensor> norm = op == "group_norm"
            ? (x, w, b) => F.GroupNorm(x, 1, w, b)
            : (x, w, b) => F.LayerNorm(x, [64], w, b);
        var x = Tensor.Randn(shape, g, mean: 3, std: 2);
        var w = Tensor.Rand(affine, g, 0.5, 2); var b = Tensor.Randn(affine, g);
        var gy = Tensor.Randn(shape, g, mean: 1, std: 0.1);
        var r32 = NormGrads(norm, x, w, b, gy);
        var r64 = NormGrads(norm, x.Double(), w.Double(), b.Double(), gy.Double());
        string[] names = ["grad_input", "grad_weight", "grad_bias"];
        var failures = new List<string>();
        for (int i = 0; i < 3; i++)
        {
            double err = r32[i].Double().Sub(r64[i]).Abs().Max().Item();
            double scale = r64[i].Abs().Max().Item();
            output.WriteLine($"{op} {names[i]}: max |float32 - float64| = {err:G3}, max |value| = {scale:G3}, ratio {err / scale:G3}");
            if (!(err <= (i == 0 ? 1.5e-6 : 6e-7) * scale)) failures.Add($"{op} {names[i]}: max |float32 - float64| = {err:G3} for values up to {scale:G3}");
        }
        Assert.Empty(failures);
    }

    [Fact]
    public void RegressionLossesRefuseATargetOfAnotherSizeAsPyTorchWarns()
    {
        // The classic silent bug: an [N, 1] output against an [N] target would broadcast to an [N, N] loss.
        var x = Tensor.Randn([4, 1], new Generator(1)); var t = Tensor.Randn([4], new Generator(2));
        foreach (var (op, call) in new (string, Func<Tensor>)[]
                 {
                     ("mse_loss", () => F.MseLoss(x, t)), ("l1_loss", () => F.L1Loss(x, t)),
                     ("smooth_l1_loss", () => F.SmoothL1Loss(x, t)), ("huber_loss", () => F.HuberLoss(x, t, "sum")),
                     ("mse_loss", () => new MSELoss().Forward(x, t)),
                 })
            Assert.Contains("Using a target size ([4]) that is different to the input size ([4, 1])", TestUtil.AssertOpError(op, () => call()).Message);
        // Broadcasting written out is still available and means what it says.
        var y = Tensor.Randn([4, 4], new Generator(3));
        Assert.Equal(F.MseLoss(y, t.Reshape(1, 4).Expand(4, 4)).Item(), F.MseLoss(y, t.Reshape(1, 4).Expand(4, 4).Contiguous()).Item());
    }

    [Fact]
    public void ASharedGeneratorGivesEachConcurrentOpOneContiguousBlockOfItsStream()
    {
        // Generator.Default is shared by every thread; the tensor factories and dropout lock the generator per op. A private
        // shared generator is used here because other test classes draw from Default concurrently.
        const int threads = 8, ops = 40, n = 500;
        var shared = new Generator(42);
        var results = new ConcurrentBag<double[]>();
        var start = new Barrier(threads);
        var workers = Enumerable.Range(0, threads).Select(w => new Thread(() =>
        {
            start.SignalAndWait();
            for (int k = 0; k < ops; k++)
                results.Add((w + k) % 2 == 0 ? Tensor.Rand([n], shared, dtype: DType.Float64).ToDoubleArray()
                    : Tensor.Rand([2, n / 2], shared, dtype: DType.Float64).ToDoubleArray());
        })).ToList();
        workers.ForEach(t => t.Start());
        workers.ForEach(t => t.Join());
        var reference = new Generator(42);
        var blocks = new Dictionary<double, double[]>();
        for (int b = 0; b < threads * ops; b++)
        {
            var block = new double[n];
            for (int i = 0; i < n; i++) block[i] = reference.NextDouble();
            blocks.Add(block[0], block);
        }
        // Every op got exactly one block of the sequential stream: no torn state, no value drawn twice or lost.
        foreach (var r in results)
        {
            Assert.True(blocks.Remove(r[0], out var block), "an op's first value is not the start of a block of the stream");
            Assert.Equal(block, r);
        }
        Assert.Empty(blocks);
    }

    private sealed class NoMomentum(Tensor p) : Optimizer("plain_gd", OneGroup([p]), new ParamGroup([], 0.1, weightDecay: 0))
    {
        protected override void Update(ParamGroup group, Span<float> param, ReadOnlySpan<float> grad, ParamState state) { }
    }

    [Theory]
    [InlineData("sgd")]
    [InlineData("adam")]
    public void OneCycleCyclesMomentumByDefaultAndItIsSavedAndRestoredWithTheOptimizer(string name)
    {
        Optimizer Make() => name == "sgd" ? new SGD([Tensor.Zeros(1).RequiresGrad_()], 0.1, momentum: 0.9)
            : new Adam([Tensor.Zeros(1).RequiresGrad_()], 0.1, betas: (0.9, 0.99));
        double Momentum(Optimizer o) => o.ParamGroups[0].Betas?.Beta1 ?? o.ParamGroups[0].Momentum!.Value;
        OneCycleLR Cycle(Optimizer o) => new(o, 0.5, 10, baseMomentum: 0.8, maxMomentum: 0.92);

        var o1 = Make(); var s1 = Cycle(o1);
        Assert.Equal(0.92, Momentum(o1)); // cycle_momentum is on by default, as PyTorch's
        var straight = new List<(double Lr, double Momentum)>();
        for (int i = 0; i < 10; i++) { s1.Step(); straight.Add((o1.ParamGroups[0].LearningRate, Momentum(o1))); }
        Assert.True(straight.Select(x => x.Momentum).Distinct().Count() > 5, "the momentum moves over the cycle");

        var o2 = Make(); var s2 = Cycle(o2);
        for (int i = 0; i < 4; i++) s2.Step();
        var (optState, schedState) = (o2.StateDict(), s2.StateDict());
        Assert.True(optState.ContainsKey(name == "sgd" ? "param_groups.0.momentum" : "param_groups.0.beta1"));
        var o3 = Make(); var s3 = Cycle(o3);
        o3.LoadStateDict(optState); s3.LoadStateDict(schedState);
        Assert.Equal(straight[3], (o3.ParamGroups[0].LearningRate, Momentum(o3)));
        for (int i = 4; i < 10; i++)
        {
            s3.Step();
            Assert.Equal(straight[i], (o3.ParamGroups[0].LearningRate, Momentum(o3)));
        }
        if (name == "adam") Assert.Equal(0.99, o3.ParamGroups[0].Betas!.Value.Beta2);
        Assert.Contains("optimizer must support momentum or beta1", TestUtil.AssertOpError("OneCycleLR", () => new OneCycleLR(new NoMomentum(Tensor.Zeros(1).RequiresGrad_()), 0.5, 10)).Message);
        new OneCycleLR(new NoMomentum(Tensor.Zeros(1).RequiresGrad_()), 0.5, 10, cycleMomentum: false);
    }

    private sealed class Poisonable(int count) : IDataset
    {
        private readonly Tensor _x = Tensor.Rand([count, 1, 8, 8], new Generator(5));
        public bool Poison { get; set; }
        public int Count => count;
        public (Tensor Input, long Label) Get(int index) => (Poison ? Tensor.Full([1, 8, 8], double.NaN) : _x.Select(0, index).Clone(), index % 3);
    }

    private sealed class OnStep(Action<StepProgress> step) : ITrainingProgress
    {
        public void EpochStarted(int epoch, int epochs, int steps) { }
        public void StepCompleted(StepProgress progress) => step(progress);
        public void Evaluating(int epoch) { }
        public void EpochCompleted(EpochRecord record) { }
    }

    [Fact]
    public void NanStopRestoresBatchNormStatisticsFromBeforeTheBadStep()
    {
        var g = new Generator(3);
        var model = new Sequential(new Conv2d(1, 4, 3, padding: 1, generator: g), new BatchNorm2d(4), new ReLU(), new Flatten(), new Linear(4 * 8 * 8, 3, generator: g));
        var data = new Poisonable(48);
        var trainer = new Trainer(model, new SGD(model.Parameters(), 0.01), null, data, null, 3,
            new TrainerOptions { Epochs = 1, BatchSize = 16, Prefetch = false });
        Dictionary<string, double[]>? good = null;
        var progress = new OnStep(p =>
        {
            if (p.Step != 1) return;
            // Mid-epoch, so the last good state is not a checkpoint: the running statistics after step 1.
            good = model.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value.ToDoubleArray());
            data.Poison = true;
        });
        var e = Assert.Throws<TrainingDivergedException>(() => trainer.Fit(progress));
        Assert.Equal((1, 2), (e.Epoch, e.Step));
        Assert.Contains("batch-norm statistics restored", e.Message);
        Assert.NotEqual(new double[4], good!["1.running_mean"]); // step 1 moved them, so a restore is visible
        foreach (var (k, v) in model.StateDict()) Assert.True(good[k].SequenceEqual(v.ToDoubleArray()), $"{k} differs from its value before the bad step");
    }

    [Fact]
    public void CosineScheduleRestoresItsTMaxAsPyTorchLoadStateDictDoes()
    {
        static SGD Opt() => new([Tensor.Zeros(1).RequiresGrad_()], 0.1);
        var o1 = Opt(); var s1 = new CosineAnnealingLR(o1, 5);
        var straight = Enumerable.Range(0, 5).Select(_ => { s1.Step(); return o1.ParamGroups[0].LearningRate; }).ToArray();
        var o2 = Opt(); var s2 = new CosineAnnealingLR(o2, 5);
        s2.Step(); s2.Step();
        var o3 = Opt(); var s3 = new CosineAnnealingLR(o3, 8);
        o3.LoadStateDict(o2.StateDict()); s3.LoadStateDict(s2.StateDict());
        Assert.Equal(5, s3.TMax);
        for (int e = 2; e < 5; e++) { s3.Step(); Assert.Equal(straight[e], o3.ParamGroups[0].LearningRate); }
    }

    [Fact]
    public void ResumeWithOtherEpochsKeepsTheCosineScheduleOrRefuses()
    {
        // Fewer epochs: the original schedule, stopped early, and the user is told.
        var (epochs, tMax, note) = ResumeSchedule.Plan("train", 5, null, 3, cosine: true);
        Assert.Equal((3, 5), (epochs, tMax));
        Assert.Contains("T_max=5", note);
        // A run already stopped early keeps its T_max, so it can go back up to it but not past it.
        Assert.Equal((5, 5, null), ResumeSchedule.Plan("train", 3, 5, 5, cosine: true));
        var e = Assert.Throws<ArgumentException>(() => ResumeSchedule.Plan("detect train", 3, 5, 6, cosine: true));
        Assert.StartsWith("detect train: --epochs 6 with --resume would run past this run's cosine schedule", e.Message);
        Assert.Contains("T_max=5", e.Message);
        // Without a schedule any total is fine; --epochs 0 is refused before anything else.
        Assert.Equal((9, 3, null), ResumeSchedule.Plan("train", 3, null, 9, cosine: false));
        Assert.StartsWith("train: --epochs must be at least 1", Assert.Throws<ArgumentException>(() => ResumeSchedule.Plan("train", 3, null, 0, cosine: false)).Message);
    }
}
