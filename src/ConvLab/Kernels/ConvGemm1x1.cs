using System.Numerics;

namespace ConvLab.Kernels;

/// <summary>
/// 1x1 unpadded convolution (<see cref="ConvAlgorithm.Gemm1x1"/>) as one GEMM per image and group over the
/// NCHW planes: with stride 1 the input plane already is the column matrix (no im2col at all); with a
/// larger stride the strided positions are gathered into a compact (C_in, P_out) block first, and the
/// input gradient is scattered back from one.
/// </summary>
internal static class ConvGemm1x1
{
    private static bool Strided(ConvGeometry g) => g.InPlane != g.OutPlane;

    /// <summary>Workspace elements one worker holds: the compact input block when strided.</summary>
    public static long Workspace(ConvGeometry g) => Strided(g) ? (long)g.InChannels * g.OutPlane : 0;

    /// <summary>Scratch elements a pass holds: strided-input blocks and GEMM packing buffers.</summary>
    public static long Scratch<T>(ConvPass pass, ConvGeometry g) where T : unmanaged, INumber<T> =>
        Conv.Scratch<T>(pass, g, Workspace(g), Conv.GemmOf(pass, g.OutPerGroup, g.InPerGroup, g.OutPlane));

    /// <summary>Runs one pass; dst is overwritten.</summary>
    public static void Run<T>(ConvPass pass, T[] a, int aOff, T[] b, int bOff, T[] dst, int dstOff, ConvGeometry g)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int[]? map = Strided(g) ? InputIndex(g) : null;
        Conv.ForEachImage(pass, g, dst, dstOff, (int)Workspace(g), (n, d, dOff, ws) => Image(pass, n, a, aOff, b, bOff, d, dOff, g, map, ws));
    }

    /// <summary>For every output position, the input position its 1x1 tap reads.</summary>
    private static int[] InputIndex(ConvGeometry g)
    {
        var map = new int[g.OutPlane];
        Span<int> o = stackalloc int[g.Dims];
        for (int p = 0; p < g.OutPlane; p++)
        {
            int idx = 0;
            for (int j = g.Dims - 1, r = p; j >= 0; j--) { o[j] = r % g.OutSize[j]; r /= g.OutSize[j]; }
            for (int j = 0; j < g.Dims; j++) idx += o[j] * g.Stride[j] * g.InStrides[j];
            map[p] = idx;
        }
        return map;
    }

    private static void Image<T>(ConvPass pass, int n, T[] a, int aOff, T[] b, int bOff, T[] dst, int dstOff, ConvGeometry g, int[]? map, T[] ws)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int cinG = g.InPerGroup, coutG = g.OutPerGroup, P = g.OutPlane, Pin = g.InPlane;
        int xImage = n * g.InChannels * Pin, yImage = n * g.OutChannels * P;
        // Strided: x is read (forward, weight gradient) or written (input gradient) through the compact block.
        T[] xs = map == null ? (pass == ConvPass.BackwardInput ? dst : a) : ws;
        int xsOff = map == null ? (pass == ConvPass.BackwardInput ? dstOff : aOff) + xImage : 0;
        if (map != null && pass != ConvPass.BackwardInput)
            Threads.For(0, g.InChannels, (long)g.InChannels * P, c =>
            {
                int src = aOff + xImage + c * Pin, to = c * P;
                for (int p = 0; p < P; p++) ws[to + p] = a[src + map[p]];
            });
        for (int gi = 0; gi < g.Groups; gi++)
        {
            int xOff = xsOff + gi * cinG * P, yOff = yImage + gi * coutG * P, wOff = gi * coutG * cinG;
            switch (pass)
            {
                case ConvPass.Forward: Gemm.Run(false, false, coutG, P, cinG, b, bOff + wOff, cinG, xs, xOff, P, dst, dstOff + yOff, P, false); break;
                case ConvPass.BackwardInput: Gemm.Run(true, false, cinG, P, coutG, b, bOff + wOff, cinG, a, aOff + yOff, P, xs, xOff, P, false); break;
                default: Gemm.Run(false, true, coutG, cinG, P, b, bOff + yOff, P, xs, xOff, P, dst, dstOff + wOff, cinG, true); break;
            }
        }
        if (map != null && pass == ConvPass.BackwardInput)
            Threads.For(0, g.InChannels, (long)g.InChannels * P, c =>
            {
                int to = dstOff + xImage + c * Pin, src = c * P;
                for (int p = 0; p < P; p++) dst[to + map[p]] = ws[src + p];
            });
    }
}
