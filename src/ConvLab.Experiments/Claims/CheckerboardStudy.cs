using ConvLab.Autograd;
using ConvLab.Data;
using ConvLab.NN;
using ConvLab.NN.Functional;
using ConvLab.Training;

namespace ConvLab.Experiments.Claims;

/// <summary>One upsampler: its overlap-count map, interior range, and the output spread on a constant input before and after training.</summary>
internal sealed record UpsamplerRow(string Name, float[] Overlap, int Side, double OverlapMin, double OverlapMax, double InitVariance, double TrainedVariance,
    double TestMse, float[] InitOutput, float[] TrainedOutput);

/// <summary>
/// Checkerboard artifacts (Odena et al. 2016): a transposed convolution whose kernel is not a multiple of its stride
/// (3x3/2) overlaps unevenly, 4x4/2 evenly, nearest resize + 3x3 convolution always; the uneven overlap shows as a
/// period-2 pattern on a constant input.
/// </summary>
internal static class CheckerboardStudy
{
    public const int In = 8, Out = 16;
    public static readonly string[] Names = ["deconv 3x3/2", "deconv 4x4/2", "resize + conv 3x3"];

    private static Module Upsampler(string name, int c, Generator? g) => name switch
    {
        "deconv 3x3/2" => new ConvTranspose2d(c, c, [3, 3], [2, 2], [1, 1], [1, 1], generator: g),
        "deconv 4x4/2" => new ConvTranspose2d(c, c, [4, 4], [2, 2], [1, 1], generator: g),
        _ => new Sequential(new Upsample(scaleFactor: [2, 2], mode: "nearest"), new Conv2d(c, c, 3, padding: 1, generator: g)),
    };

    /// <summary>A small ×2 super-resolution net around the upsampler: conv → ReLU → upsampler → ReLU → conv.</summary>
    private static Sequential Net(string name, int c, Generator g) =>
        new(new Conv2d(1, c, 3, padding: 1, generator: g), new ReLU(), Upsampler(name, c, g), new ReLU(), new Conv2d(c, 1, 3, padding: 1, generator: g));

    public static List<UpsamplerRow> Run(int channels, int samples, int epochs, ulong seed, Action<string>? log)
    {
        var data = SmoothImages(samples, new Generator(seed));
        var test = SmoothImages(Math.Max(16, samples / 4), new Generator(seed + 7));
        var rows = new List<UpsamplerRow>();
        foreach (var name in Names)
        {
            var overlap = Overlap(name);
            var (lo, hi) = InteriorRange(overlap, Out);
            var g = new Generator(seed + 1);
            var net = Net(name, channels, g);
            var (initVar, initOut) = ConstantResponse(net);
            var trainer = new Trainer(net, new Adam(net.Parameters(), 3e-3), null, new RegressionObjective(data, test, 16, seed), new TrainerOptions { Epochs = epochs, BatchSize = 16, Seed = seed });
            trainer.Fit();
            var last = trainer.History[^1];
            log?.Invoke($"checkerboard {name}: {epochs} epochs, train MSE {last.TrainLoss:G3}, test MSE {last.TestLoss:G3}");
            var (trainedVar, trainedOut) = ConstantResponse(net);
            rows.Add(new(name, overlap, Out, lo, hi, initVar, trainedVar, last.TestLoss, initOut, trainedOut));
        }
        return rows;
    }

    /// <summary>How many kernel taps write each output pixel: the upsampler with all-ones weights, no bias, on a ones input.</summary>
    private static float[] Overlap(string name)
    {
        using var _ = new NoGrad();
        var up = Upsampler(name, 1, null);
        foreach (var (pname, p) in up.NamedParameters())
            p.Copy_(pname.EndsWith("bias", StringComparison.Ordinal) ? p.ZerosLike() : p.OnesLike());
        return up.Call(Tensor.Ones(1, 1, In, In)).ToArray();
    }

    private static (double Min, double Max) InteriorRange(float[] map, int side)
    {
        double lo = double.MaxValue, hi = double.MinValue;
        for (int i = 1; i < side - 1; i++)
            for (int j = 1; j < side - 1; j++) { lo = Math.Min(lo, map[i * side + j]); hi = Math.Max(hi, map[i * side + j]); }
        return (lo, hi);
    }

    /// <summary>Variance over interior pixels of the net's output on a constant 0.5 input, relative to its mean square, and the output.</summary>
    private static (double Variance, float[] Output) ConstantResponse(Module net)
    {
        bool training = net.Training;
        net.Eval();
        Tensor y;
        using (new NoGrad()) y = net.Call(Tensor.Full([1, 1, In, In], 0.5));
        net.Train(training);
        var a = y.ToArray();
        var inner = new List<double>();
        for (int i = 2; i < Out - 2; i++)
            for (int j = 2; j < Out - 2; j++) inner.Add(a[i * Out + j]);
        double mean = inner.Average(), sq = inner.Average(v => v * v);
        double variance = inner.Average(v => (v - mean) * (v - mean));
        return (sq == 0 ? 0 : variance / sq, a);
    }

    /// <summary>Smooth 16x16 targets (sums of three Gaussian blobs) with their 2x2-averaged 8x8 inputs.</summary>
    private static FuncRegressionDataset SmoothImages(int count, Generator g)
    {
        var targets = new List<Tensor>();
        for (int n = 0; n < count; n++)
        {
            var img = new float[Out * Out];
            for (int b = 0; b < 3; b++)
            {
                double cy = g.NextDouble() * Out, cx = g.NextDouble() * Out, s = 1.5 + 3 * g.NextDouble(), amp = 0.3 + 0.7 * g.NextDouble();
                for (int i = 0; i < Out; i++)
                    for (int j = 0; j < Out; j++)
                        img[i * Out + j] += (float)(amp * Math.Exp(-((i - cy) * (i - cy) + (j - cx) * (j - cx)) / (2 * s * s)));
            }
            targets.Add(Tensor.FromArray(img, 1, Out, Out));
        }
        var inputs = targets.Select(t => F.AvgPool2d(t.Unsqueeze(0), [2, 2]).Squeeze(0)).ToList();
        return new FuncRegressionDataset(count, i => (inputs[i], targets[i]));
    }
}
