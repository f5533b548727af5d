using ConvLab.NN.Functional;

namespace ConvLab.Conformance.Ops;

/// <summary>Conformance handlers for the loss functions.</summary>
internal static class LossOps
{
    private static IReadOnlyDictionary<string, Tensor> Out(Tensor t) => new Dictionary<string, Tensor> { ["output"] = t };

    [ReferenceOp("cross_entropy")]
    public static IReadOnlyDictionary<string, Tensor> CrossEntropy(OpArgs a) => Out(F.CrossEntropy(a.Input("input"), a.Input("target"), a.OptionalInput("weight"),
        a.Int("ignore_index", -100), a.String("reduction", "mean"), a.Double("label_smoothing", 0.0)));

    [ReferenceOp("nll_loss")]
    public static IReadOnlyDictionary<string, Tensor> NllLoss(OpArgs a) => Out(F.NllLoss(a.Input("input"), a.Input("target"), a.OptionalInput("weight"),
        a.Int("ignore_index", -100), a.String("reduction", "mean")));

    [ReferenceOp("binary_cross_entropy_with_logits")]
    public static IReadOnlyDictionary<string, Tensor> BceWithLogits(OpArgs a) => Out(F.BinaryCrossEntropyWithLogits(a.Input("input"), a.Input("target"),
        a.OptionalInput("weight"), a.OptionalInput("pos_weight"), a.String("reduction", "mean")));

    [ReferenceOp("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss")]
    public static IReadOnlyDictionary<string, Tensor> Regression(OpArgs a)
    {
        Tensor x = a.Input("input"), y = a.Input("target");
        string r = a.String("reduction", "mean");
        return Out(a.Case.Op switch
        {
            "mse_loss" => F.MseLoss(x, y, r),
            "l1_loss" => F.L1Loss(x, y, r),
            "smooth_l1_loss" => F.SmoothL1Loss(x, y, r, a.Double("beta", 1.0)),
            _ => F.HuberLoss(x, y, r, a.Double("delta", 1.0)),
        });
    }
}
