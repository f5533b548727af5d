using ConvLab.NN;

namespace ConvLab.Explain;

/// <summary>Settings of the methods run by name through <see cref="ExplainMethods.Run"/>.</summary>
public sealed record ExplainSettings
{
    /// <summary>Integrated gradients' path points (Captum's <c>n_steps</c>).</summary>
    public int IgSteps { get; init; } = 50;

    /// <summary>Integrated gradients' quadrature rule.</summary>
    public IntegrationRule IgRule { get; init; } = IntegrationRule.GaussLegendre;

    /// <summary>SmoothGrad's noisy copies.</summary>
    public int SmoothGradSamples { get; init; } = 25;

    /// <summary>SmoothGrad's noise standard deviation as a fraction of the input's range.</summary>
    public double SmoothGradStdevFraction { get; init; } = 0.15;

    /// <summary>Occlusion window side in pixels (all channels); null: about 1/14 of the shorter image side, at least 2.</summary>
    public int? OcclusionWindow { get; init; }

    /// <summary>Occlusion stride; null: half the window (at least 1).</summary>
    public int? OcclusionStride { get; init; }

    /// <summary>Perturbed inputs per forward/backward pass in the batched methods.</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>Seed of SmoothGrad's noise.</summary>
    public int Seed { get; init; }

    /// <summary>The occlusion window and stride used on an H x W image.</summary>
    public (int Window, int Stride) Occlusion(int height, int width)
    {
        int win = OcclusionWindow ?? Math.Max(2, (int)Math.Round(Math.Min(height, width) / 14.0));
        int stride = OcclusionStride ?? Math.Max(1, win / 2);
        return (win, stride);
    }
}

/// <summary>
/// One attribution method as the CLI and the experiments name it: the short name (<c>gradcam++</c>), the library's name
/// (<see cref="Attribution.Method"/>), whether its maps are signed (drawn on a diverging colormap) and whether it reads a
/// layer.
/// </summary>
/// <param name="Name">Short name (<c>saliency</c>, <c>smoothgrad</c>, <c>ig</c>, <c>occlusion</c>, <c>guided</c>, <c>cam</c>, <c>gradcam</c>, <c>gradcam++</c>, <c>guided-gradcam</c>).</param>
/// <param name="Method">The name the library reports (<c>integrated_gradients</c>, <c>grad_cam_plus_plus</c>, ...).</param>
/// <param name="Signed">True when the sign of the map carries meaning.</param>
/// <param name="UsesLayer">True for the CAM family (a layer is chosen).</param>
/// <param name="FileStem">A file-name-safe form of <see cref="Name"/>.</param>
public sealed record ExplainMethod(string Name, string Method, bool Signed, bool UsesLayer, string FileStem);

/// <summary>
/// The attribution methods of <see cref="Attributions"/> by short name, run with one set of <see cref="ExplainSettings"/>,
/// and the (H, W) plane each map is scored and drawn on. Used by <c>convlab explain</c> and the localisation experiment
/// so both run and reduce the methods the same way.
/// </summary>
public static class ExplainMethods
{
    /// <summary>Every method, in the order <c>all</c> runs them.</summary>
    public static IReadOnlyList<ExplainMethod> All { get; } =
    [
        new("saliency", "saliency", false, false, "saliency"),
        new("smoothgrad", "smoothgrad", false, false, "smoothgrad"),
        new("ig", "integrated_gradients", true, false, "ig"),
        new("occlusion", "occlusion", true, false, "occlusion"),
        new("guided", "guided_backprop", true, false, "guided"),
        new("cam", "cam", true, true, "cam"),
        new("gradcam", "grad_cam", false, true, "gradcam"),
        new("gradcam++", "grad_cam_plus_plus", false, true, "gradcam-pp"),
        new("guided-gradcam", "guided_grad_cam", true, true, "guided-gradcam"),
    ];

    /// <summary>The names accepted by <see cref="Parse"/>, comma-separated, with <c>all</c>.</summary>
    public static string Names => string.Join("|", All.Select(m => m.Name)) + "|all";

    /// <summary>
    /// Parses a comma-separated list of short names (or <c>all</c>) into methods, in the order given, without repeats.
    /// Errors start with <paramref name="option"/>.
    /// </summary>
    public static IReadOnlyList<ExplainMethod> Parse(string text, string option = "--method")
    {
        if (string.IsNullOrWhiteSpace(text)) throw new ArgumentException($"{option}: expected one of {Names}");
        var result = new List<ExplainMethod>();
        foreach (var raw in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var name = raw.ToLowerInvariant();
            if (name == "all") { foreach (var m in All) if (!result.Contains(m)) result.Add(m); continue; }
            var found = All.FirstOrDefault(m => m.Name == name || m.Method == name)
                ?? throw new ArgumentException($"{option}: unknown method '{raw}'; expected one of {Names}");
            if (!result.Contains(found)) result.Add(found);
        }
        if (result.Count == 0) throw new ArgumentException($"{option}: expected one of {Names}");
        return result;
    }

    /// <summary>
    /// Runs <paramref name="method"/> on <paramref name="input"/> (N, C, H, W). CAM-family methods use
    /// <paramref name="layer"/> (a module path; required for them). Errors are the library's, naming the method.
    /// </summary>
    public static Attribution Run(ExplainMethod method, Module model, Tensor input, ExplainTarget target, string? layer, ExplainSettings? settings = null)
    {
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(input);
        var s = settings ?? new ExplainSettings();
        if (method.UsesLayer && string.IsNullOrEmpty(layer)) throw new ArgumentException($"{method.Method}: a layer path is required");
        switch (method.Name)
        {
            case "saliency": return Attributions.Saliency(model, input, target, abs: true);
            case "smoothgrad":
                return Attributions.SmoothGrad(model, input, target, s.SmoothGradSamples, s.SmoothGradStdevFraction, s.Seed, abs: true, batchSize: s.BatchSize);
            case "ig":
                return Attributions.IntegratedGradients(model, input, target,
                    new IntegratedGradientsOptions { Steps = s.IgSteps, Rule = s.IgRule, InternalBatchSize = s.BatchSize, Seed = s.Seed });
            case "occlusion":
            {
                if (input.Rank != 4) throw new ArgumentException($"occlusion: expected an (N, C, H, W) input, got rank {input.Rank}");
                var (win, stride) = s.Occlusion(input.Size(2), input.Size(3));
                win = Math.Min(win, Math.Min(input.Size(2), input.Size(3)));
                return Attributions.Occlusion(model, input, target, [win, win], [stride, stride], 0, s.BatchSize);
            }
            case "guided": return Attributions.GuidedBackprop(model, input, target);
            case "cam": return Attributions.Cam(model, input, target, layer!);
            case "gradcam": return Attributions.GradCam(model, input, target, layer!);
            case "gradcam++": return Attributions.GradCamPlusPlus(model, input, target, layer!);
            case "guided-gradcam": return Attributions.GuidedGradCam(model, input, target, layer!);
            default: throw new ArgumentException($"explain: unknown method '{method.Name}'");
        }
    }

    /// <summary>
    /// The (H, W) plane of sample <paramref name="sample"/> of an attribution at the input's resolution: the upsampled
    /// map of CAM-style methods, else the map summed over channels (Captum's visualisation convention, so a signed
    /// method keeps its sign). Metrics and pictures both use this plane.
    /// </summary>
    public static Tensor Plane(Attribution attribution, int sample = 0)
    {
        ArgumentNullException.ThrowIfNull(attribution);
        var map = attribution.Upsampled ?? attribution.Map;
        if (map.Rank != 4) throw new ArgumentException($"{attribution.Method}: expected an (N, C, H, W) map, got rank {map.Rank}");
        if ((uint)sample >= (uint)map.Size(0)) throw new ArgumentException($"{attribution.Method}: sample {sample} is outside the batch of {map.Size(0)}");
        return Plane(map.Select(0, sample));
    }

    /// <summary>A (C, H, W) or (H, W) map summed over channels into a float32 (H, W) tensor.</summary>
    public static Tensor Plane(Tensor map)
    {
        ArgumentNullException.ThrowIfNull(map);
        if (map.Rank == 2) return map.Detach().Float().Contiguous();
        if (map.Rank != 3) throw new ArgumentException($"explain: expected a (C, H, W) or (H, W) map, got rank {map.Rank}");
        return map.Detach().Float().Sum(0).Contiguous();
    }
}
