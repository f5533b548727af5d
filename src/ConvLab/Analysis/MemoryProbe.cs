using ConvLab.NN;
using ConvLab.NN.Functional;
using ConvLab.Training;

namespace ConvLab.Analysis;

/// <summary>
/// Measures what the training-memory estimate of <see cref="Summary"/> predicts: the live managed bytes of a real
/// ConvLab training step at its peak (the forward graph alive, before backward frees it), after a warm-up step so
/// gradients, optimizer state and pooled scratch exist.
/// </summary>
/// <remarks>
/// The figure is process-wide (<see cref="GC.GetTotalMemory(bool)"/> after compacting collections), so it is only
/// meaningful when nothing else allocates or frees meanwhile and when earlier work has not left pooled scratch of the
/// same sizes behind: measure in a fresh process, as <c>convlab memory --measure</c> does.
/// </remarks>
public static class MemoryProbe
{
    /// <summary>
    /// Builds the model with <paramref name="createModel"/> (its parameters count as measured memory), runs training
    /// steps at <paramref name="batch"/> with <paramref name="optimizer"/> (sgd, momentum, rmsprop, adam, adamw) and
    /// measures the live bytes they hold.
    /// </summary>
    /// <remarks>
    /// A first model instance trains one step and is dropped: what stays alive afterwards is the kernels' scratch
    /// (pooled convolution workspaces, per-thread GEMM packing buffers) that every later step reuses. A second instance
    /// then trains one step and runs the forward pass of the next; the live bytes at that point (gradients, optimizer
    /// state and the graph kept for backward all alive) are the step's own memory. The measured step's backward is not
    /// run: it cannot raise the figure, which is taken before it. Every step runs inside one
    /// <see cref="StorageRecycler"/>, as the <see cref="Trainer"/>'s do, so later steps reuse the storage of earlier ones
    /// instead of leaving gigabytes of dead arrays for the collector (the process's resident size stays near the live
    /// set, and fresh zeroed pages are not faulted in for every step); storage idle in the recycler's free lists is not
    /// counted. The loss is cross-entropy for a [batch, classes] output and the mean square of the output otherwise.
    /// </remarks>
    /// <exception cref="ArgumentException">A non-positive batch or input size, or an unknown optimizer.</exception>
    public static MeasuredMemory MeasureTrainingStep(Func<Module> createModel, int[] input, int batch, string optimizer)
    {
        ArgumentNullException.ThrowIfNull(createModel);
        ArgumentNullException.ThrowIfNull(input);
        if (batch < 1) throw new ArgumentException($"memory probe: batch must be positive, got {batch}");
        if (input.Length == 0 || input.Any(d => d < 1))
            throw new ArgumentException($"memory probe: input shape must have positive sizes, got {ShapeUtil.Format(input)}");
        _ = Formulas.OptimizerSlots(optimizer);

        var recycler = new StorageRecycler();
        long baseline = LiveBytes();
        Steps(createModel, input, batch, optimizer, recycler, peak: null);
        long scratch = LiveBytes() - recycler.PooledBytes - baseline;
        long step = 0;
        Steps(createModel, input, batch, optimizer, recycler, peak: () => step = LiveBytes() - recycler.PooledBytes - baseline - scratch);
        GC.KeepAlive(recycler);
        return new MeasuredMemory(step, scratch);
    }

    /// <summary>One full training step; with <paramref name="peak"/>, also the next step's forward pass, then <paramref name="peak"/>.</summary>
    private static void Steps(Func<Module> createModel, int[] input, int batch, string optimizer, StorageRecycler recycler, Action? peak)
    {
        var model = createModel();
        model.Train();
        var opt = Create(optimizer, model.Parameters().Where(p => p.RequiresGrad));
        var x = Tensor.Randn([batch, .. input], new Generator(5));
        Tensor Loss()
        {
            var y = model.Call(x);
            if (y.Rank != 2) return (y * y).Mean();
            var target = Tensor.FromArray(Enumerable.Range(0, batch).Select(i => (long)(i % y.Size(1))).ToArray(), [batch]);
            return F.CrossEntropy(y, target);
        }
        recycler.Begin();
        try
        {
            Loss().Backward();
            opt.Step();
        }
        finally { recycler.End(model); }
        if (peak == null) return;
        recycler.Begin();
        try
        {
            var loss = Loss();
            peak();
            GC.KeepAlive(loss);
        }
        finally { recycler.End(model); }
        // The optimizer's state is part of the step's memory: keep it reachable until the peak has been taken.
        GC.KeepAlive(opt);
        GC.KeepAlive(model);
    }

    /// <summary>An optimizer by the estimator's names: plain SGD has no state, momentum and RMSprop one slot, Adam(W) two.</summary>
    private static Optimizer Create(string name, IEnumerable<Tensor> parameters) => name.ToLowerInvariant() switch
    {
        "sgd" or "none" => new SGD(parameters, 0.01),
        "momentum" or "sgd-momentum" or "sgd_momentum" => new SGD(parameters, 0.01, momentum: 0.9),
        "rmsprop" => new RMSprop(parameters),
        "adam" => new Adam(parameters),
        _ => new AdamW(parameters),
    };

    /// <summary>Live managed bytes after compacting full collections (free space left in the large-object heap would otherwise count as in use).</summary>
    private static long LiveBytes()
    {
        for (int i = 0; i < 2; i++)
        {
            System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
        }
        return GC.GetTotalMemory(false);
    }
}

/// <summary>Live managed bytes of a real training step, measured by <see cref="MemoryProbe"/>.</summary>
/// <param name="StepBytes">Parameters, buffers, gradients, optimizer state and the activations kept for backward, at the end of the forward pass.</param>
/// <param name="ScratchBytes">Kernel scratch that stays allocated between steps (pooled workspaces, per-thread GEMM packing buffers).</param>
public sealed record MeasuredMemory(long StepBytes, long ScratchBytes)
{
    /// <summary>Step plus scratch: what training holds at the peak of a step.</summary>
    public long TotalBytes => StepBytes + ScratchBytes;
}
