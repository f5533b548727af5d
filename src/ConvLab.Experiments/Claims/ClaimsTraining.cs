using ConvLab.Autograd;
using ConvLab.Data;
using ConvLab.NN;
using ConvLab.Training;

namespace ConvLab.Experiments.Claims;

/// <summary>Training and inference shared by the claims experiments: the library's <see cref="Trainer"/> with Adam, and batched predictions.</summary>
internal static class ClaimsTraining
{
    /// <summary>Trains <paramref name="model"/> with Adam for <paramref name="epochs"/> epochs (no augmentation, no checkpoint) and returns the test accuracy.</summary>
    public static double Fit(Module model, IDataset train, IDataset? test, int classes, int epochs, double lr, ulong seed, int batchSize = 64,
        IEnumerable<ParamGroup>? groups = null, Action<string>? log = null, string what = "")
    {
        var optimizer = groups != null ? new Adam(groups, lr) : new Adam(model.Parameters().Where(p => p.RequiresGrad), lr);
        var trainer = new Trainer(model, optimizer, null, train, test, classes, new TrainerOptions { Epochs = epochs, BatchSize = batchSize, Seed = seed });
        var metrics = trainer.Fit();
        foreach (var e in trainer.History)
            log?.Invoke($"{what} epoch {e.Epoch}: train loss {e.TrainLoss:F4}, test accuracy {e.TestAccuracy:P2} ({e.Seconds:F1} s)");
        return metrics?.Top1 ?? double.NaN;
    }

    /// <summary>Trains a regressor with Adam and the mean squared error (<see cref="RegressionObjective"/>) for <paramref name="epochs"/> epochs.</summary>
    public static void FitRegression(Module model, IRegressionDataset train, int epochs, double lr, ulong seed, int batchSize, Action<string>? log = null, string what = "")
    {
        var options = new TrainerOptions { Epochs = epochs, BatchSize = batchSize, Seed = seed };
        var trainer = new Trainer(model, new Adam(model.Parameters().Where(p => p.RequiresGrad), lr), null, new RegressionObjective(train, null, batchSize, seed), options);
        trainer.Fit();
        foreach (var e in trainer.History)
            log?.Invoke($"{what} epoch {e.Epoch}: train MSE {e.TrainLoss:G4} ({e.Seconds:F1} s)");
    }

    /// <summary>The model's outputs on every sample of <paramref name="data"/>, in order, as rows of floats.</summary>
    public static float[][] Outputs(Module model, IDataset data, int batchSize = 256)
    {
        bool training = model.Training;
        model.Eval();
        try
        {
            var rows = new List<float[]>();
            var loader = new DataLoader(data, batchSize, prefetch: false);
            using (new NoGrad())
                foreach (var (x, _) in loader.GetEpoch(0))
                {
                    var y = model.Call(x).Contiguous();
                    int n = y.Size(0), per = y.Numel / n;
                    var a = y.ToArray();
                    for (int i = 0; i < n; i++) rows.Add(a.AsSpan(i * per, per).ToArray());
                }
            return [.. rows];
        }
        finally { model.Train(training); }
    }

    /// <summary>Median wall time of <paramref name="reps"/> runs of <paramref name="action"/> after one warm-up, in seconds.</summary>
    public static double MedianSeconds(Action action, int reps)
    {
        action();
        var times = new double[reps];
        for (int i = 0; i < reps; i++)
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            action();
            times[i] = sw.Elapsed.TotalSeconds;
        }
        Array.Sort(times);
        return reps % 2 == 1 ? times[reps / 2] : (times[reps / 2 - 1] + times[reps / 2]) / 2;
    }
}
