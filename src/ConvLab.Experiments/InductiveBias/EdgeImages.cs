using ConvLab.Data;

namespace ConvLab.Experiments.InductiveBias;

/// <summary>Where the bands of an edge-image set may lie.</summary>
public enum BandRegion
{
    /// <summary>Anywhere in the image.</summary>
    Anywhere,

    /// <summary>Horizontal bands in the top half, vertical bands in the left half (domain-shift training data).</summary>
    TopLeft,

    /// <summary>Horizontal bands in the bottom half, vertical bands in the right half (domain-shift validation data).</summary>
    BottomRight,
}

/// <summary>
/// The EdgeDetection notebook's data: 28×28 grey images, a constant background drawn from U[0, 0.2] and one band of
/// width 1–4 pixels and intensity U[0.25, 1] at a random row or column; no pixel noise. Three classes (horizontal,
/// vertical, none) or five (horizontal, vertical, diagonal — a band of width 1–2 rotated by 30, 45, 120 or 135° —, both
/// a horizontal and a vertical band, none). Balanced, classes interleaved, every pixel from the seed.
/// </summary>
public sealed class EdgeImages : IDataset
{
    /// <summary>Image side.</summary>
    public const int Side = 28;

    /// <summary>Class names of the three-class task.</summary>
    public static readonly IReadOnlyList<string> ThreeClasses = ["horizontal", "vertical", "none"];

    /// <summary>Class names of the five-class task.</summary>
    public static readonly IReadOnlyList<string> FiveClasses = ["horizontal", "vertical", "diagonal", "both", "none"];

    private static readonly double[] DiagonalAngles = [30, 45, 120, 135];

    private readonly float[] _pixels;
    private readonly long[] _labels;

    private EdgeImages(float[] pixels, long[] labels, IReadOnlyList<string> classNames)
    {
        (_pixels, _labels, ClassNames) = (pixels, labels, classNames);
    }

    /// <summary>Class names, index = label.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <inheritdoc/>
    public int Count => _labels.Length;

    /// <inheritdoc/>
    public (Tensor Input, long Label) Get(int index) =>
        (Tensor.FromArray(_pixels.AsSpan(index * Side * Side, Side * Side).ToArray(), 1, Side, Side), _labels[index]);

    /// <summary>The raw pixels of image <paramref name="index"/> (row-major 28×28).</summary>
    public ReadOnlySpan<float> Pixels(int index) => _pixels.AsSpan(index * Side * Side, Side * Side);

    /// <summary>
    /// <paramref name="perClass"/> images of each class from <paramref name="seed"/>. With <paramref name="permutation"/>
    /// (784 entries) pixel i of every stored image is pixel permutation[i] of the drawn one.
    /// </summary>
    public static EdgeImages Create(int perClass, ulong seed, int classes = 3, BandRegion region = BandRegion.Anywhere, int[]? permutation = null)
    {
        if (perClass <= 0) throw new ArgumentException($"edge images: images per class must be positive, got {perClass}");
        if (classes is not (3 or 5)) throw new ArgumentException($"edge images: 3 or 5 classes, got {classes}");
        if (permutation != null && (permutation.Length != Side * Side || permutation.Distinct().Count() != Side * Side || permutation.Any(p => p < 0 || p >= Side * Side)))
            throw new ArgumentException($"edge images: the permutation must hold each of 0..{Side * Side - 1} once");
        var g = new Generator(seed);
        int n = perClass * classes;
        var pixels = new float[n * Side * Side];
        var labels = new long[n];
        var img = new float[Side * Side];
        for (int i = 0; i < n; i++)
        {
            int label = i % classes;
            Draw(img, g, classes == 3 ? ThreeClasses[label] : FiveClasses[label], region);
            var dst = pixels.AsSpan(i * Side * Side, Side * Side);
            if (permutation == null) img.CopyTo(dst);
            else for (int p = 0; p < dst.Length; p++) dst[p] = img[permutation[p]];
            labels[i] = label;
        }
        return new(pixels, labels, classes == 3 ? ThreeClasses : FiveClasses);
    }

    /// <summary>A fixed random permutation of the 784 pixels.</summary>
    public static int[] Permutation(ulong seed) => Tensor.RandPerm(Side * Side, new Generator(seed)).ToInt64Array().Select(v => (int)v).ToArray();

    private static void Draw(float[] img, Generator g, string kind, BandRegion region)
    {
        float background = (float)(0.2 * g.NextDouble());
        Array.Fill(img, background);
        void Band(bool horizontal)
        {
            int width = 1 + g.NextInt(4);
            float intensity = (float)(0.25 + 0.75 * g.NextDouble());
            (int lo, int hi) = region switch
            {
                BandRegion.TopLeft => (0, Side / 2 - width),
                BandRegion.BottomRight => (Side / 2, Side - width),
                _ => (0, Side - width),
            };
            int start = lo + g.NextInt(hi - lo + 1);
            for (int a = start; a < start + width; a++)
                for (int b = 0; b < Side; b++)
                    img[horizontal ? a * Side + b : b * Side + a] = intensity;
        }
        switch (kind)
        {
            case "horizontal": Band(true); break;
            case "vertical": Band(false); break;
            case "both": Band(true); Band(false); break;
            case "diagonal":
                {
                    double theta = DiagonalAngles[g.NextInt(DiagonalAngles.Length)] * Math.PI / 180;
                    double half = (1 + g.NextInt(2)) / 2.0, cx = 8 + 12 * g.NextDouble(), cy = 8 + 12 * g.NextDouble();
                    float intensity = (float)(0.25 + 0.75 * g.NextDouble());
                    for (int y = 0; y < Side; y++)
                        for (int x = 0; x < Side; x++)
                            if (Math.Abs(-(x - cx) * Math.Sin(theta) + (y - cy) * Math.Cos(theta)) < half) img[y * Side + x] = intensity;
                    break;
                }
        }
    }
}
