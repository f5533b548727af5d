using ConvLab.Autograd;
using ConvLab.Autograd.Nodes;
using ConvLab.Detection;
using ConvLab.Kernels;

namespace ConvLab.NN.Functional;

public static partial class F
{
    /// <summary>
    /// Generalized IoU loss (torchvision's <c>ops.generalized_box_iou_loss</c>): 1 − GIoU of each pair boxes1[i], boxes2[i]
    /// (both (…, 4) xyxy, same shape), GIoU = IoU − (C − U)/(C + eps), IoU = I/(U + eps), C the enclosing box's area.
    /// Differentiable w.r.t. both; <paramref name="reduction"/> <c>none</c> | <c>mean</c> (0 for no boxes) | <c>sum</c>.
    /// </summary>
    public static Tensor GeneralizedBoxIouLoss(Tensor boxes1, Tensor boxes2, string reduction = "none", double eps = 1e-7)
    {
        var g = BoxPairs("generalized_box_iou_loss", boxes1, boxes2, reduction, eps);
        var (cw, ch) = g.Enclosing();
        var areaC = cw.Mul(ch);
        var giou = g.Iou.Sub(areaC.Sub(g.Union).Div(areaC.AddScalar(eps)));
        return BoxLossReduce(giou.Neg().AddScalar(1), reduction);
    }

    /// <summary>
    /// Distance IoU loss (torchvision's <c>ops.distance_box_iou_loss</c>): 1 − IoU + ρ²/(c² + eps), ρ the distance between
    /// the centres and c the enclosing box's diagonal. Differentiable w.r.t. both box sets.
    /// </summary>
    public static Tensor DistanceBoxIouLoss(Tensor boxes1, Tensor boxes2, string reduction = "none", double eps = 1e-7)
    {
        var g = BoxPairs("distance_box_iou_loss", boxes1, boxes2, reduction, eps);
        return BoxLossReduce(g.DiouLoss(eps), reduction);
    }

    /// <summary>
    /// Complete IoU loss (torchvision's <c>ops.complete_box_iou_loss</c>): the DIoU loss + α·v with
    /// v = 4/π²·(atan(w_gt/h_gt) − atan(w/h))² and α = v/(1 − IoU + v + eps) held constant (no gradient through α, as torchvision).
    /// </summary>
    public static Tensor CompleteBoxIouLoss(Tensor boxes1, Tensor boxes2, string reduction = "none", double eps = 1e-7)
    {
        var g = BoxPairs("complete_box_iou_loss", boxes1, boxes2, reduction, eps);
        var diou = g.DiouLoss(eps);
        var dAtan = Atan(g.W2.Div(g.H2)).Sub(Atan(g.W1.Div(g.H1)));
        var v = dAtan.Mul(dAtan).MulScalar(4 / (Math.PI * Math.PI));
        Tensor alpha;
        using (new NoGrad())
        {
            var vd = v.Detach();
            alpha = vd.Div(g.Iou.Detach().Neg().AddScalar(1).Add(vd).AddScalar(eps));
        }
        return BoxLossReduce(diou.Add(alpha.Mul(v)), reduction);
    }

    /// <summary>
    /// Focal loss of RetinaNet (torchvision's <c>ops.sigmoid_focal_loss</c>): BCE-with-logits(inputs, targets)·(1 − p_t)^γ,
    /// p_t = p·t + (1 − p)(1 − t), times α_t = α·t + (1 − α)(1 − t) when α ≥ 0. Differentiable w.r.t. inputs.
    /// </summary>
    public static Tensor SigmoidFocalLoss(Tensor inputs, Tensor targets, double alpha = 0.25, double gamma = 2, string reduction = "none")
    {
        const string op = "sigmoid_focal_loss";
        CheckReduction(op, reduction);
        inputs.RequireFloat(op); targets.RequireFloat(op);
        if (!inputs.Shape.SequenceEqual(targets.Shape))
            throw new ArgumentException($"{op}: targets shape {ShapeUtil.Format(targets.Shape)} must equal inputs shape {ShapeUtil.Format(inputs.Shape)}");
        if (!(gamma >= 0)) throw new ArgumentException($"{op}: gamma must be non-negative, got {gamma}");
        if (double.IsNaN(alpha) || alpha > 1) throw new ArgumentException($"{op}: alpha must be at most 1 (negative: no weighting), got {alpha}");
        var t = targets.To(inputs.DType);
        var p = Sigmoid(inputs);
        var loss = BinaryCrossEntropyWithLogits(inputs, t, reduction: "none");
        if (gamma != 0)
        {
            var pt = p.Mul(t).Add(p.Neg().AddScalar(1).Mul(t.Neg().AddScalar(1)));
            loss = loss.Mul(pt.Neg().AddScalar(1).Pow(gamma));
        }
        if (alpha >= 0) loss = loss.Mul(t.MulScalar(alpha).Add(t.Neg().AddScalar(1).MulScalar(1 - alpha)));
        return Reduce(loss, reduction, null);
    }

    /// <summary>
    /// RoI Align (torchvision's <c>ops.roi_align</c>): for each box row <c>[batch_index, x1, y1, x2, y2]</c> of
    /// <paramref name="boxes"/> (K, 5), in input-image coordinates scaled by <paramref name="spatialScale"/>, an
    /// (output_h, output_w) grid of bins, each the mean of bilinear samples on a regular sub-grid
    /// (<paramref name="samplingRatio"/> per side, or ceil(roi size / output size) when −1). <paramref name="aligned"/>
    /// shifts the box by −0.5 pixel (pixel centres); without it boxes are at least 1×1. Output (K, C, output_h, output_w),
    /// differentiable w.r.t. <paramref name="input"/>.
    /// </summary>
    public static Tensor RoiAlign(Tensor input, Tensor boxes, int[] outputSize, double spatialScale = 1, int samplingRatio = -1, bool aligned = false)
    {
        const string op = "roi_align";
        input.RequireFloat(op); boxes.RequireFloat(op);
        if (input.Rank != 4) throw new ArgumentException($"{op}: input must be 4-D (N, C, H, W), got shape {ShapeUtil.Format(input.Shape)}");
        if (boxes.Rank != 2 || boxes.Shape[1] != 5)
            throw new ArgumentException($"{op}: boxes must be (K, 5) rows [batch_index, x1, y1, x2, y2], got shape {ShapeUtil.Format(boxes.Shape)}");
        var (oh, ow) = outputSize switch
        {
            [var a] => (a, a),
            [var a, var b] => (a, b),
            _ => throw new ArgumentException($"{op}: output_size must have 1 or 2 values, got {outputSize.Length}"),
        };
        if (oh < 1 || ow < 1) throw new ArgumentException($"{op}: output_size must be positive, got [{oh}, {ow}]");
        if (!(spatialScale > 0) || double.IsInfinity(spatialScale)) throw new ArgumentException($"{op}: spatial_scale must be positive and finite, got {spatialScale}");
        if (samplingRatio < -1 || samplingRatio == 0) throw new ArgumentException($"{op}: sampling_ratio must be -1 (adaptive) or positive, got {samplingRatio}");
        int n = input.Shape[0];
        var rois = boxes.Detach().To(input.DType).Contiguous();
        var r = rois.ToDoubleArray();
        for (int k = 0; k < boxes.Shape[0]; k++)
        {
            double b = r[5 * k];
            if (b != Math.Floor(b) || b < 0 || b >= n)
                throw new ArgumentException($"{op}: boxes[{k}] has batch index {b}, expected an integer in [0, {n})");
            for (int q = 1; q < 5; q++)
                if (!double.IsFinite(r[5 * k + q])) throw new ArgumentException($"{op}: boxes[{k}] has a non-finite coordinate {r[5 * k + q]}");
        }
        var shape = new RoiAlignShape(n, input.Shape[1], input.Shape[2], input.Shape[3], boxes.Shape[0], oh, ow, spatialScale, samplingRatio, aligned);
        var x = input.Detach().Contiguous();
        var y = Tensor.Zeros([shape.K, shape.C, oh, ow], input.DType);
        if (input.DType == DType.Float32) Kernels.RoiAlign.Forward(shape, x.Read<float>(), rois.Read<float>(), y.Span<float>());
        else Kernels.RoiAlign.Forward(shape, x.Read<double>(), rois.Read<double>(), y.Span<double>());
        if (!Engine.WillRecord(input)) return y;
        return Engine.Record(y, new RoiAlignBackward(rois, shape), input);
    }

    /// <summary>Element-wise arctangent with its derivative 1/(1 + x²), for the CIoU aspect term.</summary>
    private static Tensor Atan(Tensor x)
    {
        var d = x.Detach().ToDoubleArray();
        for (int i = 0; i < d.Length; i++) d[i] = Math.Atan(d[i]);
        var y = Tensor.FromArray(d, x.Shape.ToArray()).To(x.DType);
        if (!Engine.WillRecord(x)) return y;
        var xd = x.Detach();
        return Engine.Record(y, new FuncNode("AtanBackward", g => [g.Div(xd.Mul(xd).AddScalar(1))]), x);
    }

    private static Tensor BoxLossReduce(Tensor loss, string reduction) =>
        reduction == "mean" && loss.Numel == 0 ? loss.Sum().MulScalar(0) : Reduce(loss, reduction, null);

    /// <summary>Pieces shared by the IoU losses, as differentiable tensors of the pairs' leading shape (torchvision's _loss_inter_union).</summary>
    private sealed record BoxPairGeometry(Tensor X1, Tensor Y1, Tensor X2, Tensor Y2, Tensor X1g, Tensor Y1g, Tensor X2g, Tensor Y2g,
        Tensor Iou, Tensor Union, Tensor W1, Tensor H1, Tensor W2, Tensor H2)
    {
        public (Tensor W, Tensor H) Enclosing() =>
            (X2.Maximum(X2g).Sub(Min(X1, X1g)), Y2.Maximum(Y2g).Sub(Min(Y1, Y1g)));

        public Tensor DiouLoss(double eps)
        {
            var (cw, ch) = Enclosing();
            var diag = cw.Mul(cw).Add(ch.Mul(ch)).AddScalar(eps);
            var dx = X1.Add(X2).MulScalar(0.5).Sub(X1g.Add(X2g).MulScalar(0.5));
            var dy = Y1.Add(Y2).MulScalar(0.5).Sub(Y1g.Add(Y2g).MulScalar(0.5));
            return Iou.Neg().AddScalar(1).Add(dx.Mul(dx).Add(dy.Mul(dy)).Div(diag));
        }
    }

    private static Tensor Min(Tensor a, Tensor b) => a.Neg().Maximum(b.Neg()).Neg();

    private static BoxPairGeometry BoxPairs(string op, Tensor boxes1, Tensor boxes2, string reduction, double eps)
    {
        CheckReduction(op, reduction);
        boxes1.RequireFloat(op); boxes2.RequireFloat(op);
        if (boxes1.Rank < 1 || boxes1.Shape[^1] != 4 || !boxes1.Shape.SequenceEqual(boxes2.Shape))
            throw new ArgumentException($"{op}: boxes1 and boxes2 must be (..., 4) xyxy boxes of the same shape, got {ShapeUtil.Format(boxes1.Shape)} and {ShapeUtil.Format(boxes2.Shape)}");
        if (!(eps >= 0)) throw new ArgumentException($"{op}: eps must be non-negative, got {eps}");
        BoxOps.Validate(boxes1.Detach().Reshape(-1, 4), op, "boxes1");
        BoxOps.Validate(boxes2.Detach().Reshape(-1, 4), op, "boxes2");
        if (boxes2.DType != boxes1.DType) boxes2 = boxes2.To(boxes1.DType);
        int d = boxes1.Rank - 1;
        Tensor C(Tensor b, int i) => b.Select(d, i);
        Tensor x1 = C(boxes1, 0), y1 = C(boxes1, 1), x2 = C(boxes1, 2), y2 = C(boxes1, 3);
        Tensor x1g = C(boxes2, 0), y1g = C(boxes2, 1), x2g = C(boxes2, 2), y2g = C(boxes2, 3);
        var zero = Tensor.Scalar(0, boxes1.DType);
        var iw = Min(x2, x2g).Sub(x1.Maximum(x1g)).Maximum(zero);
        var ih = Min(y2, y2g).Sub(y1.Maximum(y1g)).Maximum(zero);
        var inter = iw.Mul(ih);
        Tensor w1 = x2.Sub(x1), h1 = y2.Sub(y1), w2 = x2g.Sub(x1g), h2 = y2g.Sub(y1g);
        var union = w1.Mul(h1).Add(w2.Mul(h2)).Sub(inter);
        var iou = inter.Div(union.AddScalar(eps));
        return new BoxPairGeometry(x1, y1, x2, y2, x1g, y1g, x2g, y2g, iou, union, w1, h1, w2, h2);
    }
}
