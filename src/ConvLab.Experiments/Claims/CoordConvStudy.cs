using ConvLab.Data;
using ConvLab.NN;
using ConvLab.Stats;

namespace ConvLab.Experiments.Claims;

/// <summary>One model's test figures: parameters, exact accuracy, mean absolute coordinate error, accuracy within k pixels, normalised error.</summary>
internal sealed record ModelScore(string Model, long Params, double TrainAccuracy, double TestAccuracy, double Mae, double Within1, double Within2, double NormalisedError, double[] Errors);

/// <summary>A task × split comparison: both models on the same test images, the paired t-test on their per-example errors.</summary>
internal sealed record CoordComparison(string Task, string Split, List<(int X, int Y)> TestCentres, int TrainCount, ModelScore Conv, ModelScore CoordConv, TTestResult Test)
{
    public bool SignificantBonferroni { get; set; }
    public bool SignificantBh { get; set; }
    public double AlphaBonferroni { get; set; }
}

/// <summary>
/// CoordConv vs plain convolution on Not-so-Clevr: supervised coordinate classification ((x, y) → the one-hot centre
/// pixel over 64x64) with the paper's deconvolution-style baseline and a CoordConv net of 1x1 convolutions on tiled
/// coordinates; both trained by the library's Trainer with the same optimiser budget.
/// </summary>
internal static class CoordConvStudy
{
    /// <summary>Copies a (N, C, 1, 1) input over an s x s plane, as the paper tiles the coordinates before CoordConv.</summary>
    internal sealed class Tile(int size) : Module
    {
        public override Tensor Forward(Tensor input) => input.Expand(input.Size(0), input.Size(1), size, size).Contiguous();
    }

    /// <summary>(x, y) as 2x1x1 → transposed convolutions 1 → 4 → 8 → 16 → 32 → 64 → a 1x1 conv to one logit per pixel.</summary>
    public static Module Deconv(int c, Generator g) => new Sequential(
        new ConvTranspose2d(2, c, [4, 4], generator: g), new ReLU(),
        new ConvTranspose2d(c, c, [4, 4], [2, 2], [1, 1], generator: g), new ReLU(),
        new ConvTranspose2d(c, c, [4, 4], [2, 2], [1, 1], generator: g), new ReLU(),
        new ConvTranspose2d(c, c, [4, 4], [2, 2], [1, 1], generator: g), new ReLU(),
        new ConvTranspose2d(c, c, [4, 4], [2, 2], [1, 1], generator: g), new ReLU(),
        new Conv2d(c, 1, 1, generator: g), new Flatten());

    /// <summary>(x, y) tiled over 64x64 → CoordConv 1x1 (adds the i, j channels) → 1x1 convolutions → one logit per pixel.</summary>
    public static Module CoordConvNet(int c, bool withR, Generator g) => new Sequential(
        new Tile(NotSoClevr.Canvas), new CoordConv2d(2, c, 1, withR: withR, generator: g), new ReLU(),
        new Conv2d(c, c, 1, generator: g), new ReLU(),
        new Conv2d(c, c, 1, generator: g), new ReLU(),
        new Conv2d(c, 1, 1, generator: g), new Flatten());

    public static List<CoordComparison> Run(IReadOnlyList<string> splits, int width, int epochs, double lr, bool withR, double alpha, int? trainLimit, ulong seed, Action<string>? log)
    {
        var result = new List<CoordComparison>();
        foreach (var split in splits)
        {
            var (trainC, testC) = NotSoClevr.Split(split, new Generator(seed));
            if (trainLimit is int limit && limit < trainC.Count)
            {
                int every = (trainC.Count + limit - 1) / limit; // spread over the split, not its first rows
                trainC = [.. trainC.Where((_, i) => i % every == 0)];
            }
            var train = new NotSoClevr.Coordinates(trainC);
            var test = new NotSoClevr.Coordinates(testC);
            var g = new Generator(seed + 1);
            var conv = Score("deconv", Deconv(width, g), train, test, testC, epochs, lr, seed, log);
            var coord = Score("coordconv", CoordConvNet(width, withR, g), train, test, testC, epochs, lr, seed, log);
            result.Add(new("classification", split, testC, trainC.Count, conv, coord, TTest.Paired(conv.Errors, coord.Errors)));
        }
        var p = result.Select(c => c.Test.PValue).ToList();
        var bonferroni = MultipleTesting.Bonferroni(p, alpha);
        var bh = MultipleTesting.BenjaminiHochberg(p, alpha);
        for (int i = 0; i < result.Count; i++)
        {
            result[i].SignificantBonferroni = bonferroni[i];
            result[i].SignificantBh = bh[i];
            result[i].AlphaBonferroni = MultipleTesting.BonferroniAlpha(result.Count, alpha);
        }
        return result;
    }

    private static ModelScore Score(string name, Module model, IDataset train, IDataset test, List<(int X, int Y)> testCentres, int epochs, double lr, ulong seed, Action<string>? log)
    {
        ClaimsTraining.Fit(model, train, null, NotSoClevr.Canvas * NotSoClevr.Canvas, epochs, lr, seed, 32, log: log, what: name);
        double trainAccuracy = Training.Trainer.Evaluate(model, train, NotSoClevr.Canvas * NotSoClevr.Canvas).Top1;
        var outputs = ClaimsTraining.Outputs(model, test);
        var errors = new double[outputs.Length];
        int exact = 0, w1 = 0, w2 = 0;
        double abs = 0;
        for (int i = 0; i < outputs.Length; i++)
        {
            int best = 0;
            var o = outputs[i];
            for (int k = 1; k < o.Length; k++) if (o[k] > o[best]) best = k;
            int dx = best % NotSoClevr.Canvas - testCentres[i].X, dy = best / NotSoClevr.Canvas - testCentres[i].Y;
            errors[i] = Math.Sqrt(dx * dx + dy * dy);
            int cheb = Math.Max(Math.Abs(dx), Math.Abs(dy));
            if (cheb == 0) exact++;
            if (cheb <= 1) w1++;
            if (cheb <= 2) w2++;
            abs += (Math.Abs(dx) + Math.Abs(dy)) / 2.0;
        }
        int n = outputs.Length;
        return new(name, model.ParameterCount(), trainAccuracy, (double)exact / n, abs / n, (double)w1 / n, (double)w2 / n, errors.Average() / NotSoClevr.Canvas, errors);
    }
}
