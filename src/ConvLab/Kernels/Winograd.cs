using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;

namespace ConvLab.Kernels;

/// <summary>
/// Winograd minimal filtering F(m x m, 3x3), m = 2 or 4 (Lavin &amp; Gray 2016), for 2-d 3x3 stride-1
/// dilation-1 convolutions with any padding and groups (<see cref="ConvAlgorithm.Winograd"/>). Each
/// output tile of m x m needs an (m+2)² input tile: V = Bᵀ d B per input channel and tile, U = G g Gᵀ per
/// filter, then for each of the α² = (m+2)² transform points one GEMM M[ξ] = U[ξ] · V[ξ] per group
/// (C_out/g x C_in/g times C_in/g x tiles), and Y = Aᵀ M A. Multiplies per output drop from 9 to
/// α²/m² (4 for F(2x2), 2.25 for F(4x4)); the price is rounding error that grows with the transform
/// sizes (see <c>ConvAlgorithmTests</c> for the bounds checked).
/// <para>
/// Backward-data is the 3x3 stride-1 convolution of gy with flipped, channel-transposed weights and
/// padding 2 - p, so it runs here too. The weight gradient has no useful Winograd form at these tile
/// sizes (it would need a different transform per pass); the dispatcher routes it elsewhere.
/// </para>
/// Tiles are processed in chunks of whole tile rows ("strips"), so the transformed input and output
/// (the workspace) stay bounded; transforms are vectorised across all tiles of a chunk.
/// </summary>
internal static class Winograd
{
    /// <summary>0 picks the tile by output size; 2 or 4 forces F(2x2,3x3) or F(4x4,3x3) (tests, bench).</summary>
    [ThreadStatic] internal static int TileOverride;

    /// <summary>Transformed-tile elements (V plus M) a chunk may hold.</summary>
    internal static int ChunkBudget { get; set; } = 1 << 22;

    private sealed record Tf(int M, double[] BT, double[] G, double[] AT)
    {
        public int Alpha => M + 2;
    }

    private static readonly Tf F2 = new(2,
        [1, 0, -1, 0, 0, 1, 1, 0, 0, -1, 1, 0, 0, 1, 0, -1],
        [1, 0, 0, 0.5, 0.5, 0.5, 0.5, -0.5, 0.5, 0, 0, 1],
        [1, 1, 1, 0, 0, 1, -1, -1]);

    private static readonly Tf F4 = new(4,
        [4, 0, -5, 0, 1, 0, 0, -4, -4, 1, 1, 0, 0, 4, -4, -1, 1, 0, 0, -2, -1, 2, 1, 0, 0, 2, -1, -2, 1, 0, 0, 4, 0, -5, 0, 1],
        [1 / 4.0, 0, 0, -1 / 6.0, -1 / 6.0, -1 / 6.0, -1 / 6.0, 1 / 6.0, -1 / 6.0, 1 / 24.0, 1 / 12.0, 1 / 6.0, 1 / 24.0, -1 / 12.0, 1 / 6.0, 0, 0, 1],
        [1, 1, 1, 1, 1, 0, 0, 1, -1, 2, -2, 0, 0, 1, 1, 4, 4, 0, 0, 1, -1, 8, -8, 1]);

    /// <summary>
    /// Output tile size a pass uses. float32 always gets F(2x2): F(4x4)'s transforms (entries up to 8, heavy
    /// cancellation in Aᵀ M A) give 10-50x im2col's rounding error (rms 4e-6, max 2e-5 at 32x512x4x4 vs
    /// 3e-7), which in a ReLU network flips activations near zero and shows up as 1e-2 gradient errors
    /// (cifar_resnet18, see ARCHITECTURE.md); F(2x2) stays within ~2x im2col. float64 keeps F(4x4) unless
    /// the output is so small that its partial tiles waste most of the work (measured: F(4x4) beats F(2x2)
    /// already on 7x7 outputs, 1.4x at 8x512x7x7).
    /// </summary>
    public static int TileFor(ConvPass pass, ConvGeometry g, bool single)
    {
        if (TileOverride != 0) return TileOverride;
        if (single) return 2;
        var o = pass == ConvPass.BackwardInput ? g.InSize : g.OutSize;
        return Math.Min(o[0], o[1]) >= 6 ? 4 : 2;
    }

    /// <summary>Output tiles of a pass over the whole batch: the filter transform is amortised over these.</summary>
    public static long Tiles(ConvPass pass, ConvGeometry g, bool single)
    {
        int m = TileFor(pass, g, single);
        var o = pass == ConvPass.BackwardInput ? g.InSize : g.OutSize;
        return (long)g.Batch * ((o[0] + m - 1) / m) * ((o[1] + m - 1) / m);
    }

    /// <summary>The convolution a pass runs: (C_in, C_out, in size, out size, padding) — backward-data swaps roles.</summary>
    private static (int Cin, int Cout, int IH, int IW, int OH, int OW, int PT, int PL) Shape(ConvPass pass, ConvGeometry g) =>
        pass == ConvPass.BackwardInput
            ? (g.OutChannels, g.InChannels, g.OutSize[0], g.OutSize[1], g.InSize[0], g.InSize[1], 2 - g.Pad[0], 2 - g.Pad[1])
            : (g.InChannels, g.OutChannels, g.InSize[0], g.InSize[1], g.OutSize[0], g.OutSize[1], g.Pad[0], g.Pad[1]);

    private static int Strips(Tf tf, int alpha2, int cin, int cout, int th, int tw, int n) =>
        Math.Clamp(ChunkBudget / Math.Max(1, alpha2 * tw * (cin + cout)), 1, Math.Max(1, n * th));

    /// <summary>Workspace elements: transformed filters, one chunk of V and M, and the per-worker transform scratch.</summary>
    public static long Workspace(ConvPass pass, ConvGeometry g, bool single)
    {
        var tf = TileFor(pass, g, single) == 4 ? F4 : F2;
        var (cin, cout, _, _, oh, ow, _, _) = Shape(pass, g);
        int a = tf.Alpha, a2 = a * a, th = (oh + tf.M - 1) / tf.M, tw = (ow + tf.M - 1) / tf.M;
        long sc = Strips(tf, a2, cin, cout, th, tw, g.Batch), tc = sc * tw;
        long scratch = 2L * a * sc * (tw * tf.M + 2) + 2L * a * tf.M * tc;
        return (long)a2 * cout * (cin / g.Groups) + a2 * tc * (cin + cout) + scratch * Math.Min(Threads.Count, Math.Max(cin, cout));
    }

    /// <summary>Runs the forward or backward-data pass; dst is overwritten.</summary>
    public static void Run<T>(ConvPass pass, T[] a, int aOff, T[] b, int bOff, T[] dst, int dstOff, ConvGeometry g)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (pass == ConvPass.BackwardWeight) throw new InvalidOperationException("Winograd has no weight-gradient pass");
        var tf = TileFor(pass, g, typeof(T) == typeof(float)) == 4 ? F4 : F2;
        var (cin, cout, ih, iw, oh, ow, pt, pl) = Shape(pass, g);
        int n = g.Batch, G = g.Groups, cinG = cin / G, coutG = cout / G, m = tf.M, al = tf.Alpha, a2 = al * al;
        dst.AsSpan(dstOff, n * cout * oh * ow).Clear();
        if (n == 0 || cin == 0 || cout == 0 || oh == 0 || ow == 0) return;
        int th = (oh + m - 1) / m, tw = (ow + m - 1) / m, wt = tw * m + 2;
        var bt = Cast<T>(tf.BT); var at = Cast<T>(tf.AT);
        var u = FilterTransform(tf, b, bOff, pass == ConvPass.BackwardInput, g, cout, cinG);
        int sc = Strips(tf, a2, cin, cout, th, tw, n), tcMax = sc * tw;
        var v = ArrayPool<T>.Shared.Rent(a2 * cin * tcMax);
        var mm = ArrayPool<T>.Shared.Rent(a2 * cout * tcMax);
        for (int s0 = 0; s0 < n * th; s0 += sc)
        {
            int ns = Math.Min(sc, n * th - s0), tc = ns * tw;
            long work = (long)a2 * al * tc;
            Threads.For(0, cin, work * cin, ci => InputTile(a, aOff, ci, s0, ns, tc, v, bt, m, al, th, tw, wt, cin, ih, iw, pt, pl));
            for (int x = 0; x < a2; x++)
                for (int gi = 0; gi < G; gi++)
                    Gemm.Run(false, false, coutG, tc, cinG, u, (x * cout + gi * coutG) * cinG, cinG, v, (x * cin + gi * cinG) * tc, tc,
                        mm, (x * cout + gi * coutG) * tc, tc, false);
            Threads.For(0, cout, work * cout, co => OutputTile(mm, co, s0, ns, tc, dst, dstOff, at, m, al, th, tw, cout, oh, ow));
        }
        ArrayPool<T>.Shared.Return(v); ArrayPool<T>.Shared.Return(mm); ArrayPool<T>.Shared.Return(u);
    }

    private static T[] Cast<T>(double[] v) where T : unmanaged, IFloatingPointIeee754<T> => v.Select(T.CreateTruncating).ToArray();

    /// <summary>
    /// U[ξ][co][ci] = (G g Gᵀ)[ξ] for the pass's weights (flipped and channel-transposed for backward-data),
    /// vectorised across input channels: the taps of one output channel are gathered tap-major first.
    /// </summary>
    private static T[] FilterTransform<T>(Tf tf, T[] w, int wOff, bool adjoint, ConvGeometry g, int cout, int cinG)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int al = tf.Alpha, a2 = al * al, origCinG = g.InPerGroup, origCoutG = g.OutPerGroup;
        var gm = Cast<T>(tf.G);
        var u = ArrayPool<T>.Shared.Rent(a2 * cout * cinG);
        Threads.For(0, cout, (long)cout * cinG * 200, co =>
        {
            var k = ArrayPool<T>.Shared.Rent((9 + 3 * al) * cinG);
            int t = 9 * cinG;
            for (int ci = 0; ci < cinG; ci++)
                for (int tap = 0; tap < 9; tap++)
                {
                    int idx = adjoint
                        ? ((co / origCinG * origCoutG + ci) * origCinG + co % origCinG) * 9 + 8 - tap
                        : (co * cinG + ci) * 9 + tap;
                    k[tap * cinG + ci] = w[wOff + idx];
                }
            // t[x][c] = Σ_r G[x][r] k[r][c], then U[x][y] = Σ_c t[x][c] G[y][c].
            for (int x = 0; x < al; x++)
                for (int c = 0; c < 3; c++)
                    Combine<T>(gm.AsSpan(x * 3, 3), r => k.AsSpan((r * 3 + c) * cinG, cinG), k.AsSpan(t + (x * 3 + c) * cinG, cinG));
            for (int x = 0; x < al; x++)
                for (int y = 0; y < al; y++)
                    Combine<T>(gm.AsSpan(y * 3, 3), c => k.AsSpan(t + (x * 3 + c) * cinG, cinG), u.AsSpan(((x * al + y) * cout + co) * cinG, cinG));
            ArrayPool<T>.Shared.Return(k);
        });
        return u;
    }

    /// <summary>dst[0..len) = Σ_j coef[row·stride + j] · src[j], skipping zero coefficients.</summary>
    private static void Combine<T>(ReadOnlySpan<T> coef, Func<int, ReadOnlySpan<T>> src, Span<T> dst) where T : unmanaged, IFloatingPointIeee754<T>
    {
        dst.Clear();
        for (int j = 0; j < coef.Length; j++)
            if (coef[j] != T.Zero) TensorPrimitives.MultiplyAdd(src(j), coef[j], dst, dst);
    }

    /// <summary>V[ξ][ci][tiles of the chunk] = Bᵀ d B for input channel ci over strips [s0, s0+ns).</summary>
    private static void InputTile<T>(T[] x, int xOff, int ci, int s0, int ns, int tc, T[] v, T[] bt, int m, int al, int th, int tw, int wt,
        int cin, int ih, int iw, int pt, int pl) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int rowLen = ns * wt;
        var d = ArrayPool<T>.Shared.Rent(2 * al * rowLen + 2 * al * m * tc);
        int rowT = al * rowLen, ph = 2 * al * rowLen;
        // d rows i of every strip side by side: rows (s, i) hold padded input row th·m - pt + i.
        for (int i = 0; i < al; i++)
            for (int s = 0; s < ns; s++)
            {
                int strip = s0 + s, n = strip / th, r = strip % th * m - pt + i;
                var line = d.AsSpan(i * rowLen + s * wt, wt);
                line.Clear();
                if ((uint)r >= (uint)ih) continue;
                int lo = Math.Max(0, pl), hi = Math.Min(wt, iw + pl); // columns u with 0 <= u - pl < iw
                if (hi > lo) x.AsSpan(xOff + ((n * cin + ci) * ih + r) * iw + lo - pl, hi - lo).CopyTo(line[lo..hi]);
            }
        // Column transform Bᵀ over the α rows, vectorised along the strips' padded rows.
        for (int a = 0; a < al; a++)
            Combine<T>(bt.AsSpan(a * al, al), i => d.AsSpan(i * rowLen, rowLen), d.AsSpan(rowT + a * rowLen, rowLen));
        // Split each transformed row into phases: P[a][q][r][tile] = row_a[(t + q)·m + r], so tap j of tile t is P[a][j / m][j % m][t].
        for (int a = 0; a < al; a++)
            for (int q = 0; q < 2; q++)
                for (int r = 0; r < m; r++)
                {
                    int dst = ph + ((a * 2 + q) * m + r) * tc;
                    for (int s = 0; s < ns; s++)
                    {
                        int src = rowT + a * rowLen + s * wt + q * m + r;
                        for (int t = 0; t < tw; t++) d[dst + s * tw + t] = src + t * m < rowT + a * rowLen + (s + 1) * wt ? d[src + t * m] : T.Zero;
                    }
                }
        for (int a = 0; a < al; a++)
            for (int b = 0; b < al; b++)
                Combine<T>(bt.AsSpan(b * al, al), j => d.AsSpan(ph + ((a * 2 + j / m) * m + j % m) * tc, tc), v.AsSpan(((a * al + b) * cin + ci) * tc, tc));
        ArrayPool<T>.Shared.Return(d);
    }

    /// <summary>y tiles = Aᵀ M A for output channel co over strips [s0, s0+ns), clipped to the output.</summary>
    private static void OutputTile<T>(T[] mm, int co, int s0, int ns, int tc, T[] y, int yOff, T[] at, int m, int al, int th, int tw, int cout, int oh, int ow)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var z = ArrayPool<T>.Shared.Rent(al * m * tc + m * m * tc);
        int yp = al * m * tc;
        for (int a = 0; a < al; a++)
            for (int r = 0; r < m; r++)
                Combine<T>(at.AsSpan(r * al, al), b => mm.AsSpan(((a * al + b) * cout + co) * tc, tc), z.AsSpan((a * m + r) * tc, tc));
        for (int r1 = 0; r1 < m; r1++)
            for (int r2 = 0; r2 < m; r2++)
                Combine<T>(at.AsSpan(r1 * al, al), a => z.AsSpan((a * m + r2) * tc, tc), z.AsSpan(yp + (r1 * m + r2) * tc, tc));
        for (int s = 0; s < ns; s++)
        {
            int strip = s0 + s, n = strip / th, row0 = strip % th * m;
            for (int r1 = 0; r1 < m && row0 + r1 < oh; r1++)
            {
                int dst = yOff + ((n * cout + co) * oh + row0 + r1) * ow;
                for (int r2 = 0; r2 < m; r2++)
                {
                    int src = yp + (r1 * m + r2) * tc + s * tw;
                    for (int t = 0, col = r2; t < tw && col < ow; t++, col += m) y[dst + col] = z[src + t];
                }
            }
        }
        ArrayPool<T>.Shared.Return(z);
    }
}
