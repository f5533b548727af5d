using ConvLab.Autograd;

namespace ConvLab.Training;

/// <summary>
/// A set of parameters sharing hyper-parameters (PyTorch's <c>param_groups</c> entry). Options left unset
/// (NaN / null) take the optimizer's defaults when the group is added; options an optimizer does not use are ignored.
/// </summary>
public sealed class ParamGroup
{
    /// <summary>Creates a group; unset options fall back to the optimizer's defaults.</summary>
    public ParamGroup(IEnumerable<Tensor> parameters, double learningRate = double.NaN, double weightDecay = double.NaN)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        Params = [.. parameters];
        LearningRate = learningRate;
        WeightDecay = weightDecay;
    }

    /// <summary>The parameters of this group (float32 contiguous leaves).</summary>
    public List<Tensor> Params { get; }
    /// <summary>Current learning rate (schedulers change it).</summary>
    public double LearningRate { get; set; }
    /// <summary>The learning rate a scheduler started from (PyTorch's <c>initial_lr</c>); set by the first scheduler.</summary>
    public double? InitialLr { get; set; }
    /// <summary>L2 penalty (SGD/Adam/RMSprop) or decoupled decay factor (AdamW).</summary>
    public double WeightDecay { get; set; }
    /// <summary>Momentum factor (SGD, RMSprop).</summary>
    public double? Momentum { get; set; }
    /// <summary>Dampening for momentum (SGD).</summary>
    public double? Dampening { get; set; }
    /// <summary>Nesterov momentum (SGD).</summary>
    public bool? Nesterov { get; set; }
    /// <summary>Maximise the objective instead of minimising it.</summary>
    public bool? Maximize { get; set; }
    /// <summary>Coefficients of the running averages of the gradient and its square (Adam, AdamW).</summary>
    public (double Beta1, double Beta2)? Betas { get; set; }
    /// <summary>Term added to the denominator for numerical stability (Adam, AdamW, RMSprop).</summary>
    public double? Eps { get; set; }
    /// <summary>Use the AMSGrad variant (Adam, AdamW).</summary>
    public bool? Amsgrad { get; set; }
    /// <summary>Smoothing constant of the squared-gradient average (RMSprop).</summary>
    public double? Alpha { get; set; }
    /// <summary>Normalise by the estimated variance of the gradient (RMSprop).</summary>
    public bool? Centered { get; set; }
}

/// <summary>Per-parameter optimizer state: the step count and named float32 buffers shaped like the parameter.</summary>
public sealed class ParamState
{
    internal readonly SortedDictionary<string, float[]> Buffers = new(StringComparer.Ordinal);

    /// <summary>Number of updates applied to this parameter.</summary>
    public long Step { get; internal set; }

    /// <summary>The named buffer, or null when it has not been created yet.</summary>
    internal float[]? Get(string name) => Buffers.GetValueOrDefault(name);

    /// <summary>The named buffer, created zero-filled on first use.</summary>
    internal float[] Zeros(string name, int n)
    {
        if (!Buffers.TryGetValue(name, out var b)) Buffers[name] = b = new float[n];
        return b;
    }
}

/// <summary>
/// Base of the optimizers (PyTorch 1.13's <c>torch.optim.Optimizer</c>): parameter groups, <see cref="Step"/>,
/// <see cref="ZeroGrad"/> and a state dict of named tensors. Parameters whose <c>Grad</c> is null are skipped and
/// get no state. Updates are done in place, under <see cref="NoGrad"/>, on float32 data.
/// </summary>
public abstract class Optimizer
{
    private readonly List<ParamGroup> _groups = [];
    private readonly Dictionary<Tensor, ParamState> _state = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<Tensor> _known = new(ReferenceEqualityComparer.Instance);
    private readonly float[][] _scratch = [[], [], []];

    /// <summary>The optimizer's PyTorch name, used in error messages.</summary>
    public string Name { get; }

    /// <summary>Default option values for groups that leave them unset.</summary>
    protected ParamGroup Defaults { get; }

    /// <summary>The parameter groups, in order.</summary>
    public IReadOnlyList<ParamGroup> ParamGroups => _groups;

    /// <summary>Creates the optimizer; <paramref name="defaults"/> carries every option (its Params are ignored).</summary>
    protected Optimizer(string name, IEnumerable<ParamGroup> groups, ParamGroup defaults)
    {
        Name = name;
        Defaults = defaults;
        Validate(defaults);
        var list = groups.ToList();
        if (list.Count == 0 || list.All(g => g.Params.Count == 0))
            throw new ArgumentException($"{name}: optimizer got an empty parameter list");
        foreach (var g in list) AddParamGroup(g);
    }

    /// <summary>Wraps a flat parameter list into one group.</summary>
    protected static IEnumerable<ParamGroup> OneGroup(IEnumerable<Tensor> parameters) => [new ParamGroup(parameters)];

    /// <summary>Adds a group: fills unset options from the defaults, validates them and the parameters.</summary>
    public void AddParamGroup(ParamGroup group)
    {
        ArgumentNullException.ThrowIfNull(group);
        var d = Defaults;
        if (double.IsNaN(group.LearningRate)) group.LearningRate = d.LearningRate;
        if (double.IsNaN(group.WeightDecay)) group.WeightDecay = d.WeightDecay;
        group.Momentum ??= d.Momentum;
        group.Dampening ??= d.Dampening;
        group.Nesterov ??= d.Nesterov;
        group.Maximize ??= d.Maximize;
        group.Betas ??= d.Betas;
        group.Eps ??= d.Eps;
        group.Amsgrad ??= d.Amsgrad;
        group.Alpha ??= d.Alpha;
        group.Centered ??= d.Centered;
        Validate(group);
        foreach (var p in group.Params)
        {
            if (p.DType != DType.Float32 || !p.IsContiguous || !p.IsLeaf)
                throw new ArgumentException($"{Name}: parameters must be contiguous float32 leaf tensors (got {p.DType}, shape {ShapeUtil.Format(p.Shape)}, contiguous={p.IsContiguous}, leaf={p.IsLeaf})");
        }
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        if (group.Params.Any(p => _known.Contains(p) || !seen.Add(p)))
            throw new ArgumentException($"{Name}: some parameters appear more than once or in more than one parameter group");
        _known.UnionWith(seen);
        _groups.Add(group);
    }

    /// <summary>Checks a group's options; throws ArgumentException starting with <see cref="Name"/>.</summary>
    protected virtual void Validate(ParamGroup g)
    {
        if (!(g.LearningRate >= 0)) throw new ArgumentException($"{Name}: invalid learning rate {g.LearningRate} (expected >= 0)");
        if (!(g.WeightDecay >= 0)) throw new ArgumentException($"{Name}: invalid weight_decay value {g.WeightDecay} (expected >= 0)");
    }

    /// <summary>The state of a parameter, or null when it never received an update.</summary>
    public ParamState? State(Tensor parameter) => _state.GetValueOrDefault(parameter);

    /// <summary>Number of parameters that hold state (those that received at least one update).</summary>
    public int StateCount => _state.Count;

    /// <summary>Applies one update to every parameter that has a gradient.</summary>
    public void Step()
    {
        using var _ = new NoGrad();
        foreach (var g in _groups)
            foreach (var p in g.Params)
            {
                if (p.Grad is not { } grad) continue;
                if (grad.DType != DType.Float32 || !grad.Shape.SequenceEqual(p.Shape))
                    throw new InvalidOperationException($"{Name}: gradient of dtype {grad.DType} shape {ShapeUtil.Format(grad.Shape)} does not match parameter float32 {ShapeUtil.Format(p.Shape)}");
                if (!_state.TryGetValue(p, out var st)) _state[p] = st = new ParamState();
                st.Step++;
                Update(g, p.Buffer<float>().AsSpan(p.StorageOffset, p.Numel), grad.Read<float>(), st);
            }
    }

    /// <summary>Updates one parameter in place; <paramref name="state"/>.Step is already incremented.</summary>
    protected abstract void Update(ParamGroup group, Span<float> param, ReadOnlySpan<float> grad, ParamState state);

    /// <summary>Scratch span number <paramref name="which"/> (0..2) of length <paramref name="n"/>, reused across calls.</summary>
    private protected Span<float> Scratch(int which, int n)
    {
        if (_scratch[which].Length < n) _scratch[which] = new float[n];
        return _scratch[which].AsSpan(0, n);
    }

    /// <summary>Clears every parameter's gradient (PyTorch's <c>zero_grad</c>).</summary>
    /// <param name="setToNone">True (PyTorch's default) drops the gradients; false zeroes them in place.</param>
    public void ZeroGrad(bool setToNone = true)
    {
        foreach (var g in _groups)
            foreach (var p in g.Params) NN.Module.ZeroGradOf(p, setToNone);
    }

    private IEnumerable<(int Index, Tensor Param)> Indexed() => _groups.SelectMany(g => g.Params).Select((p, i) => (i, p));

    /// <summary>
    /// The optimizer state as named tensors (copies): <c>state.{i}.step</c> (float64 scalar) and
    /// <c>state.{i}.{buffer}</c> (float32, the parameter's shape), where i numbers the parameters across
    /// groups as PyTorch does, plus <c>param_groups.{g}.lr</c>, <c>param_groups.{g}.initial_lr</c> and the group's
    /// <c>momentum</c> or <c>beta1</c>/<c>beta2</c> (schedulers such as <see cref="OneCycleLR"/> cycle them).
    /// </summary>
    public IReadOnlyDictionary<string, Tensor> StateDict()
    {
        var d = new Dictionary<string, Tensor>();
        foreach (var (i, p) in Indexed())
        {
            if (!_state.TryGetValue(p, out var st)) continue;
            d[$"state.{i}.step"] = Tensor.Scalar(st.Step, DType.Float64);
            foreach (var (name, buf) in st.Buffers) d[$"state.{i}.{name}"] = Tensor.FromArray(buf, p.Shape.ToArray());
        }
        for (int g = 0; g < _groups.Count; g++)
        {
            d[$"param_groups.{g}.lr"] = Tensor.Scalar(_groups[g].LearningRate, DType.Float64);
            if (_groups[g].InitialLr is { } il) d[$"param_groups.{g}.initial_lr"] = Tensor.Scalar(il, DType.Float64);
            if (_groups[g].Momentum is { } m) d[$"param_groups.{g}.momentum"] = Tensor.Scalar(m, DType.Float64);
            if (_groups[g].Betas is { } b)
            {
                d[$"param_groups.{g}.beta1"] = Tensor.Scalar(b.Beta1, DType.Float64);
                d[$"param_groups.{g}.beta2"] = Tensor.Scalar(b.Beta2, DType.Float64);
            }
        }
        return d;
    }

    /// <summary>
    /// Replaces the optimizer state by one saved with <see cref="StateDict"/> (same parameter layout). Group settings
    /// absent from an older state dict (momentum, betas) keep their current values.
    /// </summary>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> stateDict)
    {
        var ps = Indexed().ToArray();
        var fresh = new Dictionary<Tensor, ParamState>(ReferenceEqualityComparer.Instance);
        var lrs = new Dictionary<int, double>();
        var initial = new Dictionary<int, double>();
        var settings = new Dictionary<(int, string), double>();
        foreach (var (key, t) in stateDict)
        {
            var parts = key.Split('.');
            if (parts.Length != 3 || !int.TryParse(parts[1], out int i) || i < 0)
                throw new ArgumentException($"load_state_dict: unexpected key '{key}' for {Name}");
            if (parts[0] == "param_groups" && i < _groups.Count && parts[2] is "lr" or "initial_lr")
            {
                (parts[2] == "lr" ? lrs : initial)[i] = t.Item();
                continue;
            }
            if (parts[0] == "param_groups" && i < _groups.Count && parts[2] is "momentum" or "beta1" or "beta2")
            {
                bool has = parts[2] == "momentum" ? _groups[i].Momentum != null : _groups[i].Betas != null;
                if (!has) throw new ArgumentException($"load_state_dict: {key} is saved but {Name}'s group {i} has no {parts[2]}");
                settings[(i, parts[2])] = t.Item();
                continue;
            }
            if (parts[0] != "state" || i >= ps.Length)
                throw new ArgumentException($"load_state_dict: unexpected key '{key}' for {Name} with {ps.Length} parameters in {_groups.Count} groups");
            var p = ps[i].Param;
            if (!fresh.TryGetValue(p, out var st)) fresh[p] = st = new ParamState();
            if (parts[2] == "step") { st.Step = (long)t.Item(); continue; }
            if (!t.Shape.SequenceEqual(p.Shape) || t.DType != DType.Float32)
                throw new ArgumentException($"load_state_dict: {key} has {t.DType} shape {ShapeUtil.Format(t.Shape)} but parameter {i} is float32 {ShapeUtil.Format(p.Shape)}");
            st.Buffers[parts[2]] = t.Read<float>().ToArray();
        }
        _state.Clear();
        foreach (var (p, st) in fresh) _state[p] = st;
        foreach (var (g, lr) in lrs) _groups[g].LearningRate = lr;
        foreach (var (g, lr) in initial) _groups[g].InitialLr = lr;
        foreach (var ((g, name), v) in settings)
        {
            var grp = _groups[g];
            if (name == "momentum") grp.Momentum = v;
            else grp.Betas = name == "beta1" ? (v, grp.Betas!.Value.Beta2) : (grp.Betas!.Value.Beta1, v);
        }
    }
}
