namespace ConvLab.Detection;

/// <summary>One detected object: an <c>xyxy</c> box in input pixels, its score and its class label.</summary>
/// <param name="X0">Left edge.</param>
/// <param name="Y0">Top edge.</param>
/// <param name="X1">Right edge (≥ <paramref name="X0"/>).</param>
/// <param name="Y1">Bottom edge (≥ <paramref name="Y0"/>).</param>
/// <param name="Score">Confidence in [0, 1] (YOLOv3: objectness × class probability).</param>
/// <param name="Label">Class index.</param>
public readonly record struct DetectedBox(float X0, float Y0, float X1, float Y1, float Score, int Label)
{
    /// <summary>Box area (w·h).</summary>
    public float Area => (X1 - X0) * (Y1 - Y0);
}

/// <summary>One ground-truth object of an image: an <c>xyxy</c> box in pixels and its class label.</summary>
/// <param name="X0">Left edge.</param>
/// <param name="Y0">Top edge.</param>
/// <param name="X1">Right edge (≥ <paramref name="X0"/>).</param>
/// <param name="Y1">Bottom edge (≥ <paramref name="Y0"/>).</param>
/// <param name="Label">Class index.</param>
public readonly record struct GroundTruthBox(float X0, float Y0, float X1, float Y1, int Label)
{
    /// <summary>Box area (w·h).</summary>
    public float Area => (X1 - X0) * (Y1 - Y0);
}
