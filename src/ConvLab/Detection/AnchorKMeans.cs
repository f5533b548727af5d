namespace ConvLab.Detection;

/// <summary>Anchor boxes found by <see cref="AnchorKMeans"/>.</summary>
/// <param name="Anchors">(k, 2) widths and heights, sorted by area (ascending).</param>
/// <param name="MeanIou">Mean over the boxes of the best IoU with an anchor (boxes aligned at a common corner).</param>
/// <param name="Iterations">Assignment/update steps run.</param>
public sealed record AnchorClusters(Tensor Anchors, double MeanIou, int Iterations)
{
    /// <summary>Number of anchors.</summary>
    public int K => Anchors.Shape[0];
}

/// <summary>
/// YOLOv2's dimension clusters: k-means over box (width, height) with distance 1 − IoU of boxes aligned at a common
/// corner, exactly as <c>anchor_kmeans</c> in <c>shared/reference-vision/README.md</c>: each step assigns every box to
/// the centre of highest IoU (the first on ties) and moves each centre to the mean of its boxes (a centre with no box
/// stays); it stops when no centre moves or after <c>maxIter</c> steps. Computed in float64.
/// </summary>
public static class AnchorKMeans
{
    /// <summary>
    /// Clusters (K, 2) box sizes into <paramref name="k"/> anchors from <paramref name="init"/> (k, 2), or, when null, from
    /// a seeded k-means++-style draw (first centre uniform, each next one a box drawn with probability ∝ (1 − best IoU)²).
    /// </summary>
    public static AnchorClusters Fit(Tensor wh, int k, Tensor? init = null, int maxIter = 300, ulong seed = 0)
    {
        const string op = "anchor_kmeans";
        var boxes = ReadWh(wh, op, "wh");
        if (k < 1) throw new ArgumentException($"{op}: k must be positive, got {k}");
        if (k > boxes.Length / 2) throw new ArgumentException($"{op}: k = {k} is larger than the number of boxes ({boxes.Length / 2})");
        if (maxIter < 0) throw new ArgumentException($"{op}: max_iter must be non-negative, got {maxIter}");
        double[] centres;
        if (init != null)
        {
            centres = ReadWh(init, op, "init");
            if (centres.Length != 2 * k) throw new ArgumentException($"{op}: init must be ({k}, 2), got shape {ShapeUtil.Format(init.Shape)}");
        }
        else centres = PlusPlus(boxes, k, new Generator(seed));
        var (c, it) = Lloyd(boxes, centres, maxIter);
        return Result(boxes, c, it, wh.DType);
    }

    /// <summary>
    /// Mean IoU against k for k = 1..<paramref name="kMax"/>. Each k is the better of a fresh seeded fit and a warm start from
    /// the k−1 anchors plus the worst-covered box; a warm start whose k-means steps end below its own starting point keeps
    /// the starting anchors. Adding an anchor never lowers any box's best IoU, so the curve does not decrease.
    /// </summary>
    public static IReadOnlyList<AnchorClusters> Curve(Tensor wh, int kMax, ulong seed = 0, int maxIter = 300)
    {
        const string op = "anchor_kmeans";
        var boxes = ReadWh(wh, op, "wh");
        if (kMax < 1 || kMax > boxes.Length / 2)
            throw new ArgumentException($"{op}: k_max must be in [1, {boxes.Length / 2}] (the number of boxes), got {kMax}");
        var result = new List<AnchorClusters>();
        double[]? previous = null;
        for (int k = 1; k <= kMax; k++)
        {
            var (fresh, freshIt) = Lloyd(boxes, PlusPlus(boxes, k, new Generator(seed + (ulong)k)), maxIter);
            double[] best = fresh; int bestIt = freshIt; double bestIou = MeanIou(boxes, fresh);
            if (previous != null)
            {
                var start = new double[2 * k];
                previous.CopyTo(start, 0);
                int worst = WorstCovered(boxes, previous);
                (start[2 * k - 2], start[2 * k - 1]) = (boxes[2 * worst], boxes[2 * worst + 1]);
                var (warm, warmIt) = Lloyd(boxes, start, maxIter);
                double warmIou = MeanIou(boxes, warm), startIou = MeanIou(boxes, start);
                if (startIou > warmIou) (warm, warmIou, warmIt) = (start, startIou, 0);
                if (warmIou > bestIou) (best, bestIou, bestIt) = (warm, warmIou, warmIt);
            }
            result.Add(Result(boxes, best, bestIt, wh.DType));
            previous = best;
        }
        return result;
    }

    /// <summary>Mean over boxes (K, 2) of the best corner-aligned IoU with the anchors (k, 2).</summary>
    public static double MeanIou(Tensor wh, Tensor anchors) =>
        MeanIou(ReadWh(wh, "anchor_mean_iou", "wh"), ReadWh(anchors, "anchor_mean_iou", "anchors"));

    private static double Iou(double w1, double h1, double w2, double h2)
    {
        double inter = Math.Min(w1, w2) * Math.Min(h1, h2);
        return inter / (w1 * h1 + w2 * h2 - inter);
    }

    private static int Nearest(double[] boxes, int i, double[] centres, out double bestIou)
    {
        int best = 0; bestIou = double.NegativeInfinity;
        for (int c = 0; c < centres.Length / 2; c++)
        {
            double iou = Iou(boxes[2 * i], boxes[2 * i + 1], centres[2 * c], centres[2 * c + 1]);
            if (iou > bestIou) { bestIou = iou; best = c; }
        }
        return best;
    }

    private static double MeanIou(double[] boxes, double[] centres)
    {
        double sum = 0;
        for (int i = 0; i < boxes.Length / 2; i++) { Nearest(boxes, i, centres, out double iou); sum += iou; }
        return sum / (boxes.Length / 2);
    }

    private static int WorstCovered(double[] boxes, double[] centres)
    {
        int worst = 0; double worstIou = double.PositiveInfinity;
        for (int i = 0; i < boxes.Length / 2; i++)
        {
            Nearest(boxes, i, centres, out double iou);
            if (iou < worstIou) { worstIou = iou; worst = i; }
        }
        return worst;
    }

    private static (double[] Centres, int Iterations) Lloyd(double[] boxes, double[] init, int maxIter)
    {
        var centres = (double[])init.Clone();
        int k = centres.Length / 2, n = boxes.Length / 2, it = 0;
        var sum = new double[2 * k]; var count = new int[k];
        while (it < maxIter)
        {
            it++;
            Array.Clear(sum); Array.Clear(count);
            for (int i = 0; i < n; i++)
            {
                int c = Nearest(boxes, i, centres, out _);
                sum[2 * c] += boxes[2 * i]; sum[2 * c + 1] += boxes[2 * i + 1]; count[c]++;
            }
            bool moved = false;
            for (int c = 0; c < k; c++)
            {
                if (count[c] == 0) continue;
                double w = sum[2 * c] / count[c], h = sum[2 * c + 1] / count[c];
                if (w != centres[2 * c] || h != centres[2 * c + 1]) moved = true;
                centres[2 * c] = w; centres[2 * c + 1] = h;
            }
            if (!moved) break;
        }
        return (centres, it);
    }

    private static double[] PlusPlus(double[] boxes, int k, Generator g)
    {
        int n = boxes.Length / 2;
        var chosen = new List<int> { g.NextInt(n) };
        var d2 = new double[n];
        while (chosen.Count < k)
        {
            double total = 0;
            var cs = chosen.SelectMany(i => new[] { boxes[2 * i], boxes[2 * i + 1] }).ToArray();
            for (int i = 0; i < n; i++)
            {
                Nearest(boxes, i, cs, out double iou);
                d2[i] = (1 - iou) * (1 - iou);
                total += d2[i];
            }
            int pick = -1;
            if (total > 0)
            {
                double u = g.NextDouble() * total, acc = 0;
                for (int i = 0; i < n && pick < 0; i++) { acc += d2[i]; if (d2[i] > 0 && u < acc) pick = i; }
                // Rounding can leave u at the very end of the range: take the last box with a positive distance.
                if (pick < 0) for (int i = n - 1; i >= 0 && pick < 0; i--) if (d2[i] > 0) pick = i;
            }
            // Fewer distinct sizes than k: take the first box not chosen yet (it duplicates a centre).
            if (pick < 0) pick = Enumerable.Range(0, n).First(i => !chosen.Contains(i));
            chosen.Add(pick);
        }
        return chosen.SelectMany(i => new[] { boxes[2 * i], boxes[2 * i + 1] }).ToArray();
    }

    private static AnchorClusters Result(double[] boxes, double[] centres, int iterations, DType dtype)
    {
        int k = centres.Length / 2;
        var order = Enumerable.Range(0, k).OrderBy(c => centres[2 * c] * centres[2 * c + 1]).ToArray();
        var sorted = order.SelectMany(c => new[] { centres[2 * c], centres[2 * c + 1] }).ToArray();
        return new AnchorClusters(Tensor.FromArray(sorted, k, 2).To(dtype), MeanIou(boxes, centres), iterations);
    }

    private static double[] ReadWh(Tensor t, string op, string name)
    {
        t.RequireFloat(op);
        if (t.Rank != 2 || t.Shape[1] != 2 || t.Shape[0] < 1)
            throw new ArgumentException($"{op}: {name} must be (K, 2) widths and heights with K >= 1, got shape {ShapeUtil.Format(t.Shape)}");
        var v = t.ToDoubleArray();
        for (int i = 0; i < v.Length / 2; i++)
            if (!(v[2 * i] > 0 && v[2 * i + 1] > 0) || double.IsInfinity(v[2 * i]) || double.IsInfinity(v[2 * i + 1]))
                throw new ArgumentException($"{op}: {name}[{i}] = [{v[2 * i]}, {v[2 * i + 1]}] must be a positive, finite width and height");
        return v;
    }
}
