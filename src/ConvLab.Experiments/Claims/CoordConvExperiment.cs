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
    public string Description => "CoordConv vs convolution on Not-so-Clevr: coordinate classification (deconv baseline) and regression (strided-conv baseline), uniform and quadrant splits; paired t-tests with Bonferroni and Benjamini-Hochberg";

    /// <inheritdoc/>
    public void Run(ExperimentContext context)
    {
        string split = context.Option("split") ?? "all";
        IReadOnlyList<string> splits = split == "all" ? NotSoClevr.Splits : [split];
        foreach (var s in splits) NotSoClevr.Split(s, new Generator(0)); // rejects an unknown split before any training
        string task = context.Option("task") ?? "all";
        IReadOnlyList<string> tasks = task == "all" ? NotSoClevr.Tasks : [task];
        if (!NotSoClevr.Tasks.Contains(task) && task != "all")
            throw new ArgumentException($"experiment coordconv: --set task={task} is not a task; the tasks are {string.Join(", ", NotSoClevr.Tasks)} (or all)");
        // Quick: about an eighth of each training split and one epoch, so a test runs in seconds; the test split is kept whole.
        var settings = new CoordConvSettings(
            Width: context.IntOption("width", 8, 1, 512),
            Epochs: context.IntOption("epochs", context.Quick ? 1 : 8, 1, 1000),
            Lr: context.DoubleOption("lr", 0.02, 1e-6, 1),
            RegressionEpochs: context.IntOption("regression_epochs", context.Quick ? 1 : 8, 1, 1000),
            RegressionLr: context.DoubleOption("regression_lr", 0.01, 1e-6, 1),
            WithR: context.IntOption("with_r", 0, 0, 1) == 1,
            Alpha: context.DoubleOption("alpha", 0.05, 1e-9, 0.5),
            TrainLimit: context.Quick ? 300 : null);
        var rows = CoordConvStudy.Run(tasks, splits, settings, context.Seed, context.Log);

        context.Results["width"] = settings.Width;
        context.Results["epochs"] = settings.Epochs;
        context.Results["lr"] = settings.Lr;
        context.Results["regression_epochs"] = settings.RegressionEpochs;
        context.Results["regression_lr"] = settings.RegressionLr;
        context.Results["alpha"] = settings.Alpha;
        context.Results["with_r"] = settings.WithR;
        context.Results["tasks"] = new JsonArray([.. rows.Select(r => (JsonNode)new JsonObject
        {
            ["task"] = r.Task, ["split"] = r.Split, ["train_examples"] = r.TrainCount, ["test_examples"] = r.TestCentres.Count,
            ["conv"] = Score(r.Conv), ["coordconv"] = Score(r.CoordConv),
            ["mean_error_difference"] = r.Test.Mean, ["t"] = r.Test.T, ["df"] = r.Test.Df, ["p_value"] = r.Test.PValue,
            ["alpha_bonferroni"] = r.AlphaBonferroni, ["significant"] = r.SignificantBonferroni, ["significant_bh"] = r.SignificantBh,
        })]);

        var cats = rows.Select(r => $"{r.Task} / {r.Split}").ToList();
        context.Figure("accuracy.png", Charts.Bars("test accuracy (predicted pixel = centre)", "accuracy", cats,
            [("conv baseline", [.. rows.Select(r => r.Conv.TestAccuracy)]), ("coordconv", [.. rows.Select(r => r.CoordConv.TestAccuracy)])]));
        context.Figure("mae.png", Charts.Bars("mean absolute coordinate error on the test centres", "pixels", cats,
            [("conv baseline", [.. rows.Select(r => r.Conv.Mae)]), ("coordconv", [.. rows.Select(r => r.CoordConv.Mae)])]));
        context.Figure("test_errors.png", Charts.ImageGrid([.. rows.SelectMany(r => new[]
            {
                new Tile($"{r.Conv.Model} {r.Split}", ErrorMap(r, r.Conv)), new Tile($"coordconv {r.Split}", ErrorMap(r, r.CoordConv)),
            })], columns: 2, title: "distance of the predicted centre per test centre (brighter = farther, shared scale)", scaling: TileScaling.Shared));

        Write(context, rows, settings);
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

    private static void Write(ExperimentContext context, List<CoordComparison> rows, CoordConvSettings s)
    {
        var inv = CultureInfo.InvariantCulture;
        var rep = context.Report;
        string Params(string task, Func<CoordComparison, ModelScore> which) => rows.First(r => r.Task == task) is var r ? which(r).Params.ToString("N0", inv) : "";
        rep.Heading("CoordConv on Not-so-Clevr");
        var models = new List<string>();
        if (rows.Any(r => r.Task == "classification"))
            models.Add($"Classification: the input is the centre (x, y) of a 9x9 square (x, y ∈ 4…59, normalised to [−1, 1]), the target the one-hot centre pixel over 64x64 (4,096 classes). " +
                $"Deconv: transposed convolutions from 1x1 to 64x64 ({Params("classification", r => r.Conv)} parameters). CoordConv: the pair tiled over 64x64, AddCoords (i, j in [−1, 1]) and 1x1 convolutions " +
                $"({Params("classification", r => r.CoordConv)} parameters). Both: Adam lr {Report.Num(s.Lr)}, batch 32, {s.Epochs.ToString(inv)} epoch(s), cross-entropy.");
        if (rows.Any(r => r.Task == "regression"))
            models.Add($"Regression: the input is the rendered 64x64 image, the target (x, y) in [−1, 1]. Strided conv: four 3x3 stride-2 convolutions and a fully connected layer " +
                $"({Params("regression", r => r.Conv)} parameters). CoordConv: AddCoords, two 1x1 convolutions, global max pooling, a linear layer ({Params("regression", r => r.CoordConv)} parameters). " +
                $"Both: Adam lr {Report.Num(s.RegressionLr)}, batch 32, {s.RegressionEpochs.ToString(inv)} epoch(s), mean squared error; the prediction is scored in pixels and rounded to a pixel for accuracy and within-k.");
        rep.Bullets(models);
        rep.Paragraph($"Width {s.Width.ToString(inv)} for every model, the library's Trainer; within a task both models get the same optimiser budget.");
        rep.Table(["task / split", "train / test", "model", "params", "train acc", "test acc", "MAE (px)", "≤1 px", "≤2 px", "normalised error"],
            rows.SelectMany(r => new[] { r.Conv, r.CoordConv }.Select(m => (IReadOnlyList<string>)[$"{r.Task} / {r.Split}",
                $"{r.TrainCount.ToString(inv)} / {r.TestCentres.Count.ToString(inv)}", m.Model, m.Params.ToString("N0", inv), Report.Percent(m.TrainAccuracy), Report.Percent(m.TestAccuracy),
                Report.Num(m.Mae, 3), Report.Percent(m.Within1), Report.Percent(m.Within2), Report.Num(m.NormalisedError, 3)])));
        rep.Heading("Paired t-test");
        rep.Paragraph($"Per test image, the distance (pixels) between predicted and true centre for the conv baseline (a) and CoordConv (b); t = d̄ / (s_d / √n) with d = a − b, Student t with n − 1 degrees of freedom, two-sided. " +
            $"Bonferroni: α = {Report.Num(s.Alpha)} / {rows.Count.ToString(inv)} comparisons (tasks × splits) = {Report.Num(rows[0].AlphaBonferroni)}; Benjamini–Hochberg at {Report.Num(s.Alpha)} as the less conservative alternative.");
        rep.Table(["task / split", "n", "mean difference (px)", "t", "df", "p", "significant (Bonferroni)", "significant (BH)"],
            rows.Select(r => (IReadOnlyList<string>)[$"{r.Task} / {r.Split}", r.TestCentres.Count.ToString(inv), Report.Num(r.Test.Mean, 3), Report.Num(r.Test.T), Report.Num(r.Test.Df),
                Report.Num(r.Test.PValue, 3), r.SignificantBonferroni ? "yes" : "no", r.SignificantBh ? "yes" : "no"]));
        var targets = new List<string>();
        foreach (var r in rows)
            targets.Add($"{r.Task} / {r.Split}: CoordConv test accuracy {Report.Percent(r.CoordConv.TestAccuracy)}" +
                (r.Task == "classification" ? $" (target ≥ 99 %: {(r.CoordConv.TestAccuracy >= 0.99 ? "met" : "missed")})" : "") +
                $", MAE {Report.Num(r.CoordConv.Mae, 3)} px; {r.Conv.Model} {Report.Percent(r.Conv.TestAccuracy)}, MAE {Report.Num(r.Conv.Mae, 3)} px; " +
                $"CoordConv's error is {(r.Test.Mean > 0 ? "lower" : "not lower")} and the difference {(r.SignificantBonferroni ? "significant" : "not significant")} at the corrected α.");
        rep.Bullets(targets);
        rep.Figure("accuracy.png", "test accuracy per task and split");
        rep.Figure("mae.png", "mean absolute error per task and split");
        rep.Figure("test_errors.png", "where each model misses: the error at each test centre");
    }
}
