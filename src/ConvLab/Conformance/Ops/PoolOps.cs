using ConvLab.NN.Functional;

namespace ConvLab.Conformance.Ops;

/// <summary>Conformance handlers for max, average and adaptive pooling.</summary>
internal static class PoolOps
{
    private static IReadOnlyDictionary<string, Tensor> Out(Tensor t) => new Dictionary<string, Tensor> { ["output"] = t };

    private static IReadOnlyDictionary<string, Tensor> Out((Tensor Output, Tensor Indices) r) =>
        new Dictionary<string, Tensor> { ["output"] = r.Output, ["indices"] = r.Indices };

    /// <summary>Picks the 1-d, 2-d or 3-d variant from the op name's trailing "Nd".</summary>
    private static T ByNd<T>(OpArgs a, Func<T> d1, Func<T> d2, Func<T> d3) => a.Case.Op[^2] switch { '1' => d1(), '2' => d2(), _ => d3() };

    private static int?[] OutputSize(OpArgs a) => a.Ints("output_size").Select(v => (int?)v).ToArray();

    [ReferenceOp("max_pool1d", "max_pool2d", "max_pool3d")]
    public static IReadOnlyDictionary<string, Tensor> MaxPool(OpArgs a)
    {
        var (x, k, s, p, d, ceil) = (a.Input("input"), a.Ints("kernel_size"), a.Ints("stride"), a.Ints("padding"), a.Ints("dilation"), a.Bool("ceil_mode"));
        return Out(ByNd(a, () => F.MaxPool1dWithIndices(x, k, s, p, d, ceil), () => F.MaxPool2dWithIndices(x, k, s, p, d, ceil), () => F.MaxPool3dWithIndices(x, k, s, p, d, ceil)));
    }

    [ReferenceOp("avg_pool1d", "avg_pool2d", "avg_pool3d")]
    public static IReadOnlyDictionary<string, Tensor> AvgPool(OpArgs a)
    {
        var (x, k, s, p, ceil, incl) = (a.Input("input"), a.Ints("kernel_size"), a.Ints("stride"), a.Ints("padding"), a.Bool("ceil_mode"), a.Bool("count_include_pad"));
        int? div = a.Has("divisor_override") ? a.Int("divisor_override") : null;
        if (a.Case.Op == "avg_pool1d" && div != null)
            throw new CaseFormatException($"{a.Case.Name}: avg_pool1d has no divisor_override");
        return Out(ByNd(a, () => F.AvgPool1d(x, k, s, p, ceil, incl), () => F.AvgPool2d(x, k, s, p, ceil, incl, div), () => F.AvgPool3d(x, k, s, p, ceil, incl, div)));
    }

    [ReferenceOp("adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d")]
    public static IReadOnlyDictionary<string, Tensor> AdaptiveAvgPool(OpArgs a)
    {
        var (x, o) = (a.Input("input"), OutputSize(a));
        return Out(ByNd(a, () => F.AdaptiveAvgPool1d(x, o), () => F.AdaptiveAvgPool2d(x, o), () => F.AdaptiveAvgPool3d(x, o)));
    }

    [ReferenceOp("adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d")]
    public static IReadOnlyDictionary<string, Tensor> AdaptiveMaxPool(OpArgs a)
    {
        var (x, o) = (a.Input("input"), OutputSize(a));
        return Out(ByNd(a, () => F.AdaptiveMaxPool1dWithIndices(x, o), () => F.AdaptiveMaxPool2dWithIndices(x, o), () => F.AdaptiveMaxPool3dWithIndices(x, o)));
    }
}
