using System.Text.Json;
using System.Text.Json.Serialization;

namespace ConvLab.Training;

/// <summary>One row of a run's history in <c>metrics.json</c>; test values are null for epochs without a test pass.</summary>
public sealed record RunEpoch(int Epoch, double TrainLoss, double TrainAccuracy, double? TestLoss, double? TestAccuracy,
    double Seconds, double ImagesPerSecond, double LearningRate);

/// <summary>
/// The content of a classification run folder's <c>metrics.json</c> (snake_case keys), the one type that <c>convlab train</c>
/// writes and every reader (evaluate, predict, export, explain, the run plots) reads. The confusion matrix has rows = true
/// class, columns = predicted class.
/// </summary>
public sealed record RunMetrics(
    string Model, int[] InputShape, string DataSource, int TrainImages, int TestImages, int Epochs, int BatchSize, string Optimizer, double LearningRate,
    bool Augment, ulong Seed, int Threads, string? Transfer, bool StoppedEarly,
    double TestAccuracy, double TestLoss, double Top5Accuracy, double[] SecondsPerEpoch, double ImagesPerSecond, double BytesAllocatedPerStep,
    string[] ClassNames, double?[] PerClassAccuracy, long[][] ConfusionMatrix, RunEpoch[] History)
{
    /// <summary>The JSON settings of <c>metrics.json</c>: snake_case names, indented, NaN/Infinity as named literals.</summary>
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>
    /// Reads <paramref name="path"/>. The parts every reader needs (<c>history</c>, <c>class_names</c>,
    /// <c>confusion_matrix</c>) are checked first: a missing key, a value of the wrong type or a matrix that does not match the
    /// class names throws <see cref="InvalidDataException"/> whose message starts with the file name and names the key.
    /// Other keys may be absent (older or hand-written files; their values are then the defaults).
    /// </summary>
    public static RunMetrics Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var file = Path.GetFileName(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"{file}: not found ({Path.GetFullPath(path)})", path);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(path)); }
        catch (JsonException e) { throw Bad(file, $"not valid JSON ({e.Message})"); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw Bad(file, $"expected a JSON object at the top level, found {root.ValueKind}");

            int entries = 0;
            var h = Array(file, root, "history");
            for (int i = 0; i < h.GetArrayLength(); i++)
            {
                var e = h[i];
                string at = $"history[{i}]";
                if (e.ValueKind != JsonValueKind.Object) throw Bad(file, $"{at} must be an object, found {e.ValueKind}");
                double epoch = Number(file, e, "epoch", at, optional: false);
                if (epoch != Math.Floor(epoch) || epoch < 0 || epoch > int.MaxValue) throw Bad(file, $"{at}.epoch must be a non-negative integer, found {epoch}");
                Number(file, e, "train_loss", at, false); Number(file, e, "train_accuracy", at, false);
                Number(file, e, "test_loss", at, true); Number(file, e, "test_accuracy", at, true);
                entries++;
            }

            var cn = Array(file, root, "class_names");
            for (int i = 0; i < cn.GetArrayLength(); i++)
                if (cn[i].ValueKind != JsonValueKind.String) throw Bad(file, $"class_names[{i}] must be a string, found {cn[i].ValueKind}");

            var cm = Array(file, root, "confusion_matrix");
            int n = cn.GetArrayLength();
            if (cm.GetArrayLength() != n) throw Bad(file, $"confusion_matrix has {cm.GetArrayLength()} rows but class_names has {n} names");
            for (int r = 0; r < n; r++)
            {
                var row = cm[r];
                if (row.ValueKind != JsonValueKind.Array || row.GetArrayLength() != n)
                    throw Bad(file, $"confusion_matrix[{r}] must be an array of {n} counts, found {(row.ValueKind == JsonValueKind.Array ? $"{row.GetArrayLength()} values" : row.ValueKind.ToString())}");
                for (int c = 0; c < n; c++)
                {
                    if (!row[c].TryGetInt64(out long v) || v < 0)
                        throw Bad(file, $"confusion_matrix[{r}][{c}] must be a non-negative integer count, found {row[c].GetRawText()}");
                }
            }
            RunMetrics? m;
            try { m = root.Deserialize<RunMetrics>(Json); }
            catch (JsonException e) { throw Bad(file, $"not valid run metrics: {e.Message}"); }
            if (m == null || m.History.Length != entries) throw Bad(file, "not valid run metrics");
            return m;
        }
    }

    /// <summary>The confusion matrix as a rectangular array (rows = true class).</summary>
    public long[,] ConfusionArray()
    {
        int n = ConfusionMatrix.Length;
        var a = new long[n, n];
        for (int r = 0; r < n; r++)
            for (int c = 0; c < n; c++) a[r, c] = ConfusionMatrix[r][c];
        return a;
    }

    private static JsonElement Array(string file, JsonElement root, string key)
    {
        if (!root.TryGetProperty(key, out var v)) throw Bad(file, $"missing \"{key}\"");
        if (v.ValueKind != JsonValueKind.Array) throw Bad(file, $"\"{key}\" must be an array, found {v.ValueKind}");
        return v;
    }

    /// <summary>A number; an optional key may be absent or null (NaN), as for epochs without a test pass.</summary>
    private static double Number(string file, JsonElement obj, string key, string at, bool optional)
    {
        if (!obj.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null)
            return optional ? double.NaN : throw Bad(file, $"{at} has no \"{key}\"");
        if (v.ValueKind != JsonValueKind.Number) throw Bad(file, $"{at}.{key} must be a number, found {v.ValueKind}");
        return v.GetDouble();
    }

    private static InvalidDataException Bad(string file, string message) => new($"{file}: {message}");
}
