using ConvLab.Autograd;
using ConvLab.NN;
using ConvLab.NN.Functional;

namespace ConvLab.Explain;

/// <summary>A deletion or insertion curve: the target's softmax probability before the first step and after each, and its normalised area.</summary>
/// <param name="Scores">S + 1 probabilities.</param>
/// <param name="Auc">Trapezoid area over an x-axis from 0 to 1: Σ (s_k + s_k+1) / 2, divided by S.</param>
public sealed record Curve(double[] Scores, double Auc);

/// <summary>A box in pixel indices, [X0, X1) columns by [Y0, Y1) rows (end exclusive).</summary>
/// <param name="X0">First column.</param>
/// <param name="Y0">First row.</param>
/// <param name="X1">One past the last column.</param>
/// <param name="Y1">One past the last row.</param>
public readonly record struct PixelBox(int X0, int Y0, int X1, int Y1)
{
    /// <inheritdoc/>
    public override string ToString() => $"[{X0}, {Y0}, {X1}, {Y1})";
}

/// <summary>IoU of a thresholded map with a box, per threshold.</summary>
/// <param name="Thresholds">Fractions of the map's maximum.</param>
/// <param name="Iou">IoU per threshold.</param>
/// <param name="Mean">Mean IoU over the thresholds.</param>
public sealed record BoxIouResult(double[] Thresholds, double[] Iou, double Mean);

/// <summary>One step of the randomisation sanity check.</summary>
/// <param name="Layer">The module path re-initialised at this step (every layer above it is re-initialised too).</param>
/// <param name="Spearman">Spearman rank correlation between the original and the randomised map, per sample.</param>
/// <param name="Mean">Mean over samples.</param>
public sealed record SanityStep(string Layer, double[] Spearman, double Mean);

/// <summary>The randomisation sanity check's steps, from the top layer down.</summary>
/// <param name="Steps">One entry per re-initialised layer, cascading.</param>
public sealed record SanityCheckResult(IReadOnlyList<SanityStep> Steps);

/// <summary>One occlusion window's test: did filling it with random values change the target?</summary>
/// <param name="Y0">First row.</param>
/// <param name="X0">First column.</param>
/// <param name="Height">Window height.</param>
/// <param name="Width">Window width.</param>
/// <param name="MeanDrop">Mean of f(input) − f(filled) over the fillings.</param>
/// <param name="T">One-sample t statistic of the drops against 0.</param>
/// <param name="PValue">Two-sided p-value.</param>
/// <param name="Bonferroni">Significant after Bonferroni's correction at the result's α.</param>
/// <param name="BenjaminiHochberg">Significant under Benjamini–Hochberg's false-discovery-rate control at α.</param>
public sealed record OcclusionWindowTest(int Y0, int X0, int Height, int Width, double MeanDrop, double T, double PValue, bool Bonferroni, bool BenjaminiHochberg);

/// <summary>Occlusion significance: every window's test.</summary>
/// <param name="Windows">Tests in row-major window order.</param>
/// <param name="Alpha">Family-wise (Bonferroni) / false-discovery (Benjamini–Hochberg) level.</param>
/// <param name="Fillings">Random fillings per window.</param>
/// <param name="Height">Image height.</param>
/// <param name="Width">Image width.</param>
public sealed record OcclusionSignificanceResult(IReadOnlyList<OcclusionWindowTest> Windows, double Alpha, int Fillings, int Height, int Width)
{
    /// <summary>An (H, W) float32 mask: 1 on pixels covered by a significant window (Benjamini–Hochberg, or Bonferroni when false), else 0.</summary>
    public Tensor Mask(bool benjaminiHochberg = true)
    {
        var m = new float[Height * Width];
        foreach (var t in Windows)
        {
            if (!(benjaminiHochberg ? t.BenjaminiHochberg : t.Bonferroni)) continue;
            for (int y = t.Y0; y < t.Y0 + t.Height; y++)
                for (int x = t.X0; x < t.X0 + t.Width; x++) m[y * Width + x] = 1;
        }
        return Tensor.FromArray(m, Height, Width);
    }
}

/// <summary>
/// Quality metrics of explanations: deletion / insertion curves (Petsiuk et al., 2018), the pointing game (Zhang et al.,
/// 2016) with a tolerance, IoU of the thresholded map with a box, completeness, max-sensitivity (Yeh et al., 2019), the
/// model-parameter randomisation sanity check (Adebayo et al., 2018) and a per-window significance test of occlusion.
/// Errors are <see cref="ArgumentException"/>s starting with the metric's name.
/// </summary>
public static class ExplainMetrics
{
    /// <summary>
    /// Deletion curve: pixels ranked by decreasing saliency (ties: lower flat index first) are replaced, all channels,
    /// <paramref name="pixelsPerStep"/> at a time, by the baseline's values, starting from the input; the softmax
    /// probability of <paramref name="target"/> is read before the first step and after each (S = ⌈H·W / pixelsPerStep⌉
    /// steps). Lower area = a better explanation. Forward passes run in batches of at most <paramref name="batchSize"/> images.
    /// </summary>
    /// <param name="model">The classifier.</param>
    /// <param name="input">One image (1, C, H, W).</param>
    /// <param name="saliency">The map (H, W) (or any shape with trailing (H, W) and H·W elements).</param>
    /// <param name="target">The class whose probability is followed.</param>
    /// <param name="baseline">What deleted pixels become (default zeros; <see cref="Baseline.Blurred"/> for a blurred copy).</param>
    /// <param name="pixelsPerStep">Pixels replaced per step.</param>
    /// <param name="batchSize">Images per forward pass.</param>
    public static Curve DeletionCurve(Module model, Tensor input, Tensor saliency, int target, Baseline? baseline = null, int pixelsPerStep = 1, int batchSize = 32) =>
        RankedCurve("deletion_curve", model, input, saliency, target, baseline, pixelsPerStep, batchSize, deletion: true);

    /// <summary>
    /// Insertion curve: as <see cref="DeletionCurve"/>, but starting from the baseline and writing the input's pixels
    /// in saliency order. Higher area = a better explanation.
    /// </summary>
    /// <inheritdoc cref="DeletionCurve" path="/param"/>
    public static Curve InsertionCurve(Module model, Tensor input, Tensor saliency, int target, Baseline? baseline = null, int pixelsPerStep = 1, int batchSize = 32) =>
        RankedCurve("insertion_curve", model, input, saliency, target, baseline, pixelsPerStep, batchSize, deletion: false);

    /// <summary>
    /// Pointing game with a tolerance: a hit when the map's maximum (the first in row-major order) lies within Euclidean
    /// distance <paramref name="tolerance"/> pixels of a pixel of <paramref name="box"/>.
    /// </summary>
    public static bool PointingGame(Tensor saliency, PixelBox box, double tolerance = 0)
    {
        const string op = "pointing_game";
        var (s, h, w) = Map2d(saliency, op);
        CheckBox(box, h, w, op);
        if (!(tolerance >= 0)) throw new ArgumentException($"{op}: tolerance must be a non-negative number of pixels, got {tolerance}");
        int best = 0;
        for (int i = 1; i < s.Length; i++) if (s[i] > s[best]) best = i;
        int py = best / w, px = best % w;
        double dx = Math.Max(Math.Max(box.X0 - px, px - (box.X1 - 1)), 0);
        double dy = Math.Max(Math.Max(box.Y0 - py, py - (box.Y1 - 1)), 0);
        return dx * dx + dy * dy <= tolerance * tolerance;
    }

    /// <summary>
    /// IoU between {pixels with saliency ≥ threshold × max} and the box's pixels, for each threshold (fractions of the
    /// map's maximum), and their mean.
    /// </summary>
    public static BoxIouResult BoxIou(Tensor saliency, PixelBox box, double[] thresholds)
    {
        const string op = "saliency_box_iou";
        ArgumentNullException.ThrowIfNull(thresholds);
        if (thresholds.Length == 0) throw new ArgumentException($"{op}: give at least one threshold");
        var (s, h, w) = Map2d(saliency, op);
        CheckBox(box, h, w, op);
        double max = s.Max();
        var iou = new double[thresholds.Length];
        int boxArea = (box.X1 - box.X0) * (box.Y1 - box.Y0);
        for (int t = 0; t < thresholds.Length; t++)
        {
            if (!double.IsFinite(thresholds[t])) throw new ArgumentException($"{op}: thresholds must be finite, got {thresholds[t]}");
            double cut = thresholds[t] * max;
            int selected = 0, inter = 0;
            for (int i = 0; i < s.Length; i++)
            {
                if (!(s[i] >= cut)) continue;
                selected++;
                int y = i / w, x = i % w;
                if (x >= box.X0 && x < box.X1 && y >= box.Y0 && y < box.Y1) inter++;
            }
            iou[t] = (double)inter / (selected + boxArea - inter);
        }
        return new((double[])thresholds.Clone(), iou, iou.Average());
    }

    /// <summary>Completeness: integrated gradients' delta per sample, sum(attributions) − (f(input) − f(baseline)).</summary>
    public static double[] Completeness(Attribution attribution)
    {
        ArgumentNullException.ThrowIfNull(attribution);
        return attribution.Delta ?? throw new ArgumentException($"completeness: only integrated gradients define a completeness delta; the attribution is '{attribution.Method}'");
    }

    /// <summary>
    /// Max-sensitivity (Yeh et al., 2019, as Quantus normalises it): per sample, the largest ‖e(x + δ) − e(x)‖₂ / ‖e(x)‖₂
    /// over <paramref name="samples"/> perturbations δ uniform in [−radius, radius] per element, from a generator seeded
    /// with <paramref name="seed"/>. <paramref name="explain"/> maps an input batch to its maps (same batch size).
    /// </summary>
    public static double[] MaxSensitivity(Func<Tensor, Tensor> explain, Tensor input, double radius = 0.02, int samples = 10, int seed = 0)
    {
        const string op = "max_sensitivity";
        ArgumentNullException.ThrowIfNull(explain);
        ArgumentNullException.ThrowIfNull(input);
        if (!(radius > 0) || !double.IsFinite(radius)) throw new ArgumentException($"{op}: radius must be positive, got {radius}");
        if (samples < 1) throw new ArgumentException($"{op}: samples must be positive, got {samples}");
        if (input.Rank < 1 || input.Shape[0] < 1) throw new ArgumentException($"{op}: input needs a batch dimension, got {ShapeUtil.Format(input.Shape)}");
        int n = input.Shape[0];
        var reference = PerSample(explain(input.Detach()), n, op);
        var g = new Generator((ulong)seed);
        var worst = new double[n];
        for (int j = 0; j < samples; j++)
        {
            var noisy = input.Detach().Add(Tensor.Rand(input.Shape, g, -radius, radius, input.DType));
            var e = PerSample(explain(noisy), n, op);
            for (int s = 0; s < n; s++)
            {
                double num = 0, den = 0;
                for (int i = 0; i < e[s].Length; i++)
                {
                    double d = e[s][i] - reference[s][i];
                    num += d * d; den += reference[s][i] * reference[s][i];
                }
                double r = den > 0 ? Math.Sqrt(num / den) : (num > 0 ? double.PositiveInfinity : 0);
                worst[s] = Math.Max(worst[s], r);
            }
        }
        return worst;
    }

    /// <summary>
    /// The model-parameter randomisation test (Adebayo et al., 2018), cascading: a copy of <paramref name="model"/>
    /// (made by <paramref name="createCopy"/>, loaded from the model's state dict; the caller's model is never changed)
    /// has its layers with parameters re-initialised one more at a time from the top (the last registered) down, and
    /// after each step the Spearman rank correlation between the original and the randomised map is computed per
    /// sample. A method that passes the check gives correlations that fall quickly towards 0.
    /// </summary>
    /// <param name="model">The trained model.</param>
    /// <param name="createCopy">Builds a model of the same architecture (its weights are overwritten).</param>
    /// <param name="explain">Computes the maps (N, ...) of a model on an input.</param>
    /// <param name="input">The inputs explained.</param>
    /// <param name="seed">Seed of the re-initialisation.</param>
    /// <param name="absolute">Rank the maps' absolute values (as Adebayo et al.'s main figures do).</param>
    /// <remarks>
    /// Re-initialisation: weights of rank ≥ 2 with PyTorch's default (Kaiming uniform, a = √5); other parameters
    /// (biases, normalisation scales) uniform in ±1/√fan_in of the layer's weight.
    /// </remarks>
    public static SanityCheckResult RandomisationSanityCheck(Module model, Func<Module> createCopy, Func<Module, Tensor, Tensor> explain, Tensor input,
        int seed = 0, bool absolute = true)
    {
        const string op = "sanity_check";
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(createCopy);
        ArgumentNullException.ThrowIfNull(explain);
        ArgumentNullException.ThrowIfNull(input);
        var copy = createCopy() ?? throw new ArgumentException($"{op}: createCopy returned null");
        if (ReferenceEquals(copy, model)) throw new ArgumentException($"{op}: createCopy must build a new model, not return the one being checked");
        try { copy.LoadStateDict(model.StateDict()); }
        catch (ArgumentException e) { throw new ArgumentException($"{op}: the copy does not have the model's architecture ({e.Message})", e); }
        copy.Train(model.Training);
        int n = input.Shape[0];
        var original = PerSample(explain(copy, input), n, op);
        var layers = copy.NamedModules().Where(m => m.Module.NamedParameters().Any(p => !p.Name.Contains('.'))).Reverse().ToList();
        if (layers.Count == 0) throw new ArgumentException($"{op}: the model has no parameters to randomise");
        var g = new Generator((ulong)seed);
        var steps = new List<SanityStep>();
        foreach (var (name, layer) in layers)
        {
            Reinitialise(layer, g);
            var randomised = PerSample(explain(copy, input), n, op);
            var rho = new double[n];
            for (int s = 0; s < n; s++)
                rho[s] = Stats.Correlation.Spearman(absolute ? Abs(original[s]) : original[s], absolute ? Abs(randomised[s]) : randomised[s]);
            steps.Add(new(name.Length == 0 ? "(root)" : name, rho, rho.Average()));
        }
        return new(steps);

        static double[] Abs(double[] v) => v.Select(Math.Abs).ToArray();
    }

    /// <summary>
    /// Occlusion significance: for every position of an (h, w) window (all channels) moved by <paramref name="strides"/>
    /// (default: the window, non-overlapping) over one image, the window is filled <paramref name="fillings"/> times with
    /// independent uniform noise over the image's value range; the drops f(input) − f(filled) get a two-sided one-sample
    /// t-test against 0, and the p-values of all windows are corrected by Bonferroni and by Benjamini–Hochberg at
    /// <paramref name="alpha"/>. Forward passes run in batches of at most <paramref name="batchSize"/> images.
    /// </summary>
    public static OcclusionSignificanceResult OcclusionSignificance(Module model, Tensor input, ExplainTarget target, int[] window, int[]? strides = null,
        int fillings = 10, int seed = 0, double alpha = 0.05, int batchSize = 32)
    {
        const string op = "occlusion_significance";
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(window);
        var (x, c, h, w) = Image(input, op);
        if (window.Length != 2 || window[0] < 1 || window[1] < 1 || window[0] > h || window[1] > w)
            throw new ArgumentException($"{op}: window must be (h, w) within the {h}x{w} image, got [{string.Join(", ", window)}]");
        var str = strides ?? window;
        if (str.Length != 2 || str[0] < 1 || str[1] < 1) throw new ArgumentException($"{op}: strides must be two positive sizes, got [{string.Join(", ", str)}]");
        if (fillings < 2) throw new ArgumentException($"{op}: a t-test needs at least 2 fillings per window, got {fillings}");
        if (!(alpha > 0 && alpha < 1)) throw new ArgumentException($"{op}: alpha must be in (0, 1), got {alpha}");
        if (batchSize < 1) throw new ArgumentException($"{op}: batch size must be positive, got {batchSize}");
        int ph = (h - window[0]) / str[0] + 1, pw = (w - window[1]) / str[1] + 1, positions = ph * pw, plane = h * w;
        var (fx, resolved) = Attributions.Scores(model, input, target, op);
        double lo = x.Min(), hi = x.Max();
        if (hi <= lo) hi = lo + 1;
        var g = new Generator((ulong)seed);
        var drops = new double[positions][];
        for (int p = 0; p < positions; p++) drops[p] = new double[fillings];
        var rows = new int[positions * fillings];
        var batch = new double[Math.Min(batchSize, positions * fillings) * x.Length];
        Attributions.ForEachBatch(model, positions * fillings, batchSize, (start, count) =>
        {
            for (int j = 0; j < count; j++)
            {
                int p = (start + j) / fillings, y0 = p / pw * str[0], x0 = p % pw * str[1];
                Array.Copy(x, 0, batch, j * x.Length, x.Length);
                for (int ch = 0; ch < c; ch++)
                    for (int yy = y0; yy < y0 + window[0]; yy++)
                        for (int xx = x0; xx < x0 + window[1]; xx++) batch[j * x.Length + ch * plane + yy * w + xx] = lo + (hi - lo) * g.NextDouble();
            }
            var (f, _) = Attributions.Scores(model, Attributions.BatchTensor(batch, count, [c, h, w], input.DType), target.ForRows(resolved, rows.AsSpan(start, count)), op);
            for (int j = 0; j < count; j++) drops[(start + j) / fillings][(start + j) % fillings] = fx[0] - f[j];
        });
        var tests = drops.Select(d => Stats.TTest.OneSample(d)).ToArray();
        var pValues = tests.Select(t => t.PValue).ToArray();
        var bonferroni = Stats.MultipleTesting.Bonferroni(pValues, alpha);
        var bh = Stats.MultipleTesting.BenjaminiHochberg(pValues, alpha);
        var windows = new List<OcclusionWindowTest>(positions);
        for (int i = 0; i < positions; i++)
            windows.Add(new(i / pw * str[0], i % pw * str[1], window[0], window[1], drops[i].Average(), tests[i].T, pValues[i], bonferroni[i], bh[i]));
        return new(windows, alpha, fillings, h, w);
    }

    // ---- helpers ----

    private static Curve RankedCurve(string op, Module model, Tensor input, Tensor saliency, int target, Baseline? baseline, int pixelsPerStep, int batchSize, bool deletion)
    {
        ArgumentNullException.ThrowIfNull(model);
        var (x, c, h, w) = Image(input, op);
        var (s, sh, sw) = Map2d(saliency, op);
        if (sh != h || sw != w) throw new ArgumentException($"{op}: saliency is {sh}x{sw} but the image is {h}x{w}");
        if (s.Any(double.IsNaN)) throw new ArgumentException($"{op}: saliency contains NaN");
        if (pixelsPerStep < 1) throw new ArgumentException($"{op}: pixels per step must be positive, got {pixelsPerStep}");
        if (batchSize < 1) throw new ArgumentException($"{op}: batch size must be positive, got {batchSize}");
        var b = (baseline ?? Baseline.Zeros).For(input, 0, op).ToDoubleArray();
        int plane = h * w, steps = (plane + pixelsPerStep - 1) / pixelsPerStep;
        // Stable sort on the negated value: decreasing saliency, lower flat index first among equals.
        var order = Enumerable.Range(0, plane).OrderByDescending(i => s[i]).ToArray();
        var start = deletion ? x : b;
        var write = deletion ? b : x;
        var scores = new double[steps + 1];
        var current = (double[])start.Clone();
        int done = 0;
        var batch = new double[Math.Min(batchSize, steps + 1) * x.Length];
        Attributions.ForEachBatch(model, steps + 1, batchSize, (first, count) =>
        {
            for (int j = 0; j < count; j++)
            {
                int k = first + j; // image after k steps
                int upto = Math.Min(k * pixelsPerStep, plane);
                for (; done < upto; done++)
                    for (int ch = 0; ch < c; ch++) current[ch * plane + order[done]] = write[ch * plane + order[done]];
                Array.Copy(current, 0, batch, j * x.Length, x.Length);
            }
            var probs = Probabilities(model, Attributions.BatchTensor(batch, count, [c, h, w], input.DType), target, op);
            Array.Copy(probs, 0, scores, first, count);
        });
        double area = 0;
        for (int k = 0; k < steps; k++) area += (scores[k] + scores[k + 1]) / 2;
        return new(scores, area / steps);
    }

    private static double[] Probabilities(Module model, Tensor batch, int target, string op)
    {
        using var _ = new NoGrad();
        var output = Attributions.RunModel(model, batch, op);
        if (output.Rank != 2) throw new ArgumentException($"{op}: the model must return (N, classes) logits, got {ShapeUtil.Format(output.Shape)}");
        if (target < 0 || target >= output.Shape[1]) throw new ArgumentException($"{op}: target class {target} is out of range for {output.Shape[1]} classes");
        var p = F.Softmax(output, 1).ToDoubleArray();
        int k = output.Shape[1];
        return Enumerable.Range(0, output.Shape[0]).Select(i => p[i * k + target]).ToArray();
    }

    private static (double[] Data, int C, int H, int W) Image(Tensor input, string op)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Rank != 4 || input.Shape[0] != 1 || input.Numel == 0 || !input.IsFloatingPoint)
            throw new ArgumentException($"{op}: input must be one float image (1, C, H, W), got {ShapeUtil.Format(input.Shape)}");
        return (input.Detach().ToDoubleArray(), input.Shape[1], input.Shape[2], input.Shape[3]);
    }

    private static (double[] Data, int H, int W) Map2d(Tensor saliency, string op)
    {
        ArgumentNullException.ThrowIfNull(saliency);
        if (saliency.Rank < 2 || saliency.Numel != saliency.Shape[^1] * saliency.Shape[^2] || saliency.Numel == 0 || !saliency.IsFloatingPoint)
            throw new ArgumentException($"{op}: saliency must be one float map (H, W), got {ShapeUtil.Format(saliency.Shape)}");
        return (saliency.Detach().ToDoubleArray(), saliency.Shape[^2], saliency.Shape[^1]);
    }

    private static void CheckBox(PixelBox box, int h, int w, string op)
    {
        if (box.X0 < 0 || box.Y0 < 0 || box.X1 > w || box.Y1 > h || box.X0 >= box.X1 || box.Y0 >= box.Y1)
            throw new ArgumentException($"{op}: box {box} is empty or outside the {h}x{w} image (x in [0, {w}], y in [0, {h}], x0 < x1, y0 < y1)");
    }

    private static double[][] PerSample(Tensor maps, int n, string op)
    {
        if (maps.Rank < 1 || maps.Shape[0] != n) throw new ArgumentException($"{op}: the explain function must return one map per sample ({n}), got {ShapeUtil.Format(maps.Shape)}");
        var v = maps.Detach().ToDoubleArray();
        int per = v.Length / n;
        return Enumerable.Range(0, n).Select(s => v.AsSpan(s * per, per).ToArray()).ToArray();
    }

    private static void Reinitialise(Module layer, Generator g)
    {
        using var _ = new NoGrad();
        var own = layer.NamedParameters().Where(p => !p.Name.Contains('.')).Select(p => p.Parameter).ToList();
        var weight = own.FirstOrDefault(p => p.Rank >= 2);
        double bound = weight != null ? 1 / Math.Sqrt(Math.Max(Init.CalculateFanInAndFanOut(weight).FanIn, 1)) : 1;
        foreach (var p in own)
        {
            if (p.Rank >= 2) Init.KaimingUniform_(p, Math.Sqrt(5), generator: g);
            else Init.Uniform_(p, -bound, bound, g);
        }
    }
}
