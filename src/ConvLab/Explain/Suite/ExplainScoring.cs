using ConvLab.NN;

namespace ConvLab.Explain;

/// <summary>The quality metrics <see cref="ExplainScoring.Score"/> can compute.</summary>
[Flags]
public enum ExplainMetric
{
    /// <summary>None.</summary>
    None = 0,
    /// <summary>Deletion curve and its AUC (lower is better).</summary>
    Deletion = 1,
    /// <summary>Insertion curve and its AUC (higher is better).</summary>
    Insertion = 2,
    /// <summary>Pointing game against a box.</summary>
    Pointing = 4,
    /// <summary>IoU of the thresholded map with a box at several thresholds, and their mean.</summary>
    Iou = 8,
    /// <summary>Cascading model-parameter randomisation sanity check.</summary>
    Sanity = 16,
}

/// <summary>Settings of the metrics computed by <see cref="ExplainScoring.Score"/>.</summary>
public sealed record ScoringSettings
{
    /// <summary>Pixels replaced per deletion/insertion step; null: ⌈H·W / 50⌉ (about 50 steps).</summary>
    public int? PixelsPerStep { get; init; }

    /// <summary>What deleted pixels become (and insertion starts from).</summary>
    public Baseline CurveBaseline { get; init; } = Baseline.Zeros;

    /// <summary>Pointing-game tolerance in pixels; null: 15 pixels at 224 (Zhang et al.) scaled to the image, min(H, W)·15/224.</summary>
    public double? Tolerance { get; init; }

    /// <summary>Box-IoU thresholds as fractions of the map's maximum.</summary>
    public double[] IouThresholds { get; init; } = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

    /// <summary>Images per forward pass of the curves.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Seed of the sanity check's re-initialisation.</summary>
    public int Seed { get; init; }

    /// <summary>The pixels per step used on an H x W image.</summary>
    public int StepPixels(int height, int width) => PixelsPerStep ?? Math.Max(1, (height * width + 49) / 50);

    /// <summary>The pointing tolerance used on an H x W image.</summary>
    public double ToleranceFor(int height, int width) => Tolerance ?? Math.Round(Math.Min(height, width) * 15.0 / 224.0);
}

/// <summary>The metrics of one map; a metric not asked for is null.</summary>
/// <param name="Deletion">Deletion curve.</param>
/// <param name="Insertion">Insertion curve.</param>
/// <param name="PointingHit">Pointing-game hit.</param>
/// <param name="BoxIou">IoU per threshold and mean.</param>
/// <param name="Sanity">Randomisation sanity check, top layer first.</param>
/// <param name="Tolerance">The pointing tolerance used (pixels), when the pointing game ran.</param>
/// <param name="PixelsPerStep">The pixels per curve step used, when a curve ran.</param>
public sealed record ExplainScore(Curve? Deletion, Curve? Insertion, bool? PointingHit, BoxIouResult? BoxIou, SanityCheckResult? Sanity,
    double? Tolerance, int? PixelsPerStep);

/// <summary>
/// Scores one attribution of one image with the metrics of <see cref="ExplainMetrics"/>, the same way for
/// <c>convlab explain</c> and the localisation experiment: every metric reads <see cref="ExplainMethods.Plane(Attribution, int)"/>.
/// </summary>
public static class ExplainScoring
{
    /// <summary>
    /// Parses a comma-separated list (<c>deletion,insertion,pointing,iou,sanity</c>); errors start with <paramref name="option"/>.
    /// </summary>
    public static ExplainMetric Parse(string? text, string option = "--metrics")
    {
        var result = ExplainMetric.None;
        if (string.IsNullOrWhiteSpace(text)) return result;
        foreach (var raw in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            result |= raw.ToLowerInvariant() switch
            {
                "deletion" => ExplainMetric.Deletion,
                "insertion" => ExplainMetric.Insertion,
                "pointing" => ExplainMetric.Pointing,
                "iou" => ExplainMetric.Iou,
                "sanity" => ExplainMetric.Sanity,
                _ => throw new ArgumentException($"{option}: unknown metric '{raw}'; expected a comma-separated list of deletion, insertion, pointing, iou, sanity"),
            };
        return result;
    }

    /// <summary>
    /// Computes <paramref name="metrics"/> for sample 0 of <paramref name="attribution"/> of <paramref name="method"/> on
    /// <paramref name="input"/> (1, C, H, W) for class <paramref name="target"/>. The pointing game and IoU need
    /// <paramref name="box"/>; the sanity check needs <paramref name="createCopy"/> (a fresh model of the same
    /// architecture) and re-runs the method with <paramref name="layer"/> and <paramref name="methodSettings"/>.
    /// </summary>
    public static ExplainScore Score(ExplainMetric metrics, ExplainMethod method, Attribution attribution, Module model, Tensor input, int target,
        PixelBox? box = null, string? layer = null, Func<Module>? createCopy = null, ScoringSettings? settings = null, ExplainSettings? methodSettings = null)
    {
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(attribution);
        ArgumentNullException.ThrowIfNull(input);
        var s = settings ?? new ScoringSettings();
        if (input.Rank != 4 || input.Size(0) != 1) throw new ArgumentException($"explain: metrics score one image (1, C, H, W), got rank {input.Rank}");
        int h = input.Size(2), w = input.Size(3);
        var plane = ExplainMethods.Plane(attribution);
        if ((metrics & (ExplainMetric.Pointing | ExplainMetric.Iou)) != 0 && box == null)
            throw new ArgumentException("explain: the pointing game and box IoU need a box");
        int pps = s.StepPixels(h, w);
        double tol = s.ToleranceFor(h, w);
        Curve? del = null, ins = null;
        if (metrics.HasFlag(ExplainMetric.Deletion)) del = ExplainMetrics.DeletionCurve(model, input, plane, target, s.CurveBaseline, pps, s.BatchSize);
        if (metrics.HasFlag(ExplainMetric.Insertion)) ins = ExplainMetrics.InsertionCurve(model, input, plane, target, s.CurveBaseline, pps, s.BatchSize);
        bool? hit = metrics.HasFlag(ExplainMetric.Pointing) ? ExplainMetrics.PointingGame(plane, box!.Value, tol) : null;
        var iou = metrics.HasFlag(ExplainMetric.Iou) ? ExplainMetrics.BoxIou(plane, box!.Value, s.IouThresholds) : null;
        SanityCheckResult? sanity = null;
        if (metrics.HasFlag(ExplainMetric.Sanity))
        {
            if (createCopy == null) throw new ArgumentException("explain: the sanity check needs a way to build a copy of the model");
            var targetOf = ExplainTarget.Class(target);
            sanity = ExplainMetrics.RandomisationSanityCheck(model, createCopy,
                (m, x) => ExplainMethods.Plane(ExplainMethods.Run(method, m, x, targetOf, layer, methodSettings)).Unsqueeze(0), input, s.Seed);
        }
        bool curves = del != null || ins != null, pointing = hit != null;
        return new(del, ins, hit, iou, sanity, pointing ? tol : null, curves ? pps : null);
    }
}
