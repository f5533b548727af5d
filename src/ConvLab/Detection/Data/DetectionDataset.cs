namespace ConvLab.Detection;

/// <summary>One detection sample: a float image (C, H, W) in [0, 1], its boxes (K, 4) as <c>xyxy</c> pixels of that image
/// (flat, row-major) and one class index per box.</summary>
/// <param name="Image">Image tensor (C, H, W).</param>
/// <param name="Boxes">K·4 values x0, y0, x1, y1 per box, in pixels of <paramref name="Image"/>.</param>
/// <param name="Labels">K class indices.</param>
public sealed record DetectionSample(Tensor Image, float[] Boxes, long[] Labels)
{
    /// <summary>Number of boxes.</summary>
    public int Count => Labels.Length;
}

/// <summary>A map-style detection dataset: every sample has the same image size (C, H, W).</summary>
public interface IDetectionDataset
{
    /// <summary>Number of samples.</summary>
    int Count { get; }

    /// <summary>Class names, indexed by label.</summary>
    IReadOnlyList<string> ClassNames { get; }

    /// <summary>Channels, height and width of every image.</summary>
    (int Channels, int Height, int Width) ImageSize { get; }

    /// <summary>The sample at <paramref name="index"/> (0 &lt;= index &lt; Count).</summary>
    DetectionSample Get(int index);

    /// <summary>The boxes (xyxy pixels of the image) and labels of sample <paramref name="index"/> without decoding or rendering its image.</summary>
    (float[] Boxes, long[] Labels) Targets(int index);
}

/// <summary>The samples of a dataset at the given indices, in that order (e.g. a held-out split).</summary>
public sealed class DetectionSubset : IDetectionDataset
{
    private readonly IDetectionDataset _source;
    private readonly int[] _indices;

    /// <summary>Selects <paramref name="indices"/> of <paramref name="source"/>.</summary>
    public DetectionSubset(IDetectionDataset source, IEnumerable<int> indices)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(indices);
        _indices = [.. indices];
        foreach (int i in _indices)
            if ((uint)i >= (uint)source.Count) throw new ArgumentException($"DetectionSubset: index {i} is outside the source's {source.Count} samples");
        _source = source;
    }

    /// <inheritdoc/>
    public int Count => _indices.Length;

    /// <inheritdoc/>
    public IReadOnlyList<string> ClassNames => _source.ClassNames;

    /// <inheritdoc/>
    public (int Channels, int Height, int Width) ImageSize => _source.ImageSize;

    /// <inheritdoc/>
    public DetectionSample Get(int index) => _source.Get(_indices[index]);

    /// <inheritdoc/>
    public (float[] Boxes, long[] Labels) Targets(int index) => _source.Targets(_indices[index]);
}

/// <summary>Helpers over detection datasets.</summary>
public static class DetectionData
{
    /// <summary>Widths and heights (K, 2 flat) of every box in <paramref name="data"/>, in pixels, for anchor clustering.</summary>
    public static float[] BoxSizes(IDetectionDataset data)
    {
        ArgumentNullException.ThrowIfNull(data);
        var wh = new List<float>();
        for (int i = 0; i < data.Count; i++)
        {
            var (boxes, _) = data.Targets(i);
            for (int k = 0; k < boxes.Length; k += 4)
            {
                wh.Add(boxes[k + 2] - boxes[k]);
                wh.Add(boxes[k + 3] - boxes[k + 1]);
            }
        }
        return [.. wh];
    }
}
