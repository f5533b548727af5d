using ConvLab.Onnx.Proto;
using AttrType = ConvLab.Onnx.Proto.AttributeProto.Types.AttributeType;

namespace ConvLab.Onnx;

/// <summary>One graph node with typed access to its attributes; errors name the file and the node.</summary>
internal sealed class OnnxNode
{
    private readonly Dictionary<string, AttributeProto> _attrs = [];

    private OnnxNode(OnnxNode from, string[] inputs, string[] outputs)
    {
        OpType = from.OpType; Domain = from.Domain; Name = from.Name; File = from.File; Opset = from.Opset;
        Inputs = inputs; Outputs = outputs;
        _attrs = from._attrs;
    }

    public OnnxNode(NodeProto n, int index, string file, long opset)
    {
        OpType = n.OpType;
        Domain = n.Domain;
        Name = string.IsNullOrEmpty(n.Name) ? $"#{index} {n.OpType}" : n.Name;
        Inputs = [.. n.Input];
        Outputs = [.. n.Output];
        File = file;
        Opset = opset;
        foreach (var a in n.Attribute) _attrs[a.Name] = a;
    }

    /// <summary>The same node reading and writing other values (graph rewrites).</summary>
    public OnnxNode Rewired(string[] inputs, string[] outputs) => new(this, inputs, outputs);

    public string OpType { get; }
    public string Domain { get; }
    public string Name { get; }
    public string[] Inputs { get; }
    public string[] Outputs { get; }
    public string File { get; }
    public long Opset { get; }

    /// <summary>An error about this node, as an ArgumentException starting with "onnx".</summary>
    public ArgumentException Error(string what) => new($"onnx: {File}: node '{Name}' ({OpType}): {what}");

    public bool Has(string name) => _attrs.ContainsKey(name);

    public long Int(string name, long fallback) => _attrs.TryGetValue(name, out var a) ? a.I : fallback;

    public float Float(string name, float fallback) => _attrs.TryGetValue(name, out var a) ? a.F : fallback;

    public string Str(string name, string fallback) => _attrs.TryGetValue(name, out var a) ? a.S.ToStringUtf8() : fallback;

    public long[]? Ints(string name) => _attrs.TryGetValue(name, out var a) ? [.. a.Ints] : null;

    public float[]? Floats(string name) => _attrs.TryGetValue(name, out var a) ? [.. a.Floats] : null;

    public TensorProto? TensorAttr(string name) => _attrs.TryGetValue(name, out var a) && a.T != null ? a.T : null;

    public AttrType? TypeOf(string name) => _attrs.TryGetValue(name, out var a) ? a.Type : null;

    /// <summary>Integer attribute list converted to int, each checked to be within <paramref name="min"/>..int.MaxValue.</summary>
    public int[]? IntArray(string name, long min = long.MinValue)
    {
        var v = Ints(name);
        if (v == null) return null;
        foreach (var x in v)
            if (x < Math.Max(min, int.MinValue) || x > int.MaxValue) throw Error($"attribute {name} has an out-of-range value {x}");
        return v.Select(x => (int)x).ToArray();
    }
}
