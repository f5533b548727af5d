namespace ConvLab;

/// <summary>
/// Recycles tensor storage between the iterations of a loop that allocates the same shapes every time,
/// such as a training step. Without it every step hands tens of megabytes of fresh arrays to the GC (large
/// arrays are zeroed on allocation and only reclaimed by full collections). Inside
/// <see cref="Begin"/>…<see cref="End(IEnumerable{Tensor})"/> on one thread, new tensor storage is taken from the arrays that
/// earlier steps released; <see cref="End(IEnumerable{Tensor})"/> releases every array the step took except those reachable from
/// the tensors the caller names as living on (parameters, their gradients, buffers, optimizer state).
/// </summary>
/// <remarks>
/// The contract is the caller's: after <see cref="End(IEnumerable{Tensor})"/>, no tensor created during the step may be used
/// except those passed to it (read scalars such as the loss before ending the step). Storage allocated on
/// other threads (e.g. a data loader's prefetch worker) is never recycled.
/// </remarks>
public sealed class StorageRecycler
{
    [ThreadStatic] private static StorageRecycler? _active;

    private readonly Dictionary<(Type, int), Stack<Array>> _free = [];
    private readonly List<Array?> _taken = [];
    // Where each taken array sits in _taken, so one array can be handed back before the step ends.
    private readonly Dictionary<Array, int> _takenAt = new(ReferenceEqualityComparer.Instance);

    /// <summary>Bytes of storage handed out from recycled arrays since this recycler was made.</summary>
    public long BytesReused { get; private set; }

    /// <summary>Bytes of storage that had to be newly allocated inside steps since this recycler was made.</summary>
    public long BytesAllocated { get; private set; }

    /// <summary>
    /// Bytes of storage this recycler holds now: arrays taken by the open step plus arrays waiting in its free lists.
    /// </summary>
    public long HeldBytes { get; private set; }

    /// <summary>The largest <see cref="HeldBytes"/> since this recycler was made (what the loop cost in memory).</summary>
    public long PeakHeldBytes { get; private set; }
    /// <summary>Bytes of storage idle in the free lists: released by ended steps and not handed out again yet.</summary>
    public long PooledBytes => _free.Values.Sum(stack => stack.Sum(a => (long)Buffer.ByteLength(a)));

    /// <summary>True when a step of some recycler is open on the calling thread.</summary>
    internal static bool StepOpen => _active != null;

    /// <summary>Starts a step on the calling thread.</summary>
    /// <exception cref="InvalidOperationException">When a step is already open on this thread.</exception>
    public void Begin()
    {
        if (_active != null) throw new InvalidOperationException("StorageRecycler.Begin: a step is already open on this thread");
        _active = this;
    }

    /// <summary>
    /// Ends the step: every array taken during it returns to the free lists, except the storage of
    /// <paramref name="keep"/> (null entries are ignored).
    /// </summary>
    /// <exception cref="InvalidOperationException">When this recycler has no open step on this thread.</exception>
    public void End(IEnumerable<Tensor?> keep)
    {
        if (_active != this) throw new InvalidOperationException("StorageRecycler.End: no step of this recycler is open on this thread");
        _active = null;
        var kept = new HashSet<Array>(ReferenceEqualityComparer.Instance);
        foreach (var t in keep) if (t != null) kept.Add(t.Storage);
        foreach (var a in _taken)
        {
            if (a == null) continue;
            if (kept.Contains(a)) { HeldBytes -= Buffer.ByteLength(a); continue; }
            Free(a);
        }
        _taken.Clear();
        _takenAt.Clear();
    }

    /// <summary>
    /// Drops the free lists (their arrays go to the GC), e.g. before a loop's last, smaller iteration whose sizes the
    /// pool cannot serve: otherwise the pool would hold both sizes at once.
    /// </summary>
    public void Trim()
    {
        long dropped = 0;
        foreach (var stack in _free.Values)
            while (stack.Count > 0) dropped += Buffer.ByteLength(stack.Pop());
        _free.Clear();
        HeldBytes -= dropped;
        // Pooled arrays are large-object-heap arrays that only a full collection reclaims; without one the next,
        // differently sized allocations would come on top of them. Once per trim, never per step.
        if (dropped >= TrimCollectBytes) GC.Collect();
    }

    /// <summary>Dropping at least this many bytes in <see cref="Trim"/> runs one full collection.</summary>
    private const long TrimCollectBytes = 64L << 20;

    private void Free(Array a)
    {
        var key = (a.GetType(), a.Length);
        if (!_free.TryGetValue(key, out var stack)) _free[key] = stack = new Stack<Array>();
        stack.Push(a);
    }

    /// <summary>
    /// A position in the open step's allocations (-1 when no step is open on this thread), for
    /// <see cref="ReleaseSince"/>.
    /// </summary>
    internal static int Mark() => _active?._taken.Count ?? -1;

    /// <summary>
    /// Returns to the free lists, before the step ends, every array taken since <paramref name="mark"/> except those in
    /// <paramref name="keep"/>: the caller knows the rest is dead (e.g. a module call's temporaries once it returned).
    /// </summary>
    internal static void ReleaseSince(int mark, HashSet<Array> keep)
    {
        var r = _active;
        if (r == null || mark < 0 || mark > r._taken.Count) return;
        int kept = mark;
        for (int i = mark; i < r._taken.Count; i++)
        {
            var a = r._taken[i];
            if (a == null) continue;
            if (keep.Contains(a)) { r._taken[kept] = a; r._takenAt[a] = kept++; continue; }
            r._takenAt.Remove(a);
            r.Free(a);
        }
        r._taken.RemoveRange(kept, r._taken.Count - kept);
    }

    /// <summary>
    /// Returns one array taken in the open step, at or after <paramref name="sinceMark"/>, to the free lists now (ignored
    /// otherwise: parameters, inputs made before the step or the mark). The caller guarantees nothing uses it any more.
    /// </summary>
    internal static void Release(Array a, int sinceMark = 0)
    {
        var r = _active;
        if (r == null || !r._takenAt.TryGetValue(a, out int i) || i < sinceMark) return;
        r._takenAt.Remove(a);
        r._taken[i] = null;
        r.Free(a);
    }

    /// <summary>
    /// Ends a training step of <paramref name="model"/>: keeps its parameters, their gradients and its buffers (which a
    /// step may replace); everything else the step created returns to the free lists. Optimizer state is not tensor
    /// storage and is unaffected. Zero gradients in place (<c>ZeroGrad(setToNone: false)</c>) so they live in the same
    /// memory every step.
    /// </summary>
    public void End(NN.Module model) =>
        End(model.Parameters().SelectMany(p => new[] { p, p.Grad }).Concat(model.NamedBuffers().Select(b => b.Buffer)));

    /// <summary>
    /// New storage of <paramref name="n"/> elements, zeroed unless <paramref name="clear"/> is false (the caller
    /// overwrites it all); recycled when a step is open on this thread.
    /// </summary>
    internal static T[] Take<T>(int n, bool clear = true) where T : unmanaged
    {
        var r = _active;
        if (r == null) return clear ? new T[n] : GC.AllocateUninitializedArray<T>(n);
        T[] a;
        if (r._free.TryGetValue((typeof(T[]), n), out var stack) && stack.Count > 0)
        {
            a = (T[])stack.Pop();
            if (clear) Array.Clear(a);
            r.BytesReused += (long)n * System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        }
        else
        {
            a = clear ? new T[n] : GC.AllocateUninitializedArray<T>(n);
            long bytes = (long)n * System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
            r.BytesAllocated += bytes;
            r.HeldBytes += bytes;
            if (r.HeldBytes > r.PeakHeldBytes) r.PeakHeldBytes = r.HeldBytes;
        }
        r._takenAt[a] = r._taken.Count;
        r._taken.Add(a);
        return a;
    }
}
