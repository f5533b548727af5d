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
