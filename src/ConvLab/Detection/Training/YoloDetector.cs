using ConvLab.Autograd;
using ConvLab.NN;

namespace ConvLab.Detection;

/// <summary>A detector's results on a dataset.</summary>
/// <param name="Map50">VOC all-point mAP at IoU 0.5 (<see cref="DetectionMetrics.VocAp"/>) over the classes with ground truth.</param>
/// <param name="Map50To95">COCO mAP@[.5:.95] (101-point interpolation, <see cref="DetectionMetrics.Coco"/>).</param>
/// <param name="CocoMap50">COCO-style (101-point) mAP at IoU 0.5.</param>
/// <param name="Ap50PerClass">VOC AP at IoU 0.5 per class (NaN for a class without ground truth).</param>
/// <param name="ApPerClass">COCO AP@[.5:.95] per class (NaN without ground truth).</param>
/// <param name="Curves">Precision–recall points per class at IoU 0.5.</param>
/// <param name="Images">Images evaluated.</param>
/// <param name="GroundTruth">Ground-truth boxes.</param>
/// <param name="Detections">Detections made.</param>
public sealed record DetectionEvaluation(double Map50, double Map50To95, double CocoMap50, double[] Ap50PerClass, double[] ApPerClass,
    PrCurve[] Curves, int Images, int GroundTruth, int Detections);

/// <summary>
/// A trained YOLO-style network with what decoding needs: its anchors (w, h pairs in input pixels per scale), strides and
/// input size. <see cref="Predict"/> decodes every scale (<see cref="YoloDecode.V3(IReadOnlyList{Tensor}, IReadOnlyList{Tensor}, IReadOnlyList{int}, int)"/>)
/// and post-processes (<see cref="YoloPostProcess"/>: score threshold, class-wise NMS, top-k); <see cref="Evaluate"/> runs it
/// over a dataset and measures VOC and COCO AP.
/// </summary>
public sealed class YoloDetector
{
    private readonly Tensor[] _anchors;

    /// <summary>Wraps <paramref name="model"/> (a <see cref="IYoloDetector"/> module).</summary>
    public YoloDetector(Module model, IReadOnlyList<float[]> anchors, IReadOnlyList<int> strides, int inputSize)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(anchors);
        ArgumentNullException.ThrowIfNull(strides);
        if (model is not IYoloDetector d) throw new ArgumentException($"detect: the model {model.GetType().Name} is not a YOLO detector (IYoloDetector)");
        if (anchors.Count != strides.Count) throw new ArgumentException($"detect: {anchors.Count} anchor sets for {strides.Count} strides");
        DetectionObjective.CheckSize(inputSize, "input size");
        (Model, NumClasses, Strides, InputSize) = (model, d.NumClasses, [.. strides], inputSize);
        _anchors = [.. anchors.Select(a => new Tensor(a.ToArray(), [a.Length / 2, 2]))];
    }

    /// <summary>The network.</summary>
    public Module Model { get; }

    /// <summary>Number of classes.</summary>
    public int NumClasses { get; }

    /// <summary>Strides of the scales.</summary>
    public IReadOnlyList<int> Strides { get; }

    /// <summary>Input side the detector runs at.</summary>
    public int InputSize { get; }

    /// <summary>Detections (boxes in pixels of <paramref name="images"/>, (N, 3, H, W)) per image, in evaluation mode without gradients.</summary>
    public IReadOnlyList<DetectedBox>[] Predict(Tensor images, PostProcessOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        bool wasTraining = Model.Training;
        Model.Eval();
        try
        {
            using var _ = new NoGrad();
            var maps = ((IYoloDetector)Model).ForwardScales(images);
            var decoded = YoloDecode.V3(maps, _anchors, Strides, NumClasses);
            return YoloPostProcess.Run(decoded, (options ?? new PostProcessOptions()) with { ClipTo = (images.Shape[3], images.Shape[2]) });
        }
        finally { Model.Train(wasTraining); }
    }

    /// <summary>Runs over every sample of <paramref name="data"/> (resized to <see cref="InputSize"/>) with score threshold
    /// <paramref name="scoreThreshold"/> (0.001, as mAP evaluations use) and measures AP; <paramref name="onBatch"/> reports progress.</summary>
    public DetectionEvaluation Evaluate(IDetectionDataset data, int batchSize = 32, double scoreThreshold = 0.001, Action<int, int>? onBatch = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (batchSize < 1) throw new ArgumentException($"detect: batch size must be positive, got {batchSize}");
        var predictions = new List<IReadOnlyList<DetectedBox>>();
        var truth = new List<IReadOnlyList<GroundTruthBox>>();
        var options = new PostProcessOptions { ScoreThreshold = scoreThreshold };
        var recycler = new StorageRecycler();
        int batches = (data.Count + batchSize - 1) / batchSize;
        for (int b = 0; b < batches; b++)
        {
            int start = b * batchSize, count = Math.Min(batchSize, data.Count - start);
            var batch = DetectionObjective.Collate([.. Enumerable.Range(start, count).Select(data.Get)], InputSize);
            recycler.Begin();
            try { predictions.AddRange(Predict(batch.Images, options)); }
            finally { recycler.End(Model); }
            foreach (var (boxes, labels) in batch.Targets)
                truth.Add([.. Enumerable.Range(0, labels.Length).Select(k => new GroundTruthBox(boxes[4 * k], boxes[4 * k + 1], boxes[4 * k + 2], boxes[4 * k + 3], (int)labels[k]))]);
            onBatch?.Invoke(b + 1, batches);
        }
        var voc = DetectionMetrics.VocAp(predictions, truth, NumClasses, 0.5);
        var coco = DetectionMetrics.Coco(predictions, truth, NumClasses);
        return new DetectionEvaluation(voc.Map, coco.Map, coco.Map50,
            [.. voc.Ap.Select((ap, c) => voc.HasGt[c] ? ap : double.NaN)],
            [.. coco.ApPerClass.Select(ap => ap < 0 ? double.NaN : ap)],
            voc.Curves, data.Count, truth.Sum(t => t.Count), predictions.Sum(p => p.Count));
    }
}
