using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;

namespace ConvLab.Kernels;

/// <summary>
/// Shape of one N-d convolution from an input (Batch, InChannels, *InSize) to an output
/// (Batch, OutChannels, *OutSize) with weight (OutChannels, InChannels/Groups, *Kernel).
/// <see cref="Pad"/> is the padding before each dimension; whatever the output size needs beyond the
/// input on the far side reads as zero too, which gives PyTorch's asymmetric "same" padding for free.
/// A transposed convolution uses the geometry of the convolution it is the adjoint of.
/// </summary>
internal sealed class ConvGeometry
{
    public ConvGeometry(int batch, int inChannels, int outChannels, int groups, int[] inSize, int[] outSize, int[] kernel, int[] stride, int[] pad, int[] dilation)
    {
        (Batch, InChannels, OutChannels, Groups) = (batch, inChannels, outChannels, groups);
        (InSize, OutSize, Kernel, Stride, Pad, Dilation) = (inSize, outSize, kernel, stride, pad, dilation);
        InPlane = ShapeUtil.Numel(inSize); OutPlane = ShapeUtil.Numel(outSize); KernelVolume = ShapeUtil.Numel(kernel);
        InStrides = ShapeUtil.ContiguousStrides(inSize);
        IsOneByOne = kernel.All(k => k == 1) && pad.All(p => p == 0);
    }

    public int Batch { get; }
    public int InChannels { get; }
    public int OutChannels { get; }
    public int Groups { get; }
    public int[] InSize { get; }
    public int[] OutSize { get; }
    public int[] Kernel { get; }
    public int[] Stride { get; }
    public int[] Pad { get; }
    public int[] Dilation { get; }
    public int[] InStrides { get; }
    public int InPlane { get; }
    public int OutPlane { get; }
    public int KernelVolume { get; }
    public int Dims => InSize.Length;
    /// <summary>A 1x1 unpadded convolution (any stride): a GEMM over (strided) input planes.</summary>
    public bool IsOneByOne { get; }
    /// <summary>Input channels per group.</summary>
    public int InPerGroup => InChannels / Groups;
    /// <summary>Output channels per group.</summary>
    public int OutPerGroup => OutChannels / Groups;
    /// <summary>Multiply-adds of one pass (all three passes cost the same).</summary>
    public long Macs => (long)Batch * OutChannels * OutPlane * InPerGroup * KernelVolume;
}

/// <summary>The three passes of a convolution; a transposed convolution runs them with roles swapped.</summary>
internal enum ConvPass
{
    /// <summary>y = conv(x, w): a = x, b = w, dst = y.</summary>
    Forward,
    /// <summary>gx = convᵀ(gy, w): a = gy, b = w, dst = gx.</summary>
    BackwardInput,
    /// <summary>gw = Σ gy ⊗ columns(x): a = x, b = gy, dst = gw.</summary>
    BackwardWeight,
}

/// <summary>
/// N-d convolution by im2col + GEMM per group (<see cref="ConvAlgorithm.Im2colGemm"/>, the general path).
/// Columns are built for a tile of rows of the outermost output dimension of one image at a time, so the
/// workspace stays bounded whatever the batch and image size. Zero padding, stride and dilation are
/// handled in the gather (no padded copy).
/// </summary>
internal static class Conv
{
    /// <summary>Elements of the im2col workspace per tile; only speed depends on it (tests shrink it to exercise tiling).</summary>
    internal static int ColumnBudget { get; set; } = 1 << 21;

    /// <summary>Elements a pass writes to its destination.</summary>
    public static int DstLength(ConvPass pass, ConvGeometry g) => pass switch
    {
        ConvPass.Forward => g.Batch * g.OutChannels * g.OutPlane,
        ConvPass.BackwardInput => g.Batch * g.InChannels * g.InPlane,
        _ => g.OutChannels * (g.InChannels / g.Groups) * g.KernelVolume,
    };

    private static int Tile(ConvGeometry g)
    {
        int rows = g.InChannels / g.Groups * g.KernelVolume, inner = g.OutPlane / Math.Max(1, g.OutSize[0]);
        return Math.Clamp(ColumnBudget / Math.Max(1, rows * inner), 1, Math.Max(1, g.OutSize[0]));
    }

    /// <summary>Scratch elements an im2col pass holds.</summary>
    public static long Scratch<T>(ConvPass pass, ConvGeometry g) where T : unmanaged, INumber<T> =>
        Scratch<T>(pass, g, Workspace(g), GemmOf(pass, g.OutChannels / g.Groups, g.InChannels / g.Groups * g.KernelVolume, Tile(g) * (g.OutPlane / Math.Max(1, g.OutSize[0]))));

    /// <summary>Column elements one worker holds.</summary>
    public static long Workspace(ConvGeometry g) =>
        (long)(g.InChannels / g.Groups * g.KernelVolume) * Tile(g) * (g.OutPlane / Math.Max(1, g.OutSize[0]));

    /// <summary>Runs one pass; all buffers dense (row-major) from their offsets, dst is overwritten.</summary>
    public static void Run<T>(ConvPass pass, T[] a, int aOff, T[] b, int bOff, T[] dst, int dstOff, ConvGeometry g)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int tile = Tile(g);
        ForEachImage(pass, g, dst, dstOff, (int)Workspace(g), (n, d, dOff, col) => Image(pass, n, a, aOff, b, bOff, d, dOff, g, tile, col));
    }

    /// <summary>
    /// Clears dst and runs <paramref name="image"/>(n, dst, dstOff, workspace) for every image. Small images
    /// leave a GEMM single-threaded, so the batch is spread over cores instead, in one share per worker.
    /// </summary>
    public static void ForEachImage<T>(ConvPass pass, ConvGeometry g, T[] dst, int dstOff, int workspace, Action<int, T[], int, T[]> image)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int dstLen = DstLength(pass, g);
        dst.AsSpan(dstOff, dstLen).Clear();
        if (g.Batch == 0 || g.OutPlane == 0 || g.InChannels == 0 || g.OutChannels == 0) return;
        if (OverImages(g))
        {
            // One contiguous share of the batch per worker, its scratch rented and returned on this thread: pooled
            // so a training step hands nothing to the GC, and kept in this thread's pool slots rather than in those
            // of whichever pool threads happened to run the workers. Worker 0 accumulates the weight gradient in
            // dst itself; the others in partial sums added at the end.
            int workers = Math.Min(Threads.Count, g.Batch);
            bool weights = pass == ConvPass.BackwardWeight;
            var scratch = new T[workers][];
            var partial = new T[workers][];
            for (int w = 0; w < workers; w++)
            {
                scratch[w] = ArrayPool<T>.Shared.Rent(workspace);
                partial[w] = weights && w > 0 ? RentCleared<T>(dstLen) : dst;
            }
            Parallel.For(0, workers, Threads.Options, w =>
            {
                for (int n = g.Batch * w / workers; n < g.Batch * (w + 1) / workers; n++)
                    image(n, partial[w], partial[w] == dst ? dstOff : 0, scratch[w]);
            });
            for (int w = 0; w < workers; w++)
            {
                ArrayPool<T>.Shared.Return(scratch[w]);
                if (partial[w] == dst) continue;
                TensorPrimitives.Add(dst.AsSpan(dstOff, dstLen), partial[w].AsSpan(0, dstLen), dst.AsSpan(dstOff, dstLen));
                ArrayPool<T>.Shared.Return(partial[w]);
            }
            return;
        }
        var ws = ArrayPool<T>.Shared.Rent(workspace);
        for (int n = 0; n < g.Batch; n++) image(n, dst, dstOff, ws);
        ArrayPool<T>.Shared.Return(ws);
    }

    /// <summary>Whether <see cref="ForEachImage"/> spreads the batch over threads (images too small for a threaded GEMM).</summary>
    private static bool OverImages(ConvGeometry g) =>
        g.Batch > 1 && Threads.Count > 1 && (long)g.OutChannels * (g.InChannels / g.Groups) * g.KernelVolume * g.OutPlane < (1 << 18);

    /// <summary>
    /// The products a pass multiplies per image and group, as (transA, transB, M, N, K) of <see cref="Gemm.Run"/>: the
    /// weights are <paramref name="outPerGroup"/> x <paramref name="rows"/> and the columns <paramref name="rows"/> x
    /// <paramref name="cols"/> (im2col: rows = C_in/groups * kernel volume; 1x1: rows = C_in/groups, cols = output plane).
    /// </summary>
    internal static (bool TransA, bool TransB, int M, int N, int K) GemmOf(ConvPass pass, int outPerGroup, int rows, int cols) => pass switch
    {
        ConvPass.Forward => (false, false, outPerGroup, cols, rows),
        ConvPass.BackwardInput => (true, false, rows, cols, outPerGroup),
        _ => (false, true, outPerGroup, rows, cols),
    };

    /// <summary>
    /// Scratch elements a pass run through <see cref="ForEachImage"/> holds at once: the pooled workspace of every worker,
    /// the weight gradient's partial sums, and the packing buffers of every thread that multiplies.
    /// </summary>
    internal static long Scratch<T>(ConvPass pass, ConvGeometry g, long workspace, (bool TransA, bool TransB, int M, int N, int K) gemm)
        where T : unmanaged, INumber<T>
    {
        bool overImages = OverImages(g);
        int workers = overImages ? Math.Min(Threads.Count, g.Batch) : 1;
        long partials = pass == ConvPass.BackwardWeight ? (workers - 1) * Pooled(DstLength(pass, g)) : 0;
        var (threads, pack) = Gemm.PackFootprint<T>(gemm.TransA, gemm.TransB, gemm.M, gemm.N, gemm.K);
        return workers * Pooled(workspace) + partials + workers * threads * pack;
    }

    /// <summary>The length <see cref="ArrayPool{T}.Shared"/> hands out for a request: the next power of two.</summary>
    private static long Pooled(long n) => n == 0 ? 0 : (long)System.Numerics.BitOperations.RoundUpToPowerOf2((ulong)Math.Max(n, 16));

    private static T[] RentCleared<T>(int n)
    {
        var a = ArrayPool<T>.Shared.Rent(n);
        a.AsSpan(0, n).Clear();
        return a;
    }

    /// <summary>One image of a pass, every group, in tiles of <paramref name="tile"/> outermost output rows.</summary>
    private static void Image<T>(ConvPass pass, int n, T[] a, int aOff, T[] b, int bOff, T[] dst, int dstOff, ConvGeometry g, int tile, T[] col)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int cinG = g.InChannels / g.Groups, coutG = g.OutChannels / g.Groups;
        int rows = cinG * g.KernelVolume, P = g.OutPlane, Pin = g.InPlane, inner = P / g.OutSize[0];
        for (int gi = 0; gi < g.Groups; gi++)
        {
            int xOff = (n * g.InChannels + gi * cinG) * Pin;   // this group's input planes
            int yOff = (n * g.OutChannels + gi * coutG) * P;   // this group's output planes
            int wOff = gi * coutG * rows;                      // this group's weights (coutG x rows)
            for (int o0 = 0; o0 < g.OutSize[0]; o0 += tile)
            {
                int o1 = Math.Min(o0 + tile, g.OutSize[0]), tp = (o1 - o0) * inner;
                int tOff = o0 * inner;
                switch (pass)
                {
                    case ConvPass.Forward:
                        Transfer(false, a, aOff + xOff, cinG, g, o0, o1, col);
                        Gemm.Run(false, false, coutG, tp, rows, b, bOff + wOff, rows, col, 0, tp, dst, dstOff + yOff + tOff, P, false);
                        break;
                    case ConvPass.BackwardInput:
                        Gemm.Run(true, false, rows, tp, coutG, b, bOff + wOff, rows, a, aOff + yOff + tOff, P, col, 0, tp, false);
                        Transfer(true, dst, dstOff + xOff, cinG, g, o0, o1, col);
                        break;
                    default:
                        Transfer(false, a, aOff + xOff, cinG, g, o0, o1, col);
                        Gemm.Run(false, true, coutG, rows, tp, b, bOff + yOff + tOff, P, col, 0, tp, dst, dstOff + wOff, rows, true);
                        break;
                }
            }
        }
    }

    /// <summary>
    /// im2col (<paramref name="toImage"/> false: columns ← image) or its adjoint col2im (true:
    /// image += columns) for output rows [o0, o1) of the outermost dimension. Column row c·K + k holds
    /// input channel c seen through kernel tap k at every output position of the tile.
    /// </summary>
    private static void Transfer<T>(bool toImage, T[] img, int imgOff, int channels, ConvGeometry g, int o0, int o1, T[] col)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int K = g.KernelVolume;
        int tp = (o1 - o0) * (g.OutPlane / g.OutSize[0]);
        // Each channel owns its image plane and its column rows, so channels run independently.
        Threads.For(0, channels, (long)channels * K * tp, c => TransferChannel(toImage, img, imgOff + c * g.InPlane, g, o0, o1, col, c * K * tp));
    }

    private static void TransferChannel<T>(bool toImage, T[] img, int plane, ConvGeometry g, int o0, int o1, T[] col, int colRow0)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int d = g.Dims, last = d - 1, outer = d - 1;
        // Lines run along the last dimension; for 1-d the tile itself is the only line.
        int lineStart = d == 1 ? o0 : 0;
        int lineLen = d == 1 ? o1 - o0 : g.OutSize[last];
        int s = g.Stride[last], inLast = g.InSize[last];
        Span<int> kIdx = stackalloc int[d];
        Span<int> oIdx = stackalloc int[Math.Max(outer, 1)];
        int colPos = colRow0;
        for (int k = 0; k < g.KernelVolume; k++)
        {
            for (int j = last, r = k; j >= 0; j--) { kIdx[j] = r % g.Kernel[j]; r /= g.Kernel[j]; }
            // Valid outputs ox of this tap along the last dimension: 0 <= ox·s + shift < inLast.
            int shift = kIdx[last] * g.Dilation[last] - g.Pad[last];
            int lo = shift >= 0 ? 0 : (-shift + s - 1) / s;
            int hi = inLast - 1 - shift < 0 ? 0 : (inLast - 1 - shift) / s + 1;
            lo = Math.Clamp(lo, lineStart, lineStart + lineLen); hi = Math.Clamp(hi, lo, lineStart + lineLen);

            oIdx.Clear();
            if (outer > 0) oIdx[0] = o0;
            while (true)
            {
                int baseOff = plane; bool valid = true;
                for (int j = 0; j < outer; j++)
                {
                    int ii = oIdx[j] * g.Stride[j] - g.Pad[j] + kIdx[j] * g.Dilation[j];
                    if ((uint)ii >= (uint)g.InSize[j]) { valid = false; break; }
                    baseOff += ii * g.InStrides[j];
                }
                var line = col.AsSpan(colPos, lineLen);
                int cnt = hi - lo;
                if (!valid || cnt == 0) { if (!toImage) line.Clear(); }
                else
                {
                    int cFirst = lo - lineStart, iFirst = baseOff + lo * s + shift;
                    if (!toImage)
                    {
                        line[..cFirst].Clear();
                        line[(cFirst + cnt)..].Clear();
                        if (s == 1) img.AsSpan(iFirst, cnt).CopyTo(line.Slice(cFirst, cnt));
                        else for (int t = 0; t < cnt; t++) line[cFirst + t] = img[iFirst + t * s];
                    }
                    else if (s == 1)
                    {
                        var dst = img.AsSpan(iFirst, cnt);
                        TensorPrimitives.Add(dst, line.Slice(cFirst, cnt), dst);
                    }
                    else for (int t = 0; t < cnt; t++) img[iFirst + t * s] += line[cFirst + t];
                }
                colPos += lineLen;
                int q = outer - 1;
                for (; q >= 0; q--)
                {
                    if (++oIdx[q] < (q == 0 ? o1 : g.OutSize[q])) break;
                    oIdx[q] = q == 0 ? o0 : 0;
                }
                if (q < 0) break;
            }
        }
    }

    /// <summary>Adds bias[c] to every element of each (n, c) plane of a dense (N, C, plane) buffer.</summary>
    public static void AddBias<T>(T[] y, int batch, int channels, int plane, T[] bias, int biasOff)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int n = 0; n < batch; n++)
            for (int c = 0; c < channels; c++)
            {
                var p = y.AsSpan((n * channels + c) * plane, plane);
                TensorPrimitives.Add(p, bias[biasOff + c], p);
            }
    }
}
