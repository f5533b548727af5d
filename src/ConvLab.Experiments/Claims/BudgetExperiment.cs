using System.Globalization;
using System.Text.Json.Nodes;
using ConvLab.Data;
using ConvLab.Imaging;

namespace ConvLab.Experiments.Claims;

/// <summary><c>convlab experiment budget</c>: at a fixed multiply-add budget, networks trading depth, width and filter size trained on the same data.</summary>
public sealed class BudgetExperiment : IExperiment
{
    /// <inheritdoc/>
    public string Name => "budget";

    /// <inheritdoc/>
    public string Description => "Depth vs width vs filter size at a fixed MAC budget (±5 %, counted by the calculator) on Fashion-MNIST: one 7x7 vs three 3x3, wide-shallow vs narrow-deep; accuracy vs parameters vs MACs with receptive fields";

    /// <inheritdoc/>
    public void Run(ExperimentContext context)
    {
        long budget = context.IntOption("budget_macs", 3_000_000, 1_000, 2_000_000_000);
        var families = context.Option("families") is { } list ? BudgetStudy.ParseFamilies(list) : BudgetStudy.DefaultFamilies;
        // Quick: a few hundred images and one epoch, so a test runs in seconds; the models and their budget are the full setting's.
        int trainCount = context.IntOption("train", context.Quick ? 256 : 6000, 1, 1_000_000);
        int testCount = context.IntOption("test", context.Quick ? 256 : 2000, 1, 1_000_000);
        int epochs = context.IntOption("epochs", context.Quick ? 1 : 3, 1, 1000);
        double lr = context.DoubleOption("lr", 1e-3, 1e-6, 1);
        _ = context.Option("data"); // FashionMnist() honours --data; reading it marks it as used
        var data = context.FashionMnist();
        var input = data.Train.Get(0).Input.Shape.ToArray();
        int classes = data.ClassNames.Count;
        if (input.Length != 3 || input[1] < BudgetStudy.Pool || input[2] < BudgetStudy.Pool)
            throw new ArgumentException($"experiment budget: needs (C, H, W) images of at least {BudgetStudy.Pool}x{BudgetStudy.Pool}, the data gives {string.Join("x", input)}");
        var (fitted, missed) = BudgetStudy.Fit(families, budget, input, classes);
        IDataset Limit(IDataset d, int n) => n < d.Count ? new Subset(d, [.. Enumerable.Range(0, n)]) : d;
        var train = Limit(data.Train, trainCount);
        var test = Limit(data.Test, testCount);
        var models = BudgetStudy.Run(fitted, train, test, input, classes, epochs, lr, context.Seed, context.Log);

        context.Results["budget_macs"] = budget;
        context.Results["tolerance"] = BudgetStudy.Tolerance;
        context.Results["data"] = data.Description;
        context.Results["train_images"] = train.Count;
        context.Results["test_images"] = test.Count;
        context.Results["epochs"] = epochs;
        context.Results["lr"] = lr;
        context.Results["models"] = new JsonArray([.. models.Select(m => (JsonNode)new JsonObject
        {
            ["name"] = m.Family.Name, ["depth"] = m.Family.Depth, ["width"] = m.Width, ["kernel"] = m.Family.Kernel, ["params"] = m.Params, ["classifier_params"] = m.HeadParams, ["macs"] = m.Macs,
            ["macs_vs_budget"] = (double)m.Macs / budget - 1, ["receptive_field"] = m.ReceptiveField, ["train_accuracy"] = m.TrainAccuracy, ["test_accuracy"] = m.TestAccuracy,
            ["train_seconds"] = m.Seconds,
        })]);
        context.Results["left_out"] = new JsonArray([.. missed.Select(m => (JsonNode)new JsonObject
            { ["name"] = m.Family.Name, ["depth"] = m.Family.Depth, ["kernel"] = m.Family.Kernel, ["nearest_width"] = m.Width, ["macs"] = m.Macs })]);

        var names = models.Select(m => $"{m.Family.Name} w{m.Width}").ToList();
        context.Figure("accuracy.png", Charts.Bars($"test accuracy at {Report.Num(budget / 1e6, 3)} M MACs per image (±5 %)", "accuracy", names,
            [("test", [.. models.Select(m => m.TestAccuracy)]), ("train", [.. models.Select(m => m.TrainAccuracy)])]));
        context.Figure("accuracy_vs_params.png", Charts.Line("test accuracy vs parameters (equal MACs)", "parameters", "test accuracy",
            [.. models.Select(m => new Series($"{m.Family.Name} w{m.Width} (RF {m.ReceptiveField})", [m.Params], [m.TestAccuracy]))], logX: true));
        context.Figure("costs.png", Charts.Bars("cost per image as the calculator counts it", "millions", names,
            [("MACs (M)", [.. models.Select(m => m.Macs / 1e6)]), ("parameters (×10⁵)", [.. models.Select(m => m.Params / 1e5)])]));

        Write(context, models, missed, budget, train.Count, test.Count, epochs, lr, data.Description);
    }

    private static void Write(ExperimentContext context, List<BudgetModel> models, List<BudgetMiss> missed, long budget, int trainCount, int testCount, int epochs, double lr, string data)
    {
        var inv = CultureInfo.InvariantCulture;
        var rep = context.Report;
        rep.Heading("Depth, width and filter size at a fixed budget");
        rep.Paragraph($"Every model is DEPTH \"same\"-padded KxK convolutions of one WIDTH with ReLU, 4x4 max pooling and a linear classifier; the width is the integer whose multiply-adds per image " +
            $"(the calculator's count, classifier included) are nearest {budget.ToString("N0", inv)} MACs, and a model is kept when that is within ±{BudgetStudy.Tolerance * 100:0} %. " +
            $"All train on the same {trainCount.ToString("N0", inv)} training images and {testCount.ToString("N0", inv)} test images of {data}, with Adam lr {Report.Num(lr)}, batch 64, {epochs.ToString(inv)} epoch(s), seed {context.Seed.ToString(inv)}, the library's Trainer.");
        rep.Table(["model", "depth", "kernel", "width", "params", "MACs", "vs budget", "receptive field", "train acc", "test acc", "train time (s)"],
            models.Select(m => (IReadOnlyList<string>)[m.Family.Name, m.Family.Depth.ToString(inv), $"{m.Family.Kernel}x{m.Family.Kernel}", m.Width.ToString(inv), m.Params.ToString("N0", inv),
                m.Macs.ToString("N0", inv), $"{((double)m.Macs / budget - 1) * 100:+0.0;-0.0} %", $"{m.ReceptiveField}x{m.ReceptiveField}", Report.Percent(m.TrainAccuracy), Report.Percent(m.TestAccuracy), Report.Num(m.Seconds, 3)]));
        if (missed.Count > 0)
            rep.Paragraph("Left out (no integer width within the tolerance): " + string.Join("; ", missed.Select(m => $"{m.Family.Name} (nearest width {m.Width.ToString(inv)}: {m.Macs.ToString("N0", inv)} MACs)")) + ".");

        var findings = new List<string>();
        var best = models.MaxBy(m => m.TestAccuracy)!;
        findings.Add($"Best: {best.Family.Name} at width {best.Width.ToString(inv)} ({Report.Percent(best.TestAccuracy)}, {best.Params.ToString("N0", inv)} parameters, receptive field {best.ReceptiveField.ToString(inv)}).");
        foreach (var (big, small) in models.Where(m => m.Family.Depth == 1 && m.Family.Kernel > 3)
            .Select(b => (b, models.FirstOrDefault(m => m.Family.Kernel == 3 && m.ReceptiveField == b.ReceptiveField && m.Family.Depth > 1))).Where(p => p.Item2 != null))
            findings.Add($"Same receptive field {big.ReceptiveField.ToString(inv)}: one {big.Family.Kernel}x{big.Family.Kernel} layer (width {big.Width.ToString(inv)}) {Report.Percent(big.TestAccuracy)} vs " +
                $"{small!.Family.Depth.ToString(inv)} 3x3 layers (width {small.Width.ToString(inv)}) {Report.Percent(small.TestAccuracy)}: the deeper stack of small filters is " +
                $"{(small.TestAccuracy > big.TestAccuracy ? "better" : small.TestAccuracy < big.TestAccuracy ? "worse" : "equal")} by {Report.Num(Math.Abs(small.TestAccuracy - big.TestAccuracy) * 100, 3)} points " +
                $"(on {testCount.ToString("N0", inv)} test images one point is {Report.Num(testCount / 100.0, 3)} images).");
        var threes = models.Where(m => m.Family.Kernel == 3).OrderBy(m => m.Family.Depth).ToList();
        if (threes.Count > 1)
            findings.Add("3x3 stacks from wide-shallow to narrow-deep: " + string.Join(", ", threes.Select(m => $"depth {m.Family.Depth.ToString(inv)} / width {m.Width.ToString(inv)} {Report.Percent(m.TestAccuracy)}")) +
                $"; the best of them is depth {threes.MaxBy(m => m.TestAccuracy)!.Family.Depth.ToString(inv)}.");
        var smallFilterDeep = models.Where(m => m.Family.Kernel == 3 && m.Family.Depth > 1).ToList();
        var shallowLarge = models.Where(m => m.Family.Depth == 1 && m.Family.Kernel > 3).ToList();
        if (smallFilterDeep.Count > 0 && shallowLarge.Count > 0)
        {
            double deep = smallFilterDeep.Max(m => m.TestAccuracy), shallow = shallowLarge.Max(m => m.TestAccuracy);
            findings.Add($"Does deeper-of-small-filters win here? The best deep 3x3 stack reaches {Report.Percent(deep)}, the best single large filter {Report.Percent(shallow)}: " +
                $"{(deep > shallow ? "yes" : "no")}, in this run ({epochs.ToString(inv)} epoch(s), one seed).");
        }
        var fewest = models.MinBy(m => m.Params)!;
        var most = models.MaxBy(m => m.Params)!;
        findings.Add($"Equal MACs are not equal parameters: {fewest.Family.Name} has {fewest.Params.ToString("N0", inv)}, {most.Family.Name} {most.Params.ToString("N0", inv)} " +
            $"({Report.Num((double)most.Params / fewest.Params, 3)}x), {Report.Percent((double)most.HeadParams / most.Params)} of them in its linear classifier (against {Report.Percent((double)fewest.HeadParams / fewest.Params)}): " +
            "a wide first layer on one input channel costs few MACs per filter, so the shallow models spend the budget on width and the classifier grows with it.");
        rep.Bullets(findings);
        rep.Figure("accuracy.png", "test and train accuracy per model");
        rep.Figure("accuracy_vs_params.png", "test accuracy against parameters at equal MACs");
        rep.Figure("costs.png", "MACs and parameters per model");
    }
}
