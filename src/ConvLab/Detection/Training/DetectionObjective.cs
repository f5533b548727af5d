using ConvLab.Autograd;
using ConvLab.NN;
using ConvLab.NN.Functional;
using ConvLab.Training;

namespace ConvLab.Detection;

/// <summary>A YOLO-style detector: raw prediction maps (N, A·(5 + C), H/s, W/s), one per scale, for an input (N, 3, H, W).</summary>
public interface IYoloDetector
{
    /// <summary>Number of classes C.</summary>
    int NumClasses { get; }

    /// <summary>The raw maps, in the order of the loss's strides.</summary>
    Tensor[] ForwardScales(Tensor input);
}

/// <summary>One training batch: images (N, 3, S, S) and their boxes in pixels of that size.</summary>
/// <param name="Images">The batch of images.</param>
/// <param name="Targets">Boxes (xyxy pixels of <paramref name="Images"/>) and labels per image.</param>
public sealed record DetectionBatch(Tensor Images, IReadOnlyList<(float[] Boxes, long[] Labels)> Targets)
{
    /// <summary>Image side of this batch.</summary>
    public int Size => Images.Shape[2];
}

/// <summary>Settings of a <see cref="DetectionObjective"/>.</summary>
public sealed class DetectionObjectiveOptions
{
    /// <summary>Images per batch.</summary>
    public int BatchSize { get; set; } = 16;

    /// <summary>Seed of the data order, the flips and the multi-scale sizes.</summary>
    public ulong Seed { get; set; }

    /// <summary>Training input sides (multiples of 32); one is drawn for every <see cref="SizeEvery"/> consecutive batches.</summary>
    public int[] TrainSizes { get; set; } = [128];

    /// <summary>Batches that share one drawn input size.</summary>
    public int SizeEvery { get; set; } = 10;

    /// <summary>Input side for validation.</summary>
    public int EvalSize { get; set; } = 128;

    /// <summary>Flip each training image horizontally with probability 1/2.</summary>
    public bool HorizontalFlip { get; set; } = true;
}

/// <summary>
/// Detection training for the <see cref="Trainer"/>: batches of a <see cref="IDetectionDataset"/> shuffled from (seed, epoch),
/// each image flipped from (seed, epoch, sample), resized (bilinear) with its boxes to the batch's input size, drawn from
/// <see cref="DetectionObjectiveOptions.TrainSizes"/> from (seed, epoch, batch / SizeEvery) — so multi-scale training resumes bit
/// for bit; the loss is a <see cref="YoloLoss"/>; the running score is the fraction of responsible anchors whose objectness
/// exceeds 0.5; validation gives the loss and, as the score, mAP@0.5 computed by <see cref="Evaluator"/>.
/// </summary>
public sealed class DetectionObjective : ITrainingObjective
{
    private readonly IDetectionDataset _train;
    private readonly IDetectionDataset? _validation;
    private readonly DetectionObjectiveOptions _options;
    private readonly YoloLoss _loss;
    private double _lossSum;
    private long _samples, _positives, _recalled;

    /// <summary>Creates the objective; every training size and the evaluation size must be a positive multiple of 32.</summary>
    public DetectionObjective(IDetectionDataset train, IDetectionDataset? validation, YoloLoss loss, DetectionObjectiveOptions options,
        Func<Module, IDetectionDataset, DetectionEvaluation>? evaluator = null)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(loss);
        ArgumentNullException.ThrowIfNull(options);
        if (options.BatchSize <= 0) throw new ArgumentException($"detection: batch size must be positive, got {options.BatchSize}");
        if (options.SizeEvery <= 0) throw new ArgumentException($"detection: size_every must be positive, got {options.SizeEvery}");
        if (options.TrainSizes.Length == 0) throw new ArgumentException("detection: the list of training sizes is empty");
        foreach (int s in options.TrainSizes) CheckSize(s, "training size");
        CheckSize(options.EvalSize, "evaluation size");
        if (train.Count == 0) throw new ArgumentException("detection: the training set is empty");
        (_train, _validation, _loss, _options, Evaluator) = (train, validation, loss, options, evaluator);
    }

    /// <summary>Makes detections and metrics of a model on a dataset after each epoch; null validates the loss only (score NaN).</summary>
    public Func<Module, IDetectionDataset, DetectionEvaluation>? Evaluator { get; }

    /// <summary>The evaluation after the last <see cref="Validate"/> (null before, or without a validation set or evaluator).</summary>
    public DetectionEvaluation? LastEvaluation { get; private set; }

    /// <summary>The loss being optimised.</summary>
    public YoloLoss YoloLoss => _loss;

    /// <summary>Throws an <see cref="ArgumentException"/> naming <paramref name="option"/> unless <paramref name="size"/> is a positive multiple of 32.</summary>
    public static void CheckSize(int size, string option)
    {
        if (size <= 0 || size % 32 != 0)
            throw new ArgumentException($"detection: {option} {size} is not a positive multiple of 32 (YOLOv3 downsamples by 32)");
    }

    /// <inheritdoc/>
    public int StepsPerEpoch => (_train.Count + _options.BatchSize - 1) / _options.BatchSize;

    /// <summary>Input side of batch <paramref name="batch"/> of 0-based <paramref name="epoch"/>.</summary>
    public int SizeOf(int epoch, int batch)
    {
        var sizes = _options.TrainSizes;
        return sizes.Length == 1 ? sizes[0] : sizes[new Generator(Mix(_options.Seed, epoch, (1UL << 40) | (uint)(batch / _options.SizeEvery))).NextInt(sizes.Length)];
    }

    /// <inheritdoc/>
    public IEnumerable<object> Batches(int epoch)
    {
        int n = _train.Count;
        var order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        var g = new Generator(Mix(_options.Seed, epoch, 0));
        for (int i = n - 1; i > 0; i--) { int j = g.NextInt(i + 1); (order[i], order[j]) = (order[j], order[i]); }
        for (int b = 0; b < StepsPerEpoch; b++)
        {
            int start = b * _options.BatchSize, count = Math.Min(_options.BatchSize, n - start);
            var samples = new DetectionSample[count];
            for (int k = 0; k < count; k++)
            {
                var s = _train.Get(order[start + k]);
                if (_options.HorizontalFlip && new Generator(Mix(_options.Seed, epoch, 1 + (ulong)(start + k))).NextDouble() < 0.5) s = Flip(s);
                samples[k] = s;
            }
            yield return Collate(samples, SizeOf(epoch, b));
        }
    }

    /// <summary>Stacks samples into a batch resized to <paramref name="size"/>² (bilinear, boxes scaled alike).</summary>
    public static DetectionBatch Collate(IReadOnlyList<DetectionSample> samples, int size)
    {
        ArgumentNullException.ThrowIfNull(samples);
        if (samples.Count == 0) throw new ArgumentException("detection: cannot collate an empty batch");
        var shape = samples[0].Image.Shape.ToArray();
        var targets = new (float[], long[])[samples.Count];
        var images = new Tensor[samples.Count];
        for (int i = 0; i < samples.Count; i++)
        {
            var s = samples[i];
            if (!s.Image.Shape.SequenceEqual(shape))
                throw new ArgumentException($"detection: sample {i} has shape {ShapeUtil.Format(s.Image.Shape)} but sample 0 has {ShapeUtil.Format(shape)}; a batch needs one image size");
            images[i] = s.Image;
            float sx = (float)size / shape[2], sy = (float)size / shape[1];
            var boxes = new float[s.Boxes.Length];
            for (int b = 0; b < boxes.Length; b += 4)
                (boxes[b], boxes[b + 1], boxes[b + 2], boxes[b + 3]) = (s.Boxes[b] * sx, s.Boxes[b + 1] * sy, s.Boxes[b + 2] * sx, s.Boxes[b + 3] * sy);
            targets[i] = (boxes, s.Labels);
        }
        Tensor x;
        using (new NoGrad())
        {
            x = Tensor.Stack(images);
            if (shape[1] != size || shape[2] != size) x = F.Interpolate(x, size: [size, size], mode: "bilinear", alignCorners: false);
        }
        return new DetectionBatch(x, targets);
    }

    private static DetectionSample Flip(DetectionSample s)
    {
        int c = s.Image.Shape[0], h = s.Image.Shape[1], w = s.Image.Shape[2];
        var src = s.Image.Contiguous().Read<float>();
        var dst = new float[src.Length];
        for (int p = 0; p < c * h; p++)
            for (int x = 0; x < w; x++) dst[p * w + x] = src[p * w + w - 1 - x];
        var boxes = new float[s.Boxes.Length];
        for (int b = 0; b < boxes.Length; b += 4)
            (boxes[b], boxes[b + 1], boxes[b + 2], boxes[b + 3]) = (w - s.Boxes[b + 2], s.Boxes[b + 1], w - s.Boxes[b], s.Boxes[b + 3]);
        return new DetectionSample(new Tensor(dst, [c, h, w]), boxes, s.Labels);
    }

    /// <inheritdoc/>
    public void BeginEpoch() => (_lossSum, _samples, _positives, _recalled) = (0, 0, 0, 0);

    private YoloLossResult? _last;

    /// <inheritdoc/>
    public Tensor Loss(Module model, object batch)
    {
        var b = (DetectionBatch)batch;
        var detector = model as IYoloDetector ?? throw new ArgumentException($"detection: the model {model.GetType().Name} is not a YOLO detector (IYoloDetector)");
        _last = _loss.Compute(detector.ForwardScales(b.Images), b.Targets, b.Size, b.Size);
        return _last.Loss;
    }

    /// <inheritdoc/>
    public void StepDone(object batch, double loss)
    {
        int n = ((DetectionBatch)batch).Targets.Count;
        _lossSum += loss * n;
        _samples += n;
        _positives += _last!.Assignments.Count;
        _recalled += _last.Recalled;
        _last = null;
    }

    /// <inheritdoc/>
    public (double Loss, double Score, long Samples) Running =>
        (_samples == 0 ? double.NaN : _lossSum / _samples, _positives == 0 ? double.NaN : (double)_recalled / _positives, _samples);

    /// <inheritdoc/>
    public double[] SaveRunning() => [_lossSum, _samples, _positives, _recalled];

    /// <inheritdoc/>
    public void RestoreRunning(double[] state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Length != 4) throw new ArgumentException($"detection: a saved running state has 4 numbers, got {state.Length}");
        (_lossSum, _samples, _positives, _recalled) = (state[0], (long)state[1], (long)state[2], (long)state[3]);
    }

    /// <summary>Mean loss per image of <paramref name="model"/> (evaluation mode, no gradients) on <paramref name="data"/> at <see cref="DetectionObjectiveOptions.EvalSize"/>.</summary>
    public double EvaluateLoss(Module model, IDetectionDataset data)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        var detector = model as IYoloDetector ?? throw new ArgumentException($"detection: the model {model.GetType().Name} is not a YOLO detector (IYoloDetector)");
        bool wasTraining = model.Training;
        model.Eval();
        try
        {
            double sum = 0;
            var recycler = new StorageRecycler();
            using (new NoGrad())
                for (int start = 0; start < data.Count; start += _options.BatchSize)
                {
                    int count = Math.Min(_options.BatchSize, data.Count - start);
                    var batch = Collate([.. Enumerable.Range(start, count).Select(data.Get)], _options.EvalSize);
                    recycler.Begin();
                    try { sum += _loss.Compute(detector.ForwardScales(batch.Images), batch.Targets, batch.Size, batch.Size).Loss.Item() * count; }
                    finally { recycler.End(model); }
                }
            return data.Count == 0 ? double.NaN : sum / data.Count;
        }
        finally { model.Train(wasTraining); }
    }

    /// <inheritdoc/>
    public (double Loss, double Score)? Validate(Module model)
    {
        if (_validation == null) return null;
        double loss = EvaluateLoss(model, _validation);
        LastEvaluation = Evaluator?.Invoke(model, _validation);
        return (loss, LastEvaluation?.Map50 ?? double.NaN);
    }

    private static ulong Mix(ulong seed, int epoch, ulong slot)
    {
        ulong h = seed ^ 0x94D049BB133111EBUL;
        foreach (var v in new[] { (ulong)(uint)epoch, slot })
        {
            h ^= v + 0x9E3779B97F4A7C15UL + (h << 6) + (h >> 2);
            h = (h ^ (h >> 31)) * 0xBF58476D1CE4E5B9UL;
        }
        return h;
    }
}
