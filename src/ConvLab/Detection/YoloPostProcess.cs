namespace ConvLab.Detection;

/// <summary>Settings of <see cref="YoloPostProcess"/>.</summary>
public sealed record PostProcessOptions
{
    /// <summary>A (box, class) pair is a candidate when its score is greater than this (darknet's <c>thresh</c>; 0.001 for mAP evaluation).</summary>
    public double ScoreThreshold { get; init; } = 0.25;
    /// <summary>NMS IoU threshold: a box is suppressed when its IoU with a kept box of the same class is greater than this.</summary>
    public double IouThreshold { get; init; } = 0.45;
    /// <summary>Detections kept per image after NMS (the highest scores; COCO's maxDets is 100).</summary>
    public int MaxDetections { get; init; } = 100;
    /// <summary>Candidates passed to NMS per image (the highest scores), bounding the cost of an untrained network.</summary>
    public int MaxCandidates { get; init; } = 10_000;
    /// <summary>When true one NMS runs over all classes (boxes of different classes suppress each other).</summary>
    public bool ClassAgnostic { get; init; }
    /// <summary>When set, boxes are clipped to [0, width] × [0, height] before NMS.</summary>
    public (int Width, int Height)? ClipTo { get; init; }
}

/// <summary>
/// YOLO post-processing: every (box, class) pair whose score exceeds the threshold is a candidate (YOLOv3's classes
/// are independent, so a box may yield several labels), boxes go from cxcywh to xyxy, class-wise NMS (batched NMS)
/// removes duplicates, and the top <see cref="PostProcessOptions.MaxDetections"/> remain, in decreasing score order.
/// </summary>
public static class YoloPostProcess
{
    /// <summary>Detections per image from decoded YOLOv3 outputs (score = objectness × class probability).</summary>
    public static IReadOnlyList<DetectedBox>[] Run(YoloV3Output decoded, PostProcessOptions? options = null)
    {
        using var _ = new Autograd.NoGrad();
        return Run(decoded.Boxes, decoded.Scores(), options);
    }

    /// <summary>Detections per image from decoded YOLOv1 outputs (score = confidence × class score).</summary>
    public static IReadOnlyList<DetectedBox>[] Run(YoloV1Output decoded, PostProcessOptions? options = null) =>
        Run(decoded.Boxes, decoded.ClassScores, options);

    /// <summary>Detections per image from (N, R, 4) <c>cxcywh</c> boxes and (N, R, C) per-class scores.</summary>
    public static IReadOnlyList<DetectedBox>[] Run(Tensor boxes, Tensor scores, PostProcessOptions? options = null)
    {
        const string op = "yolo_postprocess";
        var o = options ?? new PostProcessOptions();
        boxes.RequireFloat(op); scores.RequireFloat(op);
        if (boxes.Rank != 3 || boxes.Shape[2] != 4)
            throw new ArgumentException($"{op}: boxes must be (N, R, 4) cxcywh, got shape {ShapeUtil.Format(boxes.Shape)}");
        if (scores.Rank != 3 || scores.Shape[0] != boxes.Shape[0] || scores.Shape[1] != boxes.Shape[1])
            throw new ArgumentException($"{op}: scores must be (N, R, C) = ({boxes.Shape[0]}, {boxes.Shape[1]}, C), got shape {ShapeUtil.Format(scores.Shape)}");
        if (o.MaxDetections < 1 || o.MaxCandidates < 1)
            throw new ArgumentException($"{op}: MaxDetections ({o.MaxDetections}) and MaxCandidates ({o.MaxCandidates}) must be positive");
        if (double.IsNaN(o.ScoreThreshold) || double.IsNaN(o.IouThreshold))
            throw new ArgumentException($"{op}: ScoreThreshold and IouThreshold must not be NaN");
        int n = boxes.Shape[0], r = boxes.Shape[1], c = scores.Shape[2];
        var b = boxes.Detach().To(DType.Float32).Read<float>().ToArray();
        var s = scores.Detach().To(DType.Float32).Read<float>().ToArray();
        var result = new IReadOnlyList<DetectedBox>[n];
        for (int img = 0; img < n; img++)
        {
            var candBoxes = new List<float>(); var candScores = new List<float>(); var candLabels = new List<long>();
            for (int row = 0; row < r; row++)
            {
                int bi = (img * r + row) * 4;
                float cx = b[bi], cy = b[bi + 1], w = b[bi + 2], h = b[bi + 3];
                if (!(float.IsFinite(cx) && float.IsFinite(cy) && float.IsFinite(w) && float.IsFinite(h)))
                    throw new ArgumentException($"{op}: image {img}, row {row}: box [{cx}, {cy}, {w}, {h}] is not finite");
                if (w < 0 || h < 0) throw new ArgumentException($"{op}: image {img}, row {row}: box [{cx}, {cy}, {w}, {h}] has a negative width or height");
                float x0 = cx - w / 2, y0 = cy - h / 2, x1 = cx + w / 2, y1 = cy + h / 2;
                if (o.ClipTo is var (cw, ch))
                {
                    x0 = Math.Clamp(x0, 0, cw); x1 = Math.Clamp(x1, 0, cw); y0 = Math.Clamp(y0, 0, ch); y1 = Math.Clamp(y1, 0, ch);
                }
                for (int k = 0; k < c; k++)
                {
                    float score = s[(img * r + row) * c + k];
                    if (float.IsNaN(score)) throw new ArgumentException($"{op}: image {img}, row {row}, class {k}: score is NaN");
                    if (score <= o.ScoreThreshold) continue;
                    candBoxes.AddRange([x0, y0, x1, y1]); candScores.Add(score); candLabels.Add(k);
                }
            }
            var idx = Enumerable.Range(0, candScores.Count).ToArray();
            if (idx.Length > o.MaxCandidates)
                idx = [.. Kernels.Nms.SortDescending<float>(candScores.ToArray()).Take(o.MaxCandidates).Order()];
            var cb = new float[idx.Length * 4]; var cs = new float[idx.Length]; var cl = new long[idx.Length];
            for (int i = 0; i < idx.Length; i++)
            {
                for (int q = 0; q < 4; q++) cb[4 * i + q] = candBoxes[4 * idx[i] + q];
                cs[i] = candScores[idx[i]]; cl[i] = o.ClassAgnostic ? 0 : candLabels[idx[i]];
            }
            var kept = BoxOps.BatchedNms(cb, cs, cl, BoxOps.FloatThreshold(o.IouThreshold));
            var dets = new List<DetectedBox>(Math.Min(kept.Length, o.MaxDetections));
            foreach (int i in kept.Take(o.MaxDetections))
                dets.Add(new DetectedBox(cb[4 * i], cb[4 * i + 1], cb[4 * i + 2], cb[4 * i + 3], cs[i], (int)candLabels[idx[i]]));
            result[img] = dets;
        }
        return result;
    }
}
