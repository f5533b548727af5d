using ConvLab.NN;
using ConvLab.Onnx.Proto;

namespace ConvLab.Onnx;

/// <summary>
/// An ONNX graph imported as a ConvLab module: initializers consumed as weights (Conv, ConvTranspose, Gemm, MatMul,
/// BatchNormalization scale/bias, element-wise operands) are trainable parameters under their initializer names, batch
/// norm statistics are buffers, and every node runs through ConvLab's functional API, so the module trains like any
/// other. Nodes whose inputs are all constant (PyTorch's shape subgraphs around Pad and Resize) are folded at import.
/// </summary>
public sealed class OnnxModule : Module
{
    private List<OnnxNode> _nodes;
    private readonly List<(string Conv, string BatchNorm)> _fused = [];
    private readonly Dictionary<string, Tensor> _constants;
    private readonly Dictionary<string, Tensor> _weights = [];
    private readonly string[] _inputs, _outputs;

    /// <summary>Names of the graph's runtime inputs, in order.</summary>
    public IReadOnlyList<string> InputNames => _inputs;

    /// <summary>Names of the graph's outputs, in order.</summary>
    public IReadOnlyList<string> OutputNames => _outputs;

    /// <summary>Default opset of the file.</summary>
    public long Opset { get; }

    /// <summary>How many nodes were folded into constants at import.</summary>
    public int FoldedNodes { get; }

    /// <summary>Static shape of the first input from the file without its batch dimension (null where a dimension is symbolic), if given.</summary>
    public IReadOnlyList<int?>? InputShape { get; }

    private OnnxModule(ModelProto model, string file)
    {
        var g = model.Graph;
        Opset = model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(1).Max();
        var init = new Dictionary<string, Tensor>();
        foreach (var t in g.Initializer)
        {
            if (string.IsNullOrEmpty(t.Name)) throw new InvalidDataException($"{file}: an initializer has no name");
            init[t.Name] = OnnxTensor.ToTensor(t, file);
        }
        _inputs = g.Input.Select(i => i.Name).Where(n => !init.ContainsKey(n)).ToArray();
        _outputs = g.Output.Select(o => o.Name).ToArray();
        if (_outputs.Length == 0) throw new InvalidDataException($"{file}: the graph has no outputs");
        var first = g.Input.FirstOrDefault(i => !init.ContainsKey(i.Name));
        if (first?.Type?.TensorType?.Shape is { } sh && sh.Dim.Count > 1)
            InputShape = sh.Dim.Skip(1).Select(d => d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue && d.DimValue is > 0 and <= int.MaxValue ? (int?)d.DimValue : null).ToArray();

        _nodes = g.Node.Select((n, i) => new OnnxNode(n, i, file, Opset)).ToList();
        var unsupported = _nodes.Where(n => !OnnxOps.Supports(n.OpType) || n.Domain is not ("" or "ai.onnx")).ToList();
        if (unsupported.Count > 0)
            throw new NotSupportedException($"{file}: unsupported ONNX ops: " + string.Join(", ", unsupported.Select(n => $"{(n.Domain is "" or "ai.onnx" ? "" : n.Domain + ".")}{n.OpType} (node '{n.Name}')")));

        // Topological order is required by ONNX; checking it here turns a corrupted graph into one clear message.
        var defined = new HashSet<string>(_inputs.Concat(init.Keys)) { "" };
        foreach (var n in _nodes)
        {
            foreach (var i in n.Inputs)
                if (!defined.Contains(i)) throw new InvalidDataException($"{file}: node '{n.Name}' ({n.OpType}) reads '{i}', which no earlier node, input or initializer defines");
            foreach (var o in n.Outputs) defined.Add(o);
        }
        foreach (var o in _outputs)
            if (!defined.Contains(o)) throw new InvalidDataException($"{file}: graph output '{o}' is not produced by any node");

        // Which initializers are weights: float tensors read by an op that learns them.
        var weightUse = new Dictionary<string, bool>(); // name -> true for a parameter, false for a buffer
        foreach (var n in _nodes)
            for (int k = 0; k < n.Inputs.Length; k++)
            {
                var name = n.Inputs[k];
                if (!init.TryGetValue(name, out var t) || !t.IsFloatingPoint || t.Rank == 0) continue;
                bool? role = OnnxOps.WeightRole(n.OpType, k);
                if (role is { } r) weightUse[name] = weightUse.GetValueOrDefault(name) || r;
            }

        var tree = new Dictionary<string, Holder>();
        foreach (var (name, isParam) in weightUse)
        {
            var t = init[name];
            _weights[name] = t;
            Place(name, t, isParam);
        }
        _constants = init.Where(kv => !weightUse.ContainsKey(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value);

        // Fold every node whose inputs are all constants (data from the file only); a node that would create more elements
        // than the file could describe many times over is refused rather than run.
        long limit = Math.Max(1L << 22, 16L * model.CalculateSize());
        var folded = new List<OnnxNode>();
        using (new Autograd.NoGrad())
            foreach (var n in _nodes)
            {
                if (n.OpType is "RandomNormal" or "RandomUniform" || !n.Inputs.All(i => i == "" || _constants.ContainsKey(i))) { folded.Add(n); continue; }
                Tensor?[] ins = n.Inputs.Select(i => i == "" ? null : _constants[i]).ToArray();
                var outs = OnnxOps.Run(n, ins, training: false, limit);
                for (int o = 0; o < n.Outputs.Length && o < outs.Length; o++)
                    if (n.Outputs[o] != "" && outs[o] is { } v) _constants[n.Outputs[o]] = v;
                FoldedNodes++;
            }
        _nodes = folded;
        _limit = long.MaxValue;
    }

    private readonly long _limit;

    /// <summary>Registers a weight under its initializer name, as nested modules so the state-dict key equals the name where it can.</summary>
    private void Place(string name, Tensor t, bool isParam)
    {
        var parts = name.Split('.');
        if (parts.Any(p => p.Length == 0)) parts = [name.Replace('.', '_')];
        Module at = this;
        for (int i = 0; i < parts.Length - 1; i++)
        {
            var child = at.NamedChildren().FirstOrDefault(c => c.Name == parts[i]).Module;
            if (child == null)
            {
                if (at is OnnxModule om) child = om.AddChild(parts[i]);
                else child = ((Holder)at).AddChild(parts[i]);
            }
            at = child;
        }
        var leaf = parts[^1];
        if (at is OnnxModule root) root.AddTensor(leaf, t, isParam);
        else ((Holder)at).AddTensor(leaf, t, isParam);
    }

    private Module AddChild(string name) => RegisterModule(name, new Holder());

    private void AddTensor(string name, Tensor t, bool isParam)
    {
        if (isParam) RegisterParameter(name, t); else RegisterBuffer(name, t);
    }

    /// <summary>A container for imported weights (no forward of its own).</summary>
    private sealed class Holder : Module
    {
        public Module AddChild(string name) => RegisterModule(name, new Holder());

        public void AddTensor(string name, Tensor t, bool isParam)
        {
            if (isParam) RegisterParameter(name, t); else RegisterBuffer(name, t);
        }

        public override Tensor Forward(Tensor input) => throw new InvalidOperationException("onnx: a weight holder has no forward");
    }

    /// <summary>The (Conv node, BatchNormalization node) pairs <see cref="FuseForInference"/> folded; empty while the module is trainable.</summary>
    public IReadOnlyList<(string Conv, string BatchNorm)> FusedBatchNorms => _fused;

    /// <summary>
    /// Folds every inference-mode BatchNormalization whose input is the output of a Conv that nothing else reads into that
    /// Conv, as ONNX Runtime does when it loads a file: with s = scale / √(var + ε), the Conv's weight becomes W·s per
    /// output channel and its bias (b − mean)·s + B, and the batch-norm node is dropped. Returns the folded pairs by
    /// node name. For serving only: a batch norm that trains needs its own statistics, so afterwards the module refuses
    /// to run in training mode (reload the file to fine-tune).
    /// </summary>
    /// <remarks>
    /// The folded values are written into the Conv's weight and bias tensors in place, so the state dict keeps its
    /// names and then holds the folded weights (as <see cref="Fusion.FoldBatchNorm"/> does for ConvLab modules). A Conv
    /// without a bias takes the batch norm's B tensor as its bias. A pair is left alone when any of its tensors is read
    /// by another node, the Conv output is also a graph output or read elsewhere, or a batch-norm input is computed
    /// at run time.
    /// </remarks>
    /// <exception cref="InvalidOperationException">The module is in training mode.</exception>
    public IReadOnlyList<(string Conv, string BatchNorm)> FuseForInference()
    {
        if (Training)
            throw new InvalidOperationException("onnx: FuseForInference needs the module in evaluation mode; call Eval() first (folding uses the running statistics)");
        var reads = new Dictionary<string, int>();
        foreach (var n in _nodes)
            foreach (var i in n.Inputs) reads[i] = reads.GetValueOrDefault(i) + 1;
        foreach (var o in _outputs) reads[o] = reads.GetValueOrDefault(o) + 1;
        var producer = new Dictionary<string, int>();
        for (int j = 0; j < _nodes.Count; j++)
            foreach (var o in _nodes[j].Outputs) producer[o] = j;
        bool ReadOnce(string name) => reads.GetValueOrDefault(name) == 1;
        Tensor? Known(string name) => _weights.TryGetValue(name, out var w) ? w : _constants.GetValueOrDefault(name);

        var dropped = new HashSet<int>();
        var pairs = new List<(string, string)>();
        for (int i = 0; i < _nodes.Count; i++)
        {
            var bn = _nodes[i];
            if (bn.OpType != "BatchNormalization" || bn.Inputs.Length < 5 || bn.Int("training_mode", 0) != 0 || bn.Outputs.Skip(1).Any(o => o != "")) continue;
            if (!producer.TryGetValue(bn.Inputs[0], out int j) || _nodes[j].OpType != "Conv" || !ReadOnce(bn.Inputs[0])) continue;
            var conv = _nodes[j];
            if (conv.Inputs.Length < 2 || !_weights.TryGetValue(conv.Inputs[1], out var w) || !ReadOnce(conv.Inputs[1])) continue;
            string biasName = conv.Inputs.Length > 2 && conv.Inputs[2] != "" ? conv.Inputs[2] : bn.Inputs[2];
            if (!_weights.TryGetValue(biasName, out var bias) || !ReadOnce(biasName)) continue;
            var stats = bn.Inputs[1..5].Select(Known).ToArray();
            int c = w.Shape[0];
            if (stats.Any(t => t == null || t.Numel != c) || bias.Numel != c || !w.IsFloatingPoint) continue;
            Fold(w, bias, biasName == bn.Inputs[2] ? null : bias, stats!, bn.Float("epsilon", 1e-5f));
            _nodes[j] = conv.Rewired([conv.Inputs[0], conv.Inputs[1], biasName], [bn.Outputs[0]]);
            dropped.Add(i);
            pairs.Add((conv.Name, bn.Name));
        }
        _nodes = _nodes.Where((_, i) => !dropped.Contains(i)).ToList();
        _fused.AddRange(pairs);
        return pairs;
    }

    /// <summary>W·s and (b − mean)·s + B into <paramref name="w"/> and <paramref name="target"/>, in double; <paramref name="convBias"/> null means b = 0.</summary>
    private static void Fold(Tensor w, Tensor target, Tensor? convBias, Tensor[] stats, double eps)
    {
        using var _ = new Autograd.NoGrad();
        int c = w.Shape[0], perChannel = w.Numel / c;
        var (scale, beta, mean, variance) = (stats[0].ToDoubleArray(), stats[1].ToDoubleArray(), stats[2].ToDoubleArray(), stats[3].ToDoubleArray());
        var wd = w.ToDoubleArray();
        var b = convBias?.ToDoubleArray() ?? new double[c];
        for (int o = 0; o < c; o++)
        {
            double s = scale[o] / Math.Sqrt(variance[o] + eps);
            for (int k = 0; k < perChannel; k++) wd[o * perChannel + k] *= s;
            b[o] = (b[o] - mean[o]) * s + beta[o];
        }
        w.Copy_(Tensor.FromArray(wd, w.Shape.ToArray()).To(w.DType));
        target.Copy_(Tensor.FromArray(b, target.Shape.ToArray()).To(target.DType));
    }

    /// <summary>Loads an ONNX model file as a module.</summary>
    /// <exception cref="InvalidDataException">The file is not a valid ONNX model; the message names the file and the problem.</exception>
    /// <exception cref="NotSupportedException">The graph uses ops ConvLab does not import; the message lists them with their node names.</exception>
    public static OnnxModule Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var model = OnnxFile.ReadModel(path);
        try { return new OnnxModule(model, path); }
        catch (ArgumentException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
    }

    /// <summary>When set, <see cref="Run"/> adds each node's wall time in seconds under its op type (the bench's profile).</summary>
    internal Dictionary<string, double>? OpSeconds { get; set; }

    /// <summary>Runs the graph on its first input and returns its first output.</summary>
    public override Tensor Forward(Tensor input) => Run([input])[0];

    /// <summary>Runs the graph on all its inputs (in <see cref="InputNames"/> order) and returns every output.</summary>
    public IReadOnlyList<Tensor> Run(IReadOnlyList<Tensor> inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        if (Training && _fused.Count > 0)
            throw new InvalidOperationException($"onnx: {_fused.Count} batch norms were folded into convolutions for inference (FuseForInference), so the module cannot run in training mode; reload the file to train or fine-tune");
        if (inputs.Count != _inputs.Length)
            throw new ArgumentException($"onnx: the graph takes {_inputs.Length} input(s) ({string.Join(", ", _inputs)}), got {inputs.Count}");
        var values = new Dictionary<string, Tensor>(_constants);
        foreach (var (k, v) in _weights) values[k] = v;
        for (int i = 0; i < inputs.Count; i++) values[_inputs[i]] = inputs[i];
        foreach (var n in _nodes)
        {
            long started = OpSeconds != null ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
            Tensor?[] ins = n.Inputs.Select(i => i == "" ? null : values[i]).ToArray();
            Tensor?[] outs;
            try { outs = OnnxOps.Run(n, ins, Training, _limit); }
            catch (ArgumentException e) when (!e.Message.StartsWith("onnx", StringComparison.Ordinal))
            {
                throw new ArgumentException($"onnx: node '{n.Name}' ({n.OpType}): {e.Message}", e);
            }
            for (int o = 0; o < n.Outputs.Length && o < outs.Length; o++)
                if (n.Outputs[o] != "" && outs[o] is { } v) values[n.Outputs[o]] = v;
            if (OpSeconds != null)
                OpSeconds[n.OpType] = OpSeconds.GetValueOrDefault(n.OpType) + System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds;
        }
        return _outputs.Select(o => values.TryGetValue(o, out var v) ? v : throw new ArgumentException($"onnx: output '{o}' was not computed")).ToArray();
    }
}
