using ConvLab.NN.Functional;

namespace ConvLab.Conformance.Ops;

/// <summary>Conformance handlers for max, average and adaptive pooling.</summary>
internal static class PoolOps
{
    private static IReadOnlyDictionary<string, Tensor> Out(Tensor t) => new Dictionary<string, Tensor> { ["output"] = t };

    private static IReadOnlyDictionary<string, Tensor> Out((Tensor Output, Tensor Indices) r) =>
        new Dictionary<string, Tensor> { ["output"] = r.Output, ["indices"] = r.Indices };

    [ReferenceOp("max_pool1d", "max_pool2d", "max_pool3d")]
    public static IReadOnlyDictionary<string, Tensor> MaxPool(OpArgs a)
    {
        var (x, k, s, p, d, ceil) = (a.Input("input"), a.Ints("kernel_size"), a.Ints("stride"), a.Ints("padding"), a.Ints("dilation"), a.Bool("ceil_mode"));
        return Out(a.Case.Op switch
        {
            "max_pool1d" => F.MaxPool1dWithIndices(x, k, s, p, d, ceil),
            "max_pool2d" => F.MaxPool2dWithIndices(x, k, s, p, d, ceil),
            _ => F.MaxPool3dWithIndices(x, k, s, p, d, ceil),
        });
    }

    [ReferenceOp("avg_pool1d", "avg_pool2d", "avg_pool3d")]
    public static IReadOnlyDictionary<string, Tensor> AvgPool(OpArgs a)
    {
        var (x, k, s, p, ceil, incl) = (a.Input("input"), a.Ints("kernel_size"), a.Ints("stride"), a.Ints("padding"), a.Bool("ceil_mode"), a.Bool("count_include_pad"));
        int? div = a.Has("divisor_override") ? a.Int("divisor_override") : null;
        if (a.Case.Op == "avg_pool1d" && div != null)
            throw new CaseFormatException($"{a.Case.Name}: avg_pool1d has no divisor_override");
        return Out(a.Case.Op switch
        {
            "avg_pool1d" => F.AvgPool1d(x, k, s, p, ceil, incl),
            "avg_pool2d" => F.AvgPool2d(x, k, s, p, ceil, incl, div),
            _ => F.AvgPool3d(x, k, s, p, ceil, incl, div),
        });
    }

    private static int?[] OutputSize(OpArgs a) => a.Ints("output_size").Select(v => (int?)v).ToArray();

    [ReferenceOp("adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d")]
    public static IReadOnlyDictionary<string, Tensor> AdaptiveAvgPool(OpArgs a)
    {
        var x = a.Input("input"); var size = OutputSize(a);
        return Out(a.Case.Op switch
        {
            "adaptive_avg_pool1d" => F.AdaptiveAvgPool1d(x, size),
            "adaptive_avg_pool2d" => F.AdaptiveAvgPool2d(x, size),
            _ => F.AdaptiveAvgPool3d(x, size),
        });
    }

    [ReferenceOp("adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d")]
    public static IReadOnlyDictionary<string, Tensor> AdaptiveMaxPool(OpArgs a)
    {
        var x = a.Input("input"); var size = OutputSize(a);
        return Out(a.Case.Op switch
        {
            "adaptive_max_pool1d" => F.AdaptiveMaxPool1dWithIndices(x, size),
            "adaptive_max_pool2d" => F.AdaptiveMaxPool2dWithIndices(x, size),
            _ => F.AdaptiveMaxPool3dWithIndices(x, size),
        });
    }
}
