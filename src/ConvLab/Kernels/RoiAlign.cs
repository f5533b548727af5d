using System.Numerics;

namespace ConvLab.Kernels;

/// <summary>Shape and attributes of one roi_align call, already validated.</summary>
internal readonly record struct RoiAlignShape(int N, int C, int H, int W, int K, int OutH, int OutW, double SpatialScale, int SamplingRatio, bool Aligned);

/// <summary>
/// RoI Align (He et al., Mask R-CNN; torchvision's CPU kernel semantics): each output bin averages bilinear samples on a
/// regular sub-grid of the bin. Samples more than one pixel outside the map read 0; samples within a pixel of the border
/// are clamped onto it. The backward scatters each bin's gradient to the same four corners with the same weights.
/// The sampling plan of a box (corner indices and weights) is shared by all its channels, so it is built once per box.
/// </summary>
internal static class RoiAlign
{
    public static void Forward<T>(in RoiAlignShape s, ReadOnlySpan<T> input, ReadOnlySpan<T> rois, Span<T> output)
        where T : unmanaged, IFloatingPointIeee754<T> => Sweep(s, rois, input, output, backward: false);

    public static void Backward<T>(in RoiAlignShape s, ReadOnlySpan<T> gradOutput, ReadOnlySpan<T> rois, Span<T> gradInput)
        where T : unmanaged, IFloatingPointIeee754<T> => Sweep(s, rois, gradOutput, gradInput, backward: true);

    /// <summary>Forward: dst (bins) = mean of weighted src (input) corners. Backward: src is the bins' gradient, scattered into dst (input).</summary>
    private static void Sweep<T>(in RoiAlignShape s, ReadOnlySpan<T> rois, ReadOnlySpan<T> src, Span<T> dst, bool backward)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int plane = s.H * s.W, bins = s.OutH * s.OutW;
        for (int k = 0; k < s.K; k++)
        {
            var (idx, wts, count, batch) = Plan(s, rois.Slice(5 * k, 5));
            T inv = T.One / T.CreateTruncating(count);
            for (int c = 0; c < s.C; c++)
            {
                int mapAt = (batch * s.C + c) * plane, binAt = (k * s.C + c) * bins;
                for (int b = 0; b < bins; b++)
                {
                    int q0 = b * count * 4, q1 = q0 + count * 4;
                    if (backward)
                    {
                        T g = src[binAt + b] * inv;
                        for (int q = q0; q < q1; q++) dst[mapAt + idx[q]] += wts[q] * g;
                    }
                    else
                    {
                        T sum = T.Zero;
                        for (int q = q0; q < q1; q++) sum += wts[q] * src[mapAt + idx[q]];
                        dst[binAt + b] = sum * inv;
                    }
                }
            }
        }
    }

    /// <summary>Four corners per sample, samples per bin <c>count</c>, bins row-major; corners of skipped samples have weight 0.</summary>
    private static (int[] Index, T[] Weight, int Count, int Batch) Plan<T>(in RoiAlignShape s, ReadOnlySpan<T> roi)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T scale = T.CreateTruncating(s.SpatialScale), offset = s.Aligned ? T.CreateTruncating(0.5) : T.Zero;
        int batch = int.CreateTruncating(roi[0]);
        T startW = roi[1] * scale - offset, startH = roi[2] * scale - offset;
        T endW = roi[3] * scale - offset, endH = roi[4] * scale - offset;
        T roiW = endW - startW, roiH = endH - startH;
        if (!s.Aligned) { roiW = T.Max(roiW, T.One); roiH = T.Max(roiH, T.One); }
        T binH = roiH / T.CreateTruncating(s.OutH), binW = roiW / T.CreateTruncating(s.OutW);
        int gridH = s.SamplingRatio > 0 ? s.SamplingRatio : int.CreateTruncating(T.Ceiling(roiH / T.CreateTruncating(s.OutH)));
        int gridW = s.SamplingRatio > 0 ? s.SamplingRatio : int.CreateTruncating(T.Ceiling(roiW / T.CreateTruncating(s.OutW)));
        // torchvision divides by max(count, 1); with an empty grid the bin has no samples and reads 0.
        int count = Math.Max(gridH * gridW, 1);
        int bins = s.OutH * s.OutW;
        var idx = new int[bins * count * 4];
        var wts = new T[bins * count * 4];
        T h = T.CreateTruncating(s.H), w = T.CreateTruncating(s.W), half = T.CreateTruncating(0.5);
        for (int ph = 0; ph < s.OutH; ph++)
            for (int pw = 0; pw < s.OutW; pw++)
            {
                int q = (ph * s.OutW + pw) * count * 4;
                for (int iy = 0; iy < gridH; iy++)
                {
                    T y = startH + T.CreateTruncating(ph) * binH + (T.CreateTruncating(iy) + half) * binH / T.CreateTruncating(gridH);
                    for (int ix = 0; ix < gridW; ix++, q += 4)
                    {
                        T x = startW + T.CreateTruncating(pw) * binW + (T.CreateTruncating(ix) + half) * binW / T.CreateTruncating(gridW);
                        if (y < -T.One || y > h || x < -T.One || x > w) continue;
                        T yy = T.Max(y, T.Zero), xx = T.Max(x, T.Zero);
                        int yLow = int.CreateTruncating(yy), xLow = int.CreateTruncating(xx), yHigh, xHigh;
                        if (yLow >= s.H - 1) { yHigh = yLow = s.H - 1; yy = T.CreateTruncating(yLow); } else yHigh = yLow + 1;
                        if (xLow >= s.W - 1) { xHigh = xLow = s.W - 1; xx = T.CreateTruncating(xLow); } else xHigh = xLow + 1;
                        T ly = yy - T.CreateTruncating(yLow), lx = xx - T.CreateTruncating(xLow), hy = T.One - ly, hx = T.One - lx;
                        idx[q] = yLow * s.W + xLow; idx[q + 1] = yLow * s.W + xHigh; idx[q + 2] = yHigh * s.W + xLow; idx[q + 3] = yHigh * s.W + xHigh;
                        wts[q] = hy * hx; wts[q + 1] = hy * lx; wts[q + 2] = ly * hx; wts[q + 3] = ly * lx;
                    }
                }
            }
        return (idx, wts, count, batch);
    }
}
