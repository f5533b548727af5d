using System.Globalization;
using ConvLab.Autograd;
using ConvLab.Data;
using ConvLab.IO;
using ConvLab.Models;
using ConvLab.NN;
using ConvLab.Stats;
using ConvLab.Training;

namespace ConvLab.Experiments.Claims;

/// <summary>One cell of the transfer table.</summary>
internal sealed record TransferCell(string Target, string Data, string Strategy, int TrainImages, double TestAccuracy);

/// <summary>Transferability of one layer: a linear probe on the source model's features and the CKA between source- and target-trained features.</summary>
internal sealed record LayerTransfer(string Layer, int Features, double ProbeAccuracy, double Cka);

internal sealed record TransferSettings(int SourceImages, int SourceEpochs, int LittlePerClass, int? AllLimit, int TestLimit, int LittleEpochs, int AllEpochs,
    int ProbeImages, int ProbeEpochs, double Lr, IReadOnlyList<string> Strategies);

/// <summary>
/// The four transfer scenarios on Fashion-MNIST: a simple_cnn trained on classes 0–4 (cached in the run folder) moved to
/// classes 5–9 (another task) and to inverted images of classes 0–4 (a shifted domain), each with little and with all
/// data, by feature extraction, fine-tuning, partial:k, layer-wise rates η_l = η0·α^(L−l) and training from scratch.
/// </summary>
internal static class TransferStudy
{
    public static readonly string[] Targets = ["classes 5-9", "inverted 0-4"];
    public static readonly string[] DefaultStrategies = ["feature-extract", "fine-tune", "partial:1", "partial:2", "full:0.5", "full:0.1", "scratch"];

    /// <summary>What the course's rule of thumb predicts for a cell (similar task and little data: feature extraction, and so on).</summary>
    public static string Predicted(string target, string data) => (target, data) switch
    {
        ("classes 5-9", "little") => "partial:1",
        ("classes 5-9", _) => "fine-tune",
        (_, "little") => "feature-extract",
        _ => "fine-tune",
    };

    /// <summary>Rejects a strategy name that does not exist, naming the option.</summary>
    public static void Check(string strategy)
    {
        bool ok = strategy is "feature-extract" or "fine-tune" or "scratch"
            || (strategy.StartsWith("partial:", StringComparison.Ordinal) && int.TryParse(strategy.AsSpan(8), NumberStyles.None, CultureInfo.InvariantCulture, out int k) && k is >= 1 and <= 3)
            || (strategy.StartsWith("full:", StringComparison.Ordinal) && double.TryParse(strategy.AsSpan(5), NumberStyles.Float, CultureInfo.InvariantCulture, out double a) && a > 0 && a <= 1);
        if (!ok)
            throw new ArgumentException($"experiment transfer: --set strategy={strategy} is not a strategy; expected feature-extract, fine-tune, partial:K (K = 1..3), full:ALPHA (0 < ALPHA ≤ 1) or scratch");
    }

    public static (List<TransferCell> Table, List<LayerTransfer> Layers, double SourceAccuracy, bool SourceCached) Run(
        ExperimentData data, TransferSettings s, string cachePath, ulong seed, Action<string>? log)
    {
        IDataset Limit(IDataset d, int? n) => n is int k && k < d.Count ? new Subset(d, [.. Enumerable.Range(0, k)]) : d;
        var sourceTrain = Limit(Subset.Where(data.Train, l => l < 5), s.SourceImages);
        var sourceTest = Limit(Subset.Where(data.Test, l => l < 5), s.TestLimit);

        var source = new SimpleCnn(5, generator: new Generator(seed));
        bool cached = File.Exists(cachePath);
        if (cached) source.LoadStateDict(SafeTensors.Load(cachePath));
        else
        {
            ClaimsTraining.Fit(source, sourceTrain, null, 5, s.SourceEpochs, s.Lr, seed, 64, log: log, what: "source (classes 0-4)");
            SafeTensors.Save(cachePath, source.StateDict());
        }
        double sourceAccuracy = Trainer.Evaluate(source, sourceTest, 5).Top1;
        var weights = source.StateDict().Where(kv => !kv.Key.StartsWith("classifier.3.", StringComparison.Ordinal)).ToDictionary(kv => kv.Key, kv => kv.Value.Clone());

        var table = new List<TransferCell>();
        SimpleCnn? targetTrained = null;
        IDataset? probeTrain = null, probeTest = null;
        foreach (var target in Targets)
        {
            Func<Tensor, Tensor>? input = target == "inverted 0-4" ? x => 1 - x : null;
            Func<long, bool> keep = target == "classes 5-9" ? l => l >= 5 : l => l < 5;
            Func<long, long>? label = target == "classes 5-9" ? l => l - 5 : null;
            IDataset Target(IDataset d) => new Mapped(d, input, label);
            var all = Target(Limit(Subset.Where(data.Train, keep), s.AllLimit));
            var little = Target(Little(data.Train, keep, s.LittlePerClass));
            var test = Target(Limit(Subset.Where(data.Test, keep), s.TestLimit));
            if (target == "classes 5-9") { probeTrain = Limit(all, s.ProbeImages); probeTest = test; }
            foreach (var (name, train, epochs) in new[] { ("little", little, s.LittleEpochs), ("all", all, s.AllEpochs) })
                foreach (var strategy in s.Strategies)
                {
                    var model = new SimpleCnn(5, generator: new Generator(seed + 11));
                    var groups = Prepare(model, strategy, weights, s.Lr);
                    double acc = ClaimsTraining.Fit(model, train, test, 5, epochs, s.Lr, seed, 64, groups, log, $"{target} / {name} / {strategy}");
                    table.Add(new(target, name, strategy, train.Count, acc));
                    if (target == "classes 5-9" && name == "all" && strategy == "scratch") targetTrained = model;
                }
        }

        // Transferability per layer on the different task: the source's features probed linearly, and compared by CKA with a model trained on the target alone.
        if (targetTrained == null)
        {
            targetTrained = new SimpleCnn(5, generator: new Generator(seed + 11));
            ClaimsTraining.Fit(targetTrained, probeTrain!, null, 5, s.AllEpochs, s.Lr, seed, 64, log: log, what: "target from scratch (for CKA)");
        }
        var layers = new List<LayerTransfer>();
        foreach (var (layerName, depth) in new[] { ("features.3 (block 1)", 4), ("features.7 (block 2)", 8), ("classifier.2 (fc1)", 11) })
        {
            var (trainRows, trainLabels) = FeaturesOf(source, probeTrain!, depth);
            var (testRows, testLabels) = FeaturesOf(source, probeTest!, depth);
            var probe = new Linear(trainRows[0].Length, 5, generator: new Generator(seed + 3));
            double probeAcc = ClaimsTraining.Fit(probe, new Features(trainRows, trainLabels), new Features(testRows, testLabels), 5, s.ProbeEpochs, s.Lr, seed, 64, log: log, what: $"probe {layerName}");
            var (targetRows, _) = FeaturesOf(targetTrained, probeTest!, depth);
            double cka = Cka.Linear(Matrix(testRows), Matrix(targetRows));
            layers.Add(new(layerName, trainRows[0].Length, probeAcc, cka));
        }
        return (table, layers, sourceAccuracy, cached);
    }

    private static Subset Little(IDataset d, Func<long, bool> keep, int perClass)
    {
        var count = new Dictionary<long, int>();
        var picked = new List<int>();
        for (int i = 0; i < d.Count; i++)
        {
            long y = d.Get(i).Label;
            if (!keep(y) || count.GetValueOrDefault(y) >= perClass) continue;
            count[y] = count.GetValueOrDefault(y) + 1;
            picked.Add(i);
        }
        return new Subset(d, picked);
    }

    /// <summary>Loads the source weights (not for scratch; the head stays fresh) and returns the optimiser's groups for the strategy.</summary>
    private static List<ParamGroup> Prepare(SimpleCnn model, string strategy, Dictionary<string, Tensor> weights, double lr)
    {
        if (strategy == "scratch") return [new ParamGroup(model.Parameters(), lr)];
        Transfer.LoadPretrained(model, weights);
        if (!strategy.StartsWith("full:", StringComparison.Ordinal)) return Transfer.Apply(model, strategy, lr);
        double alpha = double.Parse(strategy.AsSpan(5), NumberStyles.Float, CultureInfo.InvariantCulture);
        var layers = Transfer.Layers(model);
        int count = layers.Count;
        // η_l = η0·α^(L−l): the head (l = L) at η0, each layer below α times slower.
        return [.. layers.Select((owners, l) => new ParamGroup(model.NamedParameters()
            .Where(p => owners.Contains(p.Name[..p.Name.LastIndexOf('.')])).Select(p => p.Parameter), lr * Math.Pow(alpha, count - 1 - l)))];
    }

    /// <summary>The model's activations after its first <paramref name="depth"/> layers (features.0.., then classifier.0..), flattened per image.</summary>
    private static (float[][] Rows, long[] Labels) FeaturesOf(SimpleCnn model, IDataset data, int depth)
    {
        model.Eval();
        var rows = new List<float[]>();
        var labels = new List<long>();
        var loader = new DataLoader(data, 256, prefetch: false);
        using (new NoGrad())
            foreach (var (x, y) in loader.GetEpoch(0))
            {
                var h = x;
                for (int i = 0; i < depth; i++) h = i < model.Features.Count ? model.Features[i].Call(h) : model.Classifier[i - model.Features.Count].Call(h);
                h = h.Flatten(1).Contiguous();
                int n = h.Size(0), p = h.Size(1);
                var a = h.ToArray();
                for (int k = 0; k < n; k++) rows.Add(a.AsSpan(k * p, p).ToArray());
                labels.AddRange(y.ToInt64Array());
            }
        return ([.. rows], [.. labels]);
    }

    private static Tensor Matrix(float[][] rows)
    {
        int n = rows.Length, p = rows[0].Length;
        var a = new float[n * p];
        for (int i = 0; i < n; i++) rows[i].CopyTo(a, i * p);
        return Tensor.FromArray(a, n, p);
    }
}
