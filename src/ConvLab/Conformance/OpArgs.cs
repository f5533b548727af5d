using System.Text.Json;

namespace ConvLab.Conformance;

/// <summary>Typed access to a case's attributes and inputs for an op handler; errors name the case and attribute.</summary>
public sealed class OpArgs(ReferenceCase c, IReadOnlyDictionary<string, Tensor?> inputs)
{
    /// <summary>The case being run.</summary>
    public ReferenceCase Case => c;

    /// <summary>The input tensor named <paramref name="name"/> (required).</summary>
    public Tensor Input(string name) =>
        inputs.TryGetValue(name, out var t) && t != null ? t : throw new CaseFormatException($"{c.Name}: missing input '{name}'");

    /// <summary>The input tensor named <paramref name="name"/>, or null when absent or null.</summary>
    public Tensor? OptionalInput(string name) => inputs.TryGetValue(name, out var t) ? t : null;

    /// <summary>True when the attribute is present and not null.</summary>
    public bool Has(string name) => c.Attrs.TryGetValue(name, out var v) && v.ValueKind != JsonValueKind.Null;

    private JsonElement Get(string name) =>
        c.Attrs.TryGetValue(name, out var v) ? v : throw new CaseFormatException($"{c.Name}: missing attribute '{name}'");

    /// <summary>An integer attribute.</summary>
    public int Int(string name)
    {
        var v = Get(name);
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i : throw Bad(name, "an integer");
    }

    /// <summary>An integer attribute or a default when absent.</summary>
    public int Int(string name, int fallback) => Has(name) ? Int(name) : fallback;

    /// <summary>A number attribute.</summary>
    public double Double(string name)
    {
        var v = Get(name);
        return v.ValueKind == JsonValueKind.Number ? v.GetDouble() : throw Bad(name, "a number");
    }

    /// <summary>A number attribute or a default when absent.</summary>
    public double Double(string name, double fallback) => Has(name) ? Double(name) : fallback;

    /// <summary>A boolean attribute.</summary>
    public bool Bool(string name)
    {
        var v = Get(name);
        return v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw Bad(name, "a boolean");
    }

    /// <summary>A boolean attribute or a default when absent.</summary>
    public bool Bool(string name, bool fallback) => Has(name) ? Bool(name) : fallback;

    /// <summary>A string attribute.</summary>
    public string String(string name)
    {
        var v = Get(name);
        return v.ValueKind == JsonValueKind.String ? v.GetString()! : throw Bad(name, "a string");
    }

    /// <summary>A string attribute or a default when absent.</summary>
    public string String(string name, string fallback) => Has(name) ? String(name) : fallback;

    /// <summary>True when the attribute is a string (e.g. padding "same").</summary>
    public bool IsString(string name) => c.Attrs.TryGetValue(name, out var v) && v.ValueKind == JsonValueKind.String;

    /// <summary>A list of integers (a single integer is read as a one-element list).</summary>
    public int[] Ints(string name)
    {
        var v = Get(name);
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int one)) return [one];
        if (v.ValueKind != JsonValueKind.Array) throw Bad(name, "a list of integers");
        return v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int i) ? i : throw Bad(name, "a list of integers")).ToArray();
    }

    /// <summary>A list of numbers (a single number is read as a one-element list).</summary>
    public double[] Doubles(string name)
    {
        var v = Get(name);
        if (v.ValueKind == JsonValueKind.Number) return [v.GetDouble()];
        if (v.ValueKind != JsonValueKind.Array) throw Bad(name, "a list of numbers");
        return v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number ? e.GetDouble() : throw Bad(name, "a list of numbers")).ToArray();
    }

    private CaseFormatException Bad(string name, string what) => new($"{c.Name}: attribute '{name}' must be {what}");
}

/// <summary>
/// Marks a static method <c>IReadOnlyDictionary&lt;string, Tensor&gt; M(OpArgs args)</c> as the
/// conformance handler of one or more op names. Handlers map a case's inputs and attributes onto
/// the public functional API and return the outputs by the case's output names.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class ReferenceOpAttribute(params string[] ops) : Attribute
{
    /// <summary>Op names handled.</summary>
    public string[] Ops { get; } = ops;
}
