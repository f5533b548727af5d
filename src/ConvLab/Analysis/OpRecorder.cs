namespace ConvLab.Analysis;

/// <summary>One op of a real forward as an exporter needs it: the PyTorch op name, its tensor operands, result and attributes.</summary>
internal sealed record RecordedOp(string Op, Tensor?[] Inputs, Tensor Output, IReadOnlyDictionary<string, object?> Attributes);

/// <summary>
/// Records the ops of a forward pass run under <see cref="Capture"/>, with the attributes the
/// functional layer validated (strides, pads, modes), so a graph format (ONNX) can be written from any model's own
/// forward without knowing its classes. Composite ops record their inner ops too; a reader walks back from the output
/// and takes, for each tensor, the last op that produced it.
/// </summary>
internal sealed class OpRecorder
{
    [ThreadStatic] private static OpRecorder? _current;

    private readonly List<RecordedOp> _ops = [];

    /// <summary>Runs <paramref name="forward"/> with a recorder current on this thread and returns its ops in completion order.</summary>
    internal static List<RecordedOp> Capture(Action forward)
    {
        var previous = _current;
        var recorder = new OpRecorder();
        _current = recorder;
        try { forward(); }
        finally { _current = previous; }
        return recorder._ops;
    }

    /// <summary>Notes <paramref name="op"/> when a recorder is active (a reference-equal input and output is no op) and returns the output.</summary>
    internal static Tensor Record(Tensor output, string op, Tensor?[] inputs, params (string Name, object? Value)[] attributes)
    {
        if (_current is not { } r || (inputs.Length > 0 && ReferenceEquals(inputs[0], output))) return output;
        var dict = new Dictionary<string, object?>();
        foreach (var (n, v) in attributes) dict[n] = v;
        r._ops.Add(new RecordedOp(op, inputs, output, dict));
        return output;
    }
}
