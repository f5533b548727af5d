using ConvLab.NN.Functional;

namespace ConvLab.Detection;

/// <summary>Where one ground-truth box is learnt at one scale: the responsible anchor and cell.</summary>
/// <param name="Image">Image index in the batch.</param>
/// <param name="Box">Box index within the image.</param>
/// <param name="Scale">Scale index (order of the prediction maps).</param>
/// <param name="Anchor">Anchor index within the scale.</param>
/// <param name="Row">Grid row.</param>
/// <param name="Column">Grid column.</param>
public readonly record struct YoloAssignment(int Image, int Box, int Scale, int Anchor, int Row, int Column);

/// <summary>The loss of one batch with what it was made of.</summary>
/// <param name="Loss">Scalar loss (sum over the batch divided by the batch size), with its graph.</param>
/// <param name="Assignments">The positive (responsible) anchors, one per ground-truth box and scale.</param>
/// <param name="Ignored">Non-responsible anchors left out of the objectness loss (predicted box IoU with a ground truth above the threshold).</param>
/// <param name="Recalled">Assignments whose predicted objectness is above 0.5 (a cheap running recall for progress display).</param>
public sealed record YoloLossResult(Tensor Loss, IReadOnlyList<YoloAssignment> Assignments, int Ignored, int Recalled);

/// <summary>
/// A YOLOv3-style loss over raw prediction maps (N, A·(5 + C), H, W), one per scale, channels anchor-major as
/// <c>yolo_v3_decode</c> reads them. For every ground-truth box and every scale the anchor of that scale whose shape fits
/// the box best (IoU of the two boxes aligned at a common corner; the first on ties) is responsible in the cell holding the
/// box centre. A responsible anchor learns the offsets (binary cross-entropy of sigmoid(tx), sigmoid(ty) against the centre's
/// fraction of the cell), the log size (squared error of tw, th against log(w / anchor_w), log(h / anchor_h)), objectness 1 and
/// the classes as independent logistic targets (multi-label: boxes sharing a cell and anchor set each their class); box terms
/// are weighted by 2 - w·h / image area, as YOLOv3 does, to favour small boxes. Every other anchor learns objectness 0, unless
/// its decoded predicted box overlaps some ground truth of its image with IoU above <see cref="IgnoreThreshold"/>, in which
/// case it is ignored. The loss is the sum of all terms divided by the batch size.
/// </summary>
public sealed class YoloLoss
{
    private readonly float[][] _anchors;
    private readonly int[] _strides;

    /// <summary>Creates the loss; <paramref name="anchors"/>[s] holds (w, h) pairs in input pixels for the scale of stride <paramref name="strides"/>[s].</summary>
    public YoloLoss(int numClasses, IReadOnlyList<float[]> anchors, IReadOnlyList<int> strides, double ignoreThreshold = 0.5,
        double boxWeight = 1, double objectWeight = 1, double noObjectWeight = 1, double classWeight = 1)
    {
        ArgumentNullException.ThrowIfNull(anchors);
        ArgumentNullException.ThrowIfNull(strides);
        if (numClasses < 1) throw new ArgumentException($"yolo_loss: num_classes must be positive, got {numClasses}");
        if (anchors.Count == 0 || anchors.Count != strides.Count)
            throw new ArgumentException($"yolo_loss: expected one anchor set per stride, got {anchors.Count} anchor sets and {strides.Count} strides");
        for (int s = 0; s < anchors.Count; s++)
        {
            if (anchors[s].Length == 0 || anchors[s].Length % 2 != 0 || anchors[s].Any(v => !(v > 0) || !float.IsFinite(v)))
                throw new ArgumentException($"yolo_loss: anchors of scale {s} must be positive finite (w, h) pairs, got [{string.Join(", ", anchors[s])}]");
            if (strides[s] <= 0) throw new ArgumentException($"yolo_loss: stride {strides[s]} of scale {s} must be positive");
        }
        if (!(ignoreThreshold is >= 0 and <= 1)) throw new ArgumentException($"yolo_loss: ignore_threshold must be in [0, 1], got {ignoreThreshold}");
        (NumClasses, IgnoreThreshold, BoxWeight, ObjectWeight, NoObjectWeight, ClassWeight) = (numClasses, ignoreThreshold, boxWeight, objectWeight, noObjectWeight, classWeight);
        _anchors = [.. anchors.Select(a => a.ToArray())];
        _strides = [.. strides];
    }

    /// <summary>Number of classes.</summary>
    public int NumClasses { get; }

    /// <summary>IoU above which a non-responsible anchor's objectness is not penalised.</summary>
    public double IgnoreThreshold { get; }

    /// <summary>Weight of the box terms.</summary>
    public double BoxWeight { get; }

    /// <summary>Weight of the objectness term of responsible anchors.</summary>
    public double ObjectWeight { get; }

    /// <summary>Weight of the objectness term of the other (not ignored) anchors.</summary>
    public double NoObjectWeight { get; }

    /// <summary>Weight of the class terms.</summary>
    public double ClassWeight { get; }

    /// <summary>Anchors (w, h pairs, input pixels) of scale <paramref name="scale"/>.</summary>
    public ReadOnlySpan<float> Anchors(int scale) => _anchors[scale];

    /// <summary>Strides of the scales.</summary>
    public IReadOnlyList<int> Strides => _strides;

    /// <summary>The index of the anchor (w, h pairs) with the highest corner-aligned IoU with a w x h box (the first on ties).</summary>
    public static int BestAnchor(ReadOnlySpan<float> anchors, double w, double h)
    {
        int best = 0;
        double bestIou = -1;
        for (int a = 0; a < anchors.Length / 2; a++)
        {
            double inter = Math.Min(w, anchors[2 * a]) * Math.Min(h, anchors[2 * a + 1]);
            double iou = inter / (w * h + anchors[2 * a] * anchors[2 * a + 1] - inter);
            if (iou > bestIou) (best, bestIou) = (a, iou);
        }
        return best;
    }

    /// <summary>The loss of <paramref name="maps"/> (one per scale, for an input of <paramref name="inputHeight"/> x
    /// <paramref name="inputWidth"/>) against <paramref name="targets"/> (boxes in input pixels, one entry per image).</summary>
    public YoloLossResult Compute(IReadOnlyList<Tensor> maps, IReadOnlyList<(float[] Boxes, long[] Labels)> targets, int inputHeight, int inputWidth)
    {
        ArgumentNullException.ThrowIfNull(maps);
        ArgumentNullException.ThrowIfNull(targets);
        if (maps.Count != _strides.Length) throw new ArgumentException($"yolo_loss: expected {_strides.Length} prediction maps, got {maps.Count}");
        int n = maps[0].Rank == 4 ? maps[0].Shape[0] : -1;
        if (targets.Count != n) throw new ArgumentException($"yolo_loss: {targets.Count} target lists for a batch of {n}");
        int k = 5 + NumClasses;
        for (int s = 0; s < maps.Count; s++)
        {
            var m = maps[s];
            int a = _anchors[s].Length / 2;
            if (m.Rank != 4 || m.Shape[0] != n || m.Shape[1] != a * k || m.Shape[2] * _strides[s] != inputHeight || m.Shape[3] * _strides[s] != inputWidth)
                throw new ArgumentException($"yolo_loss: map {s} has shape {ShapeUtil.Format(m.Shape)} but (N={n}, {a}·(5+{NumClasses})={a * k}, {inputHeight}/{_strides[s]}, {inputWidth}/{_strides[s]}) was expected");
        }
        for (int i = 0; i < n; i++)
        {
            var (boxes, labels) = targets[i];
            if (boxes.Length != 4 * labels.Length) throw new ArgumentException($"yolo_loss: image {i} has {boxes.Length} box values for {labels.Length} labels");
            for (int b = 0; b < labels.Length; b++)
            {
                if (labels[b] < 0 || labels[b] >= NumClasses) throw new ArgumentException($"yolo_loss: image {i} box {b} has class {labels[b]} outside [0, {NumClasses - 1}]");
                if (!(boxes[4 * b + 2] > boxes[4 * b] && boxes[4 * b + 3] > boxes[4 * b + 1]))
                    throw new ArgumentException($"yolo_loss: image {i} box {b} [{string.Join(", ", boxes.AsSpan(4 * b, 4).ToArray())}] has x1 <= x0 or y1 <= y0");
            }
        }

        var assignments = new List<YoloAssignment>();
        Tensor? total = null;
        int ignored = 0, recalled = 0;
        double area = (double)inputHeight * inputWidth;
        for (int s = 0; s < maps.Count; s++)
        {
            var map = maps[s].Contiguous();
            int A = _anchors[s].Length / 2, H = map.Shape[2], W = map.Shape[3], hw = H * W, stride = _strides[s];
            var pred = map.Detach().Read<float>().ToArray();
            var target = new float[pred.Length];
            var wBce = new float[pred.Length];
            var wMse = new float[pred.Length];
            var responsible = new bool[n * A * hw];
            int Index(int img, int anchor, int ch, int cell) => ((img * A + anchor) * k + ch) * hw + cell;
            for (int i = 0; i < n; i++)
            {
                var (boxes, labels) = targets[i];
                for (int b = 0; b < labels.Length; b++)
                {
                    double x0 = boxes[4 * b], y0 = boxes[4 * b + 1], x1 = boxes[4 * b + 2], y1 = boxes[4 * b + 3];
                    double cx = (x0 + x1) / 2, cy = (y0 + y1) / 2, w = x1 - x0, h = y1 - y0;
                    int a = BestAnchor(_anchors[s], w, h);
                    int col = Math.Clamp((int)Math.Floor(cx / stride), 0, W - 1), row = Math.Clamp((int)Math.Floor(cy / stride), 0, H - 1);
                    int cell = row * W + col;
                    assignments.Add(new YoloAssignment(i, b, s, a, row, col));
                    float scale = (float)(BoxWeight * (2 - w * h / area));
                    Set(Index(i, a, 0, cell), (float)Math.Clamp(cx / stride - col, 0, 1), scale, bce: true);
                    Set(Index(i, a, 1, cell), (float)Math.Clamp(cy / stride - row, 0, 1), scale, bce: true);
                    Set(Index(i, a, 2, cell), (float)Math.Log(w / _anchors[s][2 * a]), scale, bce: false);
                    Set(Index(i, a, 3, cell), (float)Math.Log(h / _anchors[s][2 * a + 1]), scale, bce: false);
                    Set(Index(i, a, 4, cell), 1, (float)ObjectWeight, bce: true);
                    int first = Index(i, a, 5, 0);
                    if (!responsible[(i * A + a) * hw + cell])
                        for (int c = 0; c < NumClasses; c++) Set(first + c * hw + cell, 0, (float)ClassWeight, bce: true);
                    target[first + (int)labels[b] * hw + cell] = 1;
                    responsible[(i * A + a) * hw + cell] = true;
                    if (Sigmoid(pred[Index(i, a, 4, cell)]) > 0.5) recalled++;
                }
            }
            // Negatives: every anchor that is not responsible, unless its prediction already covers a ground truth well.
            for (int i = 0; i < n; i++)
            {
                var boxes = targets[i].Boxes;
                for (int a = 0; a < A; a++)
                    for (int cell = 0; cell < hw; cell++)
                    {
                        if (responsible[(i * A + a) * hw + cell]) continue;
                        int obj = Index(i, a, 4, cell);
                        if (boxes.Length > 0 && MaxIou(pred, Index(i, a, 0, cell), hw, cell % W, cell / W, stride, _anchors[s][2 * a], _anchors[s][2 * a + 1], boxes) > IgnoreThreshold)
                        {
                            ignored++;
                            continue;
                        }
                        Set(obj, 0, (float)NoObjectWeight, bce: true);
                    }
            }
            var t = new Tensor(target, map.Shape.ToArray());
            var bce = F.BinaryCrossEntropyWithLogits(map, t, new Tensor(wBce, map.Shape.ToArray()), reduction: "sum");
            var diff = map.Sub(t);
            var mse = diff.Mul(diff).Mul(new Tensor(wMse, map.Shape.ToArray())).Sum();
            var part = bce.Add(mse);
            total = total == null ? part : total.Add(part);

            void Set(int index, float value, float weight, bool bce)
            {
                target[index] = value;
                (bce ? wBce : wMse)[index] = weight;
            }
        }
        return new YoloLossResult(total!.MulScalar(1.0 / Math.Max(1, n)), assignments, ignored, recalled);
    }

    private static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    /// <summary>The highest IoU of the box decoded from one anchor's raw (tx, ty, tw, th) with any of <paramref name="boxes"/> (xyxy).</summary>
    private static double MaxIou(float[] pred, int first, int hw, int col, int row, int stride, double aw, double ah, float[] boxes)
    {
        double cx = (Sigmoid(pred[first]) + col) * stride, cy = (Sigmoid(pred[first + hw]) + row) * stride;
        double w = Math.Exp(Math.Min(pred[first + 2 * hw], 20)) * aw, h = Math.Exp(Math.Min(pred[first + 3 * hw], 20)) * ah;
        double px0 = cx - w / 2, py0 = cy - h / 2, px1 = cx + w / 2, py1 = cy + h / 2, best = 0;
        for (int b = 0; b < boxes.Length; b += 4)
        {
            double iw = Math.Min(px1, boxes[b + 2]) - Math.Max(px0, boxes[b]), ih = Math.Min(py1, boxes[b + 3]) - Math.Max(py0, boxes[b + 1]);
            if (iw <= 0 || ih <= 0) continue;
            double inter = iw * ih;
            best = Math.Max(best, inter / (w * h + (boxes[b + 2] - boxes[b]) * (boxes[b + 3] - boxes[b + 1]) - inter));
        }
        return best;
    }
}
