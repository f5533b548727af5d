using ConvLab.Analysis;
using ConvLab.Autograd;
using ConvLab.Data;
using ConvLab.Models;
using ConvLab.NN;
using ConvLab.NN.Functional;

namespace ConvLab.Experiments.Claims;

/// <summary>Sliding windows vs one fully convolutional pass over one canvas.</summary>
internal sealed record FcnTiming(int Canvas, int Window, int Stride, int Windows, int MapSide, double SlidingSeconds, double FcnSeconds,
    long SlidingAllocatedBytes, long FcnAllocatedBytes, long SlidingActivationBytes, long FcnActivationBytes, double ArgmaxAgreement)
{
    public double Speedup => SlidingSeconds / FcnSeconds;
}

/// <summary>An item pasted on the canvas at (Row, Col) and what the dense map says at its cell.</summary>
internal sealed record FcnItem(long Label, int Row, int Col, long Predicted, double Probability);

internal sealed record FcnResult(double TestAccuracy, int TestCount, double LogitsMaxRelativeError, IReadOnlyList<string> Replaced,
    float[] Canvas, int CanvasSide, float[] ClassMap, List<float[]> ScoreMaps, int MapSide, List<FcnItem> Items, List<FcnTiming> Timings);

/// <summary>
/// A trained classifier turned fully convolutional (<see cref="Fusion.Convolutionalize"/>): the same logits at the
/// training size, a dense class-score map on a larger canvas, and one pass instead of one forward per window.
/// </summary>
internal static class FcnStudy
{
    public const int Window = 28, Stride = 4; // simple_cnn's input and the product of its pooling strides

    public static FcnResult Run(SimpleCnn model, IDataset test, int canvasSide, int[] timingSides, int reps, Generator g)
    {
        model.Eval();
        int testCount = test.Count;
        var metrics = Training.Trainer.Evaluate(model, test, 10);
        var fcn = new SimpleCnn();
        fcn.LoadStateDict(model.StateDict());
        fcn.Eval();
        var replaced = Fusion.Convolutionalize(fcn, [1, Window, Window]).Select(r => $"{r.Path} → {r.Replacement}").ToList();

        // Same logits at the training size, on real test images.
        var batch = Tensor.Stack([.. Enumerable.Range(0, Math.Min(64, testCount)).Select(i => test.Get(i).Input)]);
        double logitsError;
        using (new NoGrad())
            logitsError = MaxRelative(fcn.Call(batch).Flatten(1).ToArray(), model.Call(batch).ToArray());

        // A canvas holding items of different classes, on the map's stride grid.
        var items = PickItems(test, 4);
        int[][] corners = [[4, 8], [4, canvasSide - Window - 4], [canvasSide - Window - 8, 4], [canvasSide - Window - 4, canvasSide - Window - 8]];
        var canvas = Compose(canvasSide, items.Select((it, i) => (it.Image, corners[i][0], corners[i][1])));
        Tensor map;
        using (new NoGrad()) map = F.Softmax(fcn.Call(Tensor.FromArray(canvas, 1, 1, canvasSide, canvasSide)), 1).Contiguous();
        int side = map.Size(2);
        var probs = map.ToArray();
        var classMap = new float[side * side];
        for (int p = 0; p < side * side; p++)
        {
            int best = 0;
            for (int c = 1; c < 10; c++) if (probs[c * side * side + p] > probs[best * side * side + p]) best = c;
            classMap[p] = best;
        }
        var placed = new List<FcnItem>();
        var scoreMaps = new List<float[]>();
        for (int i = 0; i < items.Count; i++)
        {
            int cell = corners[i][0] / Stride * side + corners[i][1] / Stride;
            placed.Add(new(items[i].Label, corners[i][0], corners[i][1], (long)classMap[cell], probs[items[i].Label * side * side + cell]));
            scoreMaps.Add(probs.AsSpan((int)items[i].Label * side * side, side * side).ToArray());
        }

        var timings = timingSides.Select(s => Time(model, fcn, test, s, reps, g)).ToList();
        return new(metrics.Top1, testCount, logitsError, replaced, canvas, canvasSide, classMap, scoreMaps, side, placed, timings);
    }

    private static List<(Tensor Image, long Label)> PickItems(IDataset test, int count)
    {
        var picked = new List<(Tensor, long)>();
        var seen = new HashSet<long>();
        for (int i = 0; i < test.Count && picked.Count < count; i++)
        {
            var (x, y) = test.Get(i);
            if (seen.Add(y)) picked.Add((x, y));
        }
        return picked;
    }

    /// <summary>A black square canvas with the images pasted at their corners (overlaps keep the brighter pixel).</summary>
    private static float[] Compose(int side, IEnumerable<(Tensor Image, int Row, int Col)> items)
    {
        var canvas = new float[side * side];
        foreach (var (image, row, col) in items)
        {
            var px = image.Contiguous().ToArray();
            for (int i = 0; i < Window; i++)
                for (int j = 0; j < Window; j++)
                {
                    ref float dst = ref canvas[(row + i) * side + col + j];
                    dst = Math.Max(dst, px[i * Window + j]);
                }
        }
        return canvas;
    }

    /// <summary>Test images tiled every 32 pixels over an s x s canvas; every window of it classified one by one (batched) and in one pass.</summary>
    private static FcnTiming Time(SimpleCnn model, SimpleCnn fcn, IDataset test, int s, int reps, Generator g)
    {
        var tiles = new List<(Tensor, int, int)>();
        for (int r = 0; r + Window <= s; r += 32)
            for (int c = 0; c + Window <= s; c += 32)
                tiles.Add((test.Get(g.NextInt(test.Count)).Input, r, c));
        var canvas = Tensor.FromArray(Compose(s, tiles), 1, 1, s, s);
        int perSide = (s - Window) / Stride + 1, windows = perSide * perSide;

        float[] sliding = [];
        void Slide()
        {
            using var _ = new NoGrad();
            var outputs = new List<float[]>();
            for (int start = 0; start < windows; start += 256)
            {
                var crops = Enumerable.Range(start, Math.Min(256, windows - start))
                    .Select(w => canvas.Narrow(2, w / perSide * Stride, Window).Narrow(3, w % perSide * Stride, Window).Reshape(1, Window, Window)).ToList();
                outputs.Add(model.Call(Tensor.Stack(crops)).ToArray());
            }
            sliding = [.. outputs.SelectMany(o => o)];
        }
        float[] dense = [];
        void Dense()
        {
            using var _ = new NoGrad();
            dense = fcn.Call(canvas).ToArray();
        }
        double slideSeconds = ClaimsTraining.MedianSeconds(Slide, reps);
        double denseSeconds = ClaimsTraining.MedianSeconds(Dense, reps);
        long slideBytes = Allocated(Slide), denseBytes = Allocated(Dense);

        int agree = 0;
        for (int w = 0; w < windows; w++)
        {
            int a = 0, b = 0;
            for (int c = 1; c < 10; c++)
            {
                if (sliding[w * 10 + c] > sliding[w * 10 + a]) a = c;
                if (dense[c * windows + w] > dense[b * windows + w]) b = c;
            }
            if (a == b) agree++;
        }
        long slideActivations = Summary.Of(model, [1, Window, Window]).ActivationBytes * windows;
        long denseActivations = Summary.Of(fcn, [1, s, s]).ActivationBytes;
        return new(s, Window, Stride, windows, perSide, slideSeconds, denseSeconds, slideBytes, denseBytes, slideActivations, denseActivations, (double)agree / windows);
    }

    private static long Allocated(Action action)
    {
        long before = GC.GetTotalAllocatedBytes(true);
        action();
        return GC.GetTotalAllocatedBytes(true) - before;
    }

    private static double MaxRelative(float[] a, float[] b)
    {
        double scale = b.Max(v => Math.Abs((double)v)), d = 0;
        for (int i = 0; i < a.Length; i++) d = Math.Max(d, Math.Abs((double)a[i] - b[i]));
        return d / scale;
    }
}
