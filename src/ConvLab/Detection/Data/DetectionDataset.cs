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
            var s = data.Get(i);
            for (int k = 0; k < s.Count; k++)
            {
                wh.Add(s.Boxes[4 * k + 2] - s.Boxes[4 * k]);
                wh.Add(s.Boxes[4 * k + 3] - s.Boxes[4 * k + 1]);
            }
        }
        return [.. wh];
    }
}
