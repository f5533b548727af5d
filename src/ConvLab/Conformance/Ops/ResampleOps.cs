using ConvLab.NN.Functional;

namespace ConvLab.Conformance.Ops;

/// <summary>Conformance handlers for interpolate and the pixel/channel shuffles.</summary>
internal static class ResampleOps
{
    private static IReadOnlyDictionary<string, Tensor> Out(Tensor t) => new Dictionary<string, Tensor> { ["output"] = t };

    [ReferenceOp("interpolate")]
    public static IReadOnlyDictionary<string, Tensor> Interpolate(OpArgs a) => Out(F.Interpolate(a.Input("input"),
        a.Has("size") ? a.Ints("size") : null, a.Has("scale_factor") ? a.Doubles("scale_factor") : null,
        a.String("mode", "nearest"), a.Has("align_corners") ? a.Bool("align_corners") : null));

    [ReferenceOp("pixel_shuffle")]
    public static IReadOnlyDictionary<string, Tensor> PixelShuffle(OpArgs a) => Out(F.PixelShuffle(a.Input("input"), a.Int("upscale_factor")));

    [ReferenceOp("pixel_unshuffle")]
    public static IReadOnlyDictionary<string, Tensor> PixelUnshuffle(OpArgs a) => Out(F.PixelUnshuffle(a.Input("input"), a.Int("downscale_factor")));

    [ReferenceOp("channel_shuffle")]
    public static IReadOnlyDictionary<string, Tensor> ChannelShuffle(OpArgs a) => Out(F.ChannelShuffle(a.Input("input"), a.Int("groups")));
}
