using System.Globalization;
using System.Text.Json.Nodes;
using ConvLab.Imaging;

namespace ConvLab.Experiments.Claims;

/// <summary><c>convlab experiment gradients</c>: conv weight gradients as patch sums, their spread with image size, pooling's gradient routing and residual scaling.</summary>
public sealed class GradientsExperiment : IExperiment
{
    /// <inheritdoc/>
    public string Name => "gradients";

    /// <inheritdoc/>
    public string Description => "Conv weight gradients are dy-weighted sums of input patches, their spread grows like (n−k+1)·σx·σg; pooling routes gradients; residual scaling γ = 1/√2";

    /// <inheritdoc/>
    public void Run(ExperimentContext context)
    {
        int[] sizes = context.Quick ? [8, 16, 32] : [8, 16, 32, 64, 128];
        int trials = context.IntOption("trials", context.Quick ? 20 : 200, 2, 100_000);
        int[] depths = context.Quick ? [4, 8] : [4, 8, 16, 32];
        var r = GradientStudy.Run(sizes, trials, depths, new Generator(context.Seed));
        context.Log($"gradients: patch identity error {r.PatchIdentityError:G3}, slope {r.Slope:F3}");

        context.Results["patch_identity_max_relative_error"] = r.PatchIdentityError;
        context.Results["sgd_step"] = new JsonObject
        {
            ["kernel"] = r.Step.Kernel, ["size"] = r.Step.Size,
            ["gradient_vs_patch_sum_max_relative_error"] = r.Step.PatchIdentityError,
            ["step_vs_w0_minus_lr_patch_sum_max_relative_error"] = r.Step.StepIdentityError,
            ["update_diagonal_correlation"] = r.Step.DiagonalCorrelation,
        };
        context.Results["grad_std"] = new JsonArray([.. r.GradStd.Select(g => (JsonNode)new JsonObject { ["n"] = g.N, ["measured"] = g.Measured, ["theory"] = g.Theory })]);
        context.Results["grad_std_trials"] = trials;
        context.Results["grad_std_loglog_slope"] = r.Slope;
        context.Results["pool_routing"] = new JsonObject
        {
            ["input"] = Floats(r.Routing.Input), ["upstream"] = Floats(r.Routing.Upstream),
            ["max_pool_grad"] = Floats(r.Routing.MaxGrad), ["avg_pool_grad"] = Floats(r.Routing.AvgGrad),
        };
        context.Results["residual"] = new JsonArray([.. r.Residual.Select(x => (JsonNode)new JsonObject
            { ["gamma"] = x.Gamma, ["depth"] = x.Depth, ["activation_var"] = x.ActivationVar, ["bottom_grad_norm"] = x.BottomGradNorm })]);

        int k = r.Step.Kernel, n = r.Step.Size;
        context.Figure("sgd_step.png", Charts.ImageGrid([
            new Tile("image x", Tensor.FromArray(r.Step.Image, n, n)), new Tile("w0", Tensor.FromArray(r.Step.W0, k, k)),
            new Tile("Σ dy·patch", Tensor.FromArray(r.Step.PatchSum, k, k)), new Tile("w1 = w0 − lr·Σ", Tensor.FromArray(r.Step.W1, k, k))],
            columns: 4, title: "one SGD step: w moves by a weighted sum of patches"));
        context.Figure("grad_std.png", Charts.Line("std of a conv weight-gradient entry (3x3, σx = σg = 1)", "image size n", "std(dw)",
            [new Series("measured", [.. r.GradStd.Select(g => (double)g.N)], [.. r.GradStd.Select(g => g.Measured)]),
             new Series("theory (n − k + 1)·σx·σg", [.. r.GradStd.Select(g => (double)g.N)], [.. r.GradStd.Select(g => g.Theory)])], logX: true, logY: true));
        context.Figure("pool_routing.png", Charts.ImageGrid([
            new Tile("input", Tensor.FromArray(r.Routing.Input, 4, 4)), new Tile("upstream dy", Tensor.FromArray(r.Routing.Upstream, 2, 2)),
            new Tile("max-pool dx", Tensor.FromArray(r.Routing.MaxGrad, 4, 4)), new Tile("avg-pool dx", Tensor.FromArray(r.Routing.AvgGrad, 4, 4))],
            columns: 4, title: "2x2/2 pooling: where the gradient goes"));
        int deepest = depths[^1];
        context.Figure("residual_variance.png", Charts.Line($"activation variance per block (depth {deepest})", "block", "variance",
            [.. r.Residual.Where(x => x.Depth == deepest).Select(x => new Series($"γ = {Report.Num(x.Gamma, 3)}",
                [.. Enumerable.Range(1, x.VarPerBlock.Length).Select(i => (double)i)], x.VarPerBlock))], logY: true));
        var plain = r.Residual.Where(x => x.Gamma == 1).ToList();
        var scaled = r.Residual.Where(x => x.Gamma != 1).ToList();
        context.Figure("residual_gradient.png", Charts.Line("gradient norm of the stem (bottom) conv", "depth L", "‖∂L/∂W_stem‖",
            [new Series("γ = 1", [.. plain.Select(x => (double)x.Depth)], [.. plain.Select(x => x.BottomGradNorm)]),
             new Series("γ = 1/√2", [.. scaled.Select(x => (double)x.Depth)], [.. scaled.Select(x => x.BottomGradNorm)]),
             new Series("γ^(L−2) × (γ = 1)", [.. plain.Select(x => (double)x.Depth)], [.. plain.Select(x => x.BottomGradNorm * Math.Pow(scaled[0].Gamma, x.Depth - 2))])], logY: true));

        Write(context, r, trials, plain, scaled);
    }

    /// <summary>Geometric mean of the block-to-block variance ratio.</summary>
    private static double Growth(ResidualRow x) =>
        x.VarPerBlock.Length < 2 ? double.NaN : Math.Pow(x.VarPerBlock[^1] / x.VarPerBlock[0], 1.0 / (x.VarPerBlock.Length - 1));

    private static JsonArray Floats(float[] v) => new([.. v.Select(x => (JsonNode)(double)x)]);

    private static string Matrix(float[] v, int side) =>
        string.Join(" / ", Enumerable.Range(0, side).Select(i => string.Join(" ", v.Skip(i * side).Take(side).Select(x => Report.Num(x, 3)))));

    private static void Write(ExperimentContext context, GradientResult r, int trials, List<ResidualRow> plain, List<ResidualRow> scaled)
    {
        var rep = context.Report;
        var inv = CultureInfo.InvariantCulture;
        rep.Heading("Convolution weight gradients");
        rep.Paragraph($"For y = conv(x, w), dw[o, c, u, v] = Σ dy[o, i, j]·x[c, i + u, j + v]: the gradient is the upstream-weighted sum of input patches. " +
            $"Autograd's float32 gradient against that sum computed by loops in float64 (2x3x12x12 input, 4 filters of 3x3): largest relative difference {Report.Num(r.PatchIdentityError)}.");
        rep.Paragraph($"One SGD step (lr 0.05) of a {r.Step.Kernel}x{r.Step.Kernel} filter on a {r.Step.Size}x{r.Step.Size} image with a diagonal bar, loss sum(y·dy) with dy ≥ 0: " +
            $"the gradient matches the patch sum to {Report.Num(r.Step.PatchIdentityError)} and the new weights match w0 − lr·Σ dy·patch to {Report.Num(r.Step.StepIdentityError)}; " +
            $"the step adds a positively weighted average of patches: the update's correlation with a {r.Step.Kernel}x{r.Step.Kernel} diagonal band is {Report.Num(r.Step.DiagonalCorrelation, 3)}.");
        rep.Figure("sgd_step.png", "w1 = w0 − lr·Σ dy·patch");

        rep.Heading("Spread of the gradient with image size");
        rep.Paragraph($"x ~ N(0, 1), dy ~ N(0, 1), a 3x3 filter, {trials.ToString(inv)} draws per size: each dw entry sums (n − k + 1)² products of unit variance, so its standard deviation is (n − k + 1)·σx·σg.");
        rep.Table(["n", "measured std", "theory", "measured / theory"],
            r.GradStd.Select(g => (IReadOnlyList<string>)[g.N.ToString(inv), Report.Num(g.Measured), Report.Num(g.Theory), Report.Num(g.Measured / g.Theory, 3)]));
        rep.Paragraph($"Log-log slope of the measured std on n − k + 1: {Report.Num(r.Slope, 3)} (theory 1).");
        rep.Figure("grad_std.png", "measured vs theory, log-log");

        rep.Heading("Pooling's gradient routing");
        rep.Paragraph($"Input (rows) {Matrix(r.Routing.Input, 4)}, upstream gradient {Matrix(r.Routing.Upstream, 2)}. " +
            $"Max pooling sends each upstream value to its window's maximum only: {Matrix(r.Routing.MaxGrad, 4)}. " +
            $"Average pooling spreads a quarter of it over the window: {Matrix(r.Routing.AvgGrad, 4)}.");
        rep.Figure("pool_routing.png", "gradient routing of max and average pooling");

        rep.Heading("Residual scaling γ = 1/√2");
        rep.Paragraph("A stem conv, L − 2 blocks x ← γ·(x + conv(relu(conv(x)))) (He-initialised, no biases or normalisation) and a GAP + linear head, the same weights for both γ. " +
            "Every layer is positively homogeneous, so the stem's gradient at γ is γ^(L−2) times the one at γ = 1.");
        rep.Table(["depth L", "var (γ = 1)", "var (γ = 1/√2)", "‖∂L/∂W_stem‖ (γ = 1)", "(γ = 1/√2)", "ratio", "γ^(L−2)"],
            plain.Zip(scaled).Select(p => (IReadOnlyList<string>)[p.First.Depth.ToString(inv), Report.Num(p.First.ActivationVar), Report.Num(p.Second.ActivationVar),
                Report.Num(p.First.BottomGradNorm), Report.Num(p.Second.BottomGradNorm), Report.Num(p.Second.BottomGradNorm / p.First.BottomGradNorm),
                Report.Num(Math.Pow(p.Second.Gamma, p.First.Depth - 2))]));
        var deep = plain[^1]; var deepScaled = scaled[^1];
        rep.Paragraph($"At depth {deep.Depth.ToString(inv)} the activation variance is {Report.Num(deep.ActivationVar)} without scaling (×{Report.Num(Growth(deep), 3)} per block on average) " +
            $"and {Report.Num(deepScaled.ActivationVar)} with γ = 1/√2 (×{Report.Num(Growth(deepScaled), 3)} per block).");
        rep.Figure("residual_variance.png", "activation variance per block");
        rep.Figure("residual_gradient.png", "stem gradient norm vs depth");
    }
}
