using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using ConvLab.IO;
using ConvLab.NN;
using ConvLab.Training;

namespace ConvLab.Cli;

/// <summary>
/// The run folder: <c>metrics.json</c>, <c>metrics.csv</c> (one row per epoch), <c>model.safetensors</c> (final
/// weights, PyTorch state-dict names) and <c>checkpoint.ckpt</c> (resume), all written atomically.
/// </summary>
internal static class RunFolder
{
    public const string MetricsJson = "metrics.json", MetricsCsv = "metrics.csv", Weights = "model.safetensors", CheckpointFile = "checkpoint.ckpt";

    public static readonly JsonSerializerOptions Json = RunMetrics.Json;

    /// <summary>A fresh <c>runs/yyyyMMdd-HHmmss</c> folder (a suffix keeps two runs in one second apart).</summary>
    public static string NewDefault()
    {
        string baseName = Path.Combine("runs", DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)), dir = baseName;
        for (int i = 2; Directory.Exists(dir); i++) dir = $"{baseName}-{i}";
        return dir;
    }

    public static double? Finite(double v) => double.IsFinite(v) ? v : null;

    public static RunEpoch[] History(IEnumerable<EpochRecord> records) =>
        [.. records.Select(r => new RunEpoch(r.Epoch, r.TrainLoss, r.TrainAccuracy, Finite(r.TestLoss), Finite(r.TestAccuracy), r.Seconds, r.ImagesPerSecond, r.LearningRate))];

    public static void Write(string dir, RunMetrics metrics, Module model)
    {
        Directory.CreateDirectory(dir);
        AtomicFile.Write(Path.Combine(dir, MetricsJson), s => JsonSerializer.Serialize(s, metrics, Json));
        var csv = new StringBuilder("epoch,train_loss,train_accuracy,test_loss,test_accuracy,seconds,images_per_second,learning_rate\n");
        foreach (var h in metrics.History)
            csv.AppendLine(string.Join(",", new object?[] { h.Epoch, h.TrainLoss, h.TrainAccuracy, h.TestLoss, h.TestAccuracy, h.Seconds, h.ImagesPerSecond, h.LearningRate }
                .Select(v => Convert.ToString(v, CultureInfo.InvariantCulture))));
        AtomicFile.Write(Path.Combine(dir, MetricsCsv), s => s.Write(Encoding.UTF8.GetBytes(csv.ToString())));
        model.SaveSafeTensors(Path.Combine(dir, Weights), new Dictionary<string, string>
        {
            ["model"] = metrics.Model,
            ["num_classes"] = metrics.ClassNames.Length.ToString(CultureInfo.InvariantCulture),
            ["class_names"] = JsonSerializer.Serialize(metrics.ClassNames),
        });
    }

    /// <summary>Reads <c>metrics.json</c> of a run folder; a missing or damaged file is an error naming it.</summary>
    public static RunMetrics ReadMetrics(string dir)
    {
        string path = Path.Combine(dir, MetricsJson);
        if (!Directory.Exists(dir)) throw new ArgumentException($"run folder '{dir}' does not exist");
        if (!File.Exists(path)) throw new ArgumentException($"{path}: not found; is '{dir}' a run folder written by convlab train?");
        var m = RunMetrics.Read(path);
        if (string.IsNullOrEmpty(m.Model)) throw new InvalidDataException($"{path}: has no \"model\"; is '{dir}' a run folder written by convlab train?");
        return m;
    }

    /// <summary>The zoo model of a run with its saved weights (evaluation mode).</summary>
    public static Module LoadModel(string dir, RunMetrics metrics)
    {
        var model = Models.Zoo.Create(metrics.Model, metrics.ClassNames.Length);
        string path = Path.Combine(dir, Weights);
        if (!File.Exists(path)) throw new ArgumentException($"{path}: not found; the run folder has no weights");
        try { model.LoadSafeTensors(path); }
        catch (ArgumentException e) { throw new InvalidDataException($"{path}: does not fit model {metrics.Model} with {metrics.ClassNames.Length} classes: {e.Message}", e); }
        model.Eval();
        return model;
    }
}
