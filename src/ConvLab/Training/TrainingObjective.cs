using ConvLab.Data;
using ConvLab.NN;
using ConvLab.NN.Functional;

namespace ConvLab.Training;

/// <summary>
/// What a <see cref="Trainer"/> optimises: how an epoch's batches are made, the loss of one batch, the running training
/// metrics and the validation after an epoch. The Trainer owns the loop (recycled storage, the finiteness check,
/// backward, optimizer and scheduler steps, early stopping, checkpoints); an objective only says what a step computes.
/// For bit-for-bit resume, <see cref="Batches"/> must be a pure function of the epoch (seed every random choice from it).
/// </summary>
public interface ITrainingObjective
{
    /// <summary>Training steps per epoch.</summary>
    int StepsPerEpoch { get; }

    /// <summary>The training batches of the 0-based <paramref name="epoch"/>; each is handed back to <see cref="Loss"/> unchanged.</summary>
    IEnumerable<object> Batches(int epoch);

    /// <summary>Resets the running training metrics at the start of an epoch.</summary>
    void BeginEpoch();

    /// <summary>Forward pass and scalar loss of one batch (in training mode, recording the graph).</summary>
    Tensor Loss(Module model, object batch);

    /// <summary>Called once the step's loss (value <paramref name="loss"/>) was finite and the optimizer stepped, before the
    /// step's storage is recycled: adds the batch to the running metrics.</summary>
    void StepDone(object batch, double loss);

    /// <summary>Running training metrics of the epoch: mean loss, the objective's score (accuracy for classification) and samples seen.</summary>
    (double Loss, double Score, long Samples) Running { get; }

    /// <summary>Validation of <paramref name="model"/> as it stands (loss and score), or null when there is no validation set.</summary>
    (double Loss, double Score)? Validate(Module model);

    /// <summary>The running training metrics of the epoch as numbers (sums and counts), for a checkpoint written inside an
    /// epoch; null when this objective cannot save them (the Trainer then refuses <see cref="TrainerOptions.CheckpointEvery"/>).</summary>
    double[]? SaveRunning() => null;

    /// <summary>Puts back running metrics saved by <see cref="SaveRunning"/> (after <see cref="BeginEpoch"/>); a state of the
    /// wrong length is an <see cref="ArgumentException"/>.</summary>
    void RestoreRunning(double[] state) => throw new NotSupportedException($"{GetType().Name} cannot restore running metrics");
}

/// <summary>
/// The classification objective (the Trainer's original behaviour): batches from a seeded <see cref="DataLoader"/> with the
/// training transform, cross-entropy loss, top-1 accuracy as the score and <see cref="Trainer.Evaluate"/> for validation.
/// </summary>
public sealed class ClassificationObjective : ITrainingObjective
{
    private readonly DataLoader _loader;
    private readonly IDataset? _validation;
    private readonly int _batchSize;
    private readonly Transform? _evalTransform;
    private ClassificationMetrics _metrics;
    private Tensor? _logits;

    /// <summary>Creates the objective over <paramref name="train"/> (shuffled with <paramref name="seed"/>) and an optional validation set.</summary>
    public ClassificationObjective(IDataset train, IDataset? validation, int numClasses, int batchSize, ulong seed,
        Transform? trainTransform = null, Transform? evalTransform = null, bool prefetch = true)
    {
        ArgumentNullException.ThrowIfNull(train);
        if (numClasses <= 0) throw new ArgumentException($"trainer: number of classes must be positive, got {numClasses}");
        _loader = new DataLoader(train, batchSize, shuffle: true, seed: seed, transform: trainTransform, prefetch: prefetch);
        (_validation, NumClasses, _batchSize, _evalTransform) = (validation, numClasses, batchSize, evalTransform);
        _metrics = new ClassificationMetrics(numClasses);
    }

    /// <summary>Number of classes.</summary>
    public int NumClasses { get; }

    /// <summary>Metrics of the last <see cref="Validate"/> (null before or without a validation set).</summary>
    public ClassificationMetrics? LastValidation { get; private set; }

    /// <inheritdoc/>
    public int StepsPerEpoch => _loader.BatchCount;

    /// <inheritdoc/>
    public IEnumerable<object> Batches(int epoch)
    {
        foreach (var batch in _loader.GetEpoch(epoch)) yield return batch;
    }

    /// <inheritdoc/>
    public void BeginEpoch() => _metrics = new ClassificationMetrics(NumClasses);

    /// <inheritdoc/>
    public Tensor Loss(Module model, object batch)
    {
        var (x, y) = ((Tensor, Tensor))batch;
        _logits = model.Forward(x);
        return F.CrossEntropy(_logits, y);
    }

    /// <inheritdoc/>
    public void StepDone(object batch, double loss)
    {
        var (_, y) = ((Tensor, Tensor))batch;
        _metrics.Add(_logits!.Detach().Read<float>(), y.Read<long>(), loss);
        _logits = null;
    }

    /// <inheritdoc/>
    public (double Loss, double Score, long Samples) Running => (_metrics.Loss, _metrics.Top1, _metrics.Count);

    /// <inheritdoc/>
    public double[] SaveRunning() => _metrics.SaveState();

    /// <inheritdoc/>
    public void RestoreRunning(double[] state) => _metrics.RestoreState(state);

    /// <inheritdoc/>
    public (double Loss, double Score)? Validate(Module model)
    {
        if (_validation == null) return null;
        LastValidation = Trainer.Evaluate(model, _validation, NumClasses, _batchSize, _evalTransform);
        return (LastValidation.Loss, LastValidation.Top1);
    }
}
