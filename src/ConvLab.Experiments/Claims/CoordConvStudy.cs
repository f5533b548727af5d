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
/// CoordConv vs plain convolution on Not-so-Clevr, both of Liu et al.'s supervised tasks. Classification ((x, y) → the
/// one-hot centre pixel over 64x64): the paper's deconvolution-style baseline vs a CoordConv net of 1x1 convolutions on
/// tiled coordinates. Regression (the rendered image → (x, y)): a strided-conv regressor (stride-2 3x3 convolutions and a
/// fully connected head) vs a CoordConv regressor (AddCoords, 1x1 convolutions, global max pooling, a linear head).
/// Within a task both models get the same optimiser budget (Adam, rate, batch, epochs) through the library's Trainer.
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

    /// <summary>The 1x64x64 image → four 3x3 stride-2 convolutions (64 → 4) → a fully connected layer to (x, y).</summary>
    public static Module StridedRegressor(int c, Generator g) => new Sequential(
        new Conv2d(1, c, 3, 2, 1, generator: g), new ReLU(),
        new Conv2d(c, c, 3, 2, 1, generator: g), new ReLU(),
        new Conv2d(c, c, 3, 2, 1, generator: g), new ReLU(),
        new Conv2d(c, c, 3, 2, 1, generator: g), new ReLU(),
        new Flatten(), new Linear(c * 16, 2, generator: g));

    /// <summary>
    /// The 1x64x64 image → CoordConv 1x1 → 1x1 convolution → global max pooling → a linear layer to (x, y). A unit such
    /// as ReLU(i + 1 − 3·(1 − image)) is i + 1 on the square and 0 elsewhere, so its maximum is the square's right edge:
    /// the answer is reachable by a function linear in the coordinates, with nothing learned per position.
    /// </summary>
    public static Module CoordConvRegressor(int c, bool withR, Generator g) => new Sequential(
        new CoordConv2d(1, c, 1, withR: withR, generator: g), new ReLU(),
        new Conv2d(c, c, 1, generator: g), new ReLU(),
        new AdaptiveMaxPool2d([1, 1]), new Flatten(), new Linear(c, 2, generator: g));

    /// <summary>The comparisons of every task × split asked for, corrected for their number (Bonferroni and BH).</summary>
    public static List<CoordComparison> Run(IReadOnlyList<string> tasks, IReadOnlyList<string> splits, CoordConvSettings s, ulong seed, Action<string>? log)
    {
        var result = new List<CoordComparison>();
        foreach (var task in tasks)
            foreach (var split in splits)
            {
                var (trainC, testC) = NotSoClevr.Split(split, new Generator(seed));
                if (s.TrainLimit is int limit && limit < trainC.Count)
                {
                    int every = (trainC.Count + limit - 1) / limit; // spread over the split, not its first rows
                    trainC = [.. trainC.Where((_, i) => i % every == 0)];
                }
                var g = new Generator(seed + 1);
                ModelScore conv, coord;
                if (task == "classification")
                {
                    var train = new NotSoClevr.Coordinates(trainC);
                    var test = new NotSoClevr.Coordinates(testC);
                    conv = Classify("deconv", Deconv(s.Width, g), train, test, trainC, testC, s.Epochs, s.Lr, seed, log);
                    coord = Classify("coordconv", CoordConvNet(s.Width, s.WithR, g), train, test, trainC, testC, s.Epochs, s.Lr, seed, log);
                }
                else
                {
                    var train = new NotSoClevr.Images(trainC);
                    var test = new NotSoClevr.Images(testC);
                    conv = Regress("strided conv", StridedRegressor(s.Width, g), train, test, trainC, testC, s.RegressionEpochs, s.RegressionLr, seed, log);
                    coord = Regress("coordconv", CoordConvRegressor(s.Width, s.WithR, g), train, test, trainC, testC, s.RegressionEpochs, s.RegressionLr, seed, log);
                }
                log?.Invoke($"{task} / {split}: {conv.Model} MAE {conv.Mae:F3} px, coordconv MAE {coord.Mae:F3} px");
                result.Add(new(task, split, testC, trainC.Count, conv, coord, TTest.Paired(conv.Errors, coord.Errors)));
            }
        var p = result.Select(c => c.Test.PValue).ToList();
        var bonferroni = MultipleTesting.Bonferroni(p, s.Alpha);
        var bh = MultipleTesting.BenjaminiHochberg(p, s.Alpha);
        for (int i = 0; i < result.Count; i++)
        {
            result[i].SignificantBonferroni = bonferroni[i];
            result[i].SignificantBh = bh[i];
            result[i].AlphaBonferroni = MultipleTesting.BonferroniAlpha(result.Count, s.Alpha);
        }
        return result;
    }

    private static ModelScore Classify(string name, Module model, IDataset train, IDataset test, List<(int X, int Y)> trainCentres, List<(int X, int Y)> testCentres,
        int epochs, double lr, ulong seed, Action<string>? log)
    {
        ClaimsTraining.Fit(model, train, null, NotSoClevr.Canvas * NotSoClevr.Canvas, epochs, lr, seed, 32, log: log, what: name);
        (double, double) ArgmaxPixel(float[] o)
        {
            int best = 0;
            for (int k = 1; k < o.Length; k++) if (o[k] > o[best]) best = k;
            return (best % NotSoClevr.Canvas, best / NotSoClevr.Canvas);
        }
        return Score(name, model, ClaimsTraining.Outputs(model, train).Select(ArgmaxPixel).ToList(), trainCentres,
            ClaimsTraining.Outputs(model, test).Select(ArgmaxPixel).ToList(), testCentres);
    }

    private static ModelScore Regress(string name, Module model, NotSoClevr.Images train, NotSoClevr.Images test, List<(int X, int Y)> trainCentres, List<(int X, int Y)> testCentres,
        int epochs, double lr, ulong seed, Action<string>? log)
    {
        ClaimsTraining.FitRegression(model, train, epochs, lr, seed, 32, log, name);
        static (double, double) InPixels(float[] o) => (NotSoClevr.Pixels(o[0]), NotSoClevr.Pixels(o[1]));
        return Score(name, model, ClaimsTraining.Outputs(model, train).Select(InPixels).ToList(), trainCentres,
            ClaimsTraining.Outputs(model, test).Select(InPixels).ToList(), testCentres);
    }

    /// <summary>
    /// Scores predicted centres (pixels; a regressor's are continuous): the error of an example is its Euclidean distance,
    /// MAE the mean per-coordinate absolute error; accuracy and "within k" round the prediction to a pixel first
    /// (exact = the centre pixel, within k = Chebyshev distance ≤ k), so both tasks are scored on the same scale.
    /// </summary>
    private static ModelScore Score(string name, Module model, List<(double X, double Y)> trainPred, List<(int X, int Y)> trainCentres,
        List<(double X, double Y)> testPred, List<(int X, int Y)> testCentres)
    {
        static double Cheb((double X, double Y) p, (int X, int Y) c) => Math.Max(Math.Abs(Math.Round(p.X) - c.X), Math.Abs(Math.Round(p.Y) - c.Y));
        double trainAccuracy = (double)trainPred.Where((p, i) => Cheb(p, trainCentres[i]) == 0).Count() / trainPred.Count;
        int n = testPred.Count;
        var errors = new double[n];
        int exact = 0, w1 = 0, w2 = 0;
        double abs = 0;
        for (int i = 0; i < n; i++)
        {
            double dx = testPred[i].X - testCentres[i].X, dy = testPred[i].Y - testCentres[i].Y;
            errors[i] = Math.Sqrt(dx * dx + dy * dy);
            double cheb = Cheb(testPred[i], testCentres[i]);
            if (cheb == 0) exact++;
            if (cheb <= 1) w1++;
            if (cheb <= 2) w2++;
            abs += (Math.Abs(dx) + Math.Abs(dy)) / 2.0;
        }
        return new(name, model.ParameterCount(), trainAccuracy, (double)exact / n, abs / n, (double)w1 / n, (double)w2 / n, errors.Average() / NotSoClevr.Canvas, errors);
    }
}

/// <summary>The coordconv experiment's settings: widths, optimiser budgets per task, α, the quick setting's training subset.</summary>
internal sealed record CoordConvSettings(int Width, int Epochs, double Lr, int RegressionEpochs, double RegressionLr, bool WithR, double Alpha, int? TrainLimit);
