using System.Globalization;
using System.Text.Json.Nodes;
using ConvLab.Imaging;

namespace ConvLab.Experiments.Claims;

/// <summary><c>convlab experiment transfer</c>: the four transfer-learning scenarios, strategies compared, and transferability per layer.</summary>
public sealed class TransferExperiment : IExperiment
{
    /// <inheritdoc/>
    public string Name => "transfer";

    /// <inheritdoc/>
    public string Description => "Transfer learning on Fashion-MNIST: source classes 0-4 to classes 5-9 and to inverted images, little vs all data; feature extraction, fine-tuning, partial:k, layer-wise rates, scratch; linear probes and CKA per layer";

    /// <inheritdoc/>
    public void Run(ExperimentContext context)
    {
        // Quick: one strategy of each kind, so a test runs in seconds.
        string[] strategies = context.Option("strategy") is { } one ? [one]
            : context.Quick ? ["feature-extract", "partial:1", "full:0.5", "scratch"] : TransferStudy.DefaultStrategies;
        foreach (var s in strategies) TransferStudy.Check(s);
        _ = context.Option("data"); // FashionMnist() honours --data; reading it marks it as used
        var data = context.FashionMnist();
        var settings = context.Quick
            ? new TransferSettings(300, 1, 10, 100, 100, 2, 1, 100, 2, 1e-3, strategies)
            : new TransferSettings(15000, 2, 50, 10000, 2000, 15, 1, 5000, 10, 1e-3, strategies);
        string cache = Path.Combine(context.OutDir, "source.safetensors");
        var (table, layers, sourceAccuracy, cached) = TransferStudy.Run(data, settings, cache, context.Seed, context.Log);

        context.Results["source_test_accuracy"] = sourceAccuracy;
        context.Results["source_cached"] = cached;
        context.Results["table"] = new JsonArray([.. table.Select(c => (JsonNode)new JsonObject
        {
            ["target"] = c.Target, ["data"] = c.Data, ["strategy"] = c.Strategy, ["train_images"] = c.TrainImages, ["test_accuracy"] = c.TestAccuracy,
            ["predicted_best"] = TransferStudy.Predicted(c.Target, c.Data),
        })]);
        context.Results["layers"] = new JsonArray([.. layers.Select(l => (JsonNode)new JsonObject
            { ["layer"] = l.Layer, ["features"] = l.Features, ["linear_probe_accuracy"] = l.ProbeAccuracy, ["cka"] = l.Cka })]);

        var scenarios = table.Select(c => $"{c.Target} / {c.Data}").Distinct().ToList();
        context.Figure("transfer_accuracy.png", Charts.Bars("test accuracy per scenario and strategy", "accuracy", scenarios,
            [.. strategies.Select(st => (st, (IReadOnlyList<double>)[.. scenarios.Select(sc => table.First(c => $"{c.Target} / {c.Data}" == sc && c.Strategy == st).TestAccuracy)]))]));
        var depth = layers.Select((_, i) => (double)(i + 1)).ToList();
        context.Figure("transferability.png", Charts.Line("transferability by depth (target: classes 5-9)", "layer (1 = block 1, 2 = block 2, 3 = fc1)", "value",
            [new Series("linear-probe accuracy of source features", depth, [.. layers.Select(l => l.ProbeAccuracy)]),
             new Series("linear CKA, source vs target-trained", depth, [.. layers.Select(l => l.Cka)])]));

        var inv = CultureInfo.InvariantCulture;
        var rep = context.Report;
        rep.Heading("Transfer learning scenarios");
        rep.Paragraph($"Source: simple_cnn (5 classes) trained on {settings.SourceImages.ToString(inv)} images of Fashion-MNIST classes 0–4 ({(cached ? "loaded from the cached source.safetensors of this run folder" : "trained here and cached as source.safetensors")}), " +
            $"test accuracy {Report.Percent(sourceAccuracy, 2)}. Targets: classes 5–9 (another task, same images' domain) and classes 0–4 with inverted images (same task, shifted domain); " +
            $"little = {settings.LittlePerClass.ToString(inv)} images per class ({settings.LittleEpochs.ToString(inv)} epochs), all = every training image of those classes{(settings.AllLimit is int l ? $" (the first {l.ToString(inv)})" : "")} ({settings.AllEpochs.ToString(inv)} epoch(s)). " +
            $"Adam, η0 = {Report.Num(settings.Lr)}; the head is always re-initialised. fine-tune trains all at η0/10; partial:k freezes layers 1..k; full:α uses η_l = η0·α^(L−l) over the L = 4 layers.");
        rep.Table(["target / data", .. strategies, "best", "predicted"],
            scenarios.Select(sc =>
            {
                var cells = table.Where(c => $"{c.Target} / {c.Data}" == sc).ToList();
                var best = cells.MaxBy(c => c.TestAccuracy)!;
                return (IReadOnlyList<string>)[sc, .. strategies.Select(st => Report.Percent(cells.First(c => c.Strategy == st).TestAccuracy)), best.Strategy, TransferStudy.Predicted(best.Target, best.Data)];
            }));
        int agree = scenarios.Count(sc => { var cells = table.Where(c => $"{c.Target} / {c.Data}" == sc).ToList(); var b = cells.MaxBy(c => c.TestAccuracy)!; return b.Strategy == TransferStudy.Predicted(b.Target, b.Data); });
        rep.Paragraph($"The rule of thumb's prediction is the measured best in {agree.ToString(inv)} of {scenarios.Count.ToString(inv)} scenarios" +
            (strategies.Length < TransferStudy.DefaultStrategies.Length ? " (only the strategies run are compared)." : "."));
        rep.Figure("transfer_accuracy.png", "accuracy per scenario and strategy");
        rep.Heading("Transferability per layer");
        rep.Paragraph("On the classes 5–9 task: a linear probe (the library's Trainer on frozen features) of each layer's source features, and linear CKA between the source model's and a from-scratch target model's features on the same test images.");
        rep.Table(["layer", "features", "linear-probe accuracy", "CKA"],
            layers.Select(l => (IReadOnlyList<string>)[l.Layer, l.Features.ToString(inv), Report.Percent(l.ProbeAccuracy), Report.Num(l.Cka, 3)]));
        rep.Figure("transferability.png", "probe accuracy and CKA by depth");
    }
}
