namespace ConvLab.Imaging;

/// <summary>
/// Antialiased bilinear resizing of planar float images: PIL's separable resampling with a triangle filter widened by
/// the downscale factor (torchvision's <c>Resize(antialias=True)</c>), computed in float.
/// </summary>
internal static class Resize
{
    internal static float[] Bilinear(float[] src, int channels, int h, int w, int outH, int outW)
    {
        var (xStart, xCount, xWeights, xTaps) = Coefficients(w, outW);
        var (yStart, yCount, yWeights, yTaps) = Coefficients(h, outH);
        // Horizontal pass first (PIL's order), then vertical.
        var tmp = new float[channels * h * outW];
        for (int row = 0; row < channels * h; row++)
        {
            int si = row * w, di = row * outW;
            for (int x = 0; x < outW; x++)
            {
                float s = 0;
                int k0 = x * xTaps;
                for (int k = 0; k < xCount[x]; k++) s += xWeights[k0 + k] * src[si + xStart[x] + k];
                tmp[di + x] = s;
            }
        }
        var dst = new float[channels * outH * outW];
        for (int c = 0; c < channels; c++)
        {
            int plane = c * h * outW, outPlane = c * outH * outW;
            for (int y = 0; y < outH; y++)
            {
                var d = dst.AsSpan(outPlane + y * outW, outW);
                int k0 = y * yTaps;
                for (int k = 0; k < yCount[y]; k++)
                {
                    float wk = yWeights[k0 + k];
                    var s = tmp.AsSpan(plane + (yStart[y] + k) * outW, outW);
                    for (int x = 0; x < outW; x++) d[x] += wk * s[x];
                }
            }
        }
        return dst;
    }

    /// <summary>For each output index: first input index, tap count and normalised weights (row i at i * Taps).</summary>
    private static (int[] Start, int[] Count, float[] Weights, int Taps) Coefficients(int inSize, int outSize)
    {
        double scale = (double)inSize / outSize;
        double filterScale = Math.Max(scale, 1.0);
        double support = filterScale; // the triangle filter's support is 1, widened when downscaling
        int taps = (int)Math.Ceiling(support) * 2 + 1;
        var start = new int[outSize];
        var count = new int[outSize];
        var weights = new float[outSize * taps];
        for (int i = 0; i < outSize; i++)
        {
            double center = (i + 0.5) * scale;
            // Truncation toward zero as PIL's (int) cast, then clamped to the image.
            int lo = Math.Max((int)(center - support + 0.5), 0);
            int n = Math.Min(Math.Min((int)(center + support + 0.5), inSize) - lo, taps);
            var row = weights.AsSpan(i * taps, n);
            double total = 0;
            for (int j = 0; j < n; j++)
            {
                double t = Math.Abs((j + lo - center + 0.5) / filterScale);
                row[j] = (float)(t < 1 ? 1 - t : 0);
                total += row[j];
            }
            if (total > 0) for (int j = 0; j < n; j++) row[j] = (float)(row[j] / total);
            (start[i], count[i]) = (lo, n);
        }
        return (start, count, weights, taps);
    }
}
