using System.Text.Json;

namespace ConvLab.Conformance;

/// <summary>A reference case that could not be read, with the reason.</summary>
public sealed class CaseFormatException(string message) : Exception(message);

/// <summary>
/// One PyTorch-computed reference case (schema in <c>shared/reference/README.md</c>): an op, its
/// attributes and inputs, the expected outputs and the gradients of sum(output·upstream).
/// </summary>
public sealed class ReferenceCase
{
    /// <summary>Unique name, e.g. <c>conv2d/stride2_pad1</c>.</summary>
    public required string Name { get; init; }
    /// <summary>Family (folder) the case belongs to.</summary>
    public required string Family { get; init; }
    /// <summary>Operator name, e.g. <c>conv2d</c>.</summary>
    public required string Op { get; init; }
    /// <summary>Attributes as raw JSON values.</summary>
    public required IReadOnlyDictionary<string, JsonElement> Attrs { get; init; }
    /// <summary>Inputs by PyTorch argument name; null where the argument is not given.</summary>
    public required IReadOnlyDictionary<string, Tensor?> Inputs { get; init; }
    /// <summary>Expected outputs by name.</summary>
    public required IReadOnlyDictionary<string, Tensor> Outputs { get; init; }
    /// <summary>Upstream gradient per float output (may be empty).</summary>
    public required IReadOnlyDictionary<string, Tensor> Upstream { get; init; }
    /// <summary>Expected gradient per input.</summary>
    public required IReadOnlyDictionary<string, Tensor> Grads { get; init; }
    /// <summary>The <c>model</c> field of explanation cases (a chain of ops with parameters), as raw JSON; null when absent.</summary>
    public JsonElement? Model { get; init; }
    /// <summary>Relative tolerance.</summary>
    public double Rtol { get; init; }
    /// <summary>Absolute tolerance.</summary>
    public double Atol { get; init; }

    /// <summary>Reads a case file; every problem is reported as a <see cref="CaseFormatException"/> naming the file.</summary>
    public static ReferenceCase Load(string path)
    {
        string file = Path.GetFileName(path);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new CaseFormatException($"{file}: not valid JSON ({e.Message})"); }
        catch (IOException e) { throw new CaseFormatException($"{file}: cannot read ({e.Message})"); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new CaseFormatException($"{file}: top level must be an object");
            string Str(string key) => root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : throw new CaseFormatException($"{file}: missing string field '{key}'");
            JsonElement Obj(string key, bool required = true)
            {
                if (root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Object) return v.Clone();
                if (!required && (!root.TryGetProperty(key, out v) || v.ValueKind == JsonValueKind.Null)) return JsonDocument.Parse("{}").RootElement.Clone();
                throw new CaseFormatException($"{file}: missing object field '{key}'");
            }
            var attrs = new Dictionary<string, JsonElement>();
            foreach (var p in Obj("attrs").EnumerateObject()) attrs[p.Name] = p.Value.Clone();
            var tol = Obj("tolerance", required: false);
            return new ReferenceCase
            {
                Name = Str("name"),
                Family = root.TryGetProperty("family", out var fam) && fam.ValueKind == JsonValueKind.String ? fam.GetString()! : Path.GetFileName(Path.GetDirectoryName(path)) ?? "",
                Op = Str("op"),
                Attrs = attrs,
                Inputs = Tensors(Obj("inputs"), file, "inputs", allowNull: true),
                Outputs = Tensors(Obj("outputs"), file, "outputs", allowNull: false)!,
                Upstream = Tensors(Obj("upstream", required: false), file, "upstream", allowNull: false)!,
                Grads = Tensors(Obj("grads", required: false), file, "grads", allowNull: false)!,
                Model = root.TryGetProperty("model", out var model) && model.ValueKind == JsonValueKind.Array ? model.Clone() : null,
                Rtol = tol.TryGetProperty("rtol", out var r) && r.ValueKind == JsonValueKind.Number ? r.GetDouble() : 1e-4,
                Atol = tol.TryGetProperty("atol", out var a) && a.ValueKind == JsonValueKind.Number ? a.GetDouble() : 1e-4,
            };
        }
    }

    private static Dictionary<string, Tensor?> Tensors(JsonElement obj, string file, string field, bool allowNull)
    {
        var result = new Dictionary<string, Tensor?>();
        foreach (var p in obj.EnumerateObject())
        {
            if (p.Value.ValueKind == JsonValueKind.Null)
            {
                if (!allowNull) throw new CaseFormatException($"{file}: {field}.{p.Name} is null");
                result[p.Name] = null;
                continue;
            }
            result[p.Name] = ParseTensor(p.Value, $"{file}: {field}.{p.Name}");
        }
        return result;
    }

    /// <summary>Parses <c>{"shape", "dtype", "data"}</c>.</summary>
    public static Tensor ParseTensor(JsonElement t, string where)
    {
        if (t.ValueKind != JsonValueKind.Object) throw new CaseFormatException($"{where}: tensor must be an object");
        if (!t.TryGetProperty("shape", out var shapeEl) || shapeEl.ValueKind != JsonValueKind.Array)
            throw new CaseFormatException($"{where}: missing 'shape' array");
        if (!t.TryGetProperty("data", out var dataEl) || dataEl.ValueKind != JsonValueKind.Array)
            throw new CaseFormatException($"{where}: missing 'data' array");
        string dtype = t.TryGetProperty("dtype", out var dt) && dt.ValueKind == JsonValueKind.String ? dt.GetString()! : "float32";
        var shape = new List<int>();
        foreach (var s in shapeEl.EnumerateArray())
        {
            if (s.ValueKind != JsonValueKind.Number || !s.TryGetInt32(out int v) || v < 0)
                throw new CaseFormatException($"{where}: shape entries must be non-negative integers");
            shape.Add(v);
        }
        long n = 1; foreach (var s in shape) n *= s;
        int len = dataEl.GetArrayLength();
        if (len != n) throw new CaseFormatException($"{where}: shape {ShapeUtil.Format(shape.ToArray())} needs {n} values but data has {len}");
        try
        {
            switch (dtype)
            {
                case "float32":
                {
                    var d = new float[len]; int i = 0;
                    foreach (var v in dataEl.EnumerateArray()) d[i++] = ReadFloat(v, where);
                    return Tensor.FromArray(d, shape.ToArray());
                }
                case "float64":
                {
                    var d = new double[len]; int i = 0;
                    foreach (var v in dataEl.EnumerateArray()) d[i++] = ReadFloat(v, where);
                    return Tensor.FromArray(d, shape.ToArray());
                }
                case "int64":
                {
                    var d = new long[len]; int i = 0;
                    foreach (var v in dataEl.EnumerateArray())
                        d[i++] = v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long l) ? l : throw new CaseFormatException($"{where}: int64 data holds a non-integer");
                    return Tensor.FromArray(d, shape.ToArray());
                }
                default: throw new CaseFormatException($"{where}: unsupported dtype '{dtype}'");
            }
        }
        catch (InvalidOperationException e) { throw new CaseFormatException($"{where}: bad data ({e.Message})"); }
    }

    private static float ReadFloat(JsonElement v, string where) => v.ValueKind switch
    {
        JsonValueKind.Number => (float)v.GetDouble(),
        // JSON has no NaN/Infinity literals; writers that need them use strings.
        JsonValueKind.String when float.TryParse(v.GetString(), System.Globalization.CultureInfo.InvariantCulture, out var f) => f,
        _ => throw new CaseFormatException($"{where}: data holds a non-number"),
    };
}
