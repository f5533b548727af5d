using System.Globalization;
using System.Text.Json.Nodes;
using ConvLab.Imaging;

namespace ConvLab.Experiments.Claims;

/// <summary><c>convlab experiment coordconv</c>: Liu et al.'s CoordConv vs convolution on Not-so-Clevr with a paired t-test and multiple-testing correction.</summary>
public sealed class CoordConvExperiment : IExperiment
{
    /// <inheritdoc/>
    public string Name => "coordconv";

    /// <inheritdoc/>
    public string Description => "CoordConv fixes coordinate classification on Not-so-Clevr (uniform and quadrant splits) where deconvolution fails; paired t-test with Bonferroni and Benjamini-Hochberg";

    /// <inheritdoc/>
    public void Run(ExperimentContext context)
    {
        string split = context.Option("split") ?? "all";
        IReadOnlyList<string> splits = split == "all" ? NotSoClevr.Splits : [split];
        foreach (var s in splits) NotSoClevr.Split(s, new Generator(0)); // rejects an unknown split before any training
        int width = context.IntOption("width", 8, 1, 512);
        int epochs = context.IntOption("epochs", context.Quick ? 1 : 8, 1, 1000);
        double lr = context.DoubleOption("lr", 0.02, 1e-6, 1);
        // Quick: a quarter of each training split, so a test runs in seconds; the test split is kept whole.
        int? trainLimit = context.Quick ? 600 : null;
        double alpha = context.DoubleOption("alpha", 0.05, 1e-9, 0.5);
        bool withR = context.IntOption("with_r", 0, 0, 1) == 1;
        var rows = CoordConvStudy.Run(splits, width, epochs, lr, withR, alpha, trainLimit, context.Seed, context.Log);

        context.Results["width"] = width;
        context.Results["epochs"] = epochs;
        context.Results["lr"] = lr;
        context.Results["alpha"] = alpha;
        context.Results["with_r"] = withR;
        context.Results["tasks"] = new JsonArray([.. rows.Select(r => (JsonNode)new JsonObject
        {
            ["task"] = r.Task, ["split"] = r.Split, ["train_examples"] = r.TrainCount, ["test_examples"] = r.TestCentres.Count,
            ["conv"] = Score(r.Conv), ["coordconv"] = Score(r.CoordConv),
            ["mean_error_difference"] = r.Test.Mean, ["t"] = r.Test.T, ["df"] = r.Test.Df, ["p_value"] = r.Test.PValue,
            ["alpha_bonferroni"] = r.AlphaBonferroni, ["significant"] = r.SignificantBonferroni, ["significant_bh"] = r.SignificantBh,
        })]);

        var cats = rows.Select(r => $"{r.Task} / {r.Split}").ToList();
        context.Figure("accuracy.png", Charts.Bars("test accuracy (exact centre pixel)", "accuracy", cats,
            [("deconv", [.. rows.Select(r => r.Conv.TestAccuracy)]), ("coordconv", [.. rows.Select(r => r.CoordConv.TestAccuracy)])]));
        context.Figure("mae.png", Charts.Bars("mean absolute coordinate error on the test centres", "pixels", cats,
            [("deconv", [.. rows.Select(r => r.Conv.Mae)]), ("coordconv", [.. rows.Select(r => r.CoordConv.Mae)])]));
        context.Figure("test_errors.png", Charts.ImageGrid([.. rows.SelectMany(r => new[]
            {
                new Tile($"deconv {r.Split}", ErrorMap(r, r.Conv)), new Tile($"coordconv {r.Split}", ErrorMap(r, r.CoordConv)),
            })], columns: 2, title: "distance of the predicted centre per test centre (brighter = farther, shared scale)", scaling: TileScaling.Shared));

        Write(context, rows, width, epochs, lr, alpha);
    }

    private static JsonObject Score(ModelScore s) => new()
    {
        ["params"] = s.Params, ["train_accuracy"] = s.TrainAccuracy, ["test_accuracy"] = s.TestAccuracy, ["mae"] = s.Mae,
        ["within_1px"] = s.Within1, ["within_2px"] = s.Within2, ["normalised_error"] = s.NormalisedError,
    };

    private static Tensor ErrorMap(CoordComparison r, ModelScore s)
    {
        var map = new float[NotSoClevr.Canvas * NotSoClevr.Canvas];
        for (int i = 0; i < r.TestCentres.Count; i++) map[r.TestCentres[i].Y * NotSoClevr.Canvas + r.TestCentres[i].X] = (float)s.Errors[i];
        return Tensor.FromArray(map, NotSoClevr.Canvas, NotSoClevr.Canvas);
    }

    private static void Write(ExperimentContext context, List<CoordComparison> rows, int width, int epochs, double lr, double alpha)
    {
        var inv = CultureInfo.InvariantCulture;
        var rep = context.Report;
        rep.Heading("CoordConv on Not-so-Clevr");
        rep.Paragraph($"Supervised coordinate classification: the input is the centre (x, y) of a 9x9 square (x, y ∈ 4…59, normalised to [−1, 1]), the target the one-hot centre pixel over 64x64 (4,096 classes). " +
            $"Deconv: transposed convolutions from 1x1 to 64x64 ({rows[0].Conv.Params.ToString("N0", inv)} parameters). CoordConv: the pair tiled over 64x64, AddCoords (i, j in [−1, 1]) and 1x1 convolutions " +
            $"({rows[0].CoordConv.Params.ToString("N0", inv)} parameters). Both: width {width.ToString(inv)}, Adam lr {Report.Num(lr)}, batch 32, {epochs.ToString(inv)} epoch(s), the library's Trainer.");
        rep.Table(["task / split", "train / test", "model", "params", "train acc", "test acc", "MAE (px)", "≤1 px", "≤2 px", "normalised error"],
            rows.SelectMany(r => new[] { r.Conv, r.CoordConv }.Select(s => (IReadOnlyList<string>)[$"{r.Task} / {r.Split}",
                $"{r.TrainCount.ToString(inv)} / {r.TestCentres.Count.ToString(inv)}", s.Model, s.Params.ToString("N0", inv), Report.Percent(s.TrainAccuracy), Report.Percent(s.TestAccuracy),
                Report.Num(s.Mae, 3), Report.Percent(s.Within1), Report.Percent(s.Within2), Report.Num(s.NormalisedError, 3)])));
        rep.Heading("Paired t-test");
        rep.Paragraph($"Per test image, the distance (pixels) between predicted and true centre for deconv (a) and CoordConv (b); t = d̄ / (s_d / √n) with d = a − b, Student t with n − 1 degrees of freedom, two-sided. " +
            $"Bonferroni: α = {Report.Num(alpha)} / {rows.Count.ToString(inv)} comparisons = {Report.Num(rows[0].AlphaBonferroni)}; Benjamini–Hochberg at {Report.Num(alpha)} as the less conservative alternative.");
        rep.Table(["task / split", "n", "mean difference (px)", "t", "df", "p", "significant (Bonferroni)", "significant (BH)"],
            rows.Select(r => (IReadOnlyList<string>)[$"{r.Task} / {r.Split}", r.TestCentres.Count.ToString(inv), Report.Num(r.Test.Mean, 3), Report.Num(r.Test.T), Report.Num(r.Test.Df),
                Report.Num(r.Test.PValue, 3), r.SignificantBonferroni ? "yes" : "no", r.SignificantBh ? "yes" : "no"]));
        var targets = new List<string>();
        foreach (var r in rows)
            targets.Add($"{r.Split}: CoordConv test accuracy {Report.Percent(r.CoordConv.TestAccuracy)} (target ≥ 99 %: {(r.CoordConv.TestAccuracy >= 0.99 ? "met" : "missed")}), " +
                $"deconv {Report.Percent(r.Conv.TestAccuracy)}; difference {(r.SignificantBonferroni ? "significant" : "not significant")} at the corrected α.");
        rep.Bullets(targets);
        rep.Figure("accuracy.png", "test accuracy per split");
        rep.Figure("mae.png", "mean absolute error per split");
        rep.Figure("test_errors.png", "where each model misses: the error at each test centre");
    }
}
