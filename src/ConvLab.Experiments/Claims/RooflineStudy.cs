using System.Diagnostics;
using System.Numerics.Tensors;
using ConvLab.Analysis;
using ConvLab.Autograd;
using ConvLab.NN;

namespace ConvLab.Experiments.Claims;

/// <summary>One layer on the roofline: calculator FLOPs and bytes, measured time and throughput, and which roof bounds it.</summary>
internal sealed record RooflineLayer(string Layer, string Kind, long Flops, long Bytes, double Seconds, double MeasuredGflops, double RoofGflops, string Bound)
{
    public double Intensity => (double)Flops / Bytes;
}

internal sealed record RooflineResult(double PeakGflops, double BandwidthGBs, string Isa, int Threads, int Batch, int[] Input, List<RooflineLayer> Layers)
{
    public double Ridge => PeakGflops / BandwidthGBs;
}

/// <summary>
/// The roofline of this machine (measured FMA peak and triad bandwidth) and, per layer of a small network mixing the
/// exam's layer types (3x3, depthwise 3x3, 1x1 convolution, ReLU, pooling, a fully connected layer), its arithmetic
/// intensity from the calculator and its measured GFLOP/s from a timed forward.
/// </summary>
internal static class RooflineStudy
{
    public static Sequential Network(int channels, Generator g) => new(
        new Conv2d(channels, 2 * channels, 3, padding: 1, generator: g), new ReLU(),
        new Conv2d(2 * channels, 2 * channels, 3, padding: 1, groups: 2 * channels, generator: g), new ReLU(),
        new Conv2d(2 * channels, 4 * channels, 1, generator: g), new ReLU(), new MaxPool2d(2),
        new Conv2d(4 * channels, 4 * channels, 3, padding: 1, generator: g), new ReLU(),
        new AdaptiveAvgPool2d(1, 1), new Flatten(), new Linear(4 * channels, 1000, generator: g));

    public static RooflineResult Run(int channels, int size, int batch, int triadElements, int reps, Generator g)
    {
        int threads = Threads.Count;
        double peak = FmaPeak.Measure(threads);
        double bandwidth = Triad(triadElements, threads, reps);
        var model = Network(channels, g);
        model.Eval();
        int[] input = [channels, size, size];
        var summary = Summary.Of(model, input, batch);
        var x = Tensor.Randn([batch, .. input], g);
        var layers = new List<RooflineLayer>();
        long inputElements = (long)batch * channels * size * size;
        for (int i = 0; i < model.Count; i++)
        {
            var row = summary.Layers[i];
            var layer = model[i];
            long outElements = (long)batch * row.OutputShape.Aggregate(1L, (a, b) => a * b);
            long bytes = 4 * (inputElements + outElements + row.Params);
            long flops = row.Flops * batch;
            var current = x;
            Tensor y = x;
            double seconds = ClaimsTraining.MedianSeconds(() => { using var _ = new NoGrad(); y = layer.Call(current); }, reps);
            x = y;
            inputElements = outElements;
            if (flops == 0) continue; // views (flatten) move nothing
            double intensity = (double)flops / bytes;
            double roof = Math.Min(peak, bandwidth * intensity);
            layers.Add(new($"{i}", Kind(layer), flops, bytes, seconds, flops / seconds / 1e9, roof, intensity < peak / bandwidth ? "memory" : "compute"));
        }
        return new(peak, bandwidth, FmaPeak.Isa, threads, batch, input, layers);
    }

    private static string Kind(Module m) => m switch
    {
        Conv2d c when c.Groups > 1 && c.Groups == c.InChannels => $"depthwise {c.KernelSize[0]}x{c.KernelSize[1]}",
        Conv2d c => $"conv {c.KernelSize[0]}x{c.KernelSize[1]}",
        Linear => "fully connected",
        _ => m.GetType().Name,
    };

    /// <summary>STREAM's triad a = b + s·c over three float arrays, split over the threads; best of the runs, 12 bytes per element.</summary>
    public static double Triad(int n, int threads, int runs)
    {
        var a = new float[n];
        var b = new float[n];
        var c = new float[n];
        Array.Fill(b, 1f);
        Array.Fill(c, 2f);
        int chunk = (n + threads - 1) / threads;
        void Once() => Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            int start = t * chunk, len = Math.Min(chunk, n - start);
            if (len > 0) TensorPrimitives.MultiplyAdd(c.AsSpan(start, len), 3f, b.AsSpan(start, len), a.AsSpan(start, len));
        });
        Once();
        double best = double.MaxValue;
        for (int r = 0; r < Math.Max(3, runs); r++)
        {
            var sw = Stopwatch.StartNew();
            Once();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        if (a[n / 2] != 7f) throw new InvalidOperationException("roofline: the triad loop computed a wrong value");
        return 12.0 * n / best / 1e9;
    }
}
