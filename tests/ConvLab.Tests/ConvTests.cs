using ConvLab.NN;
using ConvLab.NN.Functional;
using CsCheck;
using Xunit;

namespace ConvLab.Tests;

public class ConvTests
{
    private static readonly string[] Modes = ["zeros", "reflect", "replicate", "circular"];

    /// <summary>A random convolution whose attributes are all valid; sizes are the smallest valid ones plus a little.</summary>
    private sealed record ConvCase(int D, int N, int Groups, int CinG, int CoutG, int[] K, int[] S, int[] P, int[] Dil, int[] Size, string Mode, bool Bias, bool Tile)
    {
        public int[] InputShape => [N, Groups * CinG, .. Size];
        public int[] WeightShape => [Groups * CoutG, CinG, .. K];
        public override string ToString() =>
            $"d={D} N={N} g={Groups} cinG={CinG} coutG={CoutG} k=[{string.Join(",", K)}] s=[{string.Join(",", S)}] p=[{string.Join(",", P)}] dil=[{string.Join(",", Dil)}] size=[{string.Join(",", Size)}] mode={Mode} bias={Bias} tile={Tile}";
    }

    private static readonly Gen<ConvCase> ValidConv = Gen.Select(Gen.Int[1, 3], Gen.Int[1, 2], Gen.Int[1, 2], Gen.Int[1, 2], Gen.Int[1, 2],
        Gen.Int[1, 3].Array[3], Gen.Int[1, 2].Array[3], Gen.Int[0, 2].Array[3], Gen.Int[1, 2].Array[3], Gen.Int[0, 2].Array[3],
        Gen.OneOf(Modes), Gen.Bool, Gen.Bool,
        (d, n, g, cin, cout, k, s, p, dil, extra, mode, bias, tile) =>
        {
            int kmax = d == 3 ? 2 : 3;
            var kk = k[..d].Select(v => Math.Min(v, kmax)).ToArray();
            var size = new int[d];
            for (int i = 0; i < d; i++)
            {
                int span = dil[i] * (kk[i] - 1) + 1;
                int min = Math.Max(1, span - 2 * p[i]);
                if (mode == "reflect") min = Math.Max(min, p[i] + 1);
                if (mode == "circular") min = Math.Max(min, p[i]);
                size[i] = min + (d == 3 ? Math.Min(extra[i], 1) : extra[i]);
            }
            return new ConvCase(d, n, g, cin, cout, kk, s[..d], p[..d], dil[..d], size, mode, bias, tile);
        });

    private static Tensor ConvD(int d, Tensor x, Tensor w, Tensor? b, int[] s, int[] p, int[] dil, int g, string mode) => d switch
    {
        1 => F.Conv1d(x, w, b, s, p, dil, g, mode),
        2 => F.Conv2d(x, w, b, s, p, dil, g, mode),
        _ => F.Conv3d(x, w, b, s, p, dil, g, mode),
    };

    private static Tensor ConvTD(int d, Tensor x, Tensor w, Tensor? b, int[] s, int[] p, int[] op, int g, int[] dil) => d switch
    {
        1 => F.ConvTranspose1d(x, w, b, s, p, op, g, dil),
        2 => F.ConvTranspose2d(x, w, b, s, p, op, g, dil),
        _ => F.ConvTranspose3d(x, w, b, s, p, op, g, dil),
    };

    /// <summary>Runs <paramref name="body"/> with a one-row im2col budget (forcing tiles) when asked; results must not depend on it.</summary>
    private static void WithTiling(bool tile, Action body)
    {
        int saved = Kernels.Conv.ColumnBudget;
        if (tile) Kernels.Conv.ColumnBudget = 1;
        try { body(); }
        finally { Kernels.Conv.ColumnBudget = saved; }
    }

    private static double Dot(Tensor a, Tensor b) => a.Mul(b).Sum().Item();

    // Direct summation over the definition, with padding modes resolved by index arithmetic.
    private static double[] DirectConv(ConvCase c, double[] x, double[] w, double[]? b, out int[] outShape)
    {
        int d = c.D, cin = c.Groups * c.CinG, cout = c.Groups * c.CoutG;
        var outSize = new int[d];
        for (int i = 0; i < d; i++) outSize[i] = (c.Size[i] + 2 * c.P[i] - c.Dil[i] * (c.K[i] - 1) - 1) / c.S[i] + 1;
        outShape = [c.N, cout, .. outSize];
        int outPlane = outSize.Aggregate(1, (a, v) => a * v), inPlane = c.Size.Aggregate(1, (a, v) => a * v), kv = c.K.Aggregate(1, (a, v) => a * v);
        var y = new double[c.N * cout * outPlane];
        var oi = new int[d]; var ki = new int[d];
        for (int n = 0; n < c.N; n++)
            for (int co = 0; co < cout; co++)
                for (int op = 0; op < outPlane; op++)
                {
                    for (int i = d - 1, r = op; i >= 0; i--) { oi[i] = r % outSize[i]; r /= outSize[i]; }
                    double acc = b?[co] ?? 0;
                    int grp = co / c.CoutG;
                    for (int ci = 0; ci < c.CinG; ci++)
                        for (int kp = 0; kp < kv; kp++)
                        {
                            for (int i = d - 1, r = kp; i >= 0; i--) { ki[i] = r % c.K[i]; r /= c.K[i]; }
                            int idx = 0; bool inside = true;
                            for (int i = 0; i < d; i++)
                            {
                                int L = c.Size[i], v = oi[i] * c.S[i] - c.P[i] + ki[i] * c.Dil[i];
                                if (v < 0 || v >= L)
                                    switch (c.Mode)
                                    {
                                        case "zeros": inside = false; break;
                                        case "reflect": v = v < 0 ? -v : 2 * (L - 1) - v; break;
                                        case "replicate": v = Math.Clamp(v, 0, L - 1); break;
                                        default: v = ((v % L) + L) % L; break;
                                    }
                                idx = idx * L + v;
                            }
                            if (!inside) continue;
                            acc += x[(n * cin + grp * c.CinG + ci) * inPlane + idx] * w[(co * c.CinG + ci) * kv + kp];
                        }
                    y[(n * cout + co) * outPlane + op] = acc;
                }
        return y;
    }

    [Fact]
    public void ConvMatchesDirectSummation()
    {
        ValidConv.Sample(c =>
        {
            var g = new Generator(7);
            var x = Tensor.Randn(c.InputShape, g, dtype: DType.Float64);
            var w = Tensor.Randn(c.WeightShape, g, dtype: DType.Float64);
            var b = c.Bias ? Tensor.Randn([c.Groups * c.CoutG], g, dtype: DType.Float64) : null;
            var want = DirectConv(c, x.ToDoubleArray(), w.ToDoubleArray(), b?.ToDoubleArray(), out var shape);
            WithTiling(c.Tile, () =>
            {
                var y = ConvD(c.D, x, w, b, c.S, c.P, c.Dil, c.Groups, c.Mode);
                Assert.Equal(shape, y.Shape.ToArray());
                var got = y.ToDoubleArray();
                for (int i = 0; i < got.Length; i++) Assert.True(Math.Abs(got[i] - want[i]) < 1e-9, $"{c}: element {i} {got[i]} vs {want[i]}");
                // The float32 path runs the same kernel.
                var y32 = ConvD(c.D, x.Float(), w.Float(), b?.Float(), c.S, c.P, c.Dil, c.Groups, c.Mode);
                Assert.True(y32.Double().AllClose(y, 1e-4, 1e-4), c.ToString());
            });
        }, iter: 40, threads: 1);
    }

    [Fact]
    public void ConvGradCheck()
    {
        ValidConv.Sample(c =>
        {
            var g = new Generator(11);
            var x = TestUtil.RandD(g, c.InputShape);
            var w = TestUtil.RandD(g, c.WeightShape);
            var inputs = c.Bias ? new[] { x, w, TestUtil.RandD(g, c.Groups * c.CoutG) } : new[] { x, w };
            WithTiling(c.Tile, () => TestUtil.AssertGradCheck(t => ConvD(c.D, t[0], t[1], t.Length > 2 ? t[2] : null, c.S, c.P, c.Dil, c.Groups, c.Mode), inputs));
        }, iter: 15, threads: 1);
    }

    [Fact]
    public void ConvSamePaddingKeepsSizeAndHasGradients()
    {
        Gen.Select(Gen.Int[1, 3], Gen.Int[1, 4].Array[3], Gen.Int[1, 2].Array[3], Gen.Int[1, 4].Array[3]).Sample((d, k, dil, size) =>
        {
            var g = new Generator(3);
            var kk = k[..d].Select(v => d == 3 ? Math.Min(v, 2) : v).ToArray();
            var x = TestUtil.RandD(g, [1, 2, .. size[..d]]);
            var w = TestUtil.RandD(g, [2, 2, .. kk]);
            Tensor f(Tensor[] t) => d switch
            {
                1 => F.Conv1d(t[0], t[1], "same", dilation: dil[..d]),
                2 => F.Conv2d(t[0], t[1], "same", dilation: dil[..d]),
                _ => F.Conv3d(t[0], t[1], "same", dilation: dil[..d]),
            };
            Assert.Equal([1, 2, .. size[..d]], f([x, w]).Shape.ToArray());
            TestUtil.AssertGradCheck(f, [x, w]);
            // "valid" is zero padding.
            if (d == 2 && size[0] >= kk[0] && size[1] >= kk[1]) Assert.True(F.Conv2d(x, w, "valid").AllClose(F.Conv2d(x, w)));
        }, iter: 12, threads: 1);
    }

    private sealed record TCase(int D, int N, int Groups, int CinG, int CoutG, int[] K, int[] S, int[] P, int[] Op, int[] Dil, int[] Size, bool Bias, bool Tile);

    private static readonly Gen<TCase> ValidTranspose = Gen.Select(Gen.Int[1, 3], Gen.Int[1, 2], Gen.Int[1, 2], Gen.Int[1, 2], Gen.Int[1, 2],
        Gen.Int[1, 3].Array[3], Gen.Int[1, 3].Array[3], Gen.Int[0, 2].Array[3], Gen.Int[0, 2].Array[3], Gen.Int[1, 2].Array[3], Gen.Int[0, 2].Array[3],
        Gen.Bool, Gen.Bool,
        (d, n, g, cin, cout, k, s, p, op, dil, extra, bias, tile) =>
        {
            var kk = k[..d].Select(v => d == 3 ? Math.Min(v, 2) : v).ToArray();
            var opad = new int[d]; var size = new int[d];
            for (int i = 0; i < d; i++)
            {
                opad[i] = op[i] % Math.Max(s[i], dil[i]);
                int deficit = 2 * p[i] - dil[i] * (kk[i] - 1) - opad[i];   // (in-1)·s must reach this for a positive output
                size[i] = 1 + (deficit > 0 ? (deficit + s[i] - 1) / s[i] : 0) + (d == 3 ? Math.Min(extra[i], 1) : extra[i]);
            }
            return new TCase(d, n, g, cin, cout, kk, s[..d], p[..d], opad, dil[..d], size, bias, tile);
        });

    [Fact]
    public void ConvTransposeGradCheck()
    {
        ValidTranspose.Sample(c =>
        {
            var g = new Generator(5);
            var x = TestUtil.RandD(g, [c.N, c.Groups * c.CinG, .. c.Size]);
            var w = TestUtil.RandD(g, [c.Groups * c.CinG, c.CoutG, .. c.K]);
            var inputs = c.Bias ? new[] { x, w, TestUtil.RandD(g, c.Groups * c.CoutG) } : new[] { x, w };
            WithTiling(c.Tile, () =>
            {
                var y = ConvTD(c.D, x, w, null, c.S, c.P, c.Op, c.Groups, c.Dil);
                for (int i = 0; i < c.D; i++)
                    Assert.Equal((c.Size[i] - 1) * c.S[i] - 2 * c.P[i] + c.Dil[i] * (c.K[i] - 1) + c.Op[i] + 1, y.Shape[2 + i]);
                TestUtil.AssertGradCheck(t => ConvTD(c.D, t[0], t[1], t.Length > 2 ? t[2] : null, c.S, c.P, c.Op, c.Groups, c.Dil), inputs);
            });
        }, iter: 15, threads: 1);
    }

    [Fact]
    public void ConvTransposeIsTheAdjointOfConv()
    {
        ValidConv.Sample(c =>
        {
            var g = new Generator(9);
            var x = Tensor.Randn(c.InputShape, g, dtype: DType.Float64);
            var w = Tensor.Randn(c.WeightShape, g, dtype: DType.Float64);
            var y0 = ConvD(c.D, x, w, null, c.S, c.P, c.Dil, c.Groups, "zeros");
            var u = Tensor.Randn(y0.Shape, g, dtype: DType.Float64);
            // output_padding recovers the input size that the convolution's floor division lost.
            var op = new int[c.D];
            for (int i = 0; i < c.D; i++)
                op[i] = c.Size[i] - ((y0.Shape[2 + i] - 1) * c.S[i] - 2 * c.P[i] + c.Dil[i] * (c.K[i] - 1) + 1);
            WithTiling(c.Tile, () =>
            {
                var xt = ConvTD(c.D, u, w, null, c.S, c.P, op, c.Groups, c.Dil);
                Assert.Equal(x.Shape.ToArray(), xt.Shape.ToArray());
                double lhs = Dot(y0, u), rhs = Dot(x, xt);
                Assert.True(Math.Abs(lhs - rhs) <= 1e-9 * (1 + Math.Abs(lhs)), $"{c}: <conv x, u> = {lhs} but <x, convT u> = {rhs}");
            });
        }, iter: 30, threads: 1);
    }

    [Fact]
    public void PointwiseConvEqualsLinearPerPixel()
    {
        Gen.Select(Gen.Int[1, 3], Gen.Int[1, 5], Gen.Int[1, 5], Gen.Int[1, 6], Gen.Int[1, 6], Gen.Bool).Sample((n, c, o, h, w, dbl) =>
        {
            var g = new Generator(2);
            var dt = dbl ? DType.Float64 : DType.Float32;
            var x = Tensor.Randn([n, c, h, w], g, dtype: dt);
            var wt = Tensor.Randn([o, c, 1, 1], g, dtype: dt);
            var b = Tensor.Randn([o], g, dtype: dt);
            var conv = F.Conv2d(x, wt, b);
            var lin = F.Linear(x.Permute(0, 2, 3, 1), wt.Reshape(o, c), b).Permute(0, 3, 1, 2);
            Assert.True(conv.AllClose(lin, 1e-5, 1e-5));
        }, iter: 20, threads: 1);
    }

    [Fact]
    public void UnbatchedInputGivesTheSqueezedBatchedResult()
    {
        var g = new Generator(4);
        var x = Tensor.Randn([3, 6, 5], g, dtype: DType.Float64);
        var w = Tensor.Randn([4, 3, 3, 2], g, dtype: DType.Float64);
        Assert.True(F.Conv2d(x, w, padding: [1]).AllClose(F.Conv2d(x.Unsqueeze(0), w, padding: [1]).Squeeze(0)));
        var wt = Tensor.Randn([3, 2, 3, 3], g, dtype: DType.Float64);
        Assert.Equal([2, 13, 11], F.ConvTranspose2d(x, wt, stride: [2]).Shape.ToArray());
    }

    // ---------------- pad ----------------

    [Fact]
    public void PadModesOnKnownValues()
    {
        var x = Tensor.FromArray(new double[] { 1, 2, 3 }, 1, 3);
        Assert.Equal(new double[] { 3, 2, 1, 2, 3, 2 }, F.Pad(x, [2, 1], "reflect").ToDoubleArray());
        Assert.Equal(new double[] { 1, 1, 1, 2, 3, 3 }, F.Pad(x, [2, 1], "replicate").ToDoubleArray());
        Assert.Equal(new double[] { 2, 3, 1, 2, 3, 1 }, F.Pad(x, [2, 1], "circular").ToDoubleArray());
        Assert.Equal(new double[] { 7, 7, 1, 2, 3, 7 }, F.Pad(x, [2, 1], "constant", 7).ToDoubleArray());
        Assert.Equal(new double[] { 2 }, F.Pad(x, [-1, -1]).ToDoubleArray());
        // Backward folds the gradient of every copy back onto its source.
        var xr = x.Clone().RequiresGrad_();
        F.Pad(xr, [2, 1], "reflect").Sum().Backward();
        Assert.Equal(new double[] { 1, 3, 2 }, xr.Grad!.ToDoubleArray());
    }

    [Fact]
    public void PadGradCheck()
    {
        Gen.Select(Gen.Int[1, 4], Gen.Int[1, 3].Array[4], Gen.Int[-1, 3].Array[8], Gen.OneOf("constant", "reflect", "replicate", "circular"), Gen.Int[1, 4])
            .Sample((rank, sizes0, pads, mode, m0) =>
            {
                int m = Math.Min(m0, rank);
                var shape = sizes0[..rank];
                var pad = pads[..(2 * m)].Select(p => mode == "constant" ? p : Math.Max(p, 0)).ToArray();
                for (int j = 0; j < m; j++)
                {
                    int dim = rank - 1 - j, need = Math.Max(pad[2 * j], pad[2 * j + 1]);
                    if (mode == "reflect") shape[dim] = Math.Max(shape[dim], need + 1);
                    if (mode == "circular") shape[dim] = Math.Max(shape[dim], need);
                    if (mode == "constant") shape[dim] = Math.Max(shape[dim], -pad[2 * j] - pad[2 * j + 1]);
                }
                var x = TestUtil.RandD(new Generator(1), shape);
                var y = F.Pad(x, pad, mode, 0.25);
                for (int j = 0; j < m; j++) Assert.Equal(shape[rank - 1 - j] + pad[2 * j] + pad[2 * j + 1], y.Shape[rank - 1 - j]);
                if (y.Numel > 0) TestUtil.AssertGradCheck(t => F.Pad(t[0], pad, mode, 0.25), [x]);
            }, iter: 25, threads: 1);
    }

    // ---------------- coord conv ----------------

    [Fact]
    public void CoordConvEqualsConvOverExplicitCoordinatesAndGradChecks()
    {
        Gen.Select(Gen.Int[1, 2], Gen.Int[1, 2], Gen.Int[1, 4], Gen.Int[1, 4], Gen.Int[1, 3], Gen.Int[1, 2], Gen.Int[0, 1], Gen.Bool)
            .Sample((n, c, h, w, k, s, p, withR) =>
            {
                var g = new Generator(6);
                h = Math.Max(h, k); w = Math.Max(w, k);
                int extra = withR ? 3 : 2;
                var x = TestUtil.RandD(g, n, c, h, w);
                var wt = TestUtil.RandD(g, 2, c + extra, k, k);
                var b = TestUtil.RandD(g, 2);
                var yy = new double[n * h * w]; var xx = new double[n * h * w];
                for (int i = 0; i < n * h * w; i++)
                {
                    int r = i / w % h, q = i % w;
                    yy[i] = h > 1 ? -1 + 2.0 * r / (h - 1) : -1;
                    xx[i] = w > 1 ? -1 + 2.0 * q / (w - 1) : -1;
                }
                var parts = new List<Tensor> { x.Detach(), Tensor.FromArray(yy, n, 1, h, w), Tensor.FromArray(xx, n, 1, h, w) };
                if (withR) parts.Add(Tensor.FromArray(yy.Zip(xx, (a, bb) => Math.Sqrt(a * a + bb * bb)).ToArray(), n, 1, h, w));
                var want = F.Conv2d(Tensor.Cat(parts, 1), wt.Detach(), b.Detach(), [s], [p]);
                Assert.True(F.CoordConv2d(x, wt, b, [s], [p], withR: withR).AllClose(want, 1e-6, 1e-9));
                TestUtil.AssertGradCheck(t => F.CoordConv2d(t[0], t[1], t[2], [s], [p], withR: withR), [x, wt, b]);
            }, iter: 10, threads: 1);
    }

    // ---------------- invalid attributes ----------------

    [Fact]
    public void ConvWithRandomAttributesReturnsTheExpectedShapeOrThrowsAnOpError()
    {
        Gen.Select(Gen.Select(Gen.Int[1, 3], Gen.Int[-1, 2], Gen.Int[0, 4], Gen.Int[1, 3], Gen.Int[0, 4], Gen.Int[-1, 3], Gen.Int[-1, 1]),
                Gen.Select(Gen.Int[0, 4].Array[3], Gen.Int[-1, 3].Array[3], Gen.Int[-1, 3].Array[3], Gen.Int[0, 2].Array[3], Gen.Int[0, 5].Array[3],
                    Gen.OneOf("zeros", "reflect", "replicate", "circular", "bogus")))
            .Sample((scalars, lists) =>
            {
                var (d, rankDelta, cin, wIn, cout, groups, biasDelta) = scalars;
                var (k, s, p, dil, size, mode) = lists;
                string op = $"conv{d}d";
                var (kk, ss, pp, dd, sz) = (k[..d], s[..d], p[..d], dil[..d], size[..d]);
                int inRank = d + 1 + rankDelta;
                int[] inShape = inRank == d + 1 ? [cin, .. sz] : inRank == d + 2 ? [2, cin, .. sz] : inRank == d + 3 ? [1, 2, cin, .. sz] : [.. sz];
                var x = Tensor.Zeros(inShape, DType.Float64);
                var w = Tensor.Zeros([cout, wIn, .. kk], DType.Float64);
                var b = biasDelta < 0 ? null : Tensor.Zeros([cout + biasDelta], DType.Float64);
                bool valid = inRank == d + 1 || inRank == d + 2;
                valid &= groups >= 1 && kk.All(v => v >= 1) && ss.All(v => v >= 1) && pp.All(v => v >= 0) && dd.All(v => v >= 1);
                valid &= groups >= 1 && cout % groups == 0 && cin == wIn * groups && biasDelta <= 0 && mode != "bogus";
                var outSize = new int[d];
                for (int i = 0; valid && i < d; i++)
                {
                    if (mode == "reflect" && pp[i] > 0) valid &= pp[i] < sz[i];
                    if (mode == "circular") valid &= pp[i] <= sz[i] && (sz[i] > 0 || pp[i] == 0);
                    if (mode == "replicate" && pp[i] > 0) valid &= sz[i] > 0;
                    int span = dd[i] * (kk[i] - 1) + 1;
                    valid &= sz[i] + 2 * pp[i] >= span;
                    outSize[i] = valid ? (sz[i] + 2 * pp[i] - span) / ss[i] + 1 : 0;
                }
                Tensor? y = null;
                void Call() => y = ConvD(d, x, w, b, ss, pp, dd, groups, mode);
                if (!valid) { TestUtil.AssertOpError(op, Call); return; }
                Call();
                int[] want = inRank == d + 2 ? [2, cout, .. outSize] : [cout, .. outSize];
                Assert.Equal(want, y!.Shape.ToArray());
            }, iter: 400, threads: 1);
    }

    [Fact]
    public void ConvTransposeWithRandomAttributesReturnsTheExpectedShapeOrThrowsAnOpError()
    {
        Gen.Select(Gen.Select(Gen.Int[1, 3], Gen.Int[0, 4], Gen.Int[0, 4], Gen.Int[1, 3], Gen.Int[-1, 3]),
                Gen.Select(Gen.Int[0, 3].Array[3], Gen.Int[-1, 3].Array[3], Gen.Int[-1, 3].Array[3], Gen.Int[-1, 2].Array[3], Gen.Int[0, 2].Array[3], Gen.Int[0, 4].Array[3]))
            .Sample((scalars, lists) =>
            {
                var (d, cin, wIn, coutG, groups) = scalars;
                var (k, s, p, opad, dil, size) = lists;
                string op = $"conv_transpose{d}d";
                var (kk, ss, pp, oo, dd, sz) = (k[..d], s[..d], p[..d], opad[..d], dil[..d], size[..d]);
                var x = Tensor.Zeros([1, cin, .. sz], DType.Float32);
                var w = Tensor.Zeros([wIn, coutG, .. kk], DType.Float32);
                bool valid = groups >= 1 && kk.All(v => v >= 1) && ss.All(v => v >= 1) && pp.All(v => v >= 0) && oo.All(v => v >= 0) && dd.All(v => v >= 1);
                valid &= cin == wIn && groups >= 1 && cin % groups == 0;
                var outSize = new int[d];
                for (int i = 0; valid && i < d; i++)
                {
                    valid &= oo[i] < ss[i] || oo[i] < dd[i];
                    outSize[i] = (sz[i] - 1) * ss[i] - 2 * pp[i] + dd[i] * (kk[i] - 1) + oo[i] + 1;
                    valid &= sz[i] >= 1 && outSize[i] >= 1;
                }
                Tensor? y = null;
                void Call() => y = ConvTD(d, x, w, null, ss, pp, oo, groups, dd);
                if (!valid) { TestUtil.AssertOpError(op, Call); return; }
                Call();
                Assert.Equal([1, coutG * groups, .. outSize], y!.Shape.ToArray());
            }, iter: 400, threads: 1);
    }

    [Fact]
    public void PadWithRandomAttributesReturnsTheExpectedShapeOrThrowsAnOpError()
    {
        Gen.Select(Gen.Int[0, 3], Gen.Int[0, 3].Array[3], Gen.Int[0, 8], Gen.Int[-3, 3].Array[8], Gen.OneOf("constant", "reflect", "replicate", "circular", "edge"))
            .Sample((rank, sizes, len, pads, mode) =>
            {
                var shape = sizes[..rank];
                var pad = pads[..len];
                var x = Tensor.Zeros(shape, DType.Float32);
                bool valid = len % 2 == 0 && len / 2 <= rank && mode != "edge";
                var want = shape.ToArray();
                for (int j = 0; valid && j < len / 2; j++)
                {
                    int dim = rank - 1 - j, l = pad[2 * j], r = pad[2 * j + 1], n = shape[dim];
                    if (mode != "constant") valid &= l >= 0 && r >= 0;
                    if (mode == "constant") valid &= n + l + r >= 0;
                    if (mode == "reflect" && (l > 0 || r > 0)) valid &= l < n && r < n;
                    if (mode == "circular") valid &= l <= n && r <= n && (n > 0 || l + r == 0);
                    if (mode == "replicate" && l + r > 0) valid &= n > 0;
                    want[dim] = n + l + r;
                }
                if (!valid) { TestUtil.AssertOpError("pad", () => F.Pad(x, pad, mode)); return; }
                Assert.Equal(want, F.Pad(x, pad, mode).Shape.ToArray());
            }, iter: 400, threads: 1);
    }

    [Fact]
    public void SpecificErrorMessages()
    {
        var x = Tensor.Zeros(2, 3, 8, 8);
        var e = TestUtil.AssertOpError("conv2d", () => F.Conv2d(x, Tensor.Zeros(4, 4, 3, 3)));
        Assert.Contains("input has 3 channels but weight expects 4", e.Message);
        TestUtil.AssertOpError("conv2d", () => F.Conv2d(x, Tensor.Zeros(4, 3, 3, 3), "same", stride: [2]));
        TestUtil.AssertOpError("conv2d", () => F.Conv2d(x, Tensor.Zeros(4, 3, 9, 9)));
        TestUtil.AssertOpError("conv2d", () => F.Conv2d(x, Tensor.Zeros(4, 3, 3, 3), padding: [8], paddingMode: "reflect"));
        TestUtil.AssertOpError("conv2d", () => F.Conv2d(x, Tensor.Zeros(4, 3, 3, 3), stride: [1, 1, 1]));
        TestUtil.AssertOpError("conv2d", () => F.Conv2d(x, Tensor.Zeros([4, 3, 3, 3], DType.Float64)));
        TestUtil.AssertOpError("conv_transpose2d", () => F.ConvTranspose2d(x, Tensor.Zeros(3, 2, 3, 3), stride: [2], outputPadding: [2]));
        TestUtil.AssertOpError("coord_conv2d", () => F.CoordConv2d(x, Tensor.Zeros(4, 3, 3, 3)));
        TestUtil.AssertOpError("pad", () => F.Pad(x, [1, 2, 3]));
    }

    // ---------------- modules ----------------

    private static void AssertBounded(Tensor t, double bound)
    {
        var v = t.ToDoubleArray();
        Assert.All(v, a => Assert.InRange(Math.Abs(a), 0, bound));
        if (v.Length >= 50) Assert.True(v.Max(Math.Abs) > 0.8 * bound, "values should fill the init range");
    }

    [Fact]
    public void ConvModulesHavePyTorchParametersAndInit()
    {
        var c = new Conv2d(6, 16, 5, generator: new Generator(1));
        Assert.Equal(["weight", "bias"], c.StateDict().Keys);
        Assert.Equal([16, 6, 5, 5], c.Weight.Shape.ToArray());
        AssertBounded(c.Weight, 1 / Math.Sqrt(6 * 25));
        AssertBounded(c.Bias!, 1 / Math.Sqrt(6 * 25));
        Assert.Equal([2, 16, 28, 28], c.Forward(Tensor.Zeros(2, 6, 32, 32)).Shape.ToArray());

        var g = new Conv1d(4, 8, [3], padding: [1], groups: 2, bias: false);
        Assert.Equal(["weight"], g.StateDict().Keys);
        Assert.Equal([8, 2, 3], g.Weight.Shape.ToArray());
        AssertBounded(g.Weight, 1 / Math.Sqrt(2 * 3));

        var same = new Conv3d(2, 3, 3, padding: "same", dilation: 2);
        Assert.Equal([1, 3, 4, 5, 6], same.Forward(Tensor.Zeros(1, 2, 4, 5, 6)).Shape.ToArray());
        var c2 = new Conv2d(2, 3, [2, 3], padding: "same");
        Assert.Equal([3, 5, 7], c2.Forward(Tensor.Zeros(2, 5, 7)).Shape.ToArray());

        var t = new ConvTranspose2d(4, 6, 3, stride: 2, padding: 1, outputPadding: 1, groups: 2);
        Assert.Equal(["weight", "bias"], t.StateDict().Keys);
        Assert.Equal([4, 3, 3, 3], t.Weight.Shape.ToArray());
        AssertBounded(t.Weight, 1 / Math.Sqrt(3 * 9));
        AssertBounded(t.Bias!, 1 / Math.Sqrt(3 * 9));
        Assert.Equal([1, 6, 10, 10], t.Forward(Tensor.Zeros(1, 4, 5, 5)).Shape.ToArray());
        Assert.Equal([1, 2, 7], new ConvTranspose1d(1, 2, 3).Forward(Tensor.Zeros(1, 1, 5)).Shape.ToArray());
        Assert.Equal([1, 3, 3, 3], new ConvTranspose3d(2, 1, 2).Forward(Tensor.Zeros(2, 2, 2, 2)).Shape.ToArray());

        var cc = new CoordConv2d(3, 4, 3, padding: 1, withR: true);
        Assert.Equal(["weight", "bias"], cc.StateDict().Keys);
        Assert.Equal([4, 6, 3, 3], cc.Weight.Shape.ToArray());
        Assert.Equal([2, 4, 5, 7], cc.Forward(Tensor.Zeros(2, 3, 5, 7)).Shape.ToArray());
        Assert.Equal([4, 5, 3, 3], new CoordConv2d(3, 4, 3).Weight.Shape.ToArray());

        var ds = new DepthwiseSeparableConv2d(4, 8, 3, padding: 1, depthMultiplier: 2);
        Assert.Equal(["depthwise.weight", "depthwise.bias", "pointwise.weight", "pointwise.bias"], ds.StateDict().Keys);
        Assert.Equal([8, 1, 3, 3], ds.StateDict()["depthwise.weight"].Shape.ToArray());
        Assert.Equal([8, 8, 1, 1], ds.StateDict()["pointwise.weight"].Shape.ToArray());
        Assert.Equal([1, 8, 6, 6], ds.Forward(Tensor.Zeros(1, 4, 6, 6)).Shape.ToArray());
    }

    [Fact]
    public void ConvModuleWithPaddingModeEqualsPadThenConv()
    {
        foreach (var mode in new[] { "reflect", "replicate", "circular" })
        {
            var m = new Conv2d(2, 3, 3, padding: 2, paddingMode: mode, generator: new Generator(3));
            var x = Tensor.Randn([1, 2, 5, 6], new Generator(4));
            var want = F.Conv2d(F.Pad(x, [2, 2, 2, 2], mode), m.Weight, m.Bias);
            Assert.True(m.Forward(x).AllClose(want, 1e-5, 1e-6), mode);
        }
    }

    [Fact]
    public void ConvModulesValidateTheirArguments()
    {
        TestUtil.AssertOpError("Conv2d", () => new Conv2d(3, 8, 3, groups: 2));
        TestUtil.AssertOpError("Conv2d", () => new Conv2d(4, 6, 3, groups: 4));
        TestUtil.AssertOpError("Conv2d", () => new Conv2d(3, 8, 0));
        TestUtil.AssertOpError("Conv2d", () => new Conv2d(3, 8, 3, padding: "same", stride: 2));
        TestUtil.AssertOpError("Conv2d", () => new Conv2d(3, 8, 3, padding: "full"));
        TestUtil.AssertOpError("Conv1d", () => new Conv1d(3, 8, 3, paddingMode: "mirror"));
        TestUtil.AssertOpError("Conv3d", () => new Conv3d(3, 8, [3, 3]));
        TestUtil.AssertOpError("ConvTranspose2d", () => new ConvTranspose2d(3, 8, 3, stride: 2, outputPadding: 2));
        TestUtil.AssertOpError("CoordConv2d", () => new CoordConv2d(3, 8, 3, groups: 2));
        TestUtil.AssertOpError("DepthwiseSeparableConv2d", () => new DepthwiseSeparableConv2d(3, 8, 3, depthMultiplier: 0));
    }
}
