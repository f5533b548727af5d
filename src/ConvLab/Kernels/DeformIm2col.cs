using System.Numerics;

namespace ConvLab.Kernels;

/// <summary>Shape and attributes of one deformable convolution (torchvision's deform_conv2d), already validated.</summary>
internal readonly record struct DeformConvShape(
    int N, int C, int H, int W, int COut, int Kh, int Kw,
    int Sh, int Sw, int Ph, int Pw, int Dh, int Dw, int Ho, int Wo,
    int Groups, int OffsetGroups, bool HasMask)
{
    public int Taps => Kh * Kw;
    public int Plane => H * W;
    public int Positions => Ho * Wo;
    /// <summary>Rows of the column matrix: C·kh·kw.</summary>
    public int Rows => C * Kh * Kw;
    public int OffsetChannels => 2 * OffsetGroups * Kh * Kw;
    public int MaskChannels => OffsetGroups * Kh * Kw;
}

/// <summary>
/// Deformable im2col (torchvision's deform_conv2d CPU kernel): each column entry is a bilinear sample of
/// the input at the kernel tap displaced by a learned offset, times the optional modulation mask; the
/// convolution is then a GEMM per weight group. Backward: grad columns = Wᵀ·dY, whose adjoint of the
/// sampling gives the input gradient (col2im) and whose dot product with the sampling's spatial
/// derivative gives the offset and mask gradients (col2im_coord).
/// Samples are shared by every channel of an offset group, so their corner indices and weights are
/// computed once per image (a <see cref="Plan{T}"/>) and reused across those channels.
/// </summary>
internal static class DeformIm2col
{

    /// <summary>
    /// The four bilinear corners of every sample s = (group·taps + tap)·positions + position: indices into a
    /// channel plane and weights (4 per sample). Corners outside the image get index 0 and weight 0, so
    /// they read as zero exactly as torchvision's bilinear_interpolate. <see cref="Dy"/>/<see cref="Dx"/>
    /// hold d(weight)/dy and d(weight)/dx (torchvision's get_coordinate_weight), only when asked for.
    /// </summary>
    private sealed class Plan<T>(int samples, bool derivatives)
    {
        public readonly int[] Index = new int[4 * samples];
        public readonly T[] Weight = new T[4 * samples];
        public readonly T[]? Dy = derivatives ? new T[4 * samples] : null;
        public readonly T[]? Dx = derivatives ? new T[4 * samples] : null;
    }

    private static Plan<T> BuildPlan<T>(in DeformConvShape s, T[] offset, int offOff, bool derivatives)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int taps = s.Taps, positions = s.Positions;
        var plan = new Plan<T>(s.OffsetGroups * taps * positions, derivatives);
        T hLimit = T.CreateTruncating(s.H), wLimit = T.CreateTruncating(s.W), two = T.CreateTruncating(2);
        for (int g = 0; g < s.OffsetGroups; g++)
            for (int t = 0; t < taps; t++)
            {
                int i = t / s.Kw, j = t % s.Kw;
                int gt = g * taps + t;
                int dyRow = offOff + 2 * gt * positions, dxRow = dyRow + positions;
                for (int oy = 0; oy < s.Ho; oy++)
                    for (int ox = 0; ox < s.Wo; ox++)
                    {
                        int p = oy * s.Wo + ox;
                        T y = T.CreateTruncating(oy * s.Sh - s.Ph + i * s.Dh) + offset[dyRow + p];
                        T x = T.CreateTruncating(ox * s.Sw - s.Pw + j * s.Dw) + offset[dxRow + p];
                        // Beyond one pixel outside the image no corner is inside (NaN also lands here);
                        // checking first also keeps Floor's result within int range.
                        if (!(y > -two && y < hLimit + T.One && x > -two && x < wLimit + T.One)) continue;
                        int yl = int.CreateTruncating(T.Floor(y)), xl = int.CreateTruncating(T.Floor(x));
                        T lh = y - T.CreateTruncating(yl), lw = x - T.CreateTruncating(xl);
                        T hh = T.One - lh, hw = T.One - lw;
                        int b = 4 * (gt * positions + p);
                        for (int k = 0; k < 4; k++)
                        {
                            int cy = yl + (k >> 1), cx = xl + (k & 1);
                            if (cy < 0 || cy >= s.H || cx < 0 || cx >= s.W) continue;
                            plan.Index[b + k] = cy * s.W + cx;
                            bool low = (k >> 1) == 0, left = (k & 1) == 0;
                            plan.Weight[b + k] = (low ? hh : lh) * (left ? hw : lw);
                            if (derivatives)
                            {
                                plan.Dy![b + k] = low ? -(left ? hw : lw) : (left ? hw : lw);
                                plan.Dx![b + k] = left ? -(low ? hh : lh) : (low ? hh : lh);
                            }
                        }
                    }
            }
        return plan;
    }

    private static T Gather<T>(T[] coef, int[] index, int b, T[] input, int planeOff) where T : unmanaged, INumber<T> =>
        coef[b] * input[planeOff + index[b]] + coef[b + 1] * input[planeOff + index[b + 1]]
        + coef[b + 2] * input[planeOff + index[b + 2]] + coef[b + 3] * input[planeOff + index[b + 3]];

    private static void ForChannels(int count, long work, Action<int> body) => Threads.For(0, count, work, body);

    /// <summary>Columns (C·kh·kw, Ho·Wo) of one image: mask · bilinear(input, sample point).</summary>
    private static void Columns<T>(in DeformConvShape s, Plan<T> plan, T[] x, int xOff, T[]? mask, int maskOff, T[] cols)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int taps = s.Taps, positions = s.Positions, plane = s.Plane, cpg = s.C / s.OffsetGroups;
        ForChannels(s.C, (long)s.Rows * positions, c =>
        {
            int g = c / cpg;
            for (int t = 0; t < taps; t++)
            {
                int sample = (g * taps + t) * positions, row = (c * taps + t) * positions;
                for (int p = 0; p < positions; p++)
                {
                    T v = Gather(plan.Weight, plan.Index, 4 * (sample + p), x, xOff + c * plane);
                    cols[row + p] = mask == null ? v : v * mask[maskOff + sample + p];
                }
            }
        });
    }

    /// <summary>y = W·columns + (nothing: bias is added by the caller), one image at a time.</summary>
    public static void Forward<T>(in DeformConvShape s, T[] x, int xOff, T[] offset, int offOff, T[]? mask, int maskOff,
        T[] w, int wOff, T[] y, int yOff) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int positions = s.Positions, cOutG = s.COut / s.Groups, kG = s.Rows / s.Groups;
        var cols = new T[s.Rows * positions];
        for (int n = 0; n < s.N; n++)
        {
            var plan = BuildPlan(s, offset, offOff + n * s.OffsetChannels * positions, false);
            Columns(s, plan, x, xOff + n * s.C * s.Plane, mask, maskOff + n * s.MaskChannels * positions, cols);
            for (int g = 0; g < s.Groups; g++)
                Gemm.Run(false, false, cOutG, positions, kG, w, wOff + g * cOutG * kG, kG, cols, g * kG * positions, positions,
                    y, yOff + (n * s.COut + g * cOutG) * positions, positions, false);
        }
    }

    /// <summary>
    /// Gradients for input, offset, mask and weight (each null when not wanted; non-null arrays are
    /// zero-filled, dense, of the corresponding tensor's size). gy is dense (N, C_out, Ho, Wo).
    /// </summary>
    public static void Backward<T>(in DeformConvShape s, T[] x, int xOff, T[] offset, int offOff, T[]? mask, int maskOff,
        T[] w, int wOff, T[] gy, int gyOff, T[]? gx, T[]? gOffset, T[]? gMask, T[]? gw)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int positions = s.Positions, plane = s.Plane, taps = s.Taps, cOutG = s.COut / s.Groups, kG = s.Rows / s.Groups;
        bool needCols = gw != null, needGradCols = gx != null || gOffset != null || gMask != null;
        var cols = needCols ? new T[s.Rows * positions] : null;
        var gcols = needGradCols ? new T[s.Rows * positions] : null;
        for (int n = 0; n < s.N; n++)
        {
            int xN = xOff + n * s.C * plane, mN = maskOff + n * s.MaskChannels * positions, gyN = gyOff + n * s.COut * positions;
            var plan = BuildPlan(s, offset, offOff + n * s.OffsetChannels * positions, gOffset != null);
            if (cols != null)
            {
                Columns(s, plan, x, xN, mask, mN, cols);
                for (int g = 0; g < s.Groups; g++)
                    Gemm.Run(false, true, cOutG, kG, positions, gy, gyN + g * cOutG * positions, positions,
                        cols, g * kG * positions, positions, gw!, g * cOutG * kG, kG, true);
            }
            if (gcols == null) continue;
            for (int g = 0; g < s.Groups; g++)
                Gemm.Run(true, false, kG, positions, cOutG, w, wOff + g * cOutG * kG, kG, gy, gyN + g * cOutG * positions, positions,
                    gcols, g * kG * positions, positions, false);
            if (gx != null) Col2im(s, plan, gcols, mask, mN, gx, n * s.C * plane);
            if (gOffset != null || gMask != null)
                Col2imCoord(s, plan, gcols, x, xN, mask, mN, gOffset, n * s.OffsetChannels * positions, gMask, n * s.MaskChannels * positions);
        }
    }

    /// <summary>Input gradient of one image: scatter each grad column entry back to its four bilinear corners.</summary>
    private static void Col2im<T>(in DeformConvShape s, Plan<T> plan, T[] gcols, T[]? mask, int maskOff, T[] gx, int gxOff)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int taps = s.Taps, positions = s.Positions, plane = s.Plane, cpg = s.C / s.OffsetGroups;
        // Channels write disjoint planes, so they can run in parallel.
        ForChannels(s.C, (long)s.Rows * positions, c =>
        {
            int g = c / cpg, dst = gxOff + c * plane;
            for (int t = 0; t < taps; t++)
            {
                int sample = (g * taps + t) * positions, row = (c * taps + t) * positions;
                for (int p = 0; p < positions; p++)
                {
                    T v = gcols[row + p];
                    if (mask != null) v *= mask[maskOff + sample + p];
                    int b = 4 * (sample + p);
                    for (int k = 0; k < 4; k++) gx[dst + plan.Index[b + k]] += plan.Weight[b + k] * v;
                }
            }
        });
    }

    /// <summary>
    /// Offset and mask gradients of one image: for each sample, Σ over the group's channels of the grad
    /// column entry times d(sample)/d(dy, dx) (scaled by the mask) and times the sample itself (for the mask).
    /// </summary>
    private static void Col2imCoord<T>(in DeformConvShape s, Plan<T> plan, T[] gcols, T[] x, int xOff, T[]? mask, int maskOff,
        T[]? gOffset, int gOffOff, T[]? gMask, int gMaskOff) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int taps = s.Taps, positions = s.Positions, plane = s.Plane, cpg = s.C / s.OffsetGroups;
        // Each (offset group, tap) owns its output rows, so those pairs can run in parallel.
        ForChannels(s.OffsetGroups * taps, (long)s.Rows * positions, gt =>
        {
            int g = gt / taps, t = gt % taps, sample = gt * positions;
            int dyRow = gOffOff + 2 * gt * positions, dxRow = dyRow + positions, mRow = gMaskOff + sample;
            for (int c = g * cpg; c < (g + 1) * cpg; c++)
            {
                int row = (c * taps + t) * positions, src = xOff + c * plane;
                for (int p = 0; p < positions; p++)
                {
                    T v = gcols[row + p];
                    int b = 4 * (sample + p);
                    if (gOffset != null)
                    {
                        gOffset[dyRow + p] += v * Gather(plan.Dy!, plan.Index, b, x, src);
                        gOffset[dxRow + p] += v * Gather(plan.Dx!, plan.Index, b, x, src);
                    }
                    if (gMask != null) gMask[mRow + p] += v * Gather(plan.Weight, plan.Index, b, x, src);
                }
            }
            if (gOffset != null && mask != null)
                for (int p = 0; p < positions; p++)
                {
                    T m = mask[maskOff + sample + p];
                    gOffset[dyRow + p] *= m;
                    gOffset[dxRow + p] *= m;
                }
        });
    }
}
