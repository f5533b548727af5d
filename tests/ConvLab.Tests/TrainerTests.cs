using CsCheck;
using ConvLab.Data;
using ConvLab.IO;
using ConvLab.Models;
using ConvLab.NN;
using ConvLab.Training;
using Xunit;

namespace ConvLab.Tests;

/// <summary>Trainer: metrics against hand-computed values, bit-for-bit resume, NaN stop, damaged checkpoints, early stopping, transfer presets.</summary>
public class TrainerTests
{
    /// <summary>8x8 noise images with a bright row whose position (top/middle/bottom) is the class; <see cref="Poison"/> makes every sample NaN.</summary>
    private sealed class RowsDataset(int count, ulong seed) : IDataset
    {
        private readonly Tensor _x = Tensor.Rand([count, 1, 8, 8], new Generator(seed), high: 0.5);
        public bool Poison { get; set; }
        public int Count => count;
        public (Tensor Input, long Label) Get(int index)
        {
            long label = index % 3;
            var x = _x.Select(0, index).Clone();
            for (int c = 0; c < 8; c++) x[0, 1 + (int)label * 3, c] = Poison ? double.NaN : 1.0;
            return (x, label);
        }
    }

    private static Sequential TinyCnn(Generator init, Generator dropout) => new(
        new Conv2d(1, 4, 3, padding: 1, generator: init), new BatchNorm2d(4), new ReLU(), new MaxPool2d(2),
        new Flatten(), new Dropout(0.2, dropout), new Linear(4 * 4 * 4, 3, generator: init));

    private sealed record Setup(Sequential Model, Adam Optimizer, CosineAnnealingLR Scheduler, Trainer Trainer, TrainerOptions Options, Generator Dropout);

    private static Setup Make(ulong initSeed, int epochs, string? checkpoint, RowsDataset? train = null, int patience = 0, double lr = 0.01)
    {
        var dropout = new Generator(initSeed + 100);
        var model = TinyCnn(new Generator(initSeed), dropout);
        var opt = new Adam(model.Parameters(), lr);
        var sched = new CosineAnnealingLR(opt, 3);
        var options = new TrainerOptions
        {
            Epochs = epochs, BatchSize = 16, Seed = 7, Patience = patience, CheckpointPath = checkpoint, ModelGenerator = dropout,
            TrainTransform = new Compose(new RandomCrop([8], padding: 1), new RandomHorizontalFlip()),
        };
        var trainer = new Trainer(model, opt, sched, train ?? new RowsDataset(48, 1), new RowsDataset(24, 2), 3, options);
        return new Setup(model, opt, sched, trainer, options, dropout);
    }

    private static string TempFile() => Path.Combine(Path.GetTempPath(), $"convlab-trainer-{Guid.NewGuid():N}.ckpt");

    private static void AssertSameTensors(IReadOnlyDictionary<string, Tensor> a, IReadOnlyDictionary<string, Tensor> b)
    {
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (k, t) in a)
            Assert.True(t.ToDoubleArray().SequenceEqual(b[k].ToDoubleArray()), $"{k} differs");
    }

    [Fact]
    public void MetricsMatchHandComputedValues()
    {
        var m = new ClassificationMetrics(6);
        // sample 0: true 2, best; sample 1: true 0, 3 classes higher (top-5 only); sample 2: true 5, 5 higher (neither)
        m.Add([0, 1, 9, 2, 3, 4,
               1, 5, 0, 6, 7, 0.5f,
               6, 5, 4, 3, 2, 1], [2, 0, 5], 0.9);
        // sample 3: true 1, tied with the maximum (counts as correct)
        m.Add([0, 3, 3, 0, 0, 0], [1], 0.5);
        Assert.Equal(4, m.Count);
        Assert.Equal((0.9 * 3 + 0.5) / 4, m.Loss, 12);
        Assert.Equal(2 / 4.0, m.Top1);
        Assert.Equal(3 / 4.0, m.Top5);
        Assert.Equal(1, m.Confusion(2, 2));
        Assert.Equal(1, m.Confusion(0, 4));
        Assert.Equal(1, m.Confusion(5, 0));
        Assert.Equal(1, m.Confusion(1, 1));
        Assert.Equal(4, m.ConfusionMatrix().Sum(r => r.Sum()));
        var per = m.PerClassAccuracy();
        Assert.Equal([0, 1, 1, double.NaN, double.NaN, 0], per);
        Assert.Throws<ArgumentException>(() => m.Add([1, 2], [0], 0));
        Assert.Throws<ArgumentException>(() => m.Add([1, 2, 3, 4, 5, 6], [6], 0));
    }

    [Fact]
    public void TopKAgreesWithSortingTheScores()
    {
        Gen.Int[1, 12].SelectMany(c => Gen.Int[1, 6].SelectMany(b =>
                Gen.Float[-5, 5].Array[b * c].Select(Gen.Int[0, c - 1].Array[b], (l, t) => (c, l, t))))
            .Where(x => Enumerable.Range(0, x.t.Length).All(i => x.l.Skip(i * x.c).Take(x.c).Distinct().Count() == x.c))
            .Sample(x =>
            {
                var (c, logits, targets) = x;
                var m = new ClassificationMetrics(c);
                m.Add(logits, targets.Select(t => (long)t).ToArray(), 0);
                double Rank(int i) => logits.Skip(i * c).Take(c).Select((v, k) => (v, k)).OrderByDescending(p => p.v).Select(p => p.k).ToList().IndexOf(targets[i]);
                Assert.Equal(Enumerable.Range(0, targets.Length).Average(i => Rank(i) < 1 ? 1.0 : 0), m.Top1, 12);
                Assert.Equal(Enumerable.Range(0, targets.Length).Average(i => Rank(i) < 5 ? 1.0 : 0), m.Top5, 12);
            }, iter: 200);
    }

    [Fact]
    public void ResumingFromACheckpointGivesBitIdenticalTraining()
    {
        var straight = Make(1, 2, null);
        straight.Trainer.Fit();

        string path = TempFile();
        try
        {
            var first = Make(1, 1, path);
            first.Trainer.Fit();
            // A different initialisation: everything must come from the checkpoint.
            var resumed = Make(99, 2, path);
            resumed.Trainer.LoadCheckpoint(path);
            Assert.Equal(1, resumed.Trainer.EpochsDone);
            resumed.Trainer.Fit();

            AssertSameTensors(straight.Model.StateDict(), resumed.Model.StateDict());
            AssertSameTensors(straight.Optimizer.StateDict(), resumed.Optimizer.StateDict());
            AssertSameTensors(straight.Scheduler.StateDict(), resumed.Scheduler.StateDict());
            Assert.Equal(straight.Dropout.GetState(), resumed.Dropout.GetState());
            Assert.Equal(2, resumed.Trainer.History.Count);
            Assert.Equal(straight.Trainer.History.Select(h => (h.TrainLoss, h.TestLoss, h.TestAccuracy, h.LearningRate)),
                resumed.Trainer.History.Select(h => (h.TrainLoss, h.TestLoss, h.TestAccuracy, h.LearningRate)));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void NanLossStopsWithEpochAndStepAndKeepsTheLastGoodCheckpoint()
    {
        string path = TempFile();
        try
        {
            var train = new RowsDataset(48, 1);
            var s = Make(1, 1, path, train);
            s.Trainer.Fit();
            var saved = File.ReadAllBytes(path);
            // Parameters only: the poisoned forward pass has already updated batch norm's running statistics.
            var weights = s.Model.NamedParameters().ToDictionary(kv => kv.Name, kv => kv.Parameter.Detach().Clone());
            train.Poison = true;
            s.Options.Epochs = 2;
            var e = Assert.Throws<TrainingDivergedException>(() => s.Trainer.Fit());
            Assert.Contains("NaN at epoch 2, step 1 of 3", e.Message);
            Assert.Contains(Path.GetFileName(path), e.Message);
            Assert.Equal((2, 1), (e.Epoch, e.Step));
            Assert.Equal(saved, File.ReadAllBytes(path));
            AssertSameTensors(weights, s.Model.NamedParameters().ToDictionary(kv => kv.Name, kv => kv.Parameter));
            Assert.Equal(1, s.Trainer.EpochsDone);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void DamagedOrForeignCheckpointsAreErrorsNamingTheFile()
    {
        string path = TempFile();
        try
        {
            var s = Make(1, 1, path);
            s.Trainer.Fit();
            var bytes = File.ReadAllBytes(path);
            File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
            var e = Assert.Throws<InvalidDataException>(() => Make(1, 2, null).Trainer.LoadCheckpoint(path));
            Assert.StartsWith(Path.GetFileName(path), e.Message);

            var corrupt = bytes.ToArray();
            for (int i = 8; i < 40; i++) corrupt[i] = (byte)'#';
            File.WriteAllBytes(path, corrupt);
            e = Assert.Throws<InvalidDataException>(() => Make(1, 2, null).Trainer.LoadCheckpoint(path));
            Assert.StartsWith(Path.GetFileName(path), e.Message);

            // a valid checkpoint of a different model
            File.WriteAllBytes(path, bytes);
            var other = new Sequential(new Flatten(), new Linear(64, 3, generator: new Generator(0)));
            var t = new Trainer(other, new Adam(other.Parameters()), null, new RowsDataset(8, 1), null, 3, new TrainerOptions { ModelGenerator = new Generator(0) });
            e = Assert.Throws<InvalidDataException>(() => t.LoadCheckpoint(path));
            Assert.StartsWith(Path.GetFileName(path), e.Message);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void EarlyStoppingEndsAfterPatienceEpochsWithoutImprovement()
    {
        // lr 0 and no batch norm: the validation loss never changes, so only epoch 1 counts as an improvement.
        var model = new Sequential(new Flatten(), new Linear(64, 3, generator: new Generator(3)));
        var options = new TrainerOptions { Epochs = 10, BatchSize = 16, Patience = 2, ModelGenerator = new Generator(0) };
        var trainer = new Trainer(model, new Adam(model.Parameters(), 0), null, new RowsDataset(32, 1), new RowsDataset(12, 2), 3, options);
        var final = trainer.Fit();
        Assert.True(trainer.StoppedEarly);
        Assert.Equal(3, trainer.History.Count);
        Assert.Equal(trainer.History[0].TestLoss, final!.Loss, 12);

        // a run with a loose patience goes to the end
        var s = Make(1, 2, null, patience: 5);
        s.Trainer.Fit();
        Assert.False(s.Trainer.StoppedEarly);
        Assert.Equal(2, s.Trainer.History.Count);
    }

    [Fact]
    public void SchedulerStateRoundTrips()
    {
        var p = new[] { Tensor.Zeros([2]).RequiresGrad_() };
        var a = new CosineAnnealingLR(new SGD(p, 0.1), 5);
        a.Step(); a.Step();
        var opt = new SGD(p, 0.1);
        var b = new CosineAnnealingLR(opt, 5);
        opt.LoadStateDict(a.Optimizer.StateDict());
        b.LoadStateDict(a.StateDict());
        a.Step(); b.Step();
        Assert.Equal(a.LastEpoch, b.LastEpoch);
        Assert.Equal(a.LastLr, b.LastLr);
        Assert.Throws<ArgumentException>(() => b.LoadStateDict(new Dictionary<string, Tensor>()));

        var r = new ReduceLROnPlateau(new SGD(p, 0.1), patience: 1);
        r.Step(1); r.Step(2);
        var r2 = new ReduceLROnPlateau(new SGD(p, 0.1), patience: 1);
        r2.LoadStateDict(r.StateDict());
        Assert.Equal((r.Best, r.NumBadEpochs, r.LastEpoch), (r2.Best, r2.NumBadEpochs, r2.LastEpoch));
    }

    [Fact]
    public void TransferPresetsFreezeAndGroupTheRightLayers()
    {
        var source = new SimpleCnn(10, generator: new Generator(1));
        var model = new SimpleCnn(5, generator: new Generator(2));
        var fresh = Transfer.LoadPretrained(model, source.StateDict());
        Assert.Equal(["classifier.3.weight", "classifier.3.bias"], fresh);
        Assert.Equal(source.StateDict()["features.0.weight"].ToArray(), model.StateDict()["features.0.weight"].ToArray());

        var layers = Transfer.Layers(model);
        Assert.Equal([["features.0", "features.1"], ["features.4", "features.5"], ["classifier.1"], ["classifier.3"]], layers);

        var groups = Transfer.Apply(model, "feature-extract", 1e-3);
        Assert.Equal(2, groups.Single().Params.Count);
        Assert.Equal(2, model.Parameters().Count(q => q.RequiresGrad));

        groups = Transfer.Apply(model, "partial:2", 1e-3);
        Assert.Equal(4, groups.Sum(g => g.Params.Count));
        Assert.Equal(4, model.Parameters().Count(q => q.RequiresGrad));

        groups = Transfer.Apply(model, "full", 1e-3);
        Assert.Equal(4, groups.Count);
        Assert.Equal(1e-4, groups[0].LearningRate, 12);
        Assert.Equal(1e-3, groups[^1].LearningRate, 12);
        Assert.All(model.Parameters(), q => Assert.True(q.RequiresGrad));

        Assert.Equal(1e-4, Transfer.Apply(model, "fine-tune", 1e-3).Single().LearningRate, 12);
        Assert.Contains("partial:4", Assert.Throws<ArgumentException>(() => Transfer.Apply(model, "partial:4", 1e-3)).Message);
        Assert.Contains("unknown preset", Assert.Throws<ArgumentException>(() => Transfer.Apply(model, "everything", 1e-3)).Message);
        Assert.Throws<ArgumentException>(() => Transfer.LoadPretrained(model, new Dictionary<string, Tensor> { ["x"] = Tensor.Zeros([1]) }));
    }

    [Fact]
    public void SimpleCnnHasTheAdvertisedSizeAndKeys()
    {
        var m = Zoo.Create("simple_cnn", 10, new Generator(0));
        Assert.Equal(421_834, m.ParameterCount());
        Assert.Equal([2, 10], m.Forward(Tensor.Zeros([2, 1, 28, 28])).Shape.ToArray());
        Assert.Contains("classifier.1.weight", m.StateDict().Keys);
    }
}
