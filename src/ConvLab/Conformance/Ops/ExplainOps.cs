using System.Globalization;
using System.Text.Json;
using ConvLab.Autograd;
using ConvLab.Explain;
using ConvLab.NN;
using ConvLab.NN.Functional;

namespace ConvLab.Conformance.Ops;

/// <summary>
/// Conformance handlers for the <c>explain</c> family (<c>shared/reference-vision/README.md</c>): the case's <c>model</c>
/// chain becomes a <see cref="Sequential"/> (children "0", "1", ...; a <c>layer</c> attribute is a child's path) and the
/// method runs through the public <see cref="Attributions"/> / <see cref="ExplainMetrics"/> API.
/// </summary>
internal static class ExplainOps
{
    private static IReadOnlyDictionary<string, Tensor> Out(Tensor t) => new Dictionary<string, Tensor> { ["output"] = t };

    private static ExplainTarget Target(OpArgs a) => ExplainTarget.Classes(a.Ints("target"));

    private static string Layer(OpArgs a) => a.Int("layer").ToString(CultureInfo.InvariantCulture);

    [ReferenceOp("saliency")]
    public static IReadOnlyDictionary<string, Tensor> Saliency(OpArgs a) =>
        Out(Attributions.Saliency(Model(a), a.Input("input"), Target(a), a.Bool("abs")).Map);

    [ReferenceOp("input_x_gradient")]
    public static IReadOnlyDictionary<string, Tensor> InputXGradient(OpArgs a) =>
        Out(Attributions.InputXGradient(Model(a), a.Input("input"), Target(a)).Map);

    [ReferenceOp("guided_backprop")]
    public static IReadOnlyDictionary<string, Tensor> GuidedBackprop(OpArgs a) =>
        Out(Attributions.GuidedBackprop(Model(a), a.Input("input"), Target(a)).Map);

    [ReferenceOp("smoothgrad")]
    public static IReadOnlyDictionary<string, Tensor> SmoothGrad(OpArgs a) =>
        Out(Attributions.SmoothGrad(Model(a), a.Input("input"), Target(a), a.Input("noise"), a.Bool("abs")).Map);

    [ReferenceOp("integrated_gradients")]
    public static IReadOnlyDictionary<string, Tensor> IntegratedGradients(OpArgs a)
    {
        var rule = a.String("method") switch
        {
            "riemann_left" => IntegrationRule.RiemannLeft,
            "riemann_right" => IntegrationRule.RiemannRight,
            "riemann_middle" => IntegrationRule.RiemannMiddle,
            "riemann_trapezoid" => IntegrationRule.RiemannTrapezoid,
            "gausslegendre" => IntegrationRule.GaussLegendre,
            var m => throw new CaseFormatException($"{a.Case.Name}: unknown integration method '{m}'"),
        };
        var r = Attributions.IntegratedGradients(Model(a), a.Input("input"), Target(a), new IntegratedGradientsOptions
        {
            Steps = a.Int("n_steps"), Rule = rule, Baseline = Baseline.Given(a.Input("baseline")),
        });
        return new Dictionary<string, Tensor> { ["attributions"] = r.Map, ["delta"] = Tensor.FromArray(r.Delta!, r.Delta!.Length).Float() };
    }

    [ReferenceOp("occlusion")]
    public static IReadOnlyDictionary<string, Tensor> Occlusion(OpArgs a) =>
        Out(Attributions.Occlusion(Model(a), a.Input("input"), Target(a), a.Ints("sliding_window_shapes"), a.Ints("strides"), a.Double("baselines")).Map);

    [ReferenceOp("grad_cam")]
    public static IReadOnlyDictionary<string, Tensor> GradCam(OpArgs a)
    {
        var r = Attributions.GradCam(Model(a), a.Input("input"), Target(a), Layer(a), a.Bool("relu"));
        Tensor up;
        using (new NoGrad()) up = F.Interpolate(r.Map, size: a.Ints("size"), mode: "bilinear", alignCorners: false);
        return new Dictionary<string, Tensor> { ["cam"] = r.Map, ["upsampled"] = up };
    }

    [ReferenceOp("cam")]
    public static IReadOnlyDictionary<string, Tensor> Cam(OpArgs a)
    {
        var model = Model(a);
        int linear = a.Int("linear");
        if (linear < 0 || linear >= model.Count || model[linear] is not Linear)
            throw new CaseFormatException($"{a.Case.Name}: attribute 'linear' ({linear}) is not a linear layer of the chain");
        var map = Attributions.Cam(model, a.Input("input"), Target(a), Layer(a)).Map;
        return Out(map.Reshape(map.Shape[0], map.Shape[2], map.Shape[3]));
    }

    [ReferenceOp("deletion_curve", "insertion_curve")]
    public static IReadOnlyDictionary<string, Tensor> RankedCurve(OpArgs a)
    {
        var (model, x, s, b) = (Model(a), a.Input("input"), a.Input("saliency"), Baseline.Given(a.Input("baseline")));
        int target = a.Int("target"), step = a.Int("pixels_per_step");
        var curve = a.Case.Op == "deletion_curve"
            ? ExplainMetrics.DeletionCurve(model, x, s, target, b, step)
            : ExplainMetrics.InsertionCurve(model, x, s, target, b, step);
        return new Dictionary<string, Tensor>
        {
            ["scores"] = Tensor.FromArray(curve.Scores, curve.Scores.Length).Float(),
            ["auc"] = Tensor.Scalar(curve.Auc),
        };
    }

    [ReferenceOp("pointing_game")]
    public static IReadOnlyDictionary<string, Tensor> PointingGame(OpArgs a)
    {
        var (maps, boxes) = MapsAndBoxes(a);
        double tol = a.Double("tolerance");
        return Out(Tensor.FromArray(maps.Select((m, i) => ExplainMetrics.PointingGame(m, boxes[i], tol) ? 1L : 0L).ToArray(), maps.Length));
    }

    [ReferenceOp("saliency_box_iou")]
    public static IReadOnlyDictionary<string, Tensor> SaliencyBoxIou(OpArgs a)
    {
        var (maps, boxes) = MapsAndBoxes(a);
        var thresholds = a.Doubles("thresholds");
        var iou = maps.SelectMany((m, i) => ExplainMetrics.BoxIou(m, boxes[i], thresholds).Iou).ToArray();
        return Out(Tensor.FromArray(iou, maps.Length, thresholds.Length).Float());
    }

    private static (Tensor[] Maps, PixelBox[] Boxes) MapsAndBoxes(OpArgs a)
    {
        var s = a.Input("saliency");
        var b = a.Input("boxes");
        if (s.Rank != 3 || b.Rank != 2 || b.Shape[1] != 4 || b.Shape[0] != s.Shape[0])
            throw new CaseFormatException($"{a.Case.Name}: expected saliency (N, H, W) and boxes (N, 4), got {ShapeUtil.Format(s.Shape)} and {ShapeUtil.Format(b.Shape)}");
        var v = b.ToDoubleArray();
        var boxes = Enumerable.Range(0, b.Shape[0]).Select(i =>
            new PixelBox((int)Math.Round(v[4 * i]), (int)Math.Round(v[4 * i + 1]), (int)Math.Round(v[4 * i + 2]), (int)Math.Round(v[4 * i + 3]))).ToArray();
        return (Enumerable.Range(0, s.Shape[0]).Select(i => s.Select(0, i)).ToArray(), boxes);
    }

    /// <summary>The case's chain of ops as a Sequential in evaluation mode, with the case's parameters.</summary>
    internal static Sequential Model(OpArgs a)
    {
        var chain = a.Case.Model ?? throw new CaseFormatException($"{a.Case.Name}: missing 'model' chain");
        var model = new Sequential();
        int i = 0;
        foreach (var layer in chain.EnumerateArray())
        {
            string where = $"{a.Case.Name}: model[{i++}]";
            if (layer.ValueKind != JsonValueKind.Object || !layer.TryGetProperty("op", out var opEl) || opEl.ValueKind != JsonValueKind.String)
                throw new CaseFormatException($"{where}: must be an object with a string 'op'");
            var attrs = new Dictionary<string, JsonElement>();
            if (layer.TryGetProperty("attrs", out var at) && at.ValueKind == JsonValueKind.Object)
                foreach (var p in at.EnumerateObject()) attrs[p.Name] = p.Value.Clone();
            var prms = new Dictionary<string, Tensor?>();
            if (layer.TryGetProperty("params", out var pr) && pr.ValueKind == JsonValueKind.Object)
                foreach (var p in pr.EnumerateObject())
                    prms[p.Name] = p.Value.ValueKind == JsonValueKind.Null ? null : ReferenceCase.ParseTensor(p.Value, $"{where}.params.{p.Name}");
            var la = new OpArgs(new ReferenceCase
            {
                Name = where, Family = a.Case.Family, Op = opEl.GetString()!, Attrs = attrs, Inputs = prms,
                Outputs = new Dictionary<string, Tensor>(), Upstream = new Dictionary<string, Tensor>(), Grads = new Dictionary<string, Tensor>(),
            }, prms);
            model.Append(BuildLayer(la));
        }
        model.Eval();
        return model;
    }

    private static Module BuildLayer(OpArgs a)
    {
        switch (a.Case.Op)
        {
            case "conv2d":
            {
                var w = a.Input("weight"); var b = a.OptionalInput("bias");
                if (w.Rank != 4) throw new CaseFormatException($"{a.Case.Name}: conv2d weight must be 4-d");
                int groups = a.Int("groups", 1);
                var conv = a.IsString("padding")
                    ? new Conv2d(w.Shape[1] * groups, w.Shape[0], [w.Shape[2], w.Shape[3]], a.String("padding"), a.Ints("stride"), a.Ints("dilation"), groups, b != null, a.String("padding_mode", "zeros"))
                    : new Conv2d(w.Shape[1] * groups, w.Shape[0], [w.Shape[2], w.Shape[3]], a.Ints("stride"), a.Ints("padding"), a.Ints("dilation"), groups, b != null, a.String("padding_mode", "zeros"));
                Load(conv.Weight, w); if (b != null) Load(conv.Bias!, b);
                return conv;
            }
            case "linear":
            {
                var w = a.Input("weight"); var b = a.OptionalInput("bias");
                if (w.Rank != 2) throw new CaseFormatException($"{a.Case.Name}: linear weight must be 2-d");
                var linear = new Linear(w.Shape[1], w.Shape[0], b != null);
                Load(linear.Weight, w); if (b != null) Load(linear.Bias!, b);
                return linear;
            }
            case "relu": return new ReLU();
            case "max_pool2d": return new MaxPool2d(a.Ints("kernel_size"), a.Ints("stride"), a.Ints("padding"), a.Ints("dilation"), ceilMode: a.Bool("ceil_mode"));
            case "avg_pool2d":
                return new AvgPool2d(a.Ints("kernel_size"), a.Ints("stride"), a.Ints("padding"), a.Bool("ceil_mode"), a.Bool("count_include_pad"),
                    a.Has("divisor_override") ? a.Int("divisor_override") : null);
            case "adaptive_avg_pool2d":
            {
                var o = a.Ints("output_size");
                return new AdaptiveAvgPool2d(o.Select(v => (int?)v).ToArray());
            }
            case "flatten": return new Flatten(a.Int("start_dim", 1), a.Int("end_dim", -1));
            default: throw new CaseFormatException($"{a.Case.Name}: unknown model op '{a.Case.Op}'");
        }
    }

    private static void Load(Tensor parameter, Tensor value)
    {
        if (!parameter.Shape.SequenceEqual(value.Shape))
            throw new ArgumentException($"explain model: parameter shape {ShapeUtil.Format(value.Shape)} does not fit the layer's {ShapeUtil.Format(parameter.Shape)}");
        using (new NoGrad()) parameter.Copy_(value.To(parameter.DType));
    }
}
