namespace ConvLab.Detection;

/// <summary>
/// A synthetic detection dataset generated reproducibly from a seed: each RGB image has a noisy, randomly tinted background
/// and 1 to <see cref="MaxObjects"/> filled shapes (circle, square, triangle, cross) of random size, colour and position,
/// placed so that two boxes overlap by at most IoU 0.2. Sample i depends only on (seed, i), so any subset is reproducible
/// without generating the others; images are rendered on demand (nothing is cached).
/// </summary>
public sealed class SyntheticShapes : IDetectionDataset
{
    private static readonly string[] Names = ["circle", "square", "triangle", "cross"];
    private readonly ulong _seed;

    /// <summary>Creates <paramref name="count"/> images of <paramref name="size"/>² pixels with boxes whose sides range over
    /// [<paramref name="minFraction"/>, <paramref name="maxFraction"/>] of the image side.</summary>
    public SyntheticShapes(int count, ulong seed, int size = 128, int maxObjects = 4, double minFraction = 0.12, double maxFraction = 0.4)
    {
        if (count < 0) throw new ArgumentException($"SyntheticShapes: count must be non-negative, got {count}");
        if (size < 16) throw new ArgumentException($"SyntheticShapes: image size must be at least 16 pixels, got {size}");
        if (maxObjects < 1) throw new ArgumentException($"SyntheticShapes: max_objects must be positive, got {maxObjects}");
        if (!(minFraction > 0 && minFraction <= maxFraction && maxFraction <= 1))
            throw new ArgumentException($"SyntheticShapes: expected 0 < min_fraction <= max_fraction <= 1, got {minFraction} and {maxFraction}");
        (Count, _seed, Size, MaxObjects, MinFraction, MaxFraction) = (count, seed, size, maxObjects, minFraction, maxFraction);
    }

    /// <inheritdoc/>
    public int Count { get; }

    /// <summary>Image side in pixels.</summary>
    public int Size { get; }

    /// <summary>Most objects per image.</summary>
    public int MaxObjects { get; }

    /// <summary>Smallest box side as a fraction of the image side.</summary>
    public double MinFraction { get; }

    /// <summary>Largest box side as a fraction of the image side.</summary>
    public double MaxFraction { get; }

    /// <inheritdoc/>
    public IReadOnlyList<string> ClassNames => Names;

    /// <inheritdoc/>
    public (int Channels, int Height, int Width) ImageSize => (3, Size, Size);

    /// <inheritdoc/>
    public (float[] Boxes, long[] Labels) Targets(int index)
    {
        var l = Layout(index);
        return (l.Boxes, l.Labels);
    }

    /// <inheritdoc/>
    public DetectionSample Get(int index)
    {
        var l = Layout(index);
        // The noise has its own stream, so the layout (and Targets) costs no per-pixel draws.
        var noise = new Generator(l.NoiseSeed);
        int n = Size, plane = n * n;
        var img = new float[3 * plane];
        // A dim tinted background with per-pixel noise, so the detector cannot key on flat colour.
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < plane; i++) img[c * plane + i] = Clamp(l.Background[c] + 0.25 * (noise.NextDouble() - 0.5));
        for (int o = 0; o < l.Labels.Length; o++)
        {
            var b = l.Boxes.AsSpan(4 * o, 4);
            Draw(img, n, (int)l.Labels[o], (int)b[0], (int)b[1], (int)(b[2] - b[0]), (int)(b[3] - b[1]), l.Colours[o]);
        }
        return new DetectionSample(new Tensor(img, [3, n, n]), l.Boxes, l.Labels);
    }

    private sealed record LayoutInfo(double[] Background, float[] Boxes, long[] Labels, double[][] Colours, ulong NoiseSeed);

    private LayoutInfo Layout(int index)
    {
        if ((uint)index >= (uint)Count)
            throw new ArgumentOutOfRangeException(nameof(index), $"SyntheticShapes: index {index} is out of range for {Count} samples");
        ulong seed = Mix(_seed, (ulong)index);
        var g = new Generator(seed);
        int n = Size;
        double level = 0.1 + 0.3 * g.NextDouble();
        var background = new double[3];
        for (int c = 0; c < 3; c++) background[c] = level + 0.1 * (g.NextDouble() - 0.5);
        int objects = 1 + g.NextInt(MaxObjects);
        var boxes = new List<float>();
        var labels = new List<long>();
        var colours = new List<double[]>();
        for (int o = 0; o < objects; o++)
        {
            // Rejection sampling keeps objects distinguishable; after a few misses the image simply has fewer objects.
            for (int attempt = 0; attempt < 20; attempt++)
            {
                int w = (int)Math.Round(n * (MinFraction + (MaxFraction - MinFraction) * g.NextDouble()));
                int h = (int)Math.Round(w * (0.75 + 0.5 * g.NextDouble()));
                h = Math.Clamp(h, (int)Math.Ceiling(n * MinFraction), (int)(n * MaxFraction));
                int cls = g.NextInt(Names.Length);
                if (cls == 1 || cls == 0) h = w; // circles and squares are drawn regular
                int x0 = g.NextInt(n - w + 1), y0 = g.NextInt(n - h + 1);
                float[] box = [x0, y0, x0 + w, y0 + h];
                if (Overlaps(boxes, box)) continue;
                var colour = new double[3];
                for (int c = 0; c < 3; c++) colour[c] = 0.55 + 0.45 * g.NextDouble();
                colour[g.NextInt(3)] = 0.1 + 0.3 * g.NextDouble(); // saturated: one channel low
                boxes.AddRange(box);
                labels.Add(cls);
                colours.Add(colour);
                break;
            }
        }
        return new LayoutInfo(background, [.. boxes], [.. labels], [.. colours], seed ^ 0x5851F42D4C957F2DUL);
    }

    private static bool Overlaps(List<float> boxes, float[] b)
    {
        for (int k = 0; k < boxes.Count; k += 4)
        {
            float iw = Math.Min(boxes[k + 2], b[2]) - Math.Max(boxes[k], b[0]);
            float ih = Math.Min(boxes[k + 3], b[3]) - Math.Max(boxes[k + 1], b[1]);
            if (iw <= 0 || ih <= 0) continue;
            float inter = iw * ih;
            float union = (boxes[k + 2] - boxes[k]) * (boxes[k + 3] - boxes[k + 1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
            if (inter > 0.2f * union) return true;
        }
        return false;
    }

    private static void Draw(float[] img, int n, int cls, int x0, int y0, int w, int h, double[] colour)
    {
        int plane = n * n;
        for (int y = y0; y < y0 + h; y++)
            for (int x = x0; x < x0 + w; x++)
            {
                // Pixel centre in the unit box [0, 1]², so every shape touches all four sides of its box.
                double u = (x - x0 + 0.5) / w, v = (y - y0 + 0.5) / h;
                bool inside = cls switch
                {
                    0 => (u - 0.5) * (u - 0.5) + (v - 0.5) * (v - 0.5) <= 0.25,
                    1 => true,
                    2 => Math.Abs(u - 0.5) <= 0.5 * v + 0.5 / w,
                    _ => Math.Abs(u - 0.5) <= 0.17 || Math.Abs(v - 0.5) <= 0.17,
                };
                if (!inside) continue;
                for (int c = 0; c < 3; c++) img[c * plane + y * n + x] = (float)colour[c];
            }
    }

    private static float Clamp(double v) => (float)Math.Clamp(v, 0.0, 1.0);

    private static ulong Mix(ulong seed, ulong index)
    {
        ulong h = seed ^ 0xD6E8FEB86659FD93UL;
        h ^= index + 0x9E3779B97F4A7C15UL + (h << 6) + (h >> 2);
        h = (h ^ (h >> 31)) * 0xBF58476D1CE4E5B9UL;
        return h ^ (h >> 29);
    }
}
