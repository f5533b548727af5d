using ConvLab.Data;
using ConvLab.NN;
using ConvLab.NN.Functional;
using ConvLab.Training;
using Xunit;

namespace ConvLab.Tests;

/// <summary>The Trainer's pluggable objective: the classification path gives exactly the weights of the plain loop it replaced,
/// through either constructor and through a user objective that delegates to it.</summary>
public class TrainerObjectiveTests
{
    private sealed class Stripes(int count) : IDataset
    {
        private readonly Tensor _x = Tensor.Rand([count, 1, 6, 6], new Generator(3), high: 0.5);
        public int Count => count;
        public (Tensor Input, long Label) Get(int index)
        {
            long label = index % 2;
            var x = _x.Select(0, index).Clone();
            for (int c = 0; c < 6; c++) x[0, label == 0 ? c : 2, label == 0 ? 2 : c] = 1.0;
            return (x, label);
        }
    }

    /// <summary>Forwards every call, so only the interface drives the loop.</summary>
    private sealed class Delegating(ITrainingObjective inner) : ITrainingObjective
    {
        public int Calls { get; private set; }
        public int StepsPerEpoch => inner.StepsPerEpoch;
        public IEnumerable<object> Batches(int epoch) => inner.Batches(epoch);
        public void BeginEpoch() => inner.BeginEpoch();
        public Tensor Loss(Module model, object batch) { Calls++; return inner.Loss(model, batch); }
        public void StepDone(object batch, double loss) => inner.StepDone(batch, loss);
        public (double Loss, double Score, long Samples) Running => inner.Running;
        public (double Loss, double Score)? Validate(Module model) => inner.Validate(model);
    }

    private static Sequential Model() => new(new Conv2d(1, 3, 3, padding: 1, generator: new Generator(5)), new BatchNorm2d(3), new ReLU(),
        new Flatten(), new Linear(3 * 36, 2, generator: new Generator(6)));

    private static TrainerOptions Options() => new() { Epochs = 3, BatchSize = 8, Seed = 11, Prefetch = false };

    private static double[][] Weights(Module m) => [.. m.StateDict().OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => kv.Value.ToDoubleArray())];

    [Fact]
    public void ClassificationObjectiveReproducesThePlainLoopBitForBit()
    {
        var train = new Stripes(28);
        // The loop the Trainer ran before objectives existed: seeded loader, cross-entropy, zero, backward, step.
        var reference = Model();
        var refOpt = new Adam(reference.Parameters(), 0.01);
        var loader = new DataLoader(train, 8, shuffle: true, seed: 11, prefetch: false);
        reference.Train();
        for (int e = 0; e < 3; e++)
            foreach (var (x, y) in loader.GetEpoch(e))
            {
                var loss = F.CrossEntropy(reference.Forward(x), y);
                refOpt.ZeroGrad(setToNone: false);
                loss.Backward();
                refOpt.Step();
            }

        var classic = Model();
        var t1 = new Trainer(classic, new Adam(classic.Parameters(), 0.01), null, train, new Stripes(10), 2, Options());
        t1.Fit();
        var viaObjective = Model();
        var objective = new Delegating(new ClassificationObjective(train, new Stripes(10), 2, 8, 11, prefetch: false));
        var t2 = new Trainer(viaObjective, new Adam(viaObjective.Parameters(), 0.01), null, objective, Options());
        t2.Fit();

        Assert.Equal(Weights(reference), Weights(classic));
        Assert.Equal(Weights(reference), Weights(viaObjective));
        Assert.Equal(3 * 4, objective.Calls);
        Assert.Equal(t1.History.Select(r => (r.TrainLoss, r.TrainAccuracy, r.TestLoss, r.TestAccuracy)),
            t2.History.Select(r => (r.TrainLoss, r.TrainAccuracy, r.TestLoss, r.TestAccuracy)));
        Assert.NotNull(t1.LastValidation);
        Assert.Null(t2.LastValidation); // a user objective keeps its own results
    }

    [Fact]
    public void EmptyObjectiveIsRejected()
    {
        var m = Model();
        var e = Assert.Throws<ArgumentException>(() => new Trainer(m, new Adam(m.Parameters()), null,
            new Delegating(new ClassificationObjective(new Stripes(0), null, 2, 8, 0)), Options()));
        Assert.StartsWith("trainer:", e.Message);
    }
}
