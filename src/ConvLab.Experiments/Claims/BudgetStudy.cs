using System.Diagnostics;
using System.Globalization;
using ConvLab.Analysis;
using ConvLab.Data;
using ConvLab.NN;

namespace ConvLab.Experiments.Claims;

/// <summary>A shape of network: <see cref="Depth"/> convolutions of <see cref="Kernel"/> x <see cref="Kernel"/>; the width is solved from the budget.</summary>
internal sealed record BudgetFamily(int Depth, int Kernel)
{
    public string Name => $"{Depth.ToString(CultureInfo.InvariantCulture)}x conv{Kernel.ToString(CultureInfo.InvariantCulture)}";
}

/// <summary>One trained model of the budget comparison, its costs as the calculator counts them.</summary>
internal sealed record BudgetModel(BudgetFamily Family, int Width, long Params, long HeadParams, long Macs, int ReceptiveField, double TestAccuracy, double TrainAccuracy, double Seconds);

/// <summary>A family no integer width brings within the tolerance of the budget (the nearest width and its MACs).</summary>
internal sealed record BudgetMiss(BudgetFamily Family, int Width, long Macs);

/// <summary>
/// Depth vs width vs filter size at a fixed cost: each family is <c>depth</c> "same"-padded k x k convolutions of one
/// width with ReLU, then 4x4 max pooling and a linear classifier. The width is the integer whose multiply-adds per image
/// (counted by <see cref="Summary"/>, head included) are nearest the budget; a family whose nearest width is outside the
/// tolerance is left out, and a budget no family meets is an error naming the option.
/// </summary>
internal static class BudgetStudy
{
    public const double Tolerance = 0.05;
    public const int Pool = 4;

    /// <summary>One 7x7 vs three 3x3 and one 5x5 vs two 3x3 (equal receptive fields), and one to six 3x3 layers (wide-shallow to narrow-deep).</summary>
    public static readonly BudgetFamily[] DefaultFamilies = [new(1, 7), new(1, 5), new(2, 5), new(1, 3), new(2, 3), new(3, 3), new(4, 3), new(6, 3)];

    /// <summary>Parses <c>DxK,...</c> (depth x kernel, e.g. <c>1x7,3x3</c>); an odd kernel is required for "same" padding.</summary>
    public static BudgetFamily[] ParseFamilies(string text)
    {
        var list = new List<BudgetFamily>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var dk = part.Split('x');
            if (dk.Length != 2 || !int.TryParse(dk[0], NumberStyles.None, CultureInfo.InvariantCulture, out int d) || !int.TryParse(dk[1], NumberStyles.None, CultureInfo.InvariantCulture, out int k)
                || d < 1 || d > 32 || k < 1 || k > 15 || k % 2 == 0)
                throw new ArgumentException($"experiment budget: --set families={text}: '{part}' is not DEPTHxKERNEL with depth 1-32 and an odd kernel 1-15 (e.g. 1x7,3x3)");
            list.Add(new(d, k));
        }
        if (list.Count == 0) throw new ArgumentException($"experiment budget: --set families={text} names no family (e.g. 1x7,3x3)");
        return [.. list];
    }

    /// <summary>The network of a family at a width for a (C, H, W) input with <paramref name="classes"/> outputs.</summary>
    public static Sequential Build(BudgetFamily f, int width, int[] input, int classes, Generator g)
    {
        var layers = new List<Module>();
        for (int i = 0; i < f.Depth; i++)
        {
            layers.Add(new Conv2d(i == 0 ? input[0] : width, width, f.Kernel, 1, f.Kernel / 2, generator: g));
            layers.Add(new ReLU());
        }
        layers.Add(new MaxPool2d([Pool, Pool]));
        layers.Add(new Flatten());
        layers.Add(new Linear(width * (input[1] / Pool) * (input[2] / Pool), classes, generator: g));
        return new Sequential([.. layers]);
    }

    /// <summary>Parameters (all, and the linear classifier's), MACs per image and the receptive field (input pixels) of the last convolution, from the calculator.</summary>
    public static (long Params, long HeadParams, long Macs, int ReceptiveField) Cost(Module model, int[] input)
    {
        var s = Summary.Of(model, input);
        var lastConv = s.Layers.Last(l => l.Type == nameof(Conv2d));
        return (s.Params, s.Layers.Where(l => l.Type == nameof(Linear)).Sum(l => l.Params), s.Macs, (int)Math.Round(lastConv.ReceptiveField[0]));
    }

    /// <summary>The width whose MACs are nearest <paramref name="budget"/> (MACs grow with width, so a bisection finds the crossing).</summary>
    public static (int Width, long Macs) NearestWidth(BudgetFamily f, long budget, int[] input, int classes)
    {
        long MacsAt(int w) => Cost(Build(f, w, input, classes, new Generator(0)), input).Macs;
        int lo = 1, hi = 1;
        while (MacsAt(hi) < budget && hi < 1 << 16) { lo = hi; hi *= 2; }
        while (hi - lo > 1)
        {
            int mid = (lo + hi) / 2;
            if (MacsAt(mid) < budget) lo = mid; else hi = mid;
        }
        long a = MacsAt(lo), b = MacsAt(hi);
        return Math.Abs(a - budget) <= Math.Abs(b - budget) ? (lo, a) : (hi, b);
    }

    /// <summary>Fits every family's width to the budget; an error naming the option when none lands within the tolerance.</summary>
    public static (List<(BudgetFamily Family, int Width)> Fitted, List<BudgetMiss> Missed) Fit(IReadOnlyList<BudgetFamily> families, long budget, int[] input, int classes)
    {
        var fitted = new List<(BudgetFamily, int)>();
        var missed = new List<BudgetMiss>();
        foreach (var f in families)
        {
            var (w, macs) = NearestWidth(f, budget, input, classes);
            if (Math.Abs(macs - budget) <= Tolerance * budget) fitted.Add((f, w));
            else missed.Add(new(f, w, macs));
        }
        if (fitted.Count == 0)
            throw new ArgumentException($"experiment budget: --set budget_macs={budget.ToString(CultureInfo.InvariantCulture)} fits no model within ±{Tolerance * 100:0} %: " +
                string.Join("; ", missed.Select(m => $"{m.Family.Name} is nearest at width {m.Width.ToString(CultureInfo.InvariantCulture)} with {m.Macs.ToString(CultureInfo.InvariantCulture)} MACs")));
        return (fitted, missed);
    }

    /// <summary>Trains each fitted model with the same data, epochs, optimiser and seed and scores it on the test set.</summary>
    public static List<BudgetModel> Run(IReadOnlyList<(BudgetFamily Family, int Width)> fitted, IDataset train, IDataset test, int[] input, int classes,
        int epochs, double lr, ulong seed, Action<string>? log)
    {
        var result = new List<BudgetModel>();
        foreach (var (f, w) in fitted)
        {
            var model = Build(f, w, input, classes, new Generator(seed + 1));
            var (p, head, macs, rf) = Cost(model, input);
            var sw = Stopwatch.StartNew();
            double acc = ClaimsTraining.Fit(model, train, test, classes, epochs, lr, seed, 64, log: log, what: $"{f.Name} width {w}");
            double seconds = sw.Elapsed.TotalSeconds;
            double trainAcc = Training.Trainer.Evaluate(model, train, classes).Top1;
            log?.Invoke($"{f.Name} width {w}: {p} params, {macs} MACs, receptive field {rf}, test accuracy {acc:P2}");
            result.Add(new(f, w, p, head, macs, rf, acc, trainAcc, seconds));
        }
        return result;
    }
}
