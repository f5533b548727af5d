using ConvLab.Autograd;

namespace ConvLab.NN;

/// <summary>
/// Inference-time rewrites that remove work without changing results (up to rounding), as PyTorch's
/// <c>torch.nn.utils.fusion.fuse_conv_bn_eval</c> and <c>torch.ao.quantization.fuse_modules</c> do.
/// </summary>
public static class Fusion
{
    /// <summary>
    /// Folds every batch norm whose input is exactly the output of a convolution into that convolution, for inference:
    /// with s = γ / √(running_var + ε), the convolution's weight becomes W·s per output channel and its bias
    /// (added if it had none) (b − running_mean)·s + β; the batch norm then passes its input through. Returns the
    /// folded pairs as state-dict paths.
    /// </summary>
    /// <remarks>
    /// The pairs are found by running one forward pass at batch 1 on zeros of <paramref name="inputShape"/> (without
    /// batch) and reading the autograd graph: a pair is folded only when the convolution (not transposed) and the
    /// batch norm are each called once and the batch norm is the convolution output's only consumer, so a model whose
    /// forward reuses a conv output elsewhere keeps that pair. The model must be in evaluation mode; the rewrite
    /// is one-way (the state dict then holds the folded weights), and a folded batch norm refuses to run in training
    /// mode.
    /// </remarks>
    /// <exception cref="ArgumentException">The model is in training mode, or the input shape does not fit it.</exception>
    public static IReadOnlyList<(string Conv, string BatchNorm)> FoldBatchNorm(Module model, int[] inputShape)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(inputShape);
        if (model.Training)
            throw new ArgumentException("fold_batch_norm: the model is in training mode; call Eval() first (folding uses the running statistics)");
        if (inputShape.Length == 0 || inputShape.Any(d => d < 1))
            throw new ArgumentException($"fold_batch_norm: input shape must have positive sizes, got {ShapeUtil.Format(inputShape)}");

        // A tracer sees every module call of a real forward with its input and output tensors.
        var tracer = new Analysis.Tracer(model, 1);
        Tensor output;
        using (tracer.Activate())
        using (GradMode.Enable())
            output = model.Call(Tensor.Zeros([1, .. inputShape], model.Parameters().FirstOrDefault()?.DType ?? DType.Float32));
        var calls = tracer.Invocations;

        var consumers = Consumers(output);
        var callCount = new Dictionary<Module, int>(ReferenceEqualityComparer.Instance);
        foreach (var (m, _, _) in calls) callCount[m] = callCount.GetValueOrDefault(m) + 1;
        var producer = new Dictionary<Tensor, Module>(ReferenceEqualityComparer.Instance);
        foreach (var (m, _, o) in calls) producer.TryAdd(o, m);

        var folded = new List<(string, string)>();
        foreach (var (m, input, _) in calls)
        {
            if (m is not BatchNormNd bn || bn.FoldedInto != null || !producer.TryGetValue(input, out var p) || p is not ConvNd conv) continue;
            if (callCount[bn] != 1 || callCount[conv] != 1 || consumers.GetValueOrDefault(input) != 1 || bn.RunningMean == null) continue;
            if (conv.OutChannels != bn.NumFeatures) continue;
            Fold(conv, bn);
            bn.FoldedInto = tracer.PathOf(conv);
            folded.Add((bn.FoldedInto, tracer.PathOf(bn)));
        }
        return folded;
    }

    /// <summary>
    /// Rewrites a classifier whose head is Flatten followed by fully connected layers into a fully convolutional network
    /// with the same weights (the FC-as-convolution view of OverFeat and FCN): the first Linear after the flatten of a
    /// (C, H, W) map becomes a Conv2d with an H×W kernel whose weight is the Linear weight reshaped to (out, C, H, W),
    /// every later Linear a 1×1 convolution, the Flatten an Identity, and an adaptive pooling right before the flatten
    /// that is the identity at <paramref name="inputShape"/> an Identity too (otherwise it would squeeze a larger canvas
    /// back to the training size). At the training size the model then returns the same logits as (N, classes, 1, 1);
    /// on a larger canvas, a dense (N, classes, h, w) map of window scores. Returns the replaced layers as
    /// (state-dict path, new layer).
    /// </summary>
    /// <remarks>
    /// The head is read from one forward of a meta input (no arithmetic, no state change): after the flatten only
    /// Linear, element-wise activations, Dropout and Identity may run, each on the previous one's output. Every replaced
    /// layer must be an element of a <see cref="Sequential"/> (true of the zoo's classifiers and of spec models); the
    /// state-dict keys keep their names, the Linear weights their trainability. The rewrite is in place and one-way.
    /// </remarks>
    /// <exception cref="ArgumentException">The input shape does not fit, no Flatten of a (C, H, W) map is followed by a
    /// Linear, another layer runs in the head, or a layer to replace is not inside a Sequential.</exception>
    public static IReadOnlyList<(string Path, Module Replacement)> Convolutionalize(Module model, int[] inputShape)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(inputShape);
        if (inputShape.Length != 3 || inputShape.Any(d => d < 1))
            throw new ArgumentException($"convolutionalize: input shape must be (C, H, W) with positive sizes, got {ShapeUtil.Format(inputShape)}");

        // Batch 2: a batch norm in training mode refuses a batch of one.
        var tracer = new Analysis.Tracer(model, 2);
        using (tracer.Activate())
            model.Call(Tensor.Meta([2, .. inputShape], model.Parameters().FirstOrDefault()?.DType ?? DType.Float32));
        var leaves = tracer.Invocations.Where(c => !c.Module.NamedChildren().Any()).ToList();
        int flat = leaves.FindIndex(c => c.Module is Flatten && c.Input.Rank == 4 && c.Output.Rank == 2);
        if (flat < 0)
            throw new ArgumentException($"convolutionalize: {model.GetType().Name} has no Flatten of an (N, C, H, W) map at input {ShapeUtil.Format(inputShape)}; the head must be Flatten + Linear");

        var replace = new List<(Module Old, Module New)> { (leaves[flat].Module, new Identity()) };
        var map = leaves[flat].Input.Shape.ToArray();
        if (flat > 0 && leaves[flat - 1] is var (pool, pin, pout) && ReferenceEquals(pout, leaves[flat].Input)
            && pool is AdaptiveAvgPoolNd or AdaptiveMaxPoolNd && pin.Shape.SequenceEqual(pout.Shape))
            replace.Add((pool, new Identity()));
        var previous = leaves[flat].Output;
        bool first = true;
        foreach (var (m, input, output) in leaves.Skip(flat + 1))
        {
            if (!ReferenceEquals(input, previous))
                throw new ArgumentException($"convolutionalize: {tracer.PathOf(m)} does not take the previous head layer's output; the head after the Flatten must be a chain");
            previous = output;
            if (m is Linear linear)
            {
                int[] kernel = first ? [map[2], map[3]] : [1, 1];
                int inChannels = first ? map[1] : linear.InFeatures;
                replace.Add((linear, ConvOf(linear, inChannels, kernel)));
                first = false;
            }
            else if (m is not (ActivationModule and not (Softmax or LogSoftmax) or Dropout or Identity))
                throw new ArgumentException($"convolutionalize: {tracer.PathOf(m)} ({m.GetType().Name}) runs in the head after the Flatten; only Linear, element-wise activations, Dropout and Identity can become convolutional");
        }
        if (first)
            throw new ArgumentException($"convolutionalize: no Linear follows the Flatten at {tracer.PathOf(leaves[flat].Module)}");

        var byPath = model.NamedModules().ToDictionary(p => p.Name, p => p.Module);
        var result = new List<(string, Module)>();
        foreach (var (old, replacement) in replace)
        {
            string path = tracer.PathOf(old);
            int dot = path.LastIndexOf('.');
            if (byPath.GetValueOrDefault(dot < 0 ? "" : path[..dot]) is not Sequential parent
                || !int.TryParse(path[(dot + 1)..], System.Globalization.CultureInfo.InvariantCulture, out int index))
                throw new ArgumentException($"convolutionalize: {path} ({old.GetType().Name}) is not an element of a Sequential, so it cannot be replaced");
            parent.Replace(index, replacement);
            result.Add((path, replacement));
        }
        return result;
    }

    /// <summary>A Conv2d computing <paramref name="linear"/> on a (in, kernel) window: the weight reshaped, the bias as it is.</summary>
    private static Conv2d ConvOf(Linear linear, int inChannels, int[] kernel)
    {
        var conv = new Conv2d(inChannels, linear.OutFeatures, kernel, bias: linear.Bias != null);
        using var _ = new NoGrad();
        conv.Weight.Copy_(linear.Weight.Reshape(linear.OutFeatures, inChannels, kernel[0], kernel[1]));
        conv.Bias?.Copy_(linear.Bias!);
        conv.Weight.RequiresGrad = linear.Weight.RequiresGrad;
        if (conv.Bias != null) conv.Bias.RequiresGrad = linear.Bias!.RequiresGrad;
        return conv;
    }

    /// <summary>How many recorded ops read each tensor of the graph that produced <paramref name="output"/>.</summary>
    private static Dictionary<Tensor, int> Consumers(Tensor output)
    {
        var count = new Dictionary<Tensor, int>(ReferenceEqualityComparer.Instance);
        if (output.GradFn == null) return count;
        var seen = new HashSet<Node>(ReferenceEqualityComparer.Instance) { output.GradFn };
        var stack = new Stack<Node>([output.GradFn]);
        while (stack.Count > 0)
            foreach (var t in stack.Pop().Inputs)
            {
                if (t == null) continue;
                count[t] = count.GetValueOrDefault(t) + 1;
                if (t.GradFn is { } fn && seen.Add(fn)) stack.Push(fn);
            }
        return count;
    }

    private static void Fold(ConvNd conv, BatchNormNd bn)
    {
        using var _ = new NoGrad();
        int c = conv.OutChannels, perChannel = conv.Weight.Numel / c;
        var mean = bn.RunningMean!.ToDoubleArray();
        var variance = bn.RunningVar!.ToDoubleArray();
        var gamma = bn.Weight?.ToDoubleArray();
        var beta = bn.Bias?.ToDoubleArray();
        var w = conv.Weight.ToDoubleArray();
        var bias = conv.EnsureBias();
        var b = bias.ToDoubleArray();
        for (int o = 0; o < c; o++)
        {
            double s = (gamma?[o] ?? 1) / Math.Sqrt(variance[o] + bn.Eps);
            for (int k = 0; k < perChannel; k++) w[o * perChannel + k] *= s;
            b[o] = (b[o] - mean[o]) * s + (beta?[o] ?? 0);
        }
        conv.Weight.Copy_(Tensor.FromArray(w, conv.Weight.Shape.ToArray()).To(conv.Weight.DType));
        bias.Copy_(Tensor.FromArray(b, [c]).To(bias.DType));
    }
}
