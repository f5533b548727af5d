using System.Runtime.CompilerServices;
using ConvLab.NN;

namespace ConvLab.Analysis;

/// <summary>
/// Where a feature map's pixels look in the input, per spatial dimension: receptive-field size, jump (input pixels
/// between neighbouring outputs) and start (centre of the first output's receptive field, input pixel coordinates).
/// <see cref="Global"/> marks a map that has seen the whole input (after flatten, fully connected or global pooling).
/// </summary>
internal sealed record Geometry(double[] Rf, double[] Jump, double[] Start, bool Global = false)
{
    public static Geometry Identity(int dims) =>
        new(Enumerable.Repeat(1.0, dims).ToArray(), Enumerable.Repeat(1.0, dims).ToArray(), new double[dims]);

    public int Dims => Rf.Length;

    /// <summary>The geometry after a layer sees the whole extent of each spatial dimension (sizes of the map).</summary>
    public Geometry Collapse(ReadOnlySpan<int> sizes)
    {
        if (Global || sizes.Length != Dims) return this with { Global = true };
        var rf = new double[Dims]; var st = new double[Dims];
        for (int i = 0; i < Dims; i++)
        {
            rf[i] = Formulas.ReceptiveFieldGlobal(Rf[i], Jump[i], sizes[i]).Value;
            st[i] = Start[i] + (sizes[i] - 1) * Jump[i] / 2;
        }
        return new(rf, (double[])Jump.Clone(), st, true);
    }

    /// <summary>Union over merged inputs (residual add, concatenation): the hull of the first outputs' receptive fields.</summary>
    public static Geometry? Union(IEnumerable<Geometry?> parts)
    {
        Geometry? acc = null;
        foreach (var g in parts)
        {
            if (g == null) continue;
            if (acc == null) { acc = g; continue; }
            if (g.Dims != acc.Dims) { acc = acc with { Global = true }; continue; }
            var rf = new double[acc.Dims]; var st = new double[acc.Dims]; var j = new double[acc.Dims];
            for (int i = 0; i < acc.Dims; i++)
            {
                double lo = Math.Min(acc.Start[i] - (acc.Rf[i] - 1) / 2, g.Start[i] - (g.Rf[i] - 1) / 2);
                double hi = Math.Max(acc.Start[i] + (acc.Rf[i] - 1) / 2, g.Start[i] + (g.Rf[i] - 1) / 2);
                rf[i] = hi - lo + 1; st[i] = (lo + hi) / 2; j[i] = Math.Max(acc.Jump[i], g.Jump[i]);
            }
            acc = new(rf, j, st, acc.Global || g.Global);
        }
        return acc;
    }
}

/// <summary>One row of a trace: a leaf module's call, or a functional op run directly in a composite module's forward.</summary>
internal sealed class TraceRow
{
    public required string Name { get; init; }
    public required string Type { get; init; }
    public Module? Owner { get; init; }
    public long CallId { get; init; }
    public int[] OutputShape { get; set; } = [];
    public long Macs { get; set; }
    public long Flops { get; set; }
    public Geometry? Geometry { get; set; }
    public List<Quantity> Explain { get; } = [];
}

/// <summary>
/// Collects what a forward pass does while it is <see cref="Activate">active</see> on this thread: module calls (via
/// <see cref="Module.Call"/>) with their output shapes, and — for meta tensors — each op's MACs, FLOPs, receptive-field
/// geometry (carried per tensor) and the storage kept alive for backward. Ops are attributed to the innermost module on
/// the call stack.
/// </summary>
internal sealed class Tracer
{
    [ThreadStatic] private static Tracer? _current;

    /// <summary>The tracer active on this thread, if any.</summary>
    internal static Tracer? Current => _current;

    private readonly Dictionary<Module, string> _paths = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<Module> _leaves = new(ReferenceEqualityComparer.Instance);
    private readonly ConditionalWeakTable<Tensor, Geometry> _geometry = new();
    private readonly List<(Module Module, long CallId)> _stack = [];
    private readonly HashSet<Array> _kept = new(ReferenceEqualityComparer.Instance);
    private long _nextCall;

    public Tracer(Module root, int batch)
    {
        foreach (var (name, m) in root.NamedModules())
        {
            _paths.TryAdd(m, name);
            if (!m.NamedChildren().Any()) _leaves.Add(m);
        }
        Batch = Math.Max(batch, 1);
    }

    /// <summary>Batch size of the traced input: per-sample figures divide by it.</summary>
    public int Batch { get; }

    /// <summary>The rows in execution order.</summary>
    public List<TraceRow> Rows { get; } = [];

    /// <summary>Every module call as (path, output shape), in call order (also filled by real, non-meta forwards).</summary>
    public List<(string Path, int[] Shape)> Calls { get; } = [];

    /// <summary>Every module call as (module, input, output) tensors, in completion order (<see cref="NN.Fusion"/> pairs conv and batch-norm calls with it).</summary>
    internal List<(Module Module, Tensor Input, Tensor Output)> Invocations { get; } = [];

    /// <summary>State-dict path of a module of the traced model (its type name when it is not part of it).</summary>
    internal string PathOf(Module m) => _paths.GetValueOrDefault(m, m.GetType().Name);

    /// <summary>Bytes of every distinct meta storage the forward produced and the autograd graph keeps alive.</summary>
    public long KeptBytes { get; private set; }

    /// <summary>Largest transient buffer a kernel would allocate (convolution columns).</summary>
    public long WorkspaceBytes { get; private set; }

    /// <summary>Makes this tracer current on the calling thread until the returned scope is disposed.</summary>
    public IDisposable Activate()
    {
        var previous = _current;
        _current = this;
        return new Scope(() => _current = previous);
    }

    private sealed class Scope(Action onDispose) : IDisposable
    {
        public void Dispose() => onDispose();
    }

    internal void Enter(Module m) => _stack.Add((m, _nextCall++));

    internal void Exit(Module m, Tensor input, Tensor output)
    {
        var (_, id) = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        string path = _paths.GetValueOrDefault(m, m.GetType().Name);
        Calls.Add((path, output.Shape.ToArray()));
        Invocations.Add((m, input, output));
        if (!output.IsMeta || !_leaves.Contains(m)) return;
        var row = Rows.Count > 0 && Rows[^1].CallId == id && ReferenceEquals(Rows[^1].Owner, m) ? Rows[^1] : null;
        if (row == null) Rows.Add(row = new TraceRow { Name = path, Type = m.GetType().Name, Owner = m, CallId = id });
        row.OutputShape = output.Shape.ToArray();
        row.Geometry = GeometryOf(output);
    }

    internal Geometry? GeometryOf(Tensor t) => _geometry.TryGetValue(t, out var g) ? g : null;

    internal void SetGeometry(Tensor t, Geometry? g)
    {
        if (g != null) _geometry.AddOrUpdate(t, g);
    }

    /// <summary>A view keeps its source's geometry while the trailing spatial sizes survive; otherwise the map has been flattened.</summary>
    internal void OnView(Tensor src, Tensor dst)
    {
        var g = GeometryOf(src);
        if (g == null) return;
        int n = g.Dims;
        bool same = !g.Global && src.Rank >= n && dst.Rank >= n && src.Shape[^n..].SequenceEqual(dst.Shape[^n..]);
        SetGeometry(dst, same || g.Global ? g : g.Collapse(src.Rank >= n ? src.Shape[^n..] : []));
    }

    /// <summary>Records storage that the autograd graph keeps until backward.</summary>
    internal void Keep(Tensor t)
    {
        if (_kept.Add(t.Storage)) KeptBytes += (long)t.Numel * ElementSize(t.DType);
    }

    internal void Workspace(long bytes) => WorkspaceBytes = Math.Max(WorkspaceBytes, bytes);

    internal static int ElementSize(DType d) => d == DType.Float32 ? 4 : 8;

    /// <summary>Attributes one op's cost to the innermost module: merged into the current call's row for a leaf, a row of its own otherwise.</summary>
    internal void Op(string op, Tensor output, long macs, long flops, IEnumerable<Quantity> explain)
    {
        TraceRow? row = null;
        if (_stack.Count > 0)
        {
            var (m, id) = _stack[^1];
            string path = _paths.GetValueOrDefault(m, m.GetType().Name);
            if (_leaves.Contains(m))
            {
                row = Rows.Count > 0 && Rows[^1].CallId == id && ReferenceEquals(Rows[^1].Owner, m) ? Rows[^1] : null;
                if (row == null) Rows.Add(row = new TraceRow { Name = path, Type = m.GetType().Name, Owner = m, CallId = id });
            }
            else Rows.Add(row = new TraceRow { Name = path.Length == 0 ? op : path, Type = op, Owner = m, CallId = id });
        }
        else Rows.Add(row = new TraceRow { Name = op, Type = op, CallId = -1 });
        row.Macs += macs;
        row.Flops += flops;
        row.OutputShape = output.Shape.ToArray();
        row.Geometry = GeometryOf(output);
        row.Explain.AddRange(explain);
    }
}
