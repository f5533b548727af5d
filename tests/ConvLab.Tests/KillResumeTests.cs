using ConvLab.Data;
using ConvLab.IO;
using ConvLab.KillTest;
using ConvLab.NN;
using ConvLab.Training;
using Xunit;
using Xunit.Abstractions;

namespace ConvLab.Tests;

/// <summary>
/// Crash safety: checkpoints written inside an epoch resume bit for bit, the temporaries a killed atomic write leaves are
/// recognised and removed, and <c>convlab train</c> killed with SIGKILL ten times (the harness of tools/kill-test) ends
/// with the weights of an uninterrupted run and never a corrupt run folder.
/// </summary>
public class KillResumeTests(ITestOutputHelper output)
{
    /// <summary>6x6 noise images whose bright column (left/middle/right) is the class.</summary>
    private sealed class ColumnsDataset(int count, ulong seed) : IDataset
    {
        private readonly Tensor _x = Tensor.Rand([count, 1, 6, 6], new Generator(seed), high: 0.5);
        public int Count => count;
        public (Tensor Input, long Label) Get(int index)
        {
            long label = index % 3;
            var x = _x.Select(0, index).Clone();
            for (int r = 0; r < 6; r++) x[0, r, (int)label * 2] = 1.0;
            return (x, label);
        }
    }

    private sealed record Run(Sequential Model, Adam Optimizer, Trainer Trainer);

    // Dropout, batch norm, augmentation and a cosine schedule: every piece of state a resume has to bring back.
    private static Run Make(string? checkpoint, int every, int batch = 16)
    {
        var init = new Generator(5);
        var dropout = new Generator(6);
        var model = new Sequential(new Conv2d(1, 4, 3, padding: 1, generator: init), new BatchNorm2d(4), new ReLU(), new MaxPool2d(2),
            new Flatten(), new Dropout(0.25, dropout), new Linear(4 * 3 * 3, 3, generator: init));
        var opt = new Adam(model.Parameters(), 0.01);
        var trainer = new Trainer(model, opt, new CosineAnnealingLR(opt, 3), new ColumnsDataset(80, 1), new ColumnsDataset(30, 2), 3, new TrainerOptions
        {
            Epochs = 3, BatchSize = batch, Seed = 11, CheckpointPath = checkpoint, CheckpointEvery = every, ModelGenerator = dropout, Prefetch = false,
            TrainTransform = new Compose(new RandomCrop([6], padding: 1), new RandomHorizontalFlip()),
        });
        return new Run(model, opt, trainer);
    }

    /// <summary>Cancels the run after a given number of steps, as a kill would stop it.</summary>
    private sealed class StopAfter(int steps, CancellationTokenSource stop) : ITrainingProgress
    {
        private int _done;
        public void EpochStarted(int epoch, int epochs, int stepsPerEpoch) { }
        public void StepCompleted(StepProgress progress) { if (++_done == steps) stop.Cancel(); }
        public void Evaluating(int epoch) { }
        public void EpochCompleted(EpochRecord record) { }
    }

    private static string TempDir() => Directory.CreateTempSubdirectory("convlab-kill-").FullName;

    private static void AssertSame(IReadOnlyDictionary<string, Tensor> a, IReadOnlyDictionary<string, Tensor> b)
    {
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (k, t) in a)
            Assert.True(t.ToDoubleArray().Select(BitConverter.DoubleToInt64Bits).SequenceEqual(b[k].ToDoubleArray().Select(BitConverter.DoubleToInt64Bits)), $"{k} differs");
    }

    [Theory]
    [InlineData(1)]   // before the first mid-epoch checkpoint: starts over
    [InlineData(2)]   // right after one
    [InlineData(4)]   // after the second, two steps into the last of the epoch's
    [InlineData(5)]   // after the epoch-end checkpoint
    [InlineData(8)]   // mid second epoch, not on the cadence
    [InlineData(14)]  // inside the last epoch
    public void StoppedInsideAnEpochResumesBitForBit(int stopAfter)
    {
        string dir = TempDir();
        try
        {
            var reference = Make(null, 0);
            reference.Trainer.Fit();

            string path = Path.Combine(dir, "c.ckpt");
            var killed = Make(path, 2);
            using var stop = new CancellationTokenSource();
            Assert.Throws<OperationCanceledException>(() => killed.Trainer.Fit(new StopAfter(stopAfter, stop), stop.Token));
            var resumed = Make(path, 2);
            if (File.Exists(path)) resumed.Trainer.LoadCheckpoint(path);
            int done = resumed.Trainer.EpochsDone * 5 + resumed.Trainer.StepsDone;
            // The last checkpoint: every 2 steps inside an epoch of 5, and at its end.
            Assert.Equal(stopAfter / 5 * 5 + stopAfter % 5 / 2 * 2, done);
            resumed.Trainer.Fit();

            AssertSame(reference.Model.StateDict(), resumed.Model.StateDict());
            AssertSame(reference.Optimizer.StateDict(), resumed.Optimizer.StateDict());
            Assert.Equal(reference.Trainer.History.Select(h => h with { Seconds = 0, ImagesPerSecond = 0 }),
                resumed.Trainer.History.Select(h => h with { Seconds = 0, ImagesPerSecond = 0 }));
            Assert.Equal(0, resumed.Trainer.StepsDone);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void MidEpochCheckpointOfAnotherEpochLengthIsAnErrorNamingTheFile()
    {
        string dir = TempDir();
        try
        {
            string path = Path.Combine(dir, "c.ckpt");
            var killed = Make(path, 2);
            using var stop = new CancellationTokenSource();
            Assert.Throws<OperationCanceledException>(() => killed.Trainer.Fit(new StopAfter(4, stop), stop.Token));
            var e = Assert.Throws<InvalidDataException>(() => Make(null, 0, batch: 40).Trainer.LoadCheckpoint(path));
            Assert.Contains("c.ckpt", e.Message);
            Assert.Contains("step 4", e.Message);
            Assert.Contains("2 steps", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void CheckpointEveryIsValidated()
    {
        Assert.Contains("CheckpointEvery", Assert.Throws<ArgumentException>(() => Make("x.ckpt", -1)).Message);
        var model = new Linear(2, 2);
        var e = Assert.Throws<ArgumentException>(() => new Trainer(model, new SGD(model.Parameters(), 0.1), null, new NoRunningState(),
            new TrainerOptions { CheckpointEvery = 3, CheckpointPath = "x.ckpt" }));
        Assert.Contains("NoRunningState", e.Message);
    }

    /// <summary>An objective that keeps the interface's defaults for the running state.</summary>
    private sealed class NoRunningState : ITrainingObjective
    {
        public int StepsPerEpoch => 1;
        public IEnumerable<object> Batches(int epoch) { yield return 0; }
        public void BeginEpoch() { }
        public Tensor Loss(Module model, object batch) => throw new NotSupportedException();
        public void StepDone(object batch, double loss) { }
        public (double Loss, double Score, long Samples) Running => (0, 0, 0);
        public (double Loss, double Score)? Validate(Module model) => null;
    }

    [Fact]
    public void ClassificationMetricsStateRoundTripsAndRefusesNonsense()
    {
        var m = new ClassificationMetrics(3);
        m.Add([0.1f, 2f, 0.3f, 1f, 0f, 0f], [1, 2], 0.7);
        var copy = new ClassificationMetrics(3);
        copy.RestoreState(m.SaveState());
        Assert.Equal(m.SaveState(), copy.SaveState());
        Assert.Equal(m.Loss, copy.Loss);
        Assert.Equal(m.ConfusionMatrix(), copy.ConfusionMatrix());
        Assert.Contains("got 5", Assert.Throws<ArgumentException>(() => copy.RestoreState([1, 2, 3, 4, 5])).Message);
        var bad = m.SaveState();
        bad[5] = 0.5;
        Assert.Contains("whole number", Assert.Throws<ArgumentException>(() => copy.RestoreState(bad)).Message);
    }

    [Fact]
    public void InterruptedAtomicWritesAreRecognisedAndRemoved()
    {
        string dir = TempDir();
        try
        {
            string stale = $".checkpoint.ckpt.{Guid.NewGuid():N}.tmp";
            foreach (var name in new[] { stale, ".hidden.tmp", "metrics.json", $".x.{new string('g', 32)}.tmp" })
                File.WriteAllText(Path.Combine(dir, name), "");
            Assert.True(AtomicFile.IsTemporary(stale));
            Assert.False(AtomicFile.IsTemporary("metrics.json"));
            Assert.Equal([stale], AtomicFile.RemoveStale(dir));
            Assert.Equal([".hidden.tmp", $".x.{new string('g', 32)}.tmp", "metrics.json"], Directory.EnumerateFiles(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
            AtomicFile.Write(Path.Combine(dir, "metrics.json"), s => s.WriteByte(1));
            Assert.Empty(AtomicFile.RemoveStale(dir));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void TrainKilledTenTimesEndsBitIdenticalWithNoCorruptFile()
    {
        string dir = TempDir();
        try
        {
            var outcome = KillHarness.Run(new KillSettings
            {
                Cli = Path.Combine(AppContext.BaseDirectory, "ConvLab.Cli.dll"),
                WorkDir = dir,
                TrainArgs = ["train", "--data", "embedded", "--limit-train", "256", "--limit-test", "64", "--epochs", "2", "--batch-size", "32",
                    "--checkpoint-every", "2", "--seed", "2"],
                Kills = 10, Seed = 15, Threads = 1, WriteDelayMs = 50,
            }, new OutputWriter(output));
            Assert.Empty(outcome.Problems);
            Assert.Equal(10, outcome.Events.Count);
            Assert.True(outcome.TensorsCompared > 20, $"{outcome.TensorsCompared} tensors compared");
            // Seed 15 aims at least three kills at writes; the write delay keeps them inside.
            Assert.True(outcome.DuringWrites >= 1, "no kill landed inside an atomic write");
        }
        finally { Directory.Delete(dir, true); }
    }

    private sealed class OutputWriter(ITestOutputHelper output) : StringWriter
    {
        public override void WriteLine(string? value) => output.WriteLine(value ?? "");
    }
}
