using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using ConvLab.Autograd;
using ConvLab.Data;
using ConvLab.IO;
using ConvLab.NN;
using ConvLab.NN.Functional;

namespace ConvLab.Training;

/// <summary>One finished epoch: training metrics (over the epoch, in training mode), validation metrics (NaN without a validation set), wall time and the learning rate used.</summary>
/// <param name="Epoch">1-based epoch number.</param>
/// <param name="TrainLoss">Mean training loss over the epoch.</param>
/// <param name="TrainAccuracy">Training top-1 accuracy over the epoch (another objective: its running score).</param>
/// <param name="TestLoss">Validation loss after the epoch.</param>
/// <param name="TestAccuracy">Validation top-1 accuracy after the epoch (another objective: its validation score, e.g. mAP@0.5).</param>
/// <param name="Seconds">Wall time of the training part of the epoch.</param>
/// <param name="ImagesPerSecond">Training throughput.</param>
/// <param name="LearningRate">Learning rate of the first parameter group during the epoch.</param>
public sealed record EpochRecord(int Epoch, double TrainLoss, double TrainAccuracy, double TestLoss, double TestAccuracy,
    double Seconds, double ImagesPerSecond, double LearningRate);

/// <summary>Progress after one training step.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="Epochs">Epochs planned.</param>
/// <param name="Step">1-based step within the epoch.</param>
/// <param name="Steps">Steps per epoch.</param>
/// <param name="Loss">Running mean training loss of the epoch.</param>
/// <param name="Accuracy">Running training accuracy of the epoch (another objective: its running score).</param>
/// <param name="ImagesPerSecond">Throughput so far in the epoch.</param>
public readonly record struct StepProgress(int Epoch, int Epochs, int Step, int Steps, double Loss, double Accuracy, double ImagesPerSecond);

/// <summary>Receives training progress (the CLI draws a progress bar from it; the library draws nothing).</summary>
public interface ITrainingProgress
{
    /// <summary>An epoch begins.</summary>
    void EpochStarted(int epoch, int epochs, int steps);

    /// <summary>A training step finished.</summary>
    void StepCompleted(StepProgress progress);

    /// <summary>Training of the epoch finished and validation begins.</summary>
    void Evaluating(int epoch);

    /// <summary>The epoch finished (after validation and the checkpoint).</summary>
    void EpochCompleted(EpochRecord record);
}

/// <summary>Thrown when the training loss stops being finite; the checkpoint of the last completed epoch is left as it was.</summary>
public sealed class TrainingDivergedException(string message, int epoch, int step) : Exception(message)
{
    /// <summary>1-based epoch in which the loss diverged.</summary>
    public int Epoch { get; } = epoch;

    /// <summary>1-based step within that epoch.</summary>
    public int Step { get; } = step;
}

/// <summary>Settings of a <see cref="Trainer"/>.</summary>
public sealed class TrainerOptions
{
    /// <summary>Total epochs; <see cref="Trainer.Fit"/> trains until this many are done.</summary>
    public int Epochs { get; set; } = 10;

    /// <summary>Mini-batch size for training and evaluation.</summary>
    public int BatchSize { get; set; } = 128;

    /// <summary>Seed of the data order and augmentation (the loader derives one stream per epoch and sample).</summary>
    public ulong Seed { get; set; }

    /// <summary>Per-sample transform of training samples (augmentation); null for none.</summary>
    public Transform? TrainTransform { get; set; }

    /// <summary>Per-sample transform of validation samples; null for none.</summary>
    public Transform? EvalTransform { get; set; }

    /// <summary>Stop after this many epochs without a lower validation loss and restore the best weights; 0 disables.</summary>
    public int Patience { get; set; }

    /// <summary>Where a checkpoint is written (atomically) after every epoch; null for none.</summary>
    public string? CheckpointPath { get; set; }

    /// <summary>Extra metadata stored in every checkpoint (e.g. how to rebuild the model); keys must not start with <c>trainer.</c>.</summary>
    public IReadOnlyDictionary<string, string>? CheckpointMeta { get; set; }

    /// <summary>The generator that drives randomness inside the model (dropout); its state is checkpointed. Default: <see cref="Generator.Default"/>.</summary>
    public Generator? ModelGenerator { get; set; }

    /// <summary>Build batches on a background thread.</summary>
    public bool Prefetch { get; set; } = true;

    /// <summary>Also write the checkpoint after every this many steps inside an epoch (0: only at epoch ends), so a killed run
    /// loses at most that many steps; resuming from such a checkpoint continues the epoch bit for bit.</summary>
    public int CheckpointEvery { get; set; }
}

/// <summary>
/// Supervised training: one optimizer step per mini-batch of the objective's loss (cross-entropy for classification, or
/// any <see cref="ITrainingObjective"/>), an optional
/// per-epoch learning-rate schedule, validation after each epoch, early stopping and checkpoints that resume bit for
/// bit (weights, buffers, optimizer and schedule state, data order, augmentation and model RNG, history). Training
/// continues from <see cref="EpochsDone"/> to <see cref="TrainerOptions.Epochs"/>, so a trainer restored with
/// <see cref="LoadCheckpoint(string)"/> picks up exactly where the saved one stopped.
/// </summary>
public sealed class Trainer
{
    private const string Meta = "trainer.";
    private static readonly JsonSerializerOptions Json = new() { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    private readonly Module _model;
    private readonly Optimizer _optimizer;
    private readonly LrScheduler? _scheduler;
    private readonly ITrainingObjective _objective;
    private readonly TrainerOptions _options;
    private readonly List<EpochRecord> _history = [];
    private Dictionary<string, Tensor>? _best;
    private double _bestLoss = double.PositiveInfinity;
    private int _badEpochs;
    private readonly StorageRecycler _recycler = new();
    private double[]? _running;
    private double _epochSeconds;

    /// <summary>Creates a classification trainer (a <see cref="ClassificationObjective"/>) for a model with <paramref name="numClasses"/> outputs.</summary>
    public Trainer(Module model, Optimizer optimizer, LrScheduler? scheduler, IDataset train, IDataset? validation, int numClasses, TrainerOptions options)
        : this(model, optimizer, scheduler, Classification(train, validation, numClasses, options), options)
    {
        NumClasses = numClasses;
    }

    /// <summary>Creates a trainer that optimises <paramref name="objective"/> (its batches; <see cref="TrainerOptions.BatchSize"/>,
    /// seed and transforms are the objective's business).</summary>
    public Trainer(Module model, Optimizer optimizer, LrScheduler? scheduler, ITrainingObjective objective, TrainerOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(objective);
        CheckOptions(options);
        if (objective.StepsPerEpoch <= 0) throw new ArgumentException("trainer: the training set is empty");
        if (options.CheckpointMeta?.Keys.FirstOrDefault(k => k.StartsWith(Meta, StringComparison.Ordinal)) is { } bad)
            throw new ArgumentException($"trainer: checkpoint metadata key '{bad}' uses the reserved prefix '{Meta}'");
        if (options.CheckpointEvery > 0 && objective.SaveRunning() == null)
            throw new ArgumentException($"trainer: CheckpointEvery needs an objective that can save its running metrics ({objective.GetType().Name} cannot)");
        (_model, _optimizer, _scheduler, _objective, _options) = (model, optimizer, scheduler, objective, options);
    }

    private static ClassificationObjective Classification(IDataset train, IDataset? validation, int numClasses, TrainerOptions options)
    {
        ArgumentNullException.ThrowIfNull(train);
        CheckOptions(options);
        if (train.Count == 0) throw new ArgumentException("trainer: the training set is empty");
        return new ClassificationObjective(train, validation, numClasses, options.BatchSize, options.Seed, options.TrainTransform, options.EvalTransform, options.Prefetch);
    }

    private static void CheckOptions(TrainerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Epochs < 0 || options.BatchSize <= 0 || options.Patience < 0)
            throw new ArgumentException($"trainer: expected epochs >= 0, batch size > 0 and patience >= 0, got {options.Epochs}, {options.BatchSize}, {options.Patience}");
        if (options.CheckpointEvery < 0) throw new ArgumentException($"trainer: CheckpointEvery must be >= 0 steps, got {options.CheckpointEvery}");
    }

    /// <summary>Number of classes (classification trainers; 0 for a trainer built from an objective).</summary>
    public int NumClasses { get; }

    /// <summary>The objective being optimised.</summary>
    public ITrainingObjective Objective => _objective;

    /// <summary>Epochs completed so far (restored by <see cref="LoadCheckpoint(string)"/>).</summary>
    public int EpochsDone { get; private set; }

    /// <summary>Steps of epoch <see cref="EpochsDone"/> + 1 in the last checkpoint written or loaded inside that epoch
    /// (<see cref="TrainerOptions.CheckpointEvery"/>); 0 at epoch boundaries. <see cref="Fit"/> continues after them.</summary>
    public int StepsDone { get; private set; }

    /// <summary>One record per completed epoch.</summary>
    public IReadOnlyList<EpochRecord> History => _history;

    /// <summary>True once early stopping ended training (the best weights were restored).</summary>
    public bool StoppedEarly { get; private set; }

    /// <summary>Managed bytes allocated per training step after warm-up (all threads), measured in the first epoch this trainer runs; -1 before.</summary>
    public double BytesAllocatedPerStep { get; private set; } = -1;

    /// <summary>Classification validation metrics of the model as it stands after <see cref="Fit"/> (null without a validation set,
    /// before training, or for a non-classification objective).</summary>
    public ClassificationMetrics? LastValidation => _validated ? (_objective as ClassificationObjective)?.LastValidation : null;

    private bool _validated;

    /// <summary>Trains the remaining epochs and returns the final classification validation metrics (null without a validation
    /// set or for a non-classification objective, whose own results the objective holds).</summary>
    /// <exception cref="TrainingDivergedException">The loss became NaN or infinite: no update was applied and the model's buffers
    /// (batch-norm running statistics, which the bad batch's forward had already updated) are restored to their values before that
    /// step, so the model in memory is the last good one; the checkpoint is that of the last completed epoch.</exception>
    public ClassificationMetrics? Fit(ITrainingProgress? progress = null, CancellationToken cancellation = default)
    {
        int steps = _objective.StepsPerEpoch;
        bool measured = false;
        while (EpochsDone < _options.Epochs && !StoppedEarly)
        {
            int epoch = EpochsDone + 1;
            progress?.EpochStarted(epoch, _options.Epochs, steps);
            _model.Train();
            _objective.BeginEpoch();
            // A mid-epoch checkpoint: the epoch's running metrics come back and its first StepsDone batches are skipped
            // (the batches are a pure function of the epoch, so the rest are the ones the killed run would have seen).
            int first = StepsDone;
            if (first > 0) _objective.RestoreRunning(_running!);
            double lr = _optimizer.ParamGroups[0].LearningRate;
            var clock = Stopwatch.StartNew();
            int step = first, warmup = Math.Min(first + 5, steps - 1);
            long allocStart = 0;
            foreach (var batch in first > 0 ? _objective.Batches(EpochsDone).Skip(first) : _objective.Batches(EpochsDone))
            {
                cancellation.ThrowIfCancellationRequested();
                step++;
                if (!measured && step == warmup + 1) allocStart = GC.GetTotalAllocatedBytes(true);
                SnapshotBuffers();
                _recycler.Begin();
                try
                {
                    var loss = _objective.Loss(_model, batch);
                    double value = loss.Item();
                    if (!double.IsFinite(value))
                    {
                        RestoreBuffers();
                        throw Diverged(value, epoch, step, steps);
                    }
                    // Zeroed in place: the gradients then live in the same memory every step.
                    _optimizer.ZeroGrad(setToNone: false);
                    loss.Backward();
                    _optimizer.Step();
                    _objective.StepDone(batch, value);
                }
                finally { _recycler.End(_model); }
                var run = _objective.Running;
                progress?.StepCompleted(new StepProgress(epoch, _options.Epochs, step, steps, run.Loss, run.Score, run.Samples / (_epochSeconds + clock.Elapsed.TotalSeconds)));
                if (_options.CheckpointPath != null && _options.CheckpointEvery > 0 && step % _options.CheckpointEvery == 0 && step < steps)
                {
                    (StepsDone, _running) = (step, _objective.SaveRunning());
                    WriteCheckpoint(_options.CheckpointPath, _epochSeconds + clock.Elapsed.TotalSeconds);
                }
            }
            double seconds = _epochSeconds + clock.Elapsed.TotalSeconds;
            (StepsDone, _running, _epochSeconds) = (0, null, 0);
            if (!measured && steps > warmup)
            {
                BytesAllocatedPerStep = (double)(GC.GetTotalAllocatedBytes(true) - allocStart) / (steps - warmup);
                measured = true;
            }
            progress?.Evaluating(epoch);
            var val = _objective.Validate(_model);
            _validated = true;
            var train = _objective.Running;
            _history.Add(new EpochRecord(epoch, train.Loss, train.Score, val?.Loss ?? double.NaN, val?.Score ?? double.NaN, seconds, train.Samples / seconds, lr));
            EpochsDone = epoch;
            _scheduler?.Step();
            TrackEarlyStopping(val?.Loss ?? train.Loss);
            if (_options.CheckpointPath != null) SaveCheckpoint(_options.CheckpointPath);
            progress?.EpochCompleted(_history[^1]);
        }
        return LastValidation;
    }

    // The forward of a training step updates batch-norm running statistics before the loss can be checked; these copies
    // (buffers are small: per-channel statistics) let a NaN stop put them back. Taken outside the recycled step (a step
    // may replace a buffer, so they are matched by position) and reused, so steps allocate nothing for them.
    private List<Tensor> _bufferCopies = [];

    private void SnapshotBuffers()
    {
        using var _ = new NoGrad();
        int i = 0;
        foreach (var (_, b) in _model.NamedBuffers())
        {
            if (i == _bufferCopies.Count) _bufferCopies.Add(b.Clone());
            else if (_bufferCopies[i].DType != b.DType || !_bufferCopies[i].Shape.SequenceEqual(b.Shape)) _bufferCopies[i] = b.Clone();
            else _bufferCopies[i].Copy_(b);
            i++;
        }
    }

    private void RestoreBuffers()
    {
        using var _ = new NoGrad();
        int i = 0;
        foreach (var (_, b) in _model.NamedBuffers()) b.Copy_(_bufferCopies[i++]);
    }

    private TrainingDivergedException Diverged(double value, int epoch, int step, int steps)
    {
        string what = double.IsNaN(value) ? "NaN" : value > 0 ? "+Inf" : "-Inf";
        string ckpt = _options.CheckpointPath == null ? "no checkpoint is being written"
            : EpochsDone == 0 ? $"no checkpoint had been written yet ({Path.GetFileName(_options.CheckpointPath)})"
            : $"the last good checkpoint {Path.GetFileName(_options.CheckpointPath)} (after epoch {EpochsDone}) is intact";
        return new TrainingDivergedException(
            $"training stopped: the loss is {what} at epoch {epoch}, step {step} of {steps} (try a lower learning rate); {ckpt}; " +
            "the model in memory is as before that step (no update, batch-norm statistics restored)", epoch, step);
    }

    private void TrackEarlyStopping(double monitored)
    {
        if (_options.Patience == 0) return;
        if (monitored < _bestLoss)
        {
            (_bestLoss, _badEpochs) = (monitored, 0);
            _best = _model.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value.Clone());
            return;
        }
        if (++_badEpochs < _options.Patience) return;
        StoppedEarly = true;
        if (_best == null) return;
        _model.LoadStateDict(_best);
        _objective.Validate(_model);
    }

    /// <summary>Metrics of <paramref name="model"/> (in evaluation mode, without gradients) on every sample of <paramref name="data"/>, in order.</summary>
    public static ClassificationMetrics Evaluate(Module model, IDataset data, int numClasses, int batchSize = 256, Transform? transform = null,
        Action<int, int>? onBatch = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        bool wasTraining = model.Training;
        model.Eval();
        try
        {
            var metrics = new ClassificationMetrics(numClasses);
            var loader = new DataLoader(data, batchSize, transform: transform, prefetch: false);
            int b = 0;
            var recycler = new StorageRecycler();
            using (new NoGrad())
                foreach (var (x, y) in loader.GetEpoch(0))
                {
                    recycler.Begin();
                    try
                    {
                        var logits = model.Forward(x);
                        if (logits.Rank != 2 || logits.Size(1) != numClasses)
                            throw new ArgumentException($"evaluate: the model outputs {ShapeUtil.Format(logits.Shape)} but [N, {numClasses}] logits were expected");
                        metrics.Add(logits.Read<float>(), y.Read<long>(), F.CrossEntropy(logits, y).Item());
                    }
                    finally { recycler.End(model); }
                    onBatch?.Invoke(++b, loader.BatchCount);
                }
            return metrics;
        }
        finally { model.Train(wasTraining); }
    }

    /// <summary>
    /// Writes everything needed to continue bit for bit (atomically): tensors <c>model.*</c>, <c>optimizer.*</c>,
    /// <c>scheduler.*</c> and <c>best.*</c> (early-stopping weights), plus metadata <c>trainer.*</c> (epoch, history,
    /// RNG state, early-stopping counters) and <see cref="TrainerOptions.CheckpointMeta"/>.
    /// </summary>
    public void SaveCheckpoint(string path) => WriteCheckpoint(path, _epochSeconds);

    private void WriteCheckpoint(string path, double epochSeconds)
    {
        var tensors = new Dictionary<string, Tensor>();
        if (StepsDone > 0) tensors[Meta + "running"] = Tensor.FromArray(_running!, _running!.Length);
        foreach (var (k, v) in _model.StateDict()) tensors["model." + k] = v;
        foreach (var (k, v) in _optimizer.StateDict()) tensors["optimizer." + k] = v;
        if (_scheduler != null) foreach (var (k, v) in _scheduler.StateDict()) tensors["scheduler." + k] = v;
        if (_best != null) foreach (var (k, v) in _best) tensors["best." + k] = v;
        var meta = new Dictionary<string, string>(_options.CheckpointMeta ?? new Dictionary<string, string>())
        {
            [Meta + "epoch"] = EpochsDone.ToString(CultureInfo.InvariantCulture),
            [Meta + "optimizer"] = _optimizer.Name,
            [Meta + "history"] = JsonSerializer.Serialize(_history, Json),
            [Meta + "model_generator"] = string.Join(",", (_options.ModelGenerator ?? Generator.Default).GetState()),
            [Meta + "best_loss"] = _bestLoss.ToString("R", CultureInfo.InvariantCulture),
            [Meta + "bad_epochs"] = _badEpochs.ToString(CultureInfo.InvariantCulture),
            [Meta + "stopped_early"] = StoppedEarly ? "1" : "0",
            [Meta + "bytes_per_step"] = BytesAllocatedPerStep.ToString("R", CultureInfo.InvariantCulture),
        };
        if (StepsDone > 0)
        {
            meta[Meta + "step"] = StepsDone.ToString(CultureInfo.InvariantCulture);
            meta[Meta + "epoch_seconds"] = epochSeconds.ToString("R", CultureInfo.InvariantCulture);
        }
        Checkpoint.Save(path, tensors, meta);
    }

    /// <summary>Restores the state saved by <see cref="SaveCheckpoint"/>; problems are <see cref="InvalidDataException"/>s naming the file.</summary>
    public void LoadCheckpoint(string path) => LoadCheckpoint(Checkpoint.Load(path), path);

    /// <summary>Restores the state of an already loaded checkpoint; <paramref name="path"/> names it in error messages.</summary>
    public void LoadCheckpoint(Checkpoint checkpoint, string path)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        string file = Path.GetFileName(path);
        try
        {
            var m = checkpoint.Meta;
            string Get(string key) => m.TryGetValue(Meta + key, out var v) ? v : throw new InvalidDataException($"{file}: checkpoint has no '{Meta}{key}' entry");
            if (Get("optimizer") != _optimizer.Name)
                throw new InvalidDataException($"{file}: checkpoint was written with optimizer {Get("optimizer")} but this run uses {_optimizer.Name}");
            var history = JsonSerializer.Deserialize<List<EpochRecord>>(Get("history"), Json) ?? [];
            var state = Get("model_generator").Split(',').Select(s => ulong.Parse(s, CultureInfo.InvariantCulture)).ToArray();
            _model.LoadStateDict(Section(checkpoint, "model."));
            _optimizer.LoadStateDict(Section(checkpoint, "optimizer."));
            var sched = Section(checkpoint, "scheduler.");
            if (_scheduler != null) _scheduler.LoadStateDict(sched);
            else if (sched.Count > 0) throw new InvalidDataException($"{file}: checkpoint holds a learning-rate schedule but this run has none");
            var best = Section(checkpoint, "best.");
            _best = best.Count > 0 ? best : null;
            (_options.ModelGenerator ?? Generator.Default).SetState(state);
            EpochsDone = int.Parse(Get("epoch"), CultureInfo.InvariantCulture);
            _bestLoss = double.Parse(Get("best_loss"), CultureInfo.InvariantCulture);
            _badEpochs = int.Parse(Get("bad_epochs"), CultureInfo.InvariantCulture);
            StoppedEarly = Get("stopped_early") == "1";
            BytesAllocatedPerStep = double.Parse(Get("bytes_per_step"), CultureInfo.InvariantCulture);
            _history.Clear();
            _history.AddRange(history);
            LoadStepState(checkpoint, file);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or JsonException or OverflowException)
        {
            throw new InvalidDataException($"{file}: not a checkpoint of this model/optimizer: {e.Message}", e);
        }
    }

    // A checkpoint written inside an epoch: the steps done, the epoch's running metrics and its wall time so far.
    private void LoadStepState(Checkpoint checkpoint, string file)
    {
        (StepsDone, _running, _epochSeconds) = (0, null, 0);
        if (!checkpoint.Meta.TryGetValue(Meta + "step", out var text)) return;
        int step = int.Parse(text, CultureInfo.InvariantCulture);
        if (step <= 0 || step >= _objective.StepsPerEpoch)
            throw new InvalidDataException($"{file}: checkpoint was written after step {step} of an epoch, but an epoch here has {_objective.StepsPerEpoch} steps");
        if (!checkpoint.Tensors.TryGetValue(Meta + "running", out var running) || running.DType != DType.Float64 || running.Rank != 1)
            throw new InvalidDataException($"{file}: checkpoint written inside an epoch has no float64 '{Meta}running' tensor");
        _running = running.Read<double>().ToArray();
        // Checked now, not at the first step: a state this objective cannot take is the checkpoint's fault.
        _objective.BeginEpoch();
        _objective.RestoreRunning(_running);
        _epochSeconds = checkpoint.Meta.TryGetValue(Meta + "epoch_seconds", out var sec) ? double.Parse(sec, CultureInfo.InvariantCulture) : 0;
        StepsDone = step;
    }

    private static Dictionary<string, Tensor> Section(Checkpoint c, string prefix) =>
        c.Tensors.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value);
}
