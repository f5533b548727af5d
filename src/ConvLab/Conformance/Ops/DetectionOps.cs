using ConvLab.Detection;
using ConvLab.NN.Functional;

namespace ConvLab.Conformance.Ops;

/// <summary>Conformance handlers for the detection families of ../shared/reference-vision: box_ops (torchvision.ops) and yolo.</summary>
internal static class DetectionOps
{
    private static IReadOnlyDictionary<string, Tensor> Out(Tensor t) => new Dictionary<string, Tensor> { ["output"] = t };

    [ReferenceOp("box_iou", "generalized_box_iou", "distance_box_iou", "complete_box_iou")]
    public static IReadOnlyDictionary<string, Tensor> Pairwise(OpArgs a)
    {
        var (b1, b2) = (a.Input("boxes1"), a.Input("boxes2"));
        return Out(a.Case.Op switch
        {
            "box_iou" => BoxOps.BoxIou(b1, b2),
            "generalized_box_iou" => BoxOps.GeneralizedBoxIou(b1, b2),
            "distance_box_iou" => BoxOps.DistanceBoxIou(b1, b2, a.Double("eps", 1e-7)),
            _ => BoxOps.CompleteBoxIou(b1, b2, a.Double("eps", 1e-7)),
        });
    }

    [ReferenceOp("generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss")]
    public static IReadOnlyDictionary<string, Tensor> Loss(OpArgs a)
    {
        var (b1, b2, r, eps) = (a.Input("boxes1"), a.Input("boxes2"), a.String("reduction"), a.Double("eps"));
        return Out(a.Case.Op switch
        {
            "generalized_box_iou_loss" => F.GeneralizedBoxIouLoss(b1, b2, r, eps),
            "distance_box_iou_loss" => F.DistanceBoxIouLoss(b1, b2, r, eps),
            _ => F.CompleteBoxIouLoss(b1, b2, r, eps),
        });
    }

    [ReferenceOp("box_area")]
    public static IReadOnlyDictionary<string, Tensor> Area(OpArgs a) => Out(BoxOps.BoxArea(a.Input("boxes")));

    [ReferenceOp("box_convert")]
    public static IReadOnlyDictionary<string, Tensor> Convert(OpArgs a) => Out(BoxOps.BoxConvert(a.Input("boxes"), a.String("in_fmt"), a.String("out_fmt")));

    [ReferenceOp("clip_boxes_to_image")]
    public static IReadOnlyDictionary<string, Tensor> Clip(OpArgs a)
    {
        var size = a.Ints("size");
        if (size.Length != 2) throw new CaseFormatException($"{a.Case.Name}: size must be [height, width]");
        return Out(BoxOps.ClipBoxesToImage(a.Input("boxes"), size[0], size[1]));
    }

    [ReferenceOp("remove_small_boxes")]
    public static IReadOnlyDictionary<string, Tensor> RemoveSmall(OpArgs a) => Out(BoxOps.RemoveSmallBoxes(a.Input("boxes"), a.Double("min_size")));

    [ReferenceOp("masks_to_boxes")]
    public static IReadOnlyDictionary<string, Tensor> MasksToBoxes(OpArgs a) => Out(BoxOps.MasksToBoxes(a.Input("masks")));

    [ReferenceOp("nms")]
    public static IReadOnlyDictionary<string, Tensor> Nms(OpArgs a) => Out(BoxOps.Nms(a.Input("boxes"), a.Input("scores"), a.Double("iou_threshold")));

    [ReferenceOp("batched_nms")]
    public static IReadOnlyDictionary<string, Tensor> BatchedNms(OpArgs a) =>
        Out(BoxOps.BatchedNms(a.Input("boxes"), a.Input("scores"), a.Input("idxs"), a.Double("iou_threshold")));

    [ReferenceOp("sigmoid_focal_loss")]
    public static IReadOnlyDictionary<string, Tensor> Focal(OpArgs a) =>
        Out(F.SigmoidFocalLoss(a.Input("inputs"), a.Input("targets"), a.Double("alpha"), a.Double("gamma"), a.String("reduction")));

    [ReferenceOp("roi_align")]
    public static IReadOnlyDictionary<string, Tensor> RoiAlign(OpArgs a) =>
        Out(F.RoiAlign(a.Input("input"), a.Input("boxes"), a.Ints("output_size"), a.Double("spatial_scale"), a.Int("sampling_ratio"), a.Bool("aligned")));

    [ReferenceOp("yolo_v3_decode")]
    public static IReadOnlyDictionary<string, Tensor> YoloV3(OpArgs a)
    {
        var o = YoloDecode.V3(a.Input("prediction"), a.Input("anchors"), a.Int("stride"), a.Int("num_classes"));
        return new Dictionary<string, Tensor> { ["boxes"] = o.Boxes, ["objectness"] = o.Objectness, ["class_probs"] = o.ClassProbs };
    }

    [ReferenceOp("yolo_v1_decode")]
    public static IReadOnlyDictionary<string, Tensor> YoloV1(OpArgs a)
    {
        var size = a.Ints("image_size");
        if (size.Length != 2) throw new CaseFormatException($"{a.Case.Name}: image_size must be [width, height]");
        var o = YoloDecode.V1(a.Input("prediction"), a.Int("B"), a.Int("C"), size[0], size[1], a.Bool("sqrt_wh"));
        return new Dictionary<string, Tensor> { ["boxes"] = o.Boxes, ["confidence"] = o.Confidence, ["class_scores"] = o.ClassScores };
    }

    [ReferenceOp("anchor_kmeans")]
    public static IReadOnlyDictionary<string, Tensor> AnchorKMeansOp(OpArgs a)
    {
        var r = AnchorKMeans.Fit(a.Input("wh"), a.Int("k"), a.Input("init"), a.Int("max_iter"));
        return new Dictionary<string, Tensor> { ["anchors"] = r.Anchors, ["mean_iou"] = Tensor.Scalar(r.MeanIou) };
    }

    [ReferenceOp("average_precision")]
    public static IReadOnlyDictionary<string, Tensor> AveragePrecision(OpArgs a)
    {
        string interpolation = a.String("interpolation");
        if (interpolation != "all_point") throw new CaseFormatException($"{a.Case.Name}: interpolation '{interpolation}' is not supported (all_point)");
        int classes = a.Int("num_classes");
        var pb = a.Input("pred_boxes").ToArray(); var ps = a.Input("pred_scores").ToArray();
        var pl = a.Input("pred_labels").ToInt64Array(); var pi = a.Input("pred_images").ToInt64Array();
        var gb = a.Input("gt_boxes").ToArray(); var gl = a.Input("gt_labels").ToInt64Array(); var gi = a.Input("gt_images").ToInt64Array();
        int images = (int)Math.Max(pi.DefaultIfEmpty(-1).Max(), gi.DefaultIfEmpty(-1).Max()) + 1;
        // Per-image lists keep each image's predictions in the case's order; the flat order decides ties across images.
        var preds = Enumerable.Range(0, images).Select(_ => new List<DetectedBox>()).ToArray();
        var gts = Enumerable.Range(0, images).Select(_ => new List<GroundTruthBox>()).ToArray();
        for (int i = 0; i < ps.Length; i++) preds[pi[i]].Add(new DetectedBox(pb[4 * i], pb[4 * i + 1], pb[4 * i + 2], pb[4 * i + 3], ps[i], (int)pl[i]));
        for (int i = 0; i < gl.Length; i++) gts[gi[i]].Add(new GroundTruthBox(gb[4 * i], gb[4 * i + 1], gb[4 * i + 2], gb[4 * i + 3], (int)gl[i]));
        var r = DetectionMetrics.VocAp(preds, gts, classes, a.Double("iou_threshold"));
        return new Dictionary<string, Tensor>
        {
            ["ap"] = Tensor.FromArray(r.Ap, classes).Float(),
            ["has_gt"] = Tensor.FromArray(r.HasGt.Select(h => h ? 1L : 0L).ToArray(), classes),
            ["map"] = Tensor.Scalar(r.Map),
        };
    }
}
