using System.Text.Json;

namespace ConvLab.Imaging;

/// <summary>One epoch of a training history; a test value is NaN when that epoch was not evaluated.</summary>
public readonly record struct EpochMetrics(int Epoch, double TrainLoss, double TrainAccuracy, double TestLoss, double TestAccuracy);

/// <summary>
/// The parts of a run folder's <c>metrics.json</c> that the plots use: <c>history</c>, <c>class_names</c> and
/// <c>confusion_matrix</c> (rows = true class, columns = predicted class).
/// </summary>
public sealed record RunMetrics(IReadOnlyList<EpochMetrics> History, IReadOnlyList<string> ClassNames, long[,] ConfusionMatrix)
{
    /// <summary>
    /// Reads <paramref name="path"/>. A missing key, a value of the wrong type or a matrix that does not match the class
    /// names throws <see cref="InvalidDataException"/> whose message starts with the file name and names the key.
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

            var history = new List<EpochMetrics>();
            var h = Array(file, root, "history");
            for (int i = 0; i < h.GetArrayLength(); i++)
            {
                var e = h[i];
                string at = $"history[{i}]";
                if (e.ValueKind != JsonValueKind.Object) throw Bad(file, $"{at} must be an object, found {e.ValueKind}");
                double epoch = Number(file, e, "epoch", at, optional: false);
                if (epoch != Math.Floor(epoch) || epoch < 0 || epoch > int.MaxValue) throw Bad(file, $"{at}.epoch must be a non-negative integer, found {epoch}");
                history.Add(new((int)epoch, Number(file, e, "train_loss", at, false), Number(file, e, "train_accuracy", at, false),
                    Number(file, e, "test_loss", at, true), Number(file, e, "test_accuracy", at, true)));
            }

            var names = new List<string>();
            var cn = Array(file, root, "class_names");
            for (int i = 0; i < cn.GetArrayLength(); i++)
                names.Add(cn[i].ValueKind == JsonValueKind.String ? cn[i].GetString()! : throw Bad(file, $"class_names[{i}] must be a string, found {cn[i].ValueKind}"));

            var cm = Array(file, root, "confusion_matrix");
            int n = names.Count;
            if (cm.GetArrayLength() != n) throw Bad(file, $"confusion_matrix has {cm.GetArrayLength()} rows but class_names has {n} names");
            var matrix = new long[n, n];
            for (int r = 0; r < n; r++)
            {
                var row = cm[r];
                if (row.ValueKind != JsonValueKind.Array || row.GetArrayLength() != n)
                    throw Bad(file, $"confusion_matrix[{r}] must be an array of {n} counts, found {(row.ValueKind == JsonValueKind.Array ? $"{row.GetArrayLength()} values" : row.ValueKind.ToString())}");
                for (int c = 0; c < n; c++)
                {
                    if (!row[c].TryGetInt64(out long v) || v < 0)
                        throw Bad(file, $"confusion_matrix[{r}][{c}] must be a non-negative integer count, found {row[c].GetRawText()}");
                    matrix[r, c] = v;
                }
            }
            return new RunMetrics(history, names, matrix);
        }
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
