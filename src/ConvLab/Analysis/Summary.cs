using ConvLab.NN;

namespace ConvLab.Analysis;

/// <summary>One row of a <see cref="ModelSummary"/>: a leaf module's call, or a functional op (relu, add, cat, ...) run directly in a composite module.</summary>
/// <param name="Name">State-dict path of the module (<c>layer1.0.conv1</c>); for a functional op, the path of the module whose forward runs it.</param>
/// <param name="Type">Module class (<c>Conv2d</c>) or functional op name (<c>relu</c>, <c>add</c>).</param>
/// <param name="OutputShape">Output shape without the batch dimension.</param>
/// <param name="Params">Parameters owned by the module (counted at its first call only).</param>
/// <param name="TrainableParams">Those of <paramref name="Params"/> that require grad.</param>
/// <param name="Macs">Multiply-adds per sample (conv/linear only).</param>
/// <param name="Flops">Floating-point operations per sample (2·MACs + bias adds for conv/linear; per-element ops otherwise).</param>
/// <param name="ActivationBytes">Bytes of the output per sample.</param>
/// <param name="ReceptiveField">Receptive-field size per spatial dimension, in input pixels (empty when unknown).</param>
/// <param name="Jump">Effective stride per spatial dimension (input pixels between neighbouring outputs).</param>
/// <param name="Start">Centre of the first output's receptive field per spatial dimension, in input pixel coordinates.</param>
/// <param name="Explain">The worked formulas behind the row's numbers.</param>
public sealed record LayerSummary(string Name, string Type, int[] OutputShape, long Params, long TrainableParams, long Macs, long Flops,
    long ActivationBytes, double[] ReceptiveField, double[] Jump, double[] Start, IReadOnlyList<Quantity> Explain);

/// <summary>Training-memory estimate at a batch size: parameters + gradients + optimizer state + activations kept for backward + workspace.</summary>
/// <param name="Optimizer">Optimizer name (sgd, momentum, rmsprop, adam, adamw).</param>
/// <param name="Batch">Batch size.</param>
/// <param name="ParamBytes">Parameters and buffers.</param>
/// <param name="GradientBytes">One gradient per trainable parameter.</param>
/// <param name="OptimizerBytes">Optimizer state (slots per trainable parameter).</param>
/// <param name="ActivationBytes">Every tensor the forward keeps alive for backward at this batch (outputs, pooling indices, normalised inputs, dropout masks, the input).</param>
/// <param name="WorkspaceBytes">Scratch memory: the optimizer's two vectors of the largest parameter, plus the largest convolution column buffer.</param>
/// <param name="Explain">The worked formulas.</param>
public sealed record MemoryEstimate(string Optimizer, int Batch, long ParamBytes, long GradientBytes, long OptimizerBytes, long ActivationBytes,
    long WorkspaceBytes, IReadOnlyList<Quantity> Explain)
{
    /// <summary>The total.</summary>
    public long TotalBytes => ParamBytes + GradientBytes + OptimizerBytes + ActivationBytes + WorkspaceBytes;
}

/// <summary>The calculator's answer for one model and input: per-layer rows, totals and the training-memory estimate.</summary>
/// <param name="Input">Input shape without the batch dimension (C, H, W).</param>
/// <param name="Batch">Batch size used for the memory estimate.</param>
/// <param name="OutputShape">The model's output shape without the batch dimension.</param>
/// <param name="Layers">Rows in execution order.</param>
/// <param name="Params">All parameters of the model.</param>
/// <param name="TrainableParams">Parameters that require grad.</param>
/// <param name="Macs">Total multiply-adds per sample.</param>
/// <param name="Flops">Total FLOPs per sample.</param>
/// <param name="ActivationBytes">Sum of the rows' output bytes per sample.</param>
/// <param name="ModelBytes">Parameters and buffers in bytes.</param>
/// <param name="Memory">Training-memory estimate at <paramref name="Batch"/>.</param>
public sealed record ModelSummary(int[] Input, int Batch, int[] OutputShape, IReadOnlyList<LayerSummary> Layers, long Params, long TrainableParams,
    long Macs, long Flops, long ActivationBytes, long ModelBytes, MemoryEstimate Memory);

/// <summary>
/// Shape inference and cost analysis of any module without running its arithmetic: the forward runs on
/// <see cref="Tensor.Meta">meta tensors</see> at full size while a tracer collects each op's shape, cost, receptive
/// field and the memory the graph keeps.
/// </summary>
public static class Summary
{
    /// <summary>
    /// Summarises <paramref name="model"/> for an input of shape <paramref name="input"/> (without batch, e.g. [3, 224, 224])
    /// at batch <paramref name="batch"/>, estimating training memory with <paramref name="optimizer"/>. The model is not
    /// modified (no running statistics or random state change).
    /// </summary>
    public static ModelSummary Of(Module model, int[] input, int batch = 1, string optimizer = "adam")
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(input);
        if (batch < 1) throw new ArgumentException($"summary: batch must be positive, got {batch}");
        if (input.Length == 0 || input.Any(d => d < 1))
            throw new ArgumentException($"summary: input shape must have positive sizes, got {ShapeUtil.Format(input)}");
        _ = Formulas.OptimizerSlots(optimizer); // rejects an unknown optimizer before any work

        var tracer = new Tracer(model, batch);
        var x = Tensor.Meta([batch, .. input]);
        tracer.SetGeometry(x, Geometry.Identity(Math.Max(0, input.Length - 1)));
        tracer.Keep(x);
        Tensor y;
        using (tracer.Activate()) y = model.Call(x);
        if (!y.IsMeta)
            throw new InvalidOperationException($"summary: {model.GetType().Name} produced a tensor with data from a meta input; an op in its forward lacks a meta branch");

        var rows = BuildRows(model, tracer);
        long paramsAll = model.ParameterCount(), trainable = model.ParameterCount(trainableOnly: true);
        long buffers = model.NamedBuffers().Sum(b => (long)b.Buffer.Numel * Tracer.ElementSize(b.Buffer.DType));
        long paramBytes = model.Parameters().Sum(p => (long)p.Numel * Tracer.ElementSize(p.DType));
        long modelBytes = paramBytes + buffers;

        var explain = new List<Quantity>
        {
            Formulas.Bytes(paramsAll, 4, "params") with { Value = modelBytes, Substituted = $"{paramsAll}*4 + {buffers} (buffers)" },
            Formulas.Bytes(trainable, 4, "grads"),
            Formulas.OptimizerBytes(optimizer, trainable),
        };
        long largest = model.Parameters().Where(p => p.RequiresGrad).Select(p => (long)p.Numel).DefaultIfEmpty(0).Max();
        long scratch = 2 * largest * 4;
        explain.Add(new Quantity("workspace", "2*max(P_i)*bytes (optimizer scratch) + conv columns", $"2*{largest}*4 + {tracer.WorkspaceBytes}", scratch + tracer.WorkspaceBytes));
        var total = Formulas.TrainingMemory(explain[0].Value, explain[1].Value, explain[2].Value, batch, (double)tracer.KeptBytes / batch, explain[3].Value);
        explain.Add(total);
        var memory = new MemoryEstimate(optimizer.ToLowerInvariant(), batch, modelBytes, explain[1].Int, explain[2].Int, tracer.KeptBytes, explain[3].Int, explain);

        return new ModelSummary((int[])input.Clone(), batch, y.Shape[1..].ToArray(), rows, paramsAll, trainable,
            rows.Sum(r => r.Macs), rows.Sum(r => r.Flops), rows.Sum(r => r.ActivationBytes), modelBytes, memory);
    }

    private static List<LayerSummary> BuildRows(Module model, Tracer tracer)
    {
        // A module's own parameters (not its children's) go to the first row it produced.
        var claimed = new HashSet<Module>(ReferenceEqualityComparer.Instance);
        var result = new List<LayerSummary>();
        foreach (var r in tracer.Rows)
        {
            long p = 0, pt = 0;
            if (r.Owner != null && claimed.Add(r.Owner))
                foreach (var (name, t) in r.Owner.NamedParameters())
                    if (!name.Contains('.')) { p += t.Numel; if (t.RequiresGrad) pt += t.Numel; }
            var shape = r.OutputShape.Length > 0 ? r.OutputShape[1..] : [];
            long bytes = (long)ShapeUtil.Numel(shape) * 4;
            var g = r.Geometry;
            result.Add(new LayerSummary(r.Name, r.Type, shape, p, pt, r.Macs, r.Flops, bytes,
                g?.Rf ?? [], g?.Jump ?? [], g?.Start ?? [], r.Explain));
        }
        return result;
    }

    /// <summary>Every module call of a forward of <paramref name="input"/> (meta or real) as (path, output shape with batch), in call order.</summary>
    public static IReadOnlyList<(string Path, int[] Shape)> TraceCalls(Module model, Tensor input)
    {
        var tracer = new Tracer(model, input.Rank > 0 ? input.Shape[0] : 1);
        using (tracer.Activate()) model.Call(input);
        return tracer.Calls;
    }
}
