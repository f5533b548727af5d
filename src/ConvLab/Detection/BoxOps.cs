using System.Numerics;
using ConvLab.Kernels;

namespace ConvLab.Detection;

/// <summary>
/// Box operations with torchvision.ops names and semantics. Boxes are (K, 4) float tensors in <c>xyxy</c> pixels
/// (x0, y0, x1, y1 with x0 ≤ x1, y0 ≤ y1) unless a format says otherwise. Every op validates its boxes: a box with
/// x1 &lt; x0 or y1 &lt; y0, or a NaN coordinate or score, is an <see cref="ArgumentException"/> naming the op, the
/// argument and the box. Empty inputs are valid where torchvision accepts them (e.g. NMS of 0 boxes keeps none).
/// </summary>
public static class BoxOps
{
    /// <summary>Area (x1 − x0)·(y1 − y0) of each box: (K, 4) → (K) (torchvision's <c>box_area</c>).</summary>
    public static Tensor BoxArea(Tensor boxes)
    {
        Validate(boxes, "box_area", "boxes");
        var w = boxes.Select(1, 2).Sub(boxes.Select(1, 0));
        var h = boxes.Select(1, 3).Sub(boxes.Select(1, 1));
        return w.Mul(h);
    }

    /// <summary>Pairwise intersection over union: boxes1 (N, 4), boxes2 (M, 4) → (N, M) (torchvision's <c>box_iou</c>).</summary>
    public static Tensor BoxIou(Tensor boxes1, Tensor boxes2) => Pairwise(boxes1, boxes2, BoxIouKind.Iou, 0, "box_iou");

    /// <summary>Pairwise generalized IoU (Rezatofighi et al.): IoU − (C − U)/C with C the smallest enclosing box (torchvision's <c>generalized_box_iou</c>).</summary>
    public static Tensor GeneralizedBoxIou(Tensor boxes1, Tensor boxes2) => Pairwise(boxes1, boxes2, BoxIouKind.Generalized, 0, "generalized_box_iou");

    /// <summary>Pairwise distance IoU (Zheng et al.): IoU − ρ²(centres)/(c² + eps), c the enclosing box's diagonal (torchvision's <c>distance_box_iou</c>).</summary>
    public static Tensor DistanceBoxIou(Tensor boxes1, Tensor boxes2, double eps = 1e-7) => Pairwise(boxes1, boxes2, BoxIouKind.Distance, eps, "distance_box_iou");

    /// <summary>
    /// Pairwise complete IoU: DIoU − α·v with v = 4/π²·(atan(w₁/h₁) − atan(w₂/h₂))² and α = v/(1 − IoU + v + eps)
    /// (torchvision's <c>complete_box_iou</c>).
    /// </summary>
    public static Tensor CompleteBoxIou(Tensor boxes1, Tensor boxes2, double eps = 1e-7) => Pairwise(boxes1, boxes2, BoxIouKind.Complete, eps, "complete_box_iou");

    private static Tensor Pairwise(Tensor boxes1, Tensor boxes2, BoxIouKind kind, double eps, string op)
    {
        Validate(boxes1, op, "boxes1");
        Validate(boxes2, op, "boxes2");
        if (boxes1.DType != boxes2.DType)
            throw new ArgumentException($"{op}: boxes1 ({boxes1.DType}) and boxes2 ({boxes2.DType}) must have the same dtype");
        int n = boxes1.Shape[0], m = boxes2.Shape[0];
        var y = Tensor.Zeros([n, m], boxes1.DType);
        if (boxes1.DType == DType.Float32)
            Kernels.BoxIou.Pairwise(boxes1.Read<float>(), boxes2.Read<float>(), kind, (float)eps, y.Span<float>());
        else
            Kernels.BoxIou.Pairwise(boxes1.Read<double>(), boxes2.Read<double>(), kind, eps, y.Span<double>());
        return y;
    }

    /// <summary>
    /// Converts boxes (…, 4) between <c>xyxy</c>, <c>xywh</c> (corner and size) and <c>cxcywh</c> (centre and size)
    /// (torchvision's <c>box_convert</c>). Differentiable; any leading shape.
    /// </summary>
    public static Tensor BoxConvert(Tensor boxes, string inFmt, string outFmt)
    {
        const string op = "box_convert";
        string[] formats = ["xyxy", "xywh", "cxcywh"];
        if (!formats.Contains(inFmt)) throw new ArgumentException($"{op}: in_fmt must be one of xyxy, xywh, cxcywh, got '{inFmt}'");
        if (!formats.Contains(outFmt)) throw new ArgumentException($"{op}: out_fmt must be one of xyxy, xywh, cxcywh, got '{outFmt}'");
        boxes.RequireFloat(op);
        if (boxes.Rank < 1 || boxes.Shape[^1] != 4)
            throw new ArgumentException($"{op}: boxes must have a last dimension of 4, got shape {ShapeUtil.Format(boxes.Shape)}");
        if (inFmt == outFmt) return boxes.Clone();
        int d = boxes.Rank - 1;
        Tensor a = boxes.Narrow(d, 0, 1), b = boxes.Narrow(d, 1, 1), c = boxes.Narrow(d, 2, 1), e = boxes.Narrow(d, 3, 1);
        // Through xyxy: (a, b, c, e) become x0, y0, x1, y1.
        (Tensor x0, Tensor y0, Tensor x1, Tensor y1) = inFmt switch
        {
            "xyxy" => (a, b, c, e),
            "xywh" => (a, b, a.Add(c), b.Add(e)),
            _ => (a.Sub(c.MulScalar(0.5)), b.Sub(e.MulScalar(0.5)), a.Add(c.MulScalar(0.5)), b.Add(e.MulScalar(0.5))),
        };
        Tensor[] parts = outFmt switch
        {
            "xyxy" => [x0, y0, x1, y1],
            "xywh" => [x0, y0, x1.Sub(x0), y1.Sub(y0)],
            _ => [x0.Add(x1).MulScalar(0.5), y0.Add(y1).MulScalar(0.5), x1.Sub(x0), y1.Sub(y0)],
        };
        return Tensor.Cat(parts, d);
    }

    /// <summary>Clamps x into [0, width] and y into [0, height] (torchvision's <c>clip_boxes_to_image</c>, size = (height, width)). Any leading shape.</summary>
    public static Tensor ClipBoxesToImage(Tensor boxes, int height, int width)
    {
        const string op = "clip_boxes_to_image";
        boxes.RequireFloat(op);
        if (boxes.Rank < 1 || boxes.Shape[^1] != 4)
            throw new ArgumentException($"{op}: boxes must have a last dimension of 4, got shape {ShapeUtil.Format(boxes.Shape)}");
        if (height < 0 || width < 0) throw new ArgumentException($"{op}: size must be non-negative, got height {height}, width {width}");
        var limits = Tensor.FromArray(new double[] { width, height, width, height }, 4).To(boxes.DType);
        var zero = Tensor.Scalar(0, boxes.DType);
        // min(x, limit) = −max(−x, −limit): keeps the op a composition of differentiable tensor ops.
        return boxes.Maximum(zero).Neg().Maximum(limits.Neg()).Neg();
    }

    /// <summary>Indices (int64, increasing) of the boxes whose width and height are both ≥ <paramref name="minSize"/> (torchvision's <c>remove_small_boxes</c>).</summary>
    public static Tensor RemoveSmallBoxes(Tensor boxes, double minSize)
    {
        const string op = "remove_small_boxes";
        Validate(boxes, op, "boxes");
        var b = boxes.ToDoubleArray();
        var keep = new List<long>();
        for (int i = 0; i < boxes.Shape[0]; i++)
            if (b[4 * i + 2] - b[4 * i] >= minSize && b[4 * i + 3] - b[4 * i + 1] >= minSize) keep.Add(i);
        return Tensor.FromArray(keep.ToArray(), keep.Count);
    }

    /// <summary>
    /// Tight boxes (K, 4) around the non-zero pixels of masks (K, H, W): x0/x1 the first/last non-zero column, y0/y1 the
    /// first/last row (torchvision's <c>masks_to_boxes</c>; inclusive pixel indices). An all-zero mask is an error.
    /// </summary>
    public static Tensor MasksToBoxes(Tensor masks)
    {
        const string op = "masks_to_boxes";
        if (masks.Rank != 3) throw new ArgumentException($"{op}: masks must be 3-D (K, H, W), got shape {ShapeUtil.Format(masks.Shape)}");
        int k = masks.Shape[0], h = masks.Shape[1], w = masks.Shape[2];
        var m = masks.ToDoubleArray();
        var result = new double[4 * k];
        for (int i = 0; i < k; i++)
        {
            int x0 = int.MaxValue, y0 = int.MaxValue, x1 = -1, y1 = -1;
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    if (m[(i * h + y) * w + x] != 0)
                    {
                        x0 = Math.Min(x0, x); x1 = Math.Max(x1, x); y0 = Math.Min(y0, y); y1 = Math.Max(y1, y);
                    }
            if (x1 < 0) throw new ArgumentException($"{op}: mask {i} has no non-zero pixel, so it has no box");
            (result[4 * i], result[4 * i + 1], result[4 * i + 2], result[4 * i + 3]) = (x0, y0, x1, y1);
        }
        return Tensor.FromArray(result, k, 4).To(masks.IsFloatingPoint ? masks.DType : DType.Float32);
    }

    /// <summary>
    /// Non-maximum suppression (torchvision's <c>nms</c>): int64 indices of the kept boxes in decreasing score order;
    /// a box is suppressed when its IoU with a kept box is greater than <paramref name="iouThreshold"/>. Equal scores
    /// keep the original order. 0 boxes keep none.
    /// </summary>
    public static Tensor Nms(Tensor boxes, Tensor scores, double iouThreshold)
    {
        const string op = "nms";
        ValidateScored(boxes, scores, op);
        return Indices(boxes.DType == DType.Float32
            ? Kernels.Nms.Run(boxes.Read<float>(), scores.To(DType.Float32).Read<float>(), FloatThreshold(iouThreshold))
            : Kernels.Nms.Run(boxes.Read<double>(), scores.To(DType.Float64).Read<double>(), iouThreshold));
    }

    /// <summary>
    /// NMS per category (torchvision's <c>batched_nms</c>): boxes of different <paramref name="idxs"/> (int64, one per box)
    /// never suppress each other. One pass over all boxes with each category shifted by idx·(max coordinate + 1), so
    /// categories cannot overlap (torchvision's coordinate trick). Indices in decreasing score order.
    /// </summary>
    public static Tensor BatchedNms(Tensor boxes, Tensor scores, Tensor idxs, double iouThreshold)
    {
        const string op = "batched_nms";
        ValidateScored(boxes, scores, op);
        if (idxs.IsFloatingPoint || idxs.Rank != 1 || idxs.Shape[0] != boxes.Shape[0])
            throw new ArgumentException($"{op}: idxs must be int64 of shape [{boxes.Shape[0]}], got {idxs.DType} {ShapeUtil.Format(idxs.Shape)}");
        if (boxes.Shape[0] == 0) return Indices([]);
        var cats = idxs.ToInt64Array();
        return Indices(boxes.DType == DType.Float32
            ? Batched(boxes.Read<float>(), scores.To(DType.Float32).Read<float>(), cats, FloatThreshold(iouThreshold))
            : Batched(boxes.Read<double>(), scores.To(DType.Float64).Read<double>(), cats, iouThreshold));
    }

    /// <summary>NMS on raw spans: <paramref name="boxes"/> K·4 xyxy, <paramref name="scores"/> K; indices kept in decreasing score order. Not validated.</summary>
    public static int[] Nms(ReadOnlySpan<float> boxes, ReadOnlySpan<float> scores, float iouThreshold) => Kernels.Nms.Run(boxes, scores, iouThreshold);

    /// <summary>Batched NMS on raw spans (see <see cref="BatchedNms(Tensor, Tensor, Tensor, double)"/>). Not validated.</summary>
    public static int[] BatchedNms(ReadOnlySpan<float> boxes, ReadOnlySpan<float> scores, ReadOnlySpan<long> categories, float iouThreshold) =>
        Batched(boxes, scores, categories, iouThreshold);

    private static int[] Batched<T>(ReadOnlySpan<T> boxes, ReadOnlySpan<T> scores, ReadOnlySpan<long> cats, T iouThreshold)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (scores.Length == 0) return [];
        // torchvision: offsets = idxs.to(boxes) * (boxes.max() + 1), all in the boxes' dtype.
        T max = T.NegativeInfinity;
        foreach (var v in boxes) max = T.Max(max, v);
        T step = max + T.One;
        var offsets = new T[scores.Length];
        for (int i = 0; i < offsets.Length; i++) offsets[i] = T.CreateTruncating(cats[i]) * step;
        return Kernels.Nms.Run(boxes, scores, iouThreshold, offsets);
    }

    /// <summary>
    /// The largest float ≤ <paramref name="t"/>: a float IoU v satisfies v &gt; t (compared in double, as torchvision's
    /// kernel compares its float IoU with the double threshold) exactly when v &gt; this float.
    /// </summary>
    internal static float FloatThreshold(double t)
    {
        if (double.IsNaN(t)) throw new ArgumentException("nms: iou_threshold is NaN");
        float f = (float)t;
        return f > t ? MathF.BitDecrement(f) : f;
    }

    private static Tensor Indices(int[] kept)
    {
        var l = new long[kept.Length];
        for (int i = 0; i < l.Length; i++) l[i] = kept[i];
        return Tensor.FromArray(l, l.Length);
    }

    private static void ValidateScored(Tensor boxes, Tensor scores, string op)
    {
        Validate(boxes, op, "boxes");
        scores.RequireFloat(op);
        if (scores.Rank != 1 || scores.Shape[0] != boxes.Shape[0])
            throw new ArgumentException($"{op}: scores must have shape [{boxes.Shape[0]}] (one per box), got {ShapeUtil.Format(scores.Shape)}");
        var s = scores.ToDoubleArray();
        for (int i = 0; i < s.Length; i++)
            if (double.IsNaN(s[i])) throw new ArgumentException($"{op}: score {i} is NaN");
    }

    /// <summary>Checks a (K, 4) xyxy float tensor: finite-or-infinite but not NaN coordinates, x0 ≤ x1 and y0 ≤ y1.</summary>
    internal static void Validate(Tensor boxes, string op, string name)
    {
        boxes.RequireFloat(op);
        if (boxes.Rank != 2 || boxes.Shape[1] != 4)
            throw new ArgumentException($"{op}: {name} must be (K, 4) xyxy boxes, got shape {ShapeUtil.Format(boxes.Shape)}");
        if (boxes.IsMeta) return;
        var b = boxes.ToDoubleArray();
        for (int i = 0; i < boxes.Shape[0]; i++)
        {
            double x0 = b[4 * i], y0 = b[4 * i + 1], x1 = b[4 * i + 2], y1 = b[4 * i + 3];
            if (double.IsNaN(x0) || double.IsNaN(y0) || double.IsNaN(x1) || double.IsNaN(y1))
                throw new ArgumentException($"{op}: {name}[{i}] = [{x0}, {y0}, {x1}, {y1}] has a NaN coordinate");
            if (x1 < x0 || y1 < y0)
                throw new ArgumentException($"{op}: {name}[{i}] = [{x0}, {y0}, {x1}, {y1}] has x1 < x0 or y1 < y0 (boxes must be xyxy with x0 <= x1, y0 <= y1)");
        }
    }
}
