using System.Collections;
using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;

namespace ConvLab.Data;

/// <summary>
/// Batches a dataset into (input [B, C, H, W], target int64 [B]) pairs (PyTorch's <c>DataLoader</c> with the default
/// collate). Shuffling and augmentation are seeded from (seed, epoch), and each sample draws from its own generator,
/// so the batches are reproducible and identical with prefetch on or off. Each enumeration is one epoch and advances
/// <see cref="Epoch"/>; <see cref="GetEpoch"/> replays any epoch. With prefetch a worker thread builds up to two
/// batches ahead; its exceptions are rethrown to the consumer, and disposing the enumerator stops and joins it.
/// </summary>
public sealed class DataLoader : IEnumerable<(Tensor Input, Tensor Target)>
{
    private readonly IDataset _dataset;
    private readonly int _batchSize;
    private readonly bool _shuffle, _dropLast, _prefetch;
    private readonly ulong _seed;
    private readonly Transform? _transform;

    /// <summary>Creates a loader; <paramref name="batchSize"/> must be positive.</summary>
    public DataLoader(IDataset dataset, int batchSize, bool shuffle = false, ulong seed = 0, bool dropLast = false,
        Transform? transform = null, bool prefetch = true)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        if (batchSize <= 0) throw new ArgumentException($"DataLoader: batch_size must be positive, got {batchSize}");
        (_dataset, _batchSize, _shuffle, _seed, _dropLast, _transform, _prefetch) = (dataset, batchSize, shuffle, seed, dropLast, transform, prefetch);
    }

    /// <summary>The epoch the next enumeration produces (incremented by each <see cref="GetEnumerator"/>).</summary>
    public int Epoch { get; set; }

    /// <summary>Batches per epoch.</summary>
    public int BatchCount => _dropLast ? _dataset.Count / _batchSize : (_dataset.Count + _batchSize - 1) / _batchSize;

    /// <summary>Enumerates the next epoch.</summary>
    public IEnumerator<(Tensor Input, Tensor Target)> GetEnumerator() => GetEpoch(Epoch++).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>The batches of epoch <paramref name="epoch"/> (does not change <see cref="Epoch"/>).</summary>
    public IEnumerable<(Tensor Input, Tensor Target)> GetEpoch(int epoch)
    {
        int n = _dataset.Count, batches = BatchCount;
        var order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        if (_shuffle)
        {
            var g = new Generator(Mix(_seed, epoch, 0));
            for (int i = n - 1; i > 0; i--) { int j = g.NextInt(i + 1); (order[i], order[j]) = (order[j], order[i]); }
        }
        return _prefetch ? Prefetched(order, batches, epoch) : Sequential(order, batches, epoch);
    }

    private IEnumerable<(Tensor, Tensor)> Sequential(int[] order, int batches, int epoch)
    {
        for (int b = 0; b < batches; b++) yield return MakeBatch(order, b, epoch);
    }

    private IEnumerable<(Tensor, Tensor)> Prefetched(int[] order, int batches, int epoch)
    {
        // Capacity 1 plus the batch being built keeps the worker at most two batches ahead.
        using var queue = new BlockingCollection<(Tensor, Tensor)?>(1);
        using var cts = new CancellationTokenSource();
        ExceptionDispatchInfo? error = null;
        var worker = new Thread(() =>
        {
            try
            {
                for (int b = 0; b < batches && !cts.IsCancellationRequested; b++) queue.Add(MakeBatch(order, b, epoch), cts.Token);
            }
            catch (OperationCanceledException) when (cts.IsCancellationRequested) { }
            catch (Exception e) { error = ExceptionDispatchInfo.Capture(e); }
            finally { queue.CompleteAdding(); }
        }) { IsBackground = true, Name = "ConvLab.DataLoader prefetch" };
        worker.Start();
        // Only the enumerator references the guard, so an enumerator dropped without Dispose still stops the worker.
        var guard = new CancelOnCollect(cts);
        try
        {
            foreach (var item in queue.GetConsumingEnumerable()) yield return item!.Value;
            // CompleteAdding happens after the error is stored, so it is visible once the queue drains.
            error?.Throw();
        }
        finally
        {
            GC.SuppressFinalize(guard);
            cts.Cancel();
            worker.Join();
        }
    }

    private sealed class CancelOnCollect(CancellationTokenSource cts)
    {
        ~CancelOnCollect()
        {
            try { cts.Cancel(); }
            catch (ObjectDisposedException) { }
        }
    }

    private (Tensor, Tensor) MakeBatch(int[] order, int b, int epoch)
    {
        int start = b * _batchSize, count = Math.Min(_batchSize, order.Length - start);
        float[]? data = null;
        int[]? shape = null;
        var targets = new long[count];
        for (int k = 0; k < count; k++)
        {
            var (x, label) = _dataset.Get(order[start + k]);
            if (_transform != null) x = _transform.Apply(x, new Generator(Mix(_seed, epoch, 1 + (ulong)(start + k))));
            if (shape == null)
            {
                shape = x.Shape.ToArray();
                data = new float[count * x.Numel];
            }
            else if (!x.Shape.SequenceEqual(shape))
                throw new InvalidOperationException($"DataLoader: sample {order[start + k]} has shape {ShapeUtil.Format(x.Shape)} but sample {order[start]} has {ShapeUtil.Format(shape)}; samples in a batch must have one shape");
            x.Detach().Float().Read<float>().CopyTo(data.AsSpan(k * x.Numel));
            targets[k] = label;
        }
        return (new Tensor(data!, [count, .. shape!]), new Tensor(targets, [count]));
    }

    /// <summary>An independent stream for each (seed, epoch, slot): slot 0 shuffles, slot 1 + i augments sample i.</summary>
    private static ulong Mix(ulong seed, int epoch, ulong slot)
    {
        ulong h = seed;
        foreach (var v in new[] { (ulong)(uint)epoch, slot })
        {
            h ^= v + 0x9E3779B97F4A7C15UL + (h << 6) + (h >> 2);
            h = (h ^ (h >> 31)) * 0xBF58476D1CE4E5B9UL;
        }
        return h;
    }
}
