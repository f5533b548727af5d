using System.Text;
using ConvLab.Autograd;

namespace ConvLab.NN;

/// <summary>
/// Base class of every layer and model (PyTorch's <c>nn.Module</c>): named parameters, buffers and
/// child modules in registration order, train/eval mode, state dicts with PyTorch's dotted key names
/// (<c>layer1.0.bn1.running_mean</c>) and freezing.
/// </summary>
public abstract class Module
{
    private readonly List<KeyValuePair<string, Tensor?>> _parameters = [];
    private readonly List<KeyValuePair<string, Tensor?>> _buffers = [];
    private readonly List<KeyValuePair<string, Module>> _children = [];

    /// <summary>True in training mode (the default), false after <see cref="Eval"/>.</summary>
    public bool Training { get; private set; } = true;

    /// <summary>Applies the module to an input.</summary>
    public abstract Tensor Forward(Tensor input);

    /// <summary>
    /// Runs <see cref="Forward"/> (PyTorch's <c>module(x)</c>). Composite modules call their children through this, so
    /// the architecture calculator can attribute each op to the innermost module (a no-op when no analysis is running).
    /// </summary>
    public Tensor Call(Tensor input)
    {
        var tracer = Analysis.Tracer.Current;
        if (tracer == null)
        {
            // Inside a recycler step without a graph, what the forward allocated and did not return (nor keep as state)
            // is dead when it returns: recycle it now, so a no-grad pass holds about one layer's temporaries at a time
            // rather than every intermediate of the whole forward until the step ends.
            int mark = GradMode.IsEnabled ? -1 : StorageRecycler.Mark();
            if (mark < 0) return Forward(input);
            var result = Forward(input);
            var keep = new HashSet<Array>(ReferenceEqualityComparer.Instance) { result.Storage };
            foreach (var t in Parameters()) keep.Add(t.Storage);
            foreach (var (_, b) in NamedBuffers()) if (b != null) keep.Add(b.Storage);
            foreach (var (_, m) in NamedModules())
                foreach (var t in m.ForwardState()) if (t != null) keep.Add(t.Storage);
            StorageRecycler.ReleaseSince(mark, keep);
            return result;
        }
        tracer.Enter(this);
        var output = Forward(input);
        tracer.Exit(this, input, output);
        return output;
    }

    /// <summary>
    /// Tensors that <see cref="Forward"/> keeps on the module besides its output, for reading after the call (e.g.
    /// pooling indices). A module that keeps such state must list it here: without a graph, inside a
    /// <see cref="StorageRecycler"/> step, everything else a call allocated is recycled when it returns.
    /// </summary>
    protected internal virtual IEnumerable<Tensor?> ForwardState() => [];

    /// <summary>Registers (or replaces) a parameter; it is made to require grad. Null records an absent optional parameter (e.g. no bias).</summary>
    protected Tensor? RegisterParameter(string name, Tensor? parameter)
    {
        CheckName(name);
        if (parameter != null && !parameter.IsFloatingPoint)
            throw new ArgumentException($"{GetType().Name}: parameter '{name}' must be floating point");
        if (parameter is { IsLeaf: false })
            throw new ArgumentException($"{GetType().Name}: parameter '{name}' must be a leaf tensor (call Detach() first)");
        if (parameter != null && !parameter.RequiresGrad) parameter.RequiresGrad = true;
        Set(_parameters, name, parameter);
        return parameter;
    }

    /// <summary>Registers (or replaces) a buffer: state saved in the state dict but not trained (e.g. <c>running_mean</c>).</summary>
    protected Tensor? RegisterBuffer(string name, Tensor? buffer)
    {
        CheckName(name);
        Set(_buffers, name, buffer);
        return buffer;
    }

    /// <summary>Registers (or replaces) a child module under <paramref name="name"/> and returns it.</summary>
    protected T RegisterModule<T>(string name, T module) where T : Module
    {
        CheckName(name);
        ArgumentNullException.ThrowIfNull(module);
        Set(_children, name, (Module)module);
        return module;
    }

    private static void CheckName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.'))
            throw new ArgumentException($"module: invalid name '{name}' (must be non-empty and contain no '.')");
    }

    private static void Set<T>(List<KeyValuePair<string, T>> list, string name, T value)
    {
        int i = list.FindIndex(kv => kv.Key == name);
        if (i >= 0) list[i] = new(name, value);
        else list.Add(new(name, value));
    }

    /// <summary>The parameter registered under a local name (no dots).</summary>
    protected Tensor? GetParameter(string name) => _parameters.FirstOrDefault(kv => kv.Key == name).Value;

    /// <summary>The buffer registered under a local name (no dots).</summary>
    protected Tensor? GetBuffer(string name) => _buffers.FirstOrDefault(kv => kv.Key == name).Value;

    /// <summary>Direct children with their names.</summary>
    public IEnumerable<(string Name, Module Module)> NamedChildren() => _children.Select(kv => (kv.Key, kv.Value));

    /// <summary>This module and every descendant, with dotted paths ("" for this one).</summary>
    public IEnumerable<(string Name, Module Module)> NamedModules(string prefix = "")
    {
        yield return (prefix, this);
        foreach (var (name, child) in _children)
            foreach (var m in child.NamedModules(Join(prefix, name))) yield return m;
    }

    /// <summary>Every parameter of this module and its descendants, with dotted names.</summary>
    public IEnumerable<(string Name, Tensor Parameter)> NamedParameters(string prefix = "")
    {
        foreach (var (name, p) in _parameters)
            if (p != null) yield return (Join(prefix, name), p);
        foreach (var (name, child) in _children)
            foreach (var np in child.NamedParameters(Join(prefix, name))) yield return np;
    }

    /// <summary>Every parameter of this module and its descendants.</summary>
    public IEnumerable<Tensor> Parameters() => NamedParameters().Select(p => p.Parameter);

    /// <summary>Every buffer of this module and its descendants, with dotted names.</summary>
    public IEnumerable<(string Name, Tensor Buffer)> NamedBuffers(string prefix = "")
    {
        foreach (var (name, b) in _buffers)
            if (b != null) yield return (Join(prefix, name), b);
        foreach (var (name, child) in _children)
            foreach (var nb in child.NamedBuffers(Join(prefix, name))) yield return nb;
    }

    private static string Join(string prefix, string name) => prefix.Length == 0 ? name : prefix + "." + name;

    /// <summary>Sets training mode on this module and every descendant.</summary>
    public Module Train(bool mode = true)
    {
        Training = mode;
        foreach (var (_, c) in _children) c.Train(mode);
        return this;
    }

    /// <summary>Sets evaluation mode (batch norm uses running statistics, dropout is off).</summary>
    public Module Eval() => Train(false);

    /// <summary>Freezes (false) or unfreezes (true) every parameter of this module and its descendants.</summary>
    public Module RequiresGrad(bool requiresGrad = true)
    {
        foreach (var p in Parameters()) p.RequiresGrad = requiresGrad;
        return this;
    }

    /// <summary>Clears the gradients of every parameter (PyTorch's <c>zero_grad</c>).</summary>
    /// <param name="setToNone">True (PyTorch's default) drops the gradients; false zeroes them in place, so the next
    /// backward accumulates into the same memory instead of allocating new gradients.</param>
    public void ZeroGrad(bool setToNone = true)
    {
        foreach (var p in Parameters()) ZeroGradOf(p, setToNone);
    }

    internal static void ZeroGradOf(Tensor p, bool setToNone)
    {
        if (setToNone || p.Grad is not { IsContiguous: true } g) p.Grad = null;
        else Array.Clear(g.Storage, g.StorageOffset, g.Numel);
    }

    /// <summary>Number of parameter elements (optionally only those that require grad).</summary>
    public long ParameterCount(bool trainableOnly = false) =>
        Parameters().Where(p => !trainableOnly || p.RequiresGrad).Sum(p => (long)p.Numel);

    /// <summary>Parameters and buffers by dotted name, in registration order (PyTorch's <c>state_dict()</c>). Tensors are detached views of the live values.</summary>
    public IReadOnlyDictionary<string, Tensor> StateDict()
    {
        var result = new OrderedStateDict();
        Collect(this, "", result);
        return result;

        static void Collect(Module m, string prefix, OrderedStateDict into)
        {
            foreach (var (name, p) in m._parameters) if (p != null) into.Add(Join(prefix, name), p.Detach());
            foreach (var (name, b) in m._buffers) if (b != null) into.Add(Join(prefix, name), b.Detach());
            foreach (var (name, c) in m._children) Collect(c, Join(prefix, name), into);
        }
    }

    /// <summary>
    /// Copies values from a state dict into this module's parameters and buffers. With
    /// <paramref name="strict"/>, missing and unexpected keys are an error; a shape mismatch always is.
    /// Returns the missing and unexpected keys.
    /// </summary>
    public (IReadOnlyList<string> Missing, IReadOnlyList<string> Unexpected) LoadStateDict(IReadOnlyDictionary<string, Tensor> stateDict, bool strict = true)
    {
        var own = StateDict();
        var missing = own.Keys.Where(k => !stateDict.ContainsKey(k)).ToList();
        var unexpected = stateDict.Keys.Where(k => !own.ContainsKey(k)).ToList();
        if (strict && (missing.Count > 0 || unexpected.Count > 0))
        {
            var sb = new StringBuilder($"load_state_dict: error(s) loading state dict for {GetType().Name}:");
            if (missing.Count > 0) sb.Append(" missing keys: ").Append(string.Join(", ", missing.Take(10))).Append(missing.Count > 10 ? ", ..." : "").Append('.');
            if (unexpected.Count > 0) sb.Append(" unexpected keys: ").Append(string.Join(", ", unexpected.Take(10))).Append(unexpected.Count > 10 ? ", ..." : "").Append('.');
            throw new ArgumentException(sb.ToString());
        }
        foreach (var (key, target) in own)
        {
            if (!stateDict.TryGetValue(key, out var src)) continue;
            if (!src.Shape.SequenceEqual(target.Shape))
                throw new ArgumentException($"load_state_dict: size mismatch for {key}: copying a param with shape {ShapeUtil.Format(src.Shape)}, the shape in the current model is {ShapeUtil.Format(target.Shape)}");
            using (new NoGrad()) target.Copy_(src);
        }
        return (missing, unexpected);
    }

    /// <summary>Extra text shown in <see cref="ToString"/>, e.g. <c>3, 64, kernel_size=(7, 7)</c>.</summary>
    protected virtual string ExtraRepr() => "";

    /// <summary>PyTorch-style multi-line description of the module tree.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder(GetType().Name).Append('(').Append(ExtraRepr());
        if (_children.Count > 0)
        {
            sb.Append('\n');
            foreach (var (name, c) in _children)
                sb.Append("  (").Append(name).Append("): ").Append(c.ToString().Replace("\n", "\n  ")).Append('\n');
        }
        return sb.Append(')').ToString();
    }

    private sealed class OrderedStateDict : IReadOnlyDictionary<string, Tensor>
    {
        private readonly List<string> _keys = [];
        private readonly Dictionary<string, Tensor> _map = [];
        public void Add(string k, Tensor v) { _keys.Add(k); _map.Add(k, v); }
        public Tensor this[string key] => _map[key];
        public IEnumerable<string> Keys => _keys;
        public IEnumerable<Tensor> Values => _keys.Select(k => _map[k]);
        public int Count => _keys.Count;
        public bool ContainsKey(string key) => _map.ContainsKey(key);
        public bool TryGetValue(string key, out Tensor value) => _map.TryGetValue(key, out value!);
        public IEnumerator<KeyValuePair<string, Tensor>> GetEnumerator() => _keys.Select(k => new KeyValuePair<string, Tensor>(k, _map[k])).GetEnumerator();
        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
