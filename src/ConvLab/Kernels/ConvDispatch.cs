using System.Numerics;

namespace ConvLab
{
    /// <summary>
    /// How a convolution is computed (the choice cuDNN/oneDNN make internally). <see cref="Auto"/> lets the
    /// dispatcher pick per shape and pass; forcing one that cannot run the shape is an
    /// <see cref="ArgumentException"/>. A forced algorithm applies to every pass it has (forward,
    /// backward-data, backward-weight); a pass it lacks (Winograd's weight gradient) runs on the algorithm
    /// <see cref="Auto"/> would pick for it.
    /// </summary>
    public enum ConvAlgorithm
    {
        /// <summary>Pick per shape and pass (documented heuristic, see ARCHITECTURE.md).</summary>
        Auto,
        /// <summary>im2col + GEMM over a bounded tile of columns: runs every shape (1-d/2-d/3-d, groups, stride, dilation).</summary>
        Im2colGemm,
        /// <summary>Direct 1-d/2-d convolution vectorised along output rows, no im2col: small-channel layers such as the 3 → 64 7x7/2 stem.</summary>
        Direct,
        /// <summary>Winograd F(2x2,3x3) / F(4x4,3x3) for 2-d 3x3 stride-1 dilation-1 kernels (forward and backward-data).</summary>
        Winograd,
        /// <summary>1x1 unpadded kernels (any stride) as a GEMM over the input planes, no im2col.</summary>
        Gemm1x1,
        /// <summary>Direct SIMD kernel for 1-d/2-d depthwise convolution (groups == in_channels, any channel multiplier).</summary>
        Depthwise,
    }
}

namespace ConvLab.Kernels
{
    /// <summary>
    /// Picks and runs the convolution algorithm of each pass. Auto's heuristic, per pass:
    /// groups == in_channels &gt; 1 (1-d/2-d) → Depthwise; 1x1 unpadded → Gemm1x1; 2-d 3x3 stride-1 dilation-1
    /// with at least <see cref="WinogradMinChannels"/> channels per group in and out, at most
    /// <see cref="WinogradMaxPlane"/> output positions per image and at least <see cref="WinogradMinTiles"/> output
    /// tiles in the batch → Winograd (forward and backward-data);
    /// everything else → Im2colGemm (Direct is never picked: see ARCHITECTURE.md for the measurements).
    /// </summary>
    internal static class ConvDispatch
    {
        /// <summary>Winograd's transforms only pay off once the GEMMs over channels are big enough.</summary>
        public const int WinogradMinChannels = 16;
        /// <summary>
        /// The filter transform costs about as much as the GEMMs over this many tiles (C_out·C_in·α² either way):
        /// at batch 1, 256x14x14 (49 tiles) ran 1.56 ms in Winograd vs 1.00 in im2col; 128x28x28 (196 tiles) broke even.
        /// </summary>
        public const int WinogradMinTiles = 128;
        /// <summary>
        /// Above this many output positions per image, im2col's per-image GEMM is wide enough to beat Winograd's
        /// transforms: 64x56x56 batch 8 ran 7.1-7.6 ms in im2col vs 9.0-9.4 in Winograd, while 64x32x32 batch 32 ran
        /// 26.8 vs 20.2 and 32→64 at 14x14 batch 128 (forward+backward) 79 vs 46 (`convlab bench conv`, storage recycled).
        /// </summary>
        public const int WinogradMaxPlane = 32 * 32;

        /// <summary>Why <paramref name="algo"/> cannot run the geometry, or null when it can.</summary>
        public static string? WhyNot(ConvAlgorithm algo, ConvGeometry g)
        {
            string Sizes(int[] v) => "[" + string.Join(", ", v) + "]";
            return algo switch
            {
                ConvAlgorithm.Auto or ConvAlgorithm.Im2colGemm => null,
                ConvAlgorithm.Direct when g.Dims > 2 => $"Direct handles 1-d and 2-d convolutions, got {g.Dims}-d",
                ConvAlgorithm.Depthwise when g.Dims > 2 => $"Depthwise handles 1-d and 2-d convolutions, got {g.Dims}-d",
                ConvAlgorithm.Depthwise when g.InPerGroup != 1 =>
                    $"Depthwise needs groups == in_channels, got groups {g.Groups} with {g.InChannels} input channels",
                ConvAlgorithm.Gemm1x1 when !g.IsOneByOne =>
                    $"Gemm1x1 needs a 1x1 kernel without padding, got kernel {Sizes(g.Kernel)} and padding {Sizes(g.Pad)}",
                ConvAlgorithm.Winograd when g.Dims != 2 || g.Kernel.Any(k => k != 3) || g.Stride.Any(s => s != 1) || g.Dilation.Any(d => d != 1) =>
                    $"Winograd needs a 2-d 3x3 kernel with stride 1 and dilation 1, got kernel {Sizes(g.Kernel)}, stride {Sizes(g.Stride)}, dilation {Sizes(g.Dilation)}",
                _ => null,
            };
        }

        /// <summary>True when the algorithm has its own kernel for the pass (given it can run the geometry).</summary>
        private static bool HasPass(ConvAlgorithm algo, ConvPass pass) => !(algo == ConvAlgorithm.Winograd && pass == ConvPass.BackwardWeight);

        /// <summary>The algorithm a pass runs on: the forced one where it has that pass, else Auto's pick (<paramref name="single"/>: float32 data).</summary>
        public static ConvAlgorithm Resolve(ConvAlgorithm algo, ConvPass pass, ConvGeometry g, bool single = true)
        {
            if (algo != ConvAlgorithm.Auto && WhyNot(algo, g) == null && HasPass(algo, pass)) return algo;
            // A single-channel input with groups 1 is not depthwise work: im2col ran 1→32 at 28x28 batch 128 in 8.3 ms vs 14.7.
            if (g.Dims <= 2 && g.InPerGroup == 1 && g.Groups > 1) return ConvAlgorithm.Depthwise;
            if (g.IsOneByOne) return ConvAlgorithm.Gemm1x1;
            if (pass != ConvPass.BackwardWeight && WhyNot(ConvAlgorithm.Winograd, g) == null
                && g.InPerGroup >= WinogradMinChannels && g.OutPerGroup >= WinogradMinChannels && g.OutPlane <= WinogradMaxPlane
                && Winograd.Tiles(pass, g, single) >= WinogradMinTiles)
                return ConvAlgorithm.Winograd;
            return ConvAlgorithm.Im2colGemm;
        }

        /// <summary>Runs one pass with the resolved algorithm; dst is overwritten.</summary>
        public static void Run<T>(ConvAlgorithm algo, ConvPass pass, T[] a, int aOff, T[] b, int bOff, T[] dst, int dstOff, ConvGeometry g)
            where T : unmanaged, IFloatingPointIeee754<T>
        {
            switch (Resolve(algo, pass, g, typeof(T) == typeof(float)))
            {
                case ConvAlgorithm.Direct:
                case ConvAlgorithm.Depthwise: ConvDirect.Run(pass, a, aOff, b, bOff, dst, dstOff, g); break;
                case ConvAlgorithm.Winograd: Winograd.Run(pass, a, aOff, b, bOff, dst, dstOff, g); break;
                case ConvAlgorithm.Gemm1x1: ConvGemm1x1.Run(pass, a, aOff, b, bOff, dst, dstOff, g); break;
                default: Conv.Run(pass, a, aOff, b, bOff, dst, dstOff, g); break;
            }
        }

        /// <summary>Workspace bytes the resolved algorithm of a pass allocates (beyond inputs and outputs).</summary>
        public static long WorkspaceBytes<T>(ConvAlgorithm algo, ConvPass pass, ConvGeometry g) where T : unmanaged, INumber<T>
        {
            bool single = typeof(T) == typeof(float);
            long elems = Resolve(algo, pass, g, single) switch
            {
                ConvAlgorithm.Direct or ConvAlgorithm.Depthwise => ConvDirect.Workspace<T>(pass, g) * Threads.Count,
                ConvAlgorithm.Winograd => Winograd.Workspace(pass, g, single),
                ConvAlgorithm.Gemm1x1 => ConvGemm1x1.Scratch<T>(pass, g),
                _ => Conv.Scratch<T>(pass, g),
            };
            return elems * System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        }
    }
}
