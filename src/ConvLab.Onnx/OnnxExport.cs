using ConvLab.Analysis;
using ConvLab.Kernels;
using ConvLab.NN;
using ConvLab.Onnx.Proto;

namespace ConvLab.Onnx;

/// <summary>
/// Writes any ConvLab model as an ONNX graph: one forward pass at batch 1 is recorded op by op (the functional
/// layer reports each op with its validated attributes), the ops that lead to the output become ONNX nodes, the
/// model's parameters and buffers become initializers under their state-dict names, and the batch axis is
/// symbolic ("batch"). Default opset 17; 19 when a deformable convolution is present (ONNX's DeformConv).
/// </summary>
public static class OnnxExport
{
    /// <summary>The opset written when none is asked for.</summary>
    public const int DefaultOpset = 17;

    /// <summary>Exports <paramref name="model"/> (put in evaluation mode) for inputs of shape (batch, <paramref name="inputShape"/>) to <paramref name="path"/>, atomically.</summary>
    /// <param name="model">The model; its mode is set to evaluation.</param>
    /// <param name="inputShape">One sample's shape, e.g. [3, 224, 224].</param>
    /// <param name="path">Output .onnx file.</param>
    /// <param name="opset">ONNX opset (13 or newer; null: 17, or 19 with deformable convolution).</param>
    /// <returns>The opset written.</returns>
    /// <exception cref="ArgumentException">An op or attribute has no ONNX form at that opset (the message names it).</exception>
    public static int Export(Module model, int[] inputShape, string path, int? opset = null)
    {
        var m = ToModel(model, inputShape, opset);
        OnnxFile.WriteModel(path, m);
        return (int)m.OpsetImport[0].Version;
    }

    internal static ModelProto ToModel(Module model, int[] inputShape, int? opset = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(inputShape);
        if (inputShape.Length == 0 || inputShape.Any(d => d < 1))
            throw new ArgumentException($"export: input shape must have positive sizes, got {ShapeUtil.Format(inputShape)}");
        if (opset is < 13)
            throw new ArgumentException($"export: opset {opset} is not supported (13 or newer)");
        model.Eval();
        var dtype = model.Parameters().FirstOrDefault()?.DType ?? DType.Float32;
        var x = Tensor.Zeros([1, .. inputShape], dtype);
        Tensor output = x;
        List<RecordedOp> ops;
        using (Autograd.GradMode.Enable())
        {
            x.RequiresGrad = true;
            ops = OpRecorder.Capture(() => output = model.Call(x));
        }
        bool deform = ops.Any(o => o.Op == "deform_conv2d");
        int version = opset ?? (deform ? 19 : DefaultOpset);
        if (deform && version < 19) throw new ArgumentException($"export: deformable convolution needs opset 19 (DeformConv), got {version}");
        var w = new GraphWriter(model, x, version);
        w.Write(ops, output);
        var proto = new ModelProto { IrVersion = 8, ProducerName = "ConvLab", ProducerVersion = typeof(OnnxExport).Assembly.GetName().Version?.ToString() ?? "", Graph = w.Graph };
        proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = version });
        return proto;
    }

    /// <summary>Turns recorded ops into graph nodes.</summary>
    private sealed class GraphWriter
    {
        private readonly Dictionary<Tensor, string> _names = new(ReferenceEqualityComparer.Instance);
        private readonly Dictionary<Tensor, string> _state = new(ReferenceEqualityComparer.Instance);
        private readonly HashSet<string> _initialized = [];
        private readonly int _opset;
        private readonly DType _dtype;
        private int _next;

        public GraphProto Graph { get; } = new() { Name = "convlab" };

        public GraphWriter(Module model, Tensor input, int opset)
        {
            _opset = opset;
            _dtype = input.DType;
            foreach (var (name, t) in model.NamedParameters()) _state.TryAdd(t, name);
            foreach (var (name, t) in model.NamedBuffers()) _state.TryAdd(t, name);
            _names[input] = "input";
            Graph.Input.Add(ValueInfo("input", input));
        }

        private ValueInfoProto ValueInfo(string name, Tensor t)
        {
            var shape = new TensorShapeProto();
            for (int i = 0; i < t.Rank; i++)
                shape.Dim.Add(i == 0 ? new TensorShapeProto.Types.Dimension { DimParam = "batch" } : new TensorShapeProto.Types.Dimension { DimValue = t.Shape[i] });
            int type = t.DType == DType.Float64 ? (int)TensorProto.Types.DataType.Double : (int)TensorProto.Types.DataType.Float;
            return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = type, Shape = shape } } };
        }

        public void Write(List<RecordedOp> ops, Tensor output)
        {
            // The producer of a tensor is the last op that returned it (an outer op records after its inner ones).
            var producer = new Dictionary<Tensor, int>(ReferenceEqualityComparer.Instance);
            for (int i = 0; i < ops.Count; i++) producer[ops[i].Output] = i;
            var needed = new SortedSet<int>();
            var stack = new Stack<Tensor>([output]);
            var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
            while (stack.Count > 0)
            {
                var t = stack.Pop();
                if (!seen.Add(t) || _names.ContainsKey(t) || !producer.TryGetValue(t, out var i)) continue;
                needed.Add(i);
                foreach (var u in ops[i].Inputs) if (u != null) stack.Push(u);
            }
            foreach (var i in needed) Emit(ops[i]);
            if (!_names.ContainsKey(output)) throw new ArgumentException("export: the model's output does not depend on its input through ops ConvLab can export");
            // The graph's output is called "output" (as PyTorch's exporter names it in the usual call), whatever node made it.
            var outName = _names[output];
            if (outName != "input" && !_initialized.Contains(outName) && !outName.StartsWith("const_", StringComparison.Ordinal))
            {
                foreach (var node in Graph.Node)
                {
                    for (int i = 0; i < node.Output.Count; i++) if (node.Output[i] == outName) node.Output[i] = "output";
                    for (int i = 0; i < node.Input.Count; i++) if (node.Input[i] == outName) node.Input[i] = "output";
                }
                outName = "output";
            }
            Graph.Output.Add(ValueInfo(outName, output));
        }

        /// <summary>The graph name of an op's operand: the input, an earlier node's output, a state-dict initializer, or a new constant.</summary>
        private string Ref(Tensor t, string op)
        {
            if (_names.TryGetValue(t, out var n)) return n;
            if (_state.TryGetValue(t, out var s))
            {
                if (_initialized.Add(s)) Graph.Initializer.Add(OnnxTensor.FromTensor(t.Detach().Contiguous(), s));
                return _names[t] = s;
            }
            if (t.GradFn != null)
                throw new ArgumentException($"export: a tensor made by {t.GradFn.Name} feeds '{op}', and that op has no ONNX export");
            return _names[t] = Constant(t.Detach().Contiguous());
        }

        private bool IsZeroConstant(Tensor t) =>
            !_names.ContainsKey(t) && !_state.ContainsKey(t) && t.GradFn == null && t.Contiguous().ToDoubleArray().All(v => v == 0);

        private string Constant(Tensor t)
        {
            string name = $"const_{_next++}";
            Graph.Initializer.Add(OnnxTensor.FromTensor(t, name));
            return name;
        }

        private string Ints(params long[] v) => Constant(Tensor.FromArray(v, v.Length));

        private string Floats(params double[] v) => Constant(Tensor.FromArray(v.Select(d => (float)d).ToArray(), v.Length));

        private string Scalar(double v) => Constant(Tensor.Scalar(v, _dtype));

        private NodeProto Node(string opType, string[] inputs, string? output = null)
        {
            var node = new NodeProto { OpType = opType, Name = $"{opType}_{_next++}" };
            node.Input.AddRange(inputs);
            node.Output.Add(output ?? $"{node.Name}_out");
            Graph.Node.Add(node);
            return node;
        }

        private static void Attr(NodeProto n, string name, long v) => n.Attribute.Add(new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = v });

        private static void Attr(NodeProto n, string name, float v) => n.Attribute.Add(new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = v });

        private static void Attr(NodeProto n, string name, string v) => n.Attribute.Add(new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.String, S = Google.Protobuf.ByteString.CopyFromUtf8(v) });

        private static void Attr(NodeProto n, string name, IEnumerable<int> v)
        {
            var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
            a.Ints.AddRange(v.Select(i => (long)i));
            n.Attribute.Add(a);
        }

        private static T A<T>(RecordedOp op, string name) => (T)op.Attributes[name]!;

        private void Emit(RecordedOp op)
        {
            var ins = op.Inputs;
            string X(int i) => Ref(ins[i]!, op.Op);
            string[] Present(params int[] idx) => idx.Where(i => ins[i] != null).Select(X).ToArray();
            string? last;
            switch (op.Op)
            {
                case "conv1d" or "conv2d" or "conv3d" or "coord_conv2d":
                {
                    var n = Node("Conv", Present(0, 1, 2));
                    Attr(n, "kernel_shape", ins[1]!.Shape[2..].ToArray());
                    Attr(n, "strides", A<int[]>(op, "stride"));
                    Attr(n, "pads", A<int[]>(op, "pad_begin").Concat(A<int[]>(op, "pad_end")));
                    Attr(n, "dilations", A<int[]>(op, "dilation"));
                    Attr(n, "group", A<int>(op, "groups"));
                    last = n.Output[0];
                    break;
                }
                case "conv_transpose1d" or "conv_transpose2d" or "conv_transpose3d":
                {
                    var n = Node("ConvTranspose", Present(0, 1, 2));
                    var p = A<int[]>(op, "padding");
                    Attr(n, "kernel_shape", ins[1]!.Shape[2..].ToArray());
                    Attr(n, "strides", A<int[]>(op, "stride"));
                    Attr(n, "pads", p.Concat(p));
                    Attr(n, "output_padding", A<int[]>(op, "output_padding"));
                    Attr(n, "dilations", A<int[]>(op, "dilation"));
                    Attr(n, "group", A<int>(op, "groups"));
                    last = n.Output[0];
                    break;
                }
                case "deform_conv2d":
                {
                    var s = A<DeformConvShape>(op, "shape");
                    // Zero offsets without a mask are a plain convolution;
                    // writing Conv keeps the batch axis dynamic instead of baking in a batch-sized zero tensor.
                    if (ins[4] == null && IsZeroConstant(ins[1]!))
                    {
                        var c = Node("Conv", ins[3] != null ? [X(0), X(2), X(3)] : [X(0), X(2)]);
                        Attr(c, "kernel_shape", [s.Kh, s.Kw]);
                        Attr(c, "strides", [s.Sh, s.Sw]);
                        Attr(c, "pads", [s.Ph, s.Pw, s.Ph, s.Pw]);
                        Attr(c, "dilations", [s.Dh, s.Dw]);
                        Attr(c, "group", s.Groups);
                        last = c.Output[0];
                        break;
                    }
                    string bias = ins[3] != null ? X(3) : "";
                    var inputs = new List<string> { X(0), X(2), X(1), bias };
                    if (ins[4] != null) inputs.Add(X(4));
                    var n = Node("DeformConv", inputs.ToArray());
                    Attr(n, "kernel_shape", [s.Kh, s.Kw]);
                    Attr(n, "strides", [s.Sh, s.Sw]);
                    Attr(n, "pads", [s.Ph, s.Pw, s.Ph, s.Pw]);
                    Attr(n, "dilations", [s.Dh, s.Dw]);
                    Attr(n, "group", s.Groups);
                    Attr(n, "offset_group", s.OffsetGroups);
                    last = n.Output[0];
                    break;
                }
                case "max_pool1d" or "max_pool2d" or "max_pool3d":
                {
                    var n = Node("MaxPool", [X(0)]);
                    var p = A<int[]>(op, "padding");
                    Attr(n, "kernel_shape", A<int[]>(op, "kernel_size"));
                    Attr(n, "strides", A<int[]>(op, "stride"));
                    Attr(n, "pads", p.Concat(p));
                    Attr(n, "dilations", A<int[]>(op, "dilation"));
                    Attr(n, "ceil_mode", A<bool>(op, "ceil_mode") ? 1 : 0);
                    last = n.Output[0];
                    break;
                }
                case "avg_pool1d" or "avg_pool2d" or "avg_pool3d":
                {
                    if (op.Attributes["divisor_override"] != null) throw new ArgumentException($"export: {op.Op} with divisor_override has no ONNX form");
                    var n = Node("AveragePool", [X(0)]);
                    var p = A<int[]>(op, "padding");
                    Attr(n, "kernel_shape", A<int[]>(op, "kernel_size"));
                    Attr(n, "strides", A<int[]>(op, "stride"));
                    Attr(n, "pads", p.Concat(p));
                    Attr(n, "ceil_mode", A<bool>(op, "ceil_mode") ? 1 : 0);
                    // Written always: ONNX's default (0) differs from PyTorch's (true).
                    Attr(n, "count_include_pad", A<bool>(op, "count_include_pad") ? 1 : 0);
                    last = n.Output[0];
                    break;
                }
                case "adaptive_avg_pool1d" or "adaptive_avg_pool2d" or "adaptive_avg_pool3d"
                    or "adaptive_max_pool1d" or "adaptive_max_pool2d" or "adaptive_max_pool3d":
                    last = Adaptive(op, X(0));
                    break;
                case "batch_norm":
                {
                    var c = ins[0]!.Shape[1];
                    if (ins[3] == null || ins[4] == null) throw new ArgumentException("export: batch_norm without running statistics has no inference form");
                    string scale = ins[1] != null ? X(1) : Constant(Tensor.Ones([c], _dtype));
                    string bias = ins[2] != null ? X(2) : Constant(Tensor.Zeros([c], _dtype));
                    var n = Node("BatchNormalization", [X(0), scale, bias, X(3), X(4)]);
                    Attr(n, "epsilon", (float)A<double>(op, "eps"));
                    Attr(n, "momentum", (float)(1 - A<double>(op, "momentum")));
                    last = n.Output[0];
                    break;
                }
                case "softmax" or "log_softmax":
                {
                    var n = Node(op.Op == "softmax" ? "Softmax" : "LogSoftmax", [X(0)]);
                    Attr(n, "axis", A<int>(op, "dim"));
                    last = n.Output[0];
                    break;
                }
                case "linear":
                {
                    var x = ins[0]!;
                    if (x.Rank == 2)
                    {
                        var n = Node("Gemm", Present(0, 1, 2));
                        Attr(n, "transB", 1);
                        last = n.Output[0];
                    }
                    else
                    {
                        var wt = Node("Transpose", [X(1)]);
                        Attr(wt, "perm", [1, 0]);
                        last = Node("MatMul", [X(0), wt.Output[0]]).Output[0];
                        if (ins[2] != null) last = Node("Add", [last, X(2)]).Output[0];
                    }
                    break;
                }
                case "pad":
                {
                    var p = A<int[]>(op, "pad");
                    int r = ins[0]!.Rank, m = p.Length / 2;
                    var pads = new long[2 * r];
                    for (int j = 0; j < m; j++) { pads[r - 1 - j] = p[2 * j]; pads[r + r - 1 - j] = p[2 * j + 1]; }
                    string mode = A<string>(op, "mode") switch
                    {
                        "constant" => "constant",
                        "reflect" => "reflect",
                        "replicate" => "edge",
                        "circular" when _opset >= 19 => "wrap",
                        var md => throw new ArgumentException($"export: pad mode '{md}' needs opset 19 (wrap), got {_opset}"),
                    };
                    var n = Node("Pad", [X(0), Ints(pads), Scalar(A<double>(op, "value"))]);
                    Attr(n, "mode", mode);
                    last = n.Output[0];
                    break;
                }
                case "interpolate":
                    last = Resize(op, X(0));
                    break;
                case "cat":
                {
                    var n = Node("Concat", Enumerable.Range(0, ins.Length).Select(X).ToArray());
                    Attr(n, "axis", A<int>(op, "dim"));
                    last = n.Output[0];
                    break;
                }
                case "add" or "sub" or "mul" or "div":
                    last = Node(char.ToUpperInvariant(op.Op[0]) + op.Op[1..], [X(0), X(1)]).Output[0];
                    break;
                case "view":
                {
                    var x = ins[0]!; var shape = A<int[]>(op, "shape");
                    if (shape.Length == 2 && x.Rank >= 2 && shape[0] == x.Shape[0])
                    {
                        var n = Node("Flatten", [X(0)]);
                        Attr(n, "axis", 1);
                        last = n.Output[0];
                    }
                    else
                    {
                        // A leading size equal to the input's is the batch: 0 copies it, so the batch axis stays dynamic.
                        var s = shape.Select(v => (long)v).ToArray();
                        if (s.Length > 0 && x.Rank > 0 && s[0] == x.Shape[0]) s[0] = 0;
                        last = Node("Reshape", [X(0), Ints(s)]).Output[0];
                    }
                    break;
                }
                case "permute":
                {
                    var n = Node("Transpose", [X(0)]);
                    Attr(n, "perm", A<int[]>(op, "dims"));
                    last = n.Output[0];
                    break;
                }
                case "slice":
                    last = Node("Slice", [X(0), Ints(A<int>(op, "start")), Ints(A<int>(op, "end")), Ints(A<int>(op, "dim")), Ints(A<int>(op, "step"))]).Output[0];
                    break;
                case "exp":
                    last = Node("Exp", [X(0)]).Output[0];
                    break;
                case "pow":
                    last = Node("Pow", [X(0), Scalar(A<double>(op, "exponent"))]).Output[0];
                    break;
                case "clone":
                    last = Node("Identity", [X(0)]).Output[0];
                    break;
                default:
                    if (op.Attributes.TryGetValue("spec", out var spec) && spec is ActSpec a) { last = Activation(op.Op, a, X(0)); break; }
                    throw new ArgumentException($"export: op '{op.Op}' has no ONNX export");
            }
            _names[op.Output] = last;
        }

        private string Activation(string name, ActSpec a, string x)
        {
            switch (a.Kind)
            {
                case ActKind.Relu: return Node("Relu", [x]).Output[0];
                case ActKind.Sigmoid: return Node("Sigmoid", [x]).Output[0];
                case ActKind.Tanh: return Node("Tanh", [x]).Output[0];
                case ActKind.Hardswish: return Node("HardSwish", [x]).Output[0];
                case ActKind.Relu6: return Node("Clip", [x, Scalar(0), Scalar(6)]).Output[0];
                case ActKind.Silu: return Node("Mul", [x, Node("Sigmoid", [x]).Output[0]]).Output[0];
                case ActKind.LeakyRelu: { var n = Node("LeakyRelu", [x]); Attr(n, "alpha", (float)a.A); return n.Output[0]; }
                case ActKind.Elu: { var n = Node("Elu", [x]); Attr(n, "alpha", (float)a.A); return n.Output[0]; }
                case ActKind.Hardsigmoid: { var n = Node("HardSigmoid", [x]); Attr(n, "alpha", 1f / 6); Attr(n, "beta", 0.5f); return n.Output[0]; }
                case ActKind.Softplus when a.A == 1: return Node("Softplus", [x]).Output[0];
                case ActKind.Gelu:
                {
                    // 0.5·x·(1 + erf(x/√2)).
                    var e = Node("Erf", [Node("Mul", [x, Scalar(1 / Math.Sqrt(2))]).Output[0]]).Output[0];
                    var one = Node("Add", [e, Scalar(1)]).Output[0];
                    return Node("Mul", [Node("Mul", [x, Scalar(0.5)]).Output[0], one]).Output[0];
                }
                default: throw new ArgumentException($"export: activation {name} ({a.Kind}) has no ONNX export");
            }
        }

        private string Adaptive(RecordedOp op, string x)
        {
            bool max = op.Op.StartsWith("adaptive_max", StringComparison.Ordinal);
            var outSize = A<int[]>(op, "output_size");
            var inSize = InputSpatial(op);
            if (outSize.All(o => o == 1)) return Node(max ? "GlobalMaxPool" : "GlobalAveragePool", [x]).Output[0];
            if (inSize.Zip(outSize).All(p => p.First % p.Second == 0))
            {
                // Equal windows: a plain pooling with kernel = stride = in/out.
                var k = inSize.Zip(outSize, (i, o) => i / o).ToArray();
                var n = Node(max ? "MaxPool" : "AveragePool", [x]);
                Attr(n, "kernel_shape", k);
                Attr(n, "strides", k);
                if (!max) Attr(n, "count_include_pad", 1);
                return n.Output[0];
            }
            if (inSize.Zip(outSize).All(p => p.Second % p.First == 0))
            {
                // Each window is one input pixel: nearest upsampling.
                var scales = new double[] { 1, 1 }.Concat(inSize.Zip(outSize, (i, o) => (double)o / i)).ToArray();
                var n = Node("Resize", [x, "", Floats(scales)]);
                Attr(n, "mode", "nearest"); Attr(n, "coordinate_transformation_mode", "asymmetric"); Attr(n, "nearest_mode", "floor");
                return n.Output[0];
            }
            throw new ArgumentException($"export: {op.Op} from {ShapeUtil.Format(inSize)} to {ShapeUtil.Format(outSize)} has uneven windows, which ONNX pooling cannot express; choose an input size that divides evenly");
        }

        private static int[] InputSpatial(RecordedOp op)
        {
            var outSize = (int[])op.Attributes["output_size"]!;
            return op.Inputs[0]!.Shape[^outSize.Length..].ToArray();
        }

        private string Resize(RecordedOp op, string x)
        {
            string mode = A<string>(op, "mode");
            bool corners = A<bool>(op, "align_corners");
            var size = A<int[]>(op, "size");
            var sf = op.Attributes["scale_factor"] as double[];
            string scales = "", sizes = "";
            if (sf != null && !corners)
                scales = Floats([1, 1, .. Enumerable.Range(0, size.Length).Select(i => sf[sf.Length == 1 ? 0 : i])]);
            else
            {
                // Sizes need the batch and channels of this input: read them from its shape so the batch stays dynamic.
                var shape = Node("Shape", [x]).Output[0];
                var nc = Node("Slice", [shape, Ints(0), Ints(2)]).Output[0];
                var cat = Node("Concat", [nc, Ints([.. size.Select(v => (long)v)])]);
                Attr(cat, "axis", 0);
                sizes = cat.Output[0];
            }
            var n = Node("Resize", sizes == "" ? [x, "", scales] : [x, "", "", sizes]);
            if (mode == "nearest")
            {
                Attr(n, "mode", "nearest");
                Attr(n, "coordinate_transformation_mode", "asymmetric");
                Attr(n, "nearest_mode", "floor");
            }
            else
            {
                Attr(n, "mode", "linear");
                Attr(n, "coordinate_transformation_mode", corners ? "align_corners" : "half_pixel");
            }
            return n.Output[0];
        }
    }
}
