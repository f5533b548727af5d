using ConvLab.NN.Functional;

namespace ConvLab.Detection;

/// <summary>Decoded YOLOv3 predictions of one or more scales.</summary>
/// <param name="Boxes">(N, R, 4) <c>cxcywh</c> boxes in input pixels.</param>
/// <param name="Objectness">(N, R) sigmoid of the objectness logit.</param>
/// <param name="ClassProbs">(N, R, C) independent logistic class probabilities.</param>
public sealed record YoloV3Output(Tensor Boxes, Tensor Objectness, Tensor ClassProbs)
{
    /// <summary>(N, R, C) detection scores: objectness × class probability.</summary>
    public Tensor Scores() => Objectness.Unsqueeze(2).Mul(ClassProbs);
}

/// <summary>Decoded YOLOv1 predictions.</summary>
/// <param name="Boxes">(N, S·S·B, 4) <c>cxcywh</c> boxes in image pixels.</param>
/// <param name="Confidence">(N, S·S·B) box confidences as predicted.</param>
/// <param name="ClassScores">(N, S·S·B, C) confidence × class score of the box's cell.</param>
public sealed record YoloV1Output(Tensor Boxes, Tensor Confidence, Tensor ClassScores);

/// <summary>
/// Turns raw YOLO outputs into boxes, exactly as <c>shared/reference-vision/README.md</c> defines <c>yolo_v3_decode</c>
/// and <c>yolo_v1_decode</c>. Both are compositions of differentiable tensor ops (sigmoid, exp, add, mul, cat), so a
/// loss on the decoded boxes back-propagates into the prediction.
/// </summary>
public static class YoloDecode
{
    /// <summary>
    /// darknet's yolov3.cfg anchors (width, height in input pixels) in the order of <see cref="Models.YoloV3.ForwardScales"/>:
    /// stride 32, 16, 8, three anchors each.
    /// </summary>
    public static IReadOnlyList<float[]> DarknetAnchors { get; } =
    [
        [116, 90, 156, 198, 373, 326],
        [30, 61, 62, 45, 59, 119],
        [10, 13, 16, 30, 33, 23],
    ];

    /// <summary>The strides of <see cref="Models.YoloV3.ForwardScales"/>'s maps: 32, 16, 8.</summary>
    public static IReadOnlyList<int> DarknetStrides { get; } = [32, 16, 8];

    /// <summary>
    /// Decodes one YOLOv3 scale. <paramref name="prediction"/> is (N, A·(5+C), H, W), channels anchor-major (tx, ty, tw, th,
    /// objectness, C class logits per anchor); <paramref name="anchors"/> is (A, 2) width/height in input pixels.
    /// cx = (σ(tx) + column)·stride, cy = (σ(ty) + row)·stride, w = exp(tw)·anchor_w, h = exp(th)·anchor_h; rows ordered
    /// anchor, then row, then column.
    /// </summary>
    public static YoloV3Output V3(Tensor prediction, Tensor anchors, int stride, int numClasses)
    {
        const string op = "yolo_v3_decode";
        prediction.RequireFloat(op); anchors.RequireFloat(op);
        if (numClasses < 1) throw new ArgumentException($"{op}: num_classes must be positive, got {numClasses}");
        if (stride < 1) throw new ArgumentException($"{op}: stride must be positive, got {stride}");
        if (anchors.Rank != 2 || anchors.Shape[1] != 2 || anchors.Shape[0] < 1)
            throw new ArgumentException($"{op}: anchors must be (A, 2) widths and heights with A >= 1, got shape {ShapeUtil.Format(anchors.Shape)}");
        int a = anchors.Shape[0], k = 5 + numClasses;
        if (prediction.Rank != 4 || prediction.Shape[1] != a * k)
            throw new ArgumentException($"{op}: prediction must be (N, A*(5+C), H, W) = (N, {a * k}, H, W) for {a} anchors and {numClasses} classes, got shape {ShapeUtil.Format(prediction.Shape)}");
        int n = prediction.Shape[0], h = prediction.Shape[2], w = prediction.Shape[3], rows = a * h * w;
        var p = prediction.Reshape(n, a, k, h, w).Permute(0, 1, 3, 4, 2).Reshape(n, rows, k);

        var grid = new double[rows * 2];
        for (int i = 0; i < rows; i++) { grid[2 * i] = i % w; grid[2 * i + 1] = i / w % h; }
        var cell = Tensor.FromArray(grid, 1, rows, 2).To(prediction.DType);
        var anchorWh = anchors.To(prediction.DType).Reshape(1, a, 1, 2).Expand(1, a, h * w, 2).Reshape(1, rows, 2);

        var centre = F.Sigmoid(p.Narrow(2, 0, 2)).Add(cell).MulScalar(stride);
        var size = p.Narrow(2, 2, 2).Exp().Mul(anchorWh);
        return new YoloV3Output(Tensor.Cat([centre, size], 2), F.Sigmoid(p.Select(2, 4)), F.Sigmoid(p.Narrow(2, 5, numClasses)));
    }

    /// <summary>
    /// Decodes several YOLOv3 scales (e.g. the three maps of <see cref="Models.YoloV3.ForwardScales"/> with
    /// <see cref="DarknetAnchors"/> and <see cref="DarknetStrides"/>) and concatenates their rows in the given order.
    /// </summary>
    public static YoloV3Output V3(IReadOnlyList<Tensor> predictions, IReadOnlyList<Tensor> anchors, IReadOnlyList<int> strides, int numClasses)
    {
        if (predictions.Count == 0 || anchors.Count != predictions.Count || strides.Count != predictions.Count)
            throw new ArgumentException($"yolo_v3_decode: need one anchor set and one stride per prediction map, got {predictions.Count} maps, {anchors.Count} anchor sets, {strides.Count} strides");
        var parts = predictions.Select((p, i) => V3(p, anchors[i], strides[i], numClasses)).ToList();
        if (parts.Count == 1) return parts[0];
        return new YoloV3Output(Tensor.Cat([.. parts.Select(o => o.Boxes)], 1), Tensor.Cat([.. parts.Select(o => o.Objectness)], 1),
            Tensor.Cat([.. parts.Select(o => o.ClassProbs)], 1));
    }

    /// <summary>
    /// Decodes ConvLab's YOLOv1 head output (N, S, S, 5B+C) (per cell B boxes x, y, w, h, confidence, then C class
    /// scores): cx = (x + column)/S·width, cy = (y + row)/S·height, w = (w or w² when <paramref name="sqrtWh"/>)·width,
    /// h likewise; class scores = confidence × class score. Rows: cell (row-major), then box.
    /// </summary>
    public static YoloV1Output V1(Tensor prediction, int B, int C, int imageWidth, int imageHeight, bool sqrtWh)
    {
        const string op = "yolo_v1_decode";
        prediction.RequireFloat(op);
        if (B < 1 || C < 1) throw new ArgumentException($"{op}: B ({B}) and C ({C}) must be positive");
        if (imageWidth < 1 || imageHeight < 1) throw new ArgumentException($"{op}: image_size must be positive, got [{imageWidth}, {imageHeight}]");
        if (prediction.Rank != 4 || prediction.Shape[1] != prediction.Shape[2] || prediction.Shape[3] != 5 * B + C)
            throw new ArgumentException($"{op}: prediction must be (N, S, S, 5B+C) = (N, S, S, {5 * B + C}), got shape {ShapeUtil.Format(prediction.Shape)}");
        int n = prediction.Shape[0], s = prediction.Shape[1], rows = s * s * B;
        var box = prediction.Narrow(3, 0, 5 * B).Reshape(n, s, s, B, 5);
        var grid = new double[s * s * 2];
        for (int i = 0; i < s * s; i++) { grid[2 * i] = i % s; grid[2 * i + 1] = i / s; }
        var cell = Tensor.FromArray(grid, 1, s, s, 1, 2).To(prediction.DType);
        var scale = Tensor.FromArray(new double[] { imageWidth, imageHeight }, 1, 1, 1, 1, 2).To(prediction.DType);

        var centre = box.Narrow(4, 0, 2).Add(cell).DivScalarBy(s).Mul(scale);
        var wh = box.Narrow(4, 2, 2);
        if (sqrtWh) wh = wh.Mul(wh);
        var size = wh.Mul(scale);
        var confidence = box.Select(4, 4);
        var classScores = confidence.Unsqueeze(4).Mul(prediction.Narrow(3, 5 * B, C).Unsqueeze(3));
        return new YoloV1Output(Tensor.Cat([centre, size], 4).Reshape(n, rows, 4), confidence.Reshape(n, rows), classScores.Reshape(n, rows, C));
    }

    private static Tensor DivScalarBy(this Tensor t, int s) => t.Div(Tensor.Scalar(s, t.DType));
}
