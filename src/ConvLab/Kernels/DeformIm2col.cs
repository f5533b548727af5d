using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

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
/// A batch is split into one contiguous share of images per worker, each with its own pooled scratch (plan, columns):
/// per image the work is a few small loops and GEMMs too small to thread, and one fork per pass instead of one per
/// image and loop keeps the threads busy (measured: BENCHMARKS.md). A single image threads its loops over channels.
/// </summary>
internal static class DeformIm2col
{
    /// <summary>
    /// The four bilinear corners of every sample s = (group·taps + tap)·positions + position: indices into a
    /// channel plane and weights (4 per sample). Corners outside the image get index 0 and weight 0, so
    /// they read as zero exactly as torchvision's bilinear_interpolate. <see cref="Dy"/>/<see cref="Dx"/>
    /// hold d(weight)/dy and d(weight)/dx (torchvision's get_coordinate_weight), only when asked for.
    /// The arrays are rented (they may be longer than needed) and returned by <see cref="Dispose"/>.
    /// </summary>
    private sealed class Plan<T> : IDisposable where T : unmanaged
    {
        public readonly int Length;
        public readonly int[] Index;
        public readonly T[] Weight;
        public readonly T[]? Dy, Dx;

        public Plan(int samples, bool derivatives)
        {
            Length = 4 * samples;
            Index = ArrayPool<int>.Shared.Rent(Length);
            Weight = ArrayPool<T>.Shared.Rent(Length);
            Dy = derivatives ? ArrayPool<T>.Shared.Rent(Length) : null;
            Dx = derivatives ? ArrayPool<T>.Shared.Rent(Length) : null;
        }

        public void Dispose()
        {
            ArrayPool<int>.Shared.Return(Index);
            ArrayPool<T>.Shared.Return(Weight);
            if (Dy != null) ArrayPool<T>.Shared.Return(Dy);
            if (Dx != null) ArrayPool<T>.Shared.Return(Dx);
        }
    }

    /// <summary>Fills <paramref name="plan"/> for one image's offsets (offset planes of that image start at <paramref name="offOff"/>).</summary>
    private static void BuildPlan<T>(in DeformConvShape s, T[] offset, int offOff, Plan<T> plan)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int taps = s.Taps, positions = s.Positions;
        bool derivatives = plan.Dy != null;
        // Corners outside the image are skipped below and must read as index 0, weight 0.
        plan.Index.AsSpan(0, plan.Length).Clear();
        plan.Weight.AsSpan(0, plan.Length).Clear();
        if (derivatives) { plan.Dy.AsSpan(0, plan.Length).Clear(); plan.Dx.AsSpan(0, plan.Length).Clear(); }
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
    }

    /// <summary>body(i) for i in [0, count): threaded only for a single image (<paramref name="threaded"/>), whose loops are then the only parallel work.</summary>
    private static void ForChannels(bool threaded, int count, long work, Action<int> body)
    {
        if (threaded) Threads.For(0, count, work, body);
        else for (int i = 0; i < count; i++) body(i);
    }

    /// <summary>Workers for a batch of <paramref name="images"/>: one per thread (at most one per image), 1 for a single image.</summary>
    private static int Workers(int images) => Math.Max(1, Math.Min(Threads.Count, images));

    /// <summary>Runs body(worker, first image, end image) for each worker's contiguous share of the batch.</summary>
    private static void ForShares(int images, int workers, Action<int, int, int> body)
    {
        if (workers == 1) { body(0, 0, images); return; }
        Parallel.For(0, workers, Threads.Options, w => body(w, (int)((long)images * w / workers), (int)((long)images * (w + 1) / workers)));
    }

    /// <summary>Columns (C·kh·kw, Ho·Wo) of one image: mask · bilinear(input, sample point).</summary>
    private static void Columns<T>(in DeformConvShape s, Plan<T> plan, T[] x, int xOff, T[]? mask, int maskOff, T[] cols, bool threaded)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int taps = s.Taps, positions = s.Positions, plane = s.Plane, cpg = s.C / s.OffsetGroups;
        ForChannels(threaded, s.C, (long)s.Rows * positions, c =>
        {
            int g = c / cpg;
            for (int t = 0; t < taps; t++)
            {
                int sample = (g * taps + t) * positions, row = (c * taps + t) * positions;
                GatherRow(plan.Index.AsSpan(4 * sample, 4 * positions), plan.Weight.AsSpan(4 * sample, 4 * positions), x.AsSpan(xOff + c * plane, plane),
                    mask == null ? default : mask.AsSpan(maskOff + sample, positions), cols.AsSpan(row, positions));
            }
        });
    }

    // The row loops below read the plan through refs: its indices were built inside the plane (0 for absent corners),
    // so bounds checks would only slow the hottest loops of the op down.

    /// <summary>dst[p] = Σ_k weight[4p + k] · plane[index[4p + k]] (times mask[p] when given).</summary>
    private static void GatherRow<T>(ReadOnlySpan<int> index, ReadOnlySpan<T> weight, ReadOnlySpan<T> plane, ReadOnlySpan<T> mask, Span<T> dst)
        where T : unmanaged, INumber<T>
    {
        ref int ix = ref MemoryMarshal.GetReference(index);
        ref T wt = ref MemoryMarshal.GetReference(weight);
        ref T src = ref MemoryMarshal.GetReference(plane);
        bool masked = !mask.IsEmpty;
        for (int p = 0, b = 0; p < dst.Length; p++, b += 4)
        {
            T v = Unsafe.Add(ref wt, b) * Unsafe.Add(ref src, Unsafe.Add(ref ix, b))
                + Unsafe.Add(ref wt, b + 1) * Unsafe.Add(ref src, Unsafe.Add(ref ix, b + 1))
                + Unsafe.Add(ref wt, b + 2) * Unsafe.Add(ref src, Unsafe.Add(ref ix, b + 2))
                + Unsafe.Add(ref wt, b + 3) * Unsafe.Add(ref src, Unsafe.Add(ref ix, b + 3));
            dst[p] = masked ? v * mask[p] : v;
        }
    }

    /// <summary>plane[index[4p + k]] += weight[4p + k] · g[p] (times mask[p] when given): the adjoint of <see cref="GatherRow"/>.</summary>
    private static void ScatterRow<T>(ReadOnlySpan<int> index, ReadOnlySpan<T> weight, Span<T> plane, ReadOnlySpan<T> mask, ReadOnlySpan<T> g)
        where T : unmanaged, INumber<T>
    {
        ref int ix = ref MemoryMarshal.GetReference(index);
        ref T wt = ref MemoryMarshal.GetReference(weight);
        ref T dst = ref MemoryMarshal.GetReference(plane);
        bool masked = !mask.IsEmpty;
        for (int p = 0, b = 0; p < g.Length; p++, b += 4)
        {
            T v = masked ? g[p] * mask[p] : g[p];
            Unsafe.Add(ref dst, Unsafe.Add(ref ix, b)) += Unsafe.Add(ref wt, b) * v;
            Unsafe.Add(ref dst, Unsafe.Add(ref ix, b + 1)) += Unsafe.Add(ref wt, b + 1) * v;
            Unsafe.Add(ref dst, Unsafe.Add(ref ix, b + 2)) += Unsafe.Add(ref wt, b + 2) * v;
            Unsafe.Add(ref dst, Unsafe.Add(ref ix, b + 3)) += Unsafe.Add(ref wt, b + 3) * v;
        }
    }

    /// <summary>
    /// One channel's share of the offset and mask gradients of a row of samples: with the four corner values c_k read once,
    /// gDy[p] += g[p]·Σ dy_k c_k, gDx[p] += g[p]·Σ dx_k c_k and gMask[p] += g[p]·Σ w_k c_k (empty spans are skipped).
    /// </summary>
    private static void CoordRow<T>(ReadOnlySpan<int> index, ReadOnlySpan<T> dyCoef, ReadOnlySpan<T> dxCoef, ReadOnlySpan<T> weight, ReadOnlySpan<T> plane,
        ReadOnlySpan<T> g, Span<T> gDy, Span<T> gDx, Span<T> gMask) where T : unmanaged, INumber<T>
    {
        ref int ix = ref MemoryMarshal.GetReference(index);
        ref T src = ref MemoryMarshal.GetReference(plane);
        bool offsets = !gDy.IsEmpty, masks = !gMask.IsEmpty;
        ref T dy = ref MemoryMarshal.GetReference(dyCoef);
        ref T dx = ref MemoryMarshal.GetReference(dxCoef);
        ref T wt = ref MemoryMarshal.GetReference(weight);
        for (int p = 0, b = 0; p < g.Length; p++, b += 4)
        {
            T c0 = Unsafe.Add(ref src, Unsafe.Add(ref ix, b)), c1 = Unsafe.Add(ref src, Unsafe.Add(ref ix, b + 1));
            T c2 = Unsafe.Add(ref src, Unsafe.Add(ref ix, b + 2)), c3 = Unsafe.Add(ref src, Unsafe.Add(ref ix, b + 3));
            T v = g[p];
            if (offsets)
            {
                gDy[p] += v * (Unsafe.Add(ref dy, b) * c0 + Unsafe.Add(ref dy, b + 1) * c1 + Unsafe.Add(ref dy, b + 2) * c2 + Unsafe.Add(ref dy, b + 3) * c3);
                gDx[p] += v * (Unsafe.Add(ref dx, b) * c0 + Unsafe.Add(ref dx, b + 1) * c1 + Unsafe.Add(ref dx, b + 2) * c2 + Unsafe.Add(ref dx, b + 3) * c3);
            }
            if (masks)
                gMask[p] += v * (Unsafe.Add(ref wt, b) * c0 + Unsafe.Add(ref wt, b + 1) * c1 + Unsafe.Add(ref wt, b + 2) * c2 + Unsafe.Add(ref wt, b + 3) * c3);
        }
    }

    /// <summary>y = W·columns + (nothing: bias is added by the caller), one image at a time.</summary>
    public static void Forward<T>(in DeformConvShape s, T[] x, int xOff, T[] offset, int offOff, T[]? mask, int maskOff,
        T[] w, int wOff, T[] y, int yOff) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var sh = s;
        int positions = s.Positions, cOutG = s.COut / s.Groups, kG = s.Rows / s.Groups, workers = Workers(s.N);
        ForShares(s.N, workers, (_, from, to) =>
        {
            using var plan = new Plan<T>(sh.OffsetGroups * sh.Taps * positions, false);
            var cols = ArrayPool<T>.Shared.Rent(sh.Rows * positions);
            try
            {
                for (int n = from; n < to; n++)
                {
                    BuildPlan(sh, offset, offOff + n * sh.OffsetChannels * positions, plan);
                    Columns(sh, plan, x, xOff + n * sh.C * sh.Plane, mask, maskOff + n * sh.MaskChannels * positions, cols, workers == 1);
                    for (int g = 0; g < sh.Groups; g++)
                        Gemm.Run(false, false, cOutG, positions, kG, w, wOff + g * cOutG * kG, kG, cols, g * kG * positions, positions,
                            y, yOff + (n * sh.COut + g * cOutG) * positions, positions, false);
                }
            }
            finally { ArrayPool<T>.Shared.Return(cols); }
        });
    }

    /// <summary>
    /// Gradients for input, offset, mask and weight (each null when not wanted; non-null arrays are
    /// zero-filled, dense, of the corresponding tensor's size). gy is dense (N, C_out, Ho, Wo).
    /// Images write disjoint parts of gx, gOffset and gMask; the weight gradient is summed over images, so every worker
    /// but the first accumulates into its own zeroed partial sum, added to gw at the end.
    /// </summary>
    public static void Backward<T>(in DeformConvShape s, T[] x, int xOff, T[] offset, int offOff, T[]? mask, int maskOff,
        T[] w, int wOff, T[] gy, int gyOff, T[]? gx, T[]? gOffset, T[]? gMask, T[]? gw)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var sh = s;
        int positions = s.Positions, plane = s.Plane, cOutG = s.COut / s.Groups, kG = s.Rows / s.Groups, workers = Workers(s.N);
        bool needCols = gw != null, needGradCols = gx != null || gOffset != null || gMask != null;
        int gwLength = gw?.Length ?? 0;
        var partial = new T[]?[workers];
        for (int k = 1; k < workers && gw != null; k++)
        {
            partial[k] = ArrayPool<T>.Shared.Rent(gwLength);
            partial[k].AsSpan(0, gwLength).Clear();
        }
        ForShares(s.N, workers, (worker, from, to) =>
        {
            bool threaded = workers == 1;
            var gwTarget = worker == 0 ? gw : partial[worker];
            using var plan = new Plan<T>(sh.OffsetGroups * sh.Taps * positions, gOffset != null);
            var cols = needCols ? ArrayPool<T>.Shared.Rent(sh.Rows * positions) : null;
            var gcols = needGradCols ? ArrayPool<T>.Shared.Rent(sh.Rows * positions) : null;
            try
            {
                for (int n = from; n < to; n++)
                {
                    int xN = xOff + n * sh.C * plane, mN = maskOff + n * sh.MaskChannels * positions, gyN = gyOff + n * sh.COut * positions;
                    BuildPlan(sh, offset, offOff + n * sh.OffsetChannels * positions, plan);
                    if (cols != null)
                    {
                        Columns(sh, plan, x, xN, mask, mN, cols, threaded);
                        for (int g = 0; g < sh.Groups; g++)
                            Gemm.Run(false, true, cOutG, kG, positions, gy, gyN + g * cOutG * positions, positions,
                                cols, g * kG * positions, positions, gwTarget!, g * cOutG * kG, kG, true);
                    }
                    if (gcols == null) continue;
                    for (int g = 0; g < sh.Groups; g++)
                        Gemm.Run(true, false, kG, positions, cOutG, w, wOff + g * cOutG * kG, kG, gy, gyN + g * cOutG * positions, positions,
                            gcols, g * kG * positions, positions, false);
                    if (gx != null) Col2im(sh, plan, gcols, mask, mN, gx, n * sh.C * plane, threaded);
                    if (gOffset != null || gMask != null)
                        Col2imCoord(sh, plan, gcols, x, xN, mask, mN, gOffset, n * sh.OffsetChannels * positions, gMask, n * sh.MaskChannels * positions, threaded);
                }
            }
            finally
            {
                if (cols != null) ArrayPool<T>.Shared.Return(cols);
                if (gcols != null) ArrayPool<T>.Shared.Return(gcols);
            }
        });
        for (int k = 1; k < workers && gw != null; k++)
        {
            TensorPrimitives.Add(gw.AsSpan(0, gwLength), partial[k].AsSpan(0, gwLength), gw.AsSpan(0, gwLength));
            ArrayPool<T>.Shared.Return(partial[k]!);
        }
    }

    /// <summary>Input gradient of one image: scatter each grad column entry back to its four bilinear corners.</summary>
    private static void Col2im<T>(in DeformConvShape s, Plan<T> plan, T[] gcols, T[]? mask, int maskOff, T[] gx, int gxOff, bool threaded)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int taps = s.Taps, positions = s.Positions, plane = s.Plane, cpg = s.C / s.OffsetGroups;
        // Channels write disjoint planes, so they can run in parallel.
        ForChannels(threaded, s.C, (long)s.Rows * positions, c =>
        {
            int g = c / cpg;
            for (int t = 0; t < taps; t++)
            {
                int sample = (g * taps + t) * positions, row = (c * taps + t) * positions;
                ScatterRow(plan.Index.AsSpan(4 * sample, 4 * positions), plan.Weight.AsSpan(4 * sample, 4 * positions), gx.AsSpan(gxOff + c * plane, plane),
                    mask == null ? default : mask.AsSpan(maskOff + sample, positions), gcols.AsSpan(row, positions));
            }
        });
    }

    /// <summary>
    /// Offset and mask gradients of one image: for each sample, Σ over the group's channels of the grad
    /// column entry times d(sample)/d(dy, dx) (scaled by the mask) and times the sample itself (for the mask).
    /// </summary>
    private static void Col2imCoord<T>(in DeformConvShape s, Plan<T> plan, T[] gcols, T[] x, int xOff, T[]? mask, int maskOff,
        T[]? gOffset, int gOffOff, T[]? gMask, int gMaskOff, bool threaded) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int taps = s.Taps, positions = s.Positions, plane = s.Plane, cpg = s.C / s.OffsetGroups;
        // Each (offset group, tap) owns its output rows, so those pairs can run in parallel.
        ForChannels(threaded, s.OffsetGroups * taps, (long)s.Rows * positions, gt =>
        {
            int g = gt / taps, t = gt % taps, sample = gt * positions;
            int dyRow = gOffOff + 2 * gt * positions, dxRow = dyRow + positions, mRow = gMaskOff + sample;
            int b = 4 * sample, len = 4 * positions;
            var gDy = gOffset == null ? default : gOffset.AsSpan(dyRow, positions);
            var gDx = gOffset == null ? default : gOffset.AsSpan(dxRow, positions);
            var gM = gMask == null ? default : gMask.AsSpan(mRow, positions);
            for (int c = g * cpg; c < (g + 1) * cpg; c++)
                CoordRow(plan.Index.AsSpan(b, len), plan.Dy == null ? default : plan.Dy.AsSpan(b, len), plan.Dx == null ? default : plan.Dx.AsSpan(b, len),
                    plan.Weight.AsSpan(b, len), x.AsSpan(xOff + c * plane, plane), gcols.AsSpan((c * taps + t) * positions, positions), gDy, gDx, gM);
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
