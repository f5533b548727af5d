namespace ConvLab.Training;

/// <summary>
/// Base of the epoch/step learning-rate schedulers (PyTorch's <c>_LRScheduler</c>). Construction records each
/// group's <see cref="ParamGroup.InitialLr"/> as its base rate and applies epoch 0; <see cref="Step"/> advances one
/// epoch (or iteration) and writes the new rate into every group.
/// </summary>
public abstract class LrScheduler
{
    private double[] _lastLr = [];

    /// <summary>The optimizer whose groups are scheduled.</summary>
    public Optimizer Optimizer { get; }

    /// <summary>Each group's starting learning rate.</summary>
    public IReadOnlyList<double> BaseLrs { get; }

    /// <summary>The current epoch (0 right after construction).</summary>
    public int LastEpoch { get; private set; }

    /// <summary>The learning rate last written to each group.</summary>
    public IReadOnlyList<double> LastLr => _lastLr;

    /// <summary>Binds the scheduler; derived constructors call <see cref="Start"/> once their fields are set.</summary>
    protected LrScheduler(Optimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        Optimizer = optimizer;
        foreach (var g in optimizer.ParamGroups) g.InitialLr ??= g.LearningRate;
        BaseLrs = [.. optimizer.ParamGroups.Select(g => g.InitialLr!.Value)];
    }

    /// <summary>Applies epoch 0 (PyTorch's constructor-time <c>step()</c>).</summary>
    protected void Start() => Apply();

    /// <summary>Advances one epoch and updates every group's learning rate.</summary>
    public void Step()
    {
        LastEpoch++;
        Apply();
    }

    private void Apply()
    {
        var groups = Optimizer.ParamGroups;
        if (groups.Count != BaseLrs.Count)
            throw new InvalidOperationException($"{GetType().Name}: the optimizer has {groups.Count} parameter groups but the scheduler was created for {BaseLrs.Count}");
        _lastLr = new double[groups.Count];
        for (int i = 0; i < groups.Count; i++)
            _lastLr[i] = groups[i].LearningRate = ComputeLr(i, BaseLrs[i], groups[i].LearningRate, LastEpoch);
    }

    /// <summary>The learning rate of group <paramref name="group"/> at <paramref name="epoch"/>.</summary>
    protected abstract double ComputeLr(int group, double baseLr, double currentLr, int epoch);

    /// <summary>
    /// The schedule's position as float64 scalars: <c>last_epoch</c> and <c>last_lr.{g}</c> (the groups' current rates
    /// live in the optimizer's state dict; the recursive schedules continue from those).
    /// </summary>
    public IReadOnlyDictionary<string, Tensor> StateDict()
    {
        var d = new Dictionary<string, Tensor> { ["last_epoch"] = Tensor.Scalar(LastEpoch, DType.Float64) };
        for (int g = 0; g < _lastLr.Length; g++) d[$"last_lr.{g}"] = Tensor.Scalar(_lastLr[g], DType.Float64);
        foreach (var (k, v) in Settings()) d[k] = Tensor.Scalar(v, DType.Float64);
        return d;
    }

    /// <summary>The schedule's own settings saved in the state dict (e.g. <c>T_max</c>), as PyTorch's state dict holds them.</summary>
    protected virtual IEnumerable<(string Key, double Value)> Settings() => [];

    /// <summary>
    /// Takes the settings found in a loaded state dict, replacing the constructed ones as PyTorch's <c>load_state_dict</c>
    /// does (so a resumed schedule continues the saved one); absent keys (older state dicts) keep the constructed values.
    /// </summary>
    protected virtual void LoadSettings(IReadOnlyDictionary<string, Tensor> stateDict) { }

    /// <summary>Restores a position (and the settings) saved with <see cref="StateDict"/> without touching the optimizer's rates.</summary>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> stateDict)
    {
        ArgumentNullException.ThrowIfNull(stateDict);
        if (!stateDict.TryGetValue("last_epoch", out var e))
            throw new ArgumentException($"{GetType().Name}: load_state_dict: missing key 'last_epoch'");
        var lr = new double[BaseLrs.Count];
        for (int g = 0; g < lr.Length; g++)
            lr[g] = stateDict.TryGetValue($"last_lr.{g}", out var t) ? t.Item()
                : throw new ArgumentException($"{GetType().Name}: load_state_dict: missing key 'last_lr.{g}' ({BaseLrs.Count} groups expected)");
        LoadSettings(stateDict);
        LastEpoch = (int)e.Item();
        _lastLr = lr;
    }
}

/// <summary>Decays by <c>gamma</c> every <c>stepSize</c> epochs: <c>lr = base * gamma^floor(epoch / stepSize)</c>.</summary>
public sealed class StepLR : LrScheduler
{
    private readonly int _stepSize;
    private readonly double _gamma;

    /// <summary>Creates the schedule (PyTorch <c>StepLR(step_size, gamma=0.1)</c>).</summary>
    public StepLR(Optimizer optimizer, int stepSize, double gamma = 0.1) : base(optimizer)
    {
        if (stepSize <= 0) throw new ArgumentException($"StepLR: step_size must be positive, got {stepSize}");
        (_stepSize, _gamma) = (stepSize, gamma);
        Start();
    }

    /// <inheritdoc/>
    protected override double ComputeLr(int group, double baseLr, double currentLr, int epoch) => baseLr * Math.Pow(_gamma, epoch / _stepSize);
}

/// <summary>Decays by <c>gamma</c> at each milestone: <c>lr = base * gamma^(number of milestones &lt;= epoch)</c> (repeated milestones count repeatedly).</summary>
public sealed class MultiStepLR : LrScheduler
{
    private readonly int[] _milestones;
    private readonly double _gamma;

    /// <summary>Creates the schedule (PyTorch <c>MultiStepLR(milestones, gamma=0.1)</c>).</summary>
    public MultiStepLR(Optimizer optimizer, IEnumerable<int> milestones, double gamma = 0.1) : base(optimizer)
    {
        _milestones = [.. milestones.Order()];
        _gamma = gamma;
        Start();
    }

    /// <inheritdoc/>
    protected override double ComputeLr(int group, double baseLr, double currentLr, int epoch) =>
        baseLr * Math.Pow(_gamma, _milestones.Count(m => m <= epoch));
}

/// <summary>Decays by <c>gamma</c> every epoch: <c>lr = base * gamma^epoch</c>.</summary>
public sealed class ExponentialLR : LrScheduler
{
    private readonly double _gamma;

    /// <summary>Creates the schedule (PyTorch <c>ExponentialLR(gamma)</c>).</summary>
    public ExponentialLR(Optimizer optimizer, double gamma) : base(optimizer)
    {
        _gamma = gamma;
        Start();
    }

    /// <inheritdoc/>
    protected override double ComputeLr(int group, double baseLr, double currentLr, int epoch) => baseLr * Math.Pow(_gamma, epoch);
}

/// <summary>
/// Cosine annealing from the base rate to <c>etaMin</c> over <c>tMax</c> epochs (then back up, periodically), as
/// PyTorch's <c>CosineAnnealingLR</c>. Uses PyTorch's recursive form rather than the closed form
/// <c>etaMin + (base - etaMin)(1 + cos(pi e / tMax)) / 2</c>: the two differ in the last bits near etaMin.
/// </summary>
public sealed class CosineAnnealingLR : LrScheduler
{
    private int _tMax;
    private double _etaMin;

    /// <summary>Epochs of one half-period (PyTorch's <c>T_max</c>); a loaded state dict restores the saved value.</summary>
    public int TMax => _tMax;

    /// <summary>Creates the schedule (PyTorch <c>CosineAnnealingLR(T_max, eta_min=0)</c>).</summary>
    public CosineAnnealingLR(Optimizer optimizer, int tMax, double etaMin = 0) : base(optimizer)
    {
        if (tMax <= 0) throw new ArgumentException($"CosineAnnealingLR: T_max must be positive, got {tMax}");
        (_tMax, _etaMin) = (tMax, etaMin);
        Start();
    }

    /// <inheritdoc/>
    protected override double ComputeLr(int group, double baseLr, double currentLr, int e)
    {
        if (e == 0) return currentLr;
        int t = _tMax;
        if (((e - 1 - t) % (2 * t) + 2 * t) % (2 * t) == 0)
            return currentLr + (baseLr - _etaMin) * (1 - Math.Cos(Math.PI / t)) / 2;
        return (1 + Math.Cos(Math.PI * e / t)) / (1 + Math.Cos(Math.PI * (e - 1) / t)) * (currentLr - _etaMin) + _etaMin;
    }

    /// <inheritdoc/>
    protected override IEnumerable<(string Key, double Value)> Settings() => [("T_max", _tMax), ("eta_min", _etaMin)];

    /// <inheritdoc/>
    protected override void LoadSettings(IReadOnlyDictionary<string, Tensor> stateDict)
    {
        if (stateDict.TryGetValue("T_max", out var t))
        {
            double v = t.Item();
            _tMax = v >= 1 && v <= int.MaxValue && v == Math.Floor(v) ? (int)v
                : throw new ArgumentException($"CosineAnnealingLR: load_state_dict: T_max must be a positive integer, got {v}");
        }
        if (stateDict.TryGetValue("eta_min", out var m)) _etaMin = m.Item();
    }
}

/// <summary>
/// Linear warm-up followed by cosine decay (the schedule of HuggingFace's <c>get_cosine_schedule_with_warmup</c>
/// with a floor). With W = warmupSteps, T = totalSteps and base rate b:
/// <c>lr(e) = b * e / W</c> for e &lt; W; <c>lr(e) = etaMin + (b - etaMin) * (1 + cos(pi * (e - W) / (T - W))) / 2</c>
/// for W &lt;= e &lt;= T; <c>lr(e) = etaMin</c> for e &gt; T.
/// </summary>
public sealed class CosineWarmupLR : LrScheduler
{
    private readonly int _warmup, _total;
    private readonly double _etaMin;

    /// <summary>Creates the schedule; requires 0 &lt;= warmupSteps &lt; totalSteps.</summary>
    public CosineWarmupLR(Optimizer optimizer, int warmupSteps, int totalSteps, double etaMin = 0) : base(optimizer)
    {
        if (warmupSteps < 0 || totalSteps <= warmupSteps)
            throw new ArgumentException($"CosineWarmupLR: expected 0 <= warmup_steps < total_steps, got warmup_steps={warmupSteps}, total_steps={totalSteps}");
        (_warmup, _total, _etaMin) = (warmupSteps, totalSteps, etaMin);
        Start();
    }

    /// <inheritdoc/>
    protected override double ComputeLr(int group, double baseLr, double currentLr, int e)
    {
        if (e < _warmup) return baseLr * e / _warmup;
        if (e > _total) return _etaMin;
        return _etaMin + (baseLr - _etaMin) * (1 + Math.Cos(Math.PI * (e - _warmup) / (_total - _warmup))) / 2;
    }
}

/// <summary>
/// The 1cycle policy (PyTorch's <c>OneCycleLR</c>): from maxLr/divFactor up to maxLr over pctStart of the steps,
/// then down to initial/finalDivFactor (three-phase: back to the initial rate first, then down). With
/// <c>cycleMomentum</c> (on by default, as PyTorch) the momentum (SGD/RMSprop) or beta1 (Adam/AdamW) moves inversely
/// between maxMomentum and baseMomentum; an optimizer with neither is refused, as PyTorch. The cycled momentum lives in
/// the optimizer's groups, so it is saved and restored with the optimizer's state dict (<c>param_groups.{g}.momentum</c>
/// / <c>beta1</c>), as PyTorch's <c>param_groups</c> carry it. Stepping beyond totalSteps throws, as PyTorch.
/// </summary>
public sealed class OneCycleLR : LrScheduler
{
    private readonly int _totalSteps;
    private readonly bool _linear, _cycleMomentum;
    // per phase: its last step, whether lr starts/ends at max_lr, and the momentum at its start and end
    private readonly (double EndStep, bool FromMax, bool ToMax, double MomFrom, double MomTo)[] _phases;
    private readonly (double Initial, double Max, double Min)[] _lrs;

    /// <summary>Creates the schedule with one maximum rate for every group.</summary>
    public OneCycleLR(Optimizer optimizer, double maxLr, int totalSteps, double pctStart = 0.3, string annealStrategy = "cos",
        double divFactor = 25, double finalDivFactor = 1e4, bool threePhase = false, bool cycleMomentum = true,
        double baseMomentum = 0.85, double maxMomentum = 0.95)
        : this(optimizer, [.. optimizer.ParamGroups.Select(_ => maxLr)], totalSteps, pctStart, annealStrategy, divFactor, finalDivFactor,
            threePhase, cycleMomentum, baseMomentum, maxMomentum) { }

    /// <summary>Creates the schedule with one maximum rate per group.</summary>
    public OneCycleLR(Optimizer optimizer, double[] maxLrs, int totalSteps, double pctStart = 0.3, string annealStrategy = "cos",
        double divFactor = 25, double finalDivFactor = 1e4, bool threePhase = false, bool cycleMomentum = true,
        double baseMomentum = 0.85, double maxMomentum = 0.95) : base(SetInitial(optimizer, maxLrs, divFactor))
    {
        if (totalSteps <= 0) throw new ArgumentException($"OneCycleLR: expected positive integer total_steps, but got {totalSteps}");
        if (!(pctStart >= 0 && pctStart <= 1)) throw new ArgumentException($"OneCycleLR: expected float between 0 and 1 pct_start, but got {pctStart}");
        if (annealStrategy is not ("cos" or "linear")) throw new ArgumentException($"OneCycleLR: anneal_strategy must be one of 'cos' or 'linear', instead got {annealStrategy}");
        (_totalSteps, _linear, _cycleMomentum) = (totalSteps, annealStrategy == "linear", cycleMomentum);
        _lrs = [.. maxLrs.Select(m => (m / divFactor, m, m / divFactor / finalDivFactor))];
        // lr endpoints: FromMax/ToMax pick max_lr, otherwise initial_lr (start) or min_lr (end of the last phase)
        var (mx, bs) = (maxMomentum, baseMomentum);
        _phases = threePhase
            ? [(pctStart * totalSteps - 1, false, true, mx, bs), (2 * pctStart * totalSteps - 2, true, false, bs, mx), (totalSteps - 1, false, false, mx, mx)]
            : [(pctStart * totalSteps - 1, false, true, mx, bs), (totalSteps - 1, true, false, bs, mx)];
        if (cycleMomentum)
        {
            foreach (var g in optimizer.ParamGroups)
            {
                if (g.Betas is { } b) g.Betas = (mx, b.Beta2);
                else if (g.Momentum != null) g.Momentum = mx;
                else throw new ArgumentException($"OneCycleLR: optimizer must support momentum or beta1 with `cycle_momentum` option enabled ({optimizer.Name} has neither; pass cycleMomentum: false)");
            }
        }
        Start();
    }

    private static Optimizer SetInitial(Optimizer optimizer, double[] maxLrs, double divFactor)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        if (maxLrs.Length != optimizer.ParamGroups.Count)
            throw new ArgumentException($"OneCycleLR: expected {optimizer.ParamGroups.Count} values for max_lr, got {maxLrs.Length}");
        // PyTorch overwrites initial_lr with max_lr / div_factor, so the base rates are the cycle's start
        for (int g = 0; g < maxLrs.Length; g++) optimizer.ParamGroups[g].InitialLr = maxLrs[g] / divFactor;
        return optimizer;
    }

    private double Anneal(double from, double to, double pct) =>
        _linear ? (to - from) * pct + from : to + (from - to) / 2.0 * (Math.Cos(Math.PI * pct) + 1);

    /// <inheritdoc/>
    protected override double ComputeLr(int group, double baseLr, double currentLr, int step)
    {
        if (step > _totalSteps)
            throw new InvalidOperationException($"OneCycleLR: tried to step {step + 1} times; the specified number of total steps is {_totalSteps}");
        double startStep = 0;
        for (int i = 0; ; i++)
        {
            var (end, fromMax, toMax, momFrom, momTo) = _phases[i];
            bool last = i == _phases.Length - 1;
            if (step <= end || last)
            {
                double pct = (step - startStep) / (end - startStep);
                var (init, max, min) = _lrs[group];
                if (_cycleMomentum)
                {
                    var g = Optimizer.ParamGroups[group];
                    double m = Anneal(momFrom, momTo, pct);
                    if (g.Betas is { } b) g.Betas = (m, b.Beta2);
                    else g.Momentum = m;
                }
                return Anneal(fromMax ? max : init, toMax ? max : last ? min : init, pct);
            }
            startStep = end;
        }
    }
}

/// <summary>Whether a lower (<see cref="Min"/>) or higher (<see cref="Max"/>) metric is better.</summary>
public enum PlateauMode
{
    /// <summary>Lower is better (a loss).</summary>
    Min,
    /// <summary>Higher is better (an accuracy).</summary>
    Max,
}

/// <summary>How <c>threshold</c> measures a significant improvement.</summary>
public enum ThresholdMode
{
    /// <summary>Relative: better than best * (1 ∓ threshold).</summary>
    Rel,
    /// <summary>Absolute: better than best ∓ threshold.</summary>
    Abs,
}

/// <summary>
/// Multiplies the learning rates by <c>factor</c> once the metric has not improved for more than <c>patience</c>
/// epochs (PyTorch's <c>ReduceLROnPlateau</c>); after a reduction, <c>cooldown</c> epochs pass before bad epochs count again.
/// </summary>
public sealed class ReduceLROnPlateau
{
    private const double Eps = 1e-8;
    private readonly PlateauMode _mode;
    private readonly ThresholdMode _thresholdMode;
    private readonly double _factor, _threshold;
    private readonly int _patience, _cooldown;
    private readonly double[] _minLrs;
    private int _cooldownCounter;

    /// <summary>The optimizer whose groups are scheduled.</summary>
    public Optimizer Optimizer { get; }
    /// <summary>Best metric seen so far.</summary>
    public double Best { get; private set; }
    /// <summary>Consecutive epochs without improvement.</summary>
    public int NumBadEpochs { get; private set; }
    /// <summary>Number of <see cref="Step"/> calls.</summary>
    public int LastEpoch { get; private set; }
    /// <summary>Each group's current learning rate.</summary>
    public IReadOnlyList<double> LastLr => [.. Optimizer.ParamGroups.Select(g => g.LearningRate)];

    /// <summary>Creates the scheduler; <paramref name="minLr"/> holds one value for all groups or one per group.</summary>
    public ReduceLROnPlateau(Optimizer optimizer, PlateauMode mode = PlateauMode.Min, double factor = 0.1, int patience = 10,
        double threshold = 1e-4, ThresholdMode thresholdMode = ThresholdMode.Rel, int cooldown = 0, params double[] minLr)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        if (!(factor < 1.0)) throw new ArgumentException($"ReduceLROnPlateau: factor should be < 1.0, got {factor}");
        if (patience < 0 || cooldown < 0) throw new ArgumentException($"ReduceLROnPlateau: patience and cooldown must be >= 0, got {patience} and {cooldown}");
        int n = optimizer.ParamGroups.Count;
        if (minLr.Length > 1 && minLr.Length != n) throw new ArgumentException($"ReduceLROnPlateau: expected {n} min_lrs, got {minLr.Length}");
        _minLrs = minLr.Length == 0 ? new double[n] : minLr.Length == 1 ? [.. Enumerable.Repeat(minLr[0], n)] : [.. minLr];
        (Optimizer, _mode, _factor, _patience, _threshold, _thresholdMode, _cooldown) = (optimizer, mode, factor, patience, threshold, thresholdMode, cooldown);
        Best = mode == PlateauMode.Min ? double.PositiveInfinity : double.NegativeInfinity;
    }

    private bool IsBetter(double a) => (_mode, _thresholdMode) switch
    {
        (PlateauMode.Min, ThresholdMode.Rel) => a < Best * (1 - _threshold),
        (PlateauMode.Min, ThresholdMode.Abs) => a < Best - _threshold,
        (PlateauMode.Max, ThresholdMode.Rel) => a > Best * (_threshold + 1),
        _ => a > Best + _threshold,
    };

    /// <summary>The scheduler's state as float64 scalars: <c>best</c>, <c>num_bad_epochs</c>, <c>cooldown_counter</c>, <c>last_epoch</c>.</summary>
    public IReadOnlyDictionary<string, Tensor> StateDict() => new Dictionary<string, Tensor>
    {
        ["best"] = Tensor.Scalar(Best, DType.Float64),
        ["num_bad_epochs"] = Tensor.Scalar(NumBadEpochs, DType.Float64),
        ["cooldown_counter"] = Tensor.Scalar(_cooldownCounter, DType.Float64),
        ["last_epoch"] = Tensor.Scalar(LastEpoch, DType.Float64),
    };

    /// <summary>Restores a state saved with <see cref="StateDict"/>.</summary>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> stateDict)
    {
        ArgumentNullException.ThrowIfNull(stateDict);
        double Get(string key) => stateDict.TryGetValue(key, out var t) ? t.Item()
            : throw new ArgumentException($"ReduceLROnPlateau: load_state_dict: missing key '{key}'");
        (Best, NumBadEpochs, _cooldownCounter, LastEpoch) = (Get("best"), (int)Get("num_bad_epochs"), (int)Get("cooldown_counter"), (int)Get("last_epoch"));
    }

    /// <summary>Records one epoch's metric and reduces the learning rates if it has plateaued.</summary>
    public void Step(double metric)
    {
        LastEpoch++;
        if (IsBetter(metric)) { Best = metric; NumBadEpochs = 0; }
        else NumBadEpochs++;
        if (_cooldownCounter > 0) { _cooldownCounter--; NumBadEpochs = 0; }
        if (NumBadEpochs <= _patience) return;
        for (int i = 0; i < Optimizer.ParamGroups.Count; i++)
        {
            var g = Optimizer.ParamGroups[i];
            double next = Math.Max(g.LearningRate * _factor, _minLrs[i]);
            if (g.LearningRate - next > Eps) g.LearningRate = next;
        }
        _cooldownCounter = _cooldown;
        NumBadEpochs = 0;
    }
}
