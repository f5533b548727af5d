using ConvLab.NN;
using ConvLab.NN.Functional;
using CsCheck;
using Xunit;

namespace ConvLab.Tests;

public class DeformTests
{
    public sealed record DCase(int N, int Groups, int OffsetGroups, int C, int CoutG, int Kh, int Kw, int[] S, int[] P, int[] D,
        int H, int W, bool Modulated, bool Bias, ulong Seed)
    {
        public int COut => Groups * CoutG;
        public int Ho => (H + 2 * P[0] - (D[0] * (Kh - 1) + 1)) / S[0] + 1;
        public int Wo => (W + 2 * P[1] - (D[1] * (Kw - 1) + 1)) / S[1] + 1;
        public override string ToString() =>
            $"N={N} g={Groups} og={OffsetGroups} C={C} Cout={COut} k={Kh}x{Kw} s=[{S[0]},{S[1]}] p=[{P[0]},{P[1]}] d=[{D[0]},{D[1]}] HxW={H}x{W} mod={Modulated} bias={Bias} seed={Seed}";
    }

    private static readonly Gen<DCase> Valid = Gen.Select(Gen.Int[1, 2], Gen.Int[1, 2], Gen.Int[1, 2], Gen.Int[1, 2], Gen.Int[1, 2],
        Gen.Int[1, 3].Array[2], Gen.Int[1, 2].Array[2], Gen.Int[0, 2].Array[2], Gen.Int[1, 2].Array[2], Gen.Int[0, 1].Array[2],
        Gen.Bool, Gen.Bool, Gen.ULong,
        (n, g, og, cmul, coutG, k, s, p, d, extra, mod, bias, seed) =>
        {
            int c = (g == og ? g : g * og) * cmul;
            int h = Math.Max(1, d[0] * (k[0] - 1) + 1 - 2 * p[0]) + extra[0];
            int w = Math.Max(1, d[1] * (k[1] - 1) + 1 - 2 * p[1]) + extra[1];
            return new DCase(n, g, og, c, coutG, k[0], k[1], s, p, d, h, w, mod, bias, seed);
        });

    /// <summary>Offsets k + u, k ∈ [-3, 2], u ∈ [0.2, 0.8]: every sample point is 0.2 away from integer coordinates
    /// (where bilinear sampling has kinks), and some fall outside the image.</summary>
    private static Tensor KinkFreeOffsets(Generator gen, int[] shape, DType dtype)
    {
        var d = new double[ShapeUtil.Numel(shape)];
        for (int i = 0; i < d.Length; i++) d[i] = gen.NextInt(6) - 3 + 0.2 + 0.6 * gen.NextDouble();
        return Tensor.FromArray(d, shape).To(dtype);
    }

    private static (Tensor X, Tensor Off, Tensor W, Tensor? B, Tensor? M) Inputs(DCase c, DType dtype = DType.Float64)
    {
        var gen = new Generator(c.Seed);
        var x = Tensor.Randn([c.N, c.C, c.H, c.W], gen, dtype: dtype);
        var off = KinkFreeOffsets(gen, [c.N, 2 * c.OffsetGroups * c.Kh * c.Kw, c.Ho, c.Wo], dtype);
        var w = Tensor.Randn([c.COut, c.C / c.Groups, c.Kh, c.Kw], gen, dtype: dtype);
        var b = c.Bias ? Tensor.Randn([c.COut], gen, dtype: dtype) : null;
        var m = c.Modulated ? Tensor.Rand([c.N, c.OffsetGroups * c.Kh * c.Kw, c.Ho, c.Wo], gen, -0.5, 1.5, dtype) : null;
        return (x, off, w, b, m);
    }

    /// <summary>torchvision's bilinear_interpolate, written independently: 0 beyond one pixel outside, outside corners read 0.</summary>
    private static double Bilinear(double[] x, int planeOff, int h, int w, double y, double xc)
    {
        if (y <= -1 || y >= h || xc <= -1 || xc >= w) return 0;
        int y0 = (int)Math.Floor(y), x0 = (int)Math.Floor(xc);
        double ly = y - y0, lx = xc - x0, acc = 0;
        for (int dy = 0; dy < 2; dy++)
            for (int dx = 0; dx < 2; dx++)
            {
                int yy = y0 + dy, xx = x0 + dx;
                if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
                acc += (dy == 0 ? 1 - ly : ly) * (dx == 0 ? 1 - lx : lx) * x[planeOff + yy * w + xx];
            }
        return acc;
    }

    /// <summary>Direct loop-nest deformable convolution (no im2col, no sharing), the definition the kernel must match.</summary>
    private static double[] Naive(DCase c, Tensor xT, Tensor offT, Tensor wT, Tensor? bT, Tensor? mT)
    {
        var x = xT.ToDoubleArray(); var off = offT.ToDoubleArray(); var w = wT.ToDoubleArray();
        var b = bT?.ToDoubleArray(); var m = mT?.ToDoubleArray();
        int cinG = c.C / c.Groups, taps = c.Kh * c.Kw, cpo = c.C / c.OffsetGroups, ho = c.Ho, wo = c.Wo;
        var y = new double[c.N * c.COut * ho * wo];
        for (int n = 0; n < c.N; n++)
            for (int co = 0; co < c.COut; co++)
                for (int oy = 0; oy < ho; oy++)
                    for (int ox = 0; ox < wo; ox++)
                    {
                        double acc = b?[co] ?? 0;
                        for (int ci = 0; ci < cinG; ci++)
                        {
                            int ch = co / c.CoutG * cinG + ci, og = ch / cpo;
                            for (int i = 0; i < c.Kh; i++)
                                for (int j = 0; j < c.Kw; j++)
                                {
                                    int t = i * c.Kw + j;
                                    double dy = off[((n * c.OffsetGroups * taps * 2 + og * taps * 2 + 2 * t) * ho + oy) * wo + ox];
                                    double dx = off[((n * c.OffsetGroups * taps * 2 + og * taps * 2 + 2 * t + 1) * ho + oy) * wo + ox];
                                    double mk = m == null ? 1 : m[((n * c.OffsetGroups * taps + og * taps + t) * ho + oy) * wo + ox];
                                    double v = Bilinear(x, (n * c.C + ch) * c.H * c.W, c.H, c.W,
                                        oy * c.S[0] - c.P[0] + i * c.D[0] + dy, ox * c.S[1] - c.P[1] + j * c.D[1] + dx);
                                    acc += w[((co * cinG + ci) * c.Kh + i) * c.Kw + j] * mk * v;
                                }
                        }
                        y[((n * c.COut + co) * ho + oy) * wo + ox] = acc;
                    }
        return y;
    }

    /// <summary>A plain convolution by direct loops (zero padding), to compare the zero-offset cases against.</summary>
    private static double[] NaiveConv(Tensor xT, Tensor wT, Tensor? bT, int[] s, int[] p, int[] d, int groups)
    {
        var x = xT.ToDoubleArray(); var w = wT.ToDoubleArray(); var b = bT?.ToDoubleArray();
        int n = xT.Shape[0], c = xT.Shape[1], h = xT.Shape[2], wd = xT.Shape[3];
        int cout = wT.Shape[0], cinG = wT.Shape[1], kh = wT.Shape[2], kw = wT.Shape[3];
        int ho = (h + 2 * p[0] - d[0] * (kh - 1) - 1) / s[0] + 1, wo = (wd + 2 * p[1] - d[1] * (kw - 1) - 1) / s[1] + 1;
        var y = new double[n * cout * ho * wo];
        for (int b0 = 0; b0 < n; b0++)
            for (int co = 0; co < cout; co++)
                for (int oy = 0; oy < ho; oy++)
                    for (int ox = 0; ox < wo; ox++)
                    {
                        double acc = b?[co] ?? 0;
                        for (int ci = 0; ci < cinG; ci++)
                            for (int i = 0; i < kh; i++)
                                for (int j = 0; j < kw; j++)
                                {
                                    int yy = oy * s[0] - p[0] + i * d[0], xx = ox * s[1] - p[1] + j * d[1];
                                    if (yy < 0 || yy >= h || xx < 0 || xx >= wd) continue;
                                    int ch = co / (cout / groups) * cinG + ci;
                                    acc += w[((co * cinG + ci) * kh + i) * kw + j] * x[((b0 * c + ch) * h + yy) * wd + xx];
                                }
                        y[((b0 * cout + co) * ho + oy) * wo + ox] = acc;
                    }
        return y;
    }

    private static void AssertClose(double[] want, double[] got, double tol)
    {
        Assert.Equal(want.Length, got.Length);
        for (int i = 0; i < want.Length; i++)
            Assert.True(Math.Abs(want[i] - got[i]) <= tol * (1 + Math.Abs(want[i])), $"element {i}: want {want[i]}, got {got[i]}");
    }

    [Fact]
    public void ForwardMatchesDirectLoopDefinitionInFloat64AndFloat32() =>
        Valid.Sample(c =>
        {
            var (x, off, w, b, m) = Inputs(c);
            var y = F.DeformConv2d(x, off, w, b, c.S, c.P, c.D, m);
            Assert.Equal([c.N, c.COut, c.Ho, c.Wo], y.Shape.ToArray());
            var want = Naive(c, x, off, w, b, m);
            AssertClose(want, y.ToDoubleArray(), 1e-12);
            var y32 = F.DeformConv2d(x.Float(), off.Float(), w.Float(), b?.Float(), c.S, c.P, c.D, m?.Float());
            AssertClose(want, y32.ToDoubleArray(), 1e-4);
        }, iter: 40);

    [Fact]
    public void GradientsMatchFiniteDifferences() =>
        Valid.Sample(c =>
        {
            var (x, off, w, b, m) = Inputs(c);
            var inputs = new List<Tensor> { x.RequiresGrad_(), off.RequiresGrad_(), w.RequiresGrad_() };
            if (b != null) inputs.Add(b.RequiresGrad_());
            if (m != null) inputs.Add(m.RequiresGrad_());
            TestUtil.AssertGradCheck(t => F.DeformConv2d(t[0], t[1], t[2], b != null ? t[3] : null, c.S, c.P, c.D, m != null ? t[^1] : null), inputs.ToArray());
        }, iter: 15);

    [Fact]
    public void OnlyRequestedGradientsAreComputedAndTheyMatchTheFullBackward()
    {
        var c = new DCase(2, 2, 2, 4, 1, 3, 2, [1, 2], [1, 0], [1, 1], 5, 6, true, true, 7);
        var (x, off, w, b, m) = Inputs(c);
        var up = Tensor.Randn([c.N, c.COut, c.Ho, c.Wo], new Generator(3), dtype: DType.Float64);
        foreach (var t in new[] { x, off, w, b!, m! }) t.RequiresGrad_();
        F.DeformConv2d(x, off, w, b, c.S, c.P, c.D, m).Backward(up);
        var full = new[] { x, off, w, b!, m! }.Select(t => t.Grad!.ToDoubleArray()).ToArray();
        for (int k = 0; k < 5; k++)
        {
            var fresh = new[] { x, off, w, b!, m! }.Select(t => t.Detach()).ToArray();
            fresh[k].RequiresGrad_();
            F.DeformConv2d(fresh[0], fresh[1], fresh[2], fresh[3], c.S, c.P, c.D, fresh[4]).Backward(up);
            AssertClose(full[k], fresh[k].Grad!.ToDoubleArray(), 1e-12);
        }
    }

    /// <summary>A batch split into per-thread shares of images (partial weight-gradient sums added at the end) gives the
    /// one-thread numbers, and the direct loops' forward; batches of 2–5 with 2–3 workers, so shares are uneven.</summary>
    [Fact]
    public void BatchSplitOverThreadsMatchesOneThread() =>
        Gen.Select(Valid, Gen.Int[2, 5], Gen.Int[2, 3]).Sample((c0, n, threads) =>
        {
            var c = c0 with { N = n };
            var (x, off, w, b, m) = Inputs(c);
            var up = Tensor.Randn([c.N, c.COut, c.Ho, c.Wo], new Generator(c.Seed + 1), dtype: DType.Float64);
            double[][] Run(int count)
            {
                int saved = Threads.Count;
                Threads.Count = count;
                try
                {
                    var leaves = new[] { x, off, w, b, m }.Select(t => t?.Detach().RequiresGrad_()).ToArray();
                    var y = F.DeformConv2d(leaves[0]!, leaves[1]!, leaves[2]!, leaves[3], c.S, c.P, c.D, leaves[4]);
                    y.Backward(up);
                    return [y.ToDoubleArray(), .. leaves.Where(t => t != null).Select(t => t!.Grad!.ToDoubleArray())];
                }
                finally { Threads.Count = saved; }
            }
            var one = Run(1);
            var split = Run(threads);
            AssertClose(Naive(c, x, off, w, b, m), split[0], 1e-12);
            for (int k = 0; k < one.Length; k++) AssertClose(one[k], split[k], 1e-12);
        }, iter: 25);

    [Fact]
    public void ZeroOffsetsWithUnitMaskEqualAPlainConvolution() =>
        Valid.Sample(c =>
        {
            var (x, _, w, b, _) = Inputs(c);
            var zeros = Tensor.Zeros([c.N, 2 * c.OffsetGroups * c.Kh * c.Kw, c.Ho, c.Wo], DType.Float64);
            var ones = Tensor.Ones([c.N, c.OffsetGroups * c.Kh * c.Kw, c.Ho, c.Wo], DType.Float64);
            var want = NaiveConv(x, w, b, c.S, c.P, c.D, c.Groups);
            AssertClose(want, F.DeformConv2d(x, zeros, w, b, c.S, c.P, c.D, ones).ToDoubleArray(), 1e-12);
            AssertClose(want, F.DeformConv2d(x, zeros, w, b, c.S, c.P, c.D).ToDoubleArray(), 1e-12);
        }, iter: 30);

    [Fact]
    public void BoundaryRuleFollowsTorchvision()
    {
        // 2x2 image, 1x1 kernel with weight 1: the output is the bilinear sample itself.
        var x = Tensor.FromArray(new double[] { 1, 2, 3, 4 }, 1, 1, 2, 2);
        var w = Tensor.Ones([1, 1, 1, 1], DType.Float64);
        double Sample(double py, double px)
        {
            // Output pixel (0, 0) samples at (dy, dx) directly.
            var off = Tensor.Zeros([1, 2, 2, 2], DType.Float64);
            off.SetFlat(0, py); off.SetFlat(4, px);
            return F.DeformConv2d(x, off, w).ToDoubleArray()[0];
        }
        Assert.Equal(0.5 * 1, Sample(-0.5, 0), 12);      // half a pixel above: the outside corner reads 0
        Assert.Equal(0.5 * 4, Sample(1.5, 1), 12);       // half a pixel below the last row
        Assert.Equal(0, Sample(-1, 0), 12);              // h <= -1: nothing
        Assert.Equal(0, Sample(0, 2), 12);               // w >= W: nothing
        Assert.Equal(0.75 * (0.25 * 1 + 0.75 * 2) + 0.25 * (0.25 * 3 + 0.75 * 4), Sample(0.25, 0.75), 12);
        Assert.Equal(0.25 * 0.25 * 4, Sample(1.75, 1.75), 12); // only the (1, 1) corner is inside
    }

    /// <summary>
    /// Random calls, about half of them valid: sizes and attributes drawn from plausible ranges (so that the
    /// kernel-too-large and offset-group-divisibility cases arise naturally) plus at most one injected fault
    /// (zero or negative attribute, wrong rank, zero size, mismatched offset/mask/bias shape, bad size list).
    /// Validity is decided by an independent predicate; a valid call must return (N, C_out, H_out, W_out).
    /// </summary>
    [Fact]
    public void InvalidArgumentsThrowArgumentExceptionNamingTheOp()
    {
        int validCount = 0, invalidCount = 0;
        Gen.Select(
            Gen.Select(Gen.Int[0, 2], Gen.Int[1, 2], Gen.Int[1, 5], Gen.Int[1, 5], Gen.Int[0, 2], Gen.Int[1, 3], Gen.Int[1, 3], Gen.Int[1, 3]),
            Gen.Select(Gen.Int[1, 2].Array[2], Gen.Int[0, 2].Array[2], Gen.Int[1, 2].Array[2], Gen.Int[1, 3], Gen.Bool, Gen.Bool, Gen.Bool),
            Gen.Int[0, 40])
        .Sample((a, b, fault) =>
        {
            var (n, groups, h, wd, coutG, cinG, kh, kw) = a;
            var (s, p, d, og, withMask, withBias, singleSizes) = b;
            int c = groups * cinG, cout = groups * coutG;
            int rankX = 4, rankW = 4, offN = 0, offCh = 0, offH = 0, offW = 0, maskCh = 0, maskW = 0, biasLen = 0;
            bool longSizes = false;
            if (singleSizes) { s = [s[0], s[0]]; p = [p[0], p[0]]; d = [d[0], d[0]]; }
            switch (fault)
            {
                case 0: s = [s[0], -1]; singleSizes = false; break;
                case 1: s = [0, 0]; break;
                case 2: d = [d[0], 0]; singleSizes = false; break;
                case 3: p = [-1, -1]; break;
                case 4: rankX = 3; break;
                case 5: rankW = 3; break;
                case 6: c = 0; break;
                case 7: h = 0; break;
                case 8: kw = 0; break;
                case 9: cinG = 0; break;
                case 10: c += 1; break;         // not a multiple of weight.shape[1] unless cinG = 1
                case 11: cout += 1; break;      // not divisible by groups unless groups = 1
                case 12: offN = 1; break;
                case 13: offCh = 1; break;
                case 14: offCh = -1; break;
                case 15: offH = 1; break;
                case 16: offW = -1; break;
                case 17: maskCh = withMask ? 1 : 0; break;
                case 18: maskW = withMask ? 1 : 0; break;
                case 19: biasLen = withBias ? 1 : 0; break;
                case 20: longSizes = true; singleSizes = false; break;
            }
            int taps = kh * kw;
            long extH = d[0] * (long)(kh - 1) + 1, extW = d[1] * (long)(kw - 1) + 1;
            int hoRaw = s[0] > 0 ? (int)Math.Floor((h + 2.0 * p[0] - extH) / s[0]) + 1 : 1;
            int woRaw = s[1] > 0 ? (int)Math.Floor((wd + 2.0 * p[1] - extW) / s[1]) + 1 : 1;
            int ho = Math.Max(hoRaw, 0), wo = Math.Max(woRaw, 0);
            int[] xShape = rankX == 3 ? [c, h, wd] : [n, c, h, wd];
            int[] wShape = rankW == 3 ? [cout, cinG, kh] : [cout, cinG, kh, kw];
            int[] offShape = [n + offN, Math.Max(0, 2 * og * taps + offCh), ho + offH, Math.Max(0, wo + offW)];
            int[]? maskShape = withMask ? [n, og * taps + maskCh, ho, wo + maskW] : null;
            int[]? biasShape = withBias ? [cout + biasLen] : null;
            int[] Sz(int[] v) => singleSizes ? v[..1] : longSizes ? [v[0], v[1], v[0]] : v;

            bool valid = rankX == 4 && rankW == 4 && !longSizes && s.All(v => v > 0) && p.All(v => v >= 0) && d.All(v => v > 0)
                && c > 0 && h > 0 && wd > 0 && cinG > 0 && kh > 0 && kw > 0 && c % cinG == 0 && cout % (c / cinG) == 0
                && hoRaw > 0 && woRaw > 0 && offN == 0 && offCh == 0 && offH == 0 && offW == 0 && c % og == 0
                && maskCh == 0 && maskW == 0 && biasLen == 0;
            var gen = new Generator(1);
            var x = Tensor.Randn(xShape, gen); var w = Tensor.Randn(wShape, gen); var off = Tensor.Randn(offShape, gen);
            var m = maskShape == null ? null : Tensor.Rand(maskShape, gen);
            var bias = biasShape == null ? null : Tensor.Randn(biasShape, gen);
            var desc = $"x={ShapeUtil.Format(xShape)} w={ShapeUtil.Format(wShape)} off={ShapeUtil.Format(offShape)} mask={(maskShape == null ? "-" : ShapeUtil.Format(maskShape))} bias={(biasShape == null ? "-" : ShapeUtil.Format(biasShape))} s=[{string.Join(",", Sz(s))}] p=[{string.Join(",", Sz(p))}] d=[{string.Join(",", Sz(d))}]";
            Tensor y;
            try { y = F.DeformConv2d(x, off, w, bias, Sz(s), Sz(p), Sz(d), m); }
            catch (ArgumentException ex)
            {
                Assert.True(!valid, $"valid call threw: {ex.Message} ({desc})");
                Assert.StartsWith("deform_conv2d:", ex.Message);
                Interlocked.Increment(ref invalidCount);
                return;
            }
            Assert.True(valid, $"invalid call returned {ShapeUtil.Format(y.Shape)} ({desc})");
            Assert.Equal([n, cout, ho, wo], y.Shape.ToArray());
            Interlocked.Increment(ref validCount);
        }, iter: 400);
        // The generator must exercise both outcomes, or the property says little.
        Assert.True(validCount >= 40 && invalidCount >= 40, $"valid {validCount}, invalid {invalidCount}");
    }

    [Fact]
    public void DtypeMismatchAndIntegerInputsAreRejected()
    {
        var x = Tensor.Randn([1, 1, 3, 3], new Generator(1));
        var w = Tensor.Randn([1, 1, 1, 1], new Generator(1));
        var off = Tensor.Zeros([1, 2, 3, 3]);
        TestUtil.AssertOpError("deform_conv2d", () => F.DeformConv2d(x, off.Double(), w));
        TestUtil.AssertOpError("deform_conv2d", () => F.DeformConv2d(x, off, w, mask: Tensor.Ones([1, 1, 3, 3], DType.Float64)));
        TestUtil.AssertOpError("deform_conv2d", () => F.DeformConv2d(x, Tensor.Zeros([1, 2, 3, 3], DType.Int64), w));
    }

    [Fact]
    public void ModuleHasPyTorchStateDictKeysAndZeroOffsetBranch()
    {
        var v1 = new DeformConv2d(4, 6, 3, padding: 1, groups: 2, offsetGroups: 2, generator: new Generator(1));
        var sd = v1.StateDict();
        Assert.Equal(["weight", "bias", "conv_offset.weight", "conv_offset.bias"], sd.Keys.ToArray());
        Assert.Equal([6, 2, 3, 3], sd["weight"].Shape.ToArray());
        Assert.Equal([6], sd["bias"].Shape.ToArray());
        Assert.Equal([2 * 2 * 9, 4, 3, 3], sd["conv_offset.weight"].Shape.ToArray());
        Assert.Equal([2 * 2 * 9], sd["conv_offset.bias"].Shape.ToArray());
        Assert.All(sd["conv_offset.weight"].ToArray(), v => Assert.Equal(0f, v));
        Assert.All(sd["conv_offset.bias"].ToArray(), v => Assert.Equal(0f, v));
        Assert.Equal(4, v1.Parameters().Count());

        var v2 = new DeformConv2d(3, 2, [2, 3], offsetGroups: 3, bias: false, modulated: true);
        Assert.Equal(["weight", "conv_offset.weight", "conv_offset.bias"], v2.StateDict().Keys.ToArray());
        Assert.Equal([3 * 3 * 6, 3, 2, 3], v2.OffsetWeight.Shape.ToArray());

        // PyTorch's conv init: kaiming_uniform(a=√5) gives U(±1/√fan_in) for the weight, same bound for the bias.
        double bound = 1 / Math.Sqrt(2 * 9);
        Assert.All(v1.Weight.ToArray(), v => Assert.InRange(v, -bound, bound));
        Assert.All(v1.Bias!.ToArray(), v => Assert.InRange(v, -bound, bound));
        Assert.True(v1.Weight.ToArray().Max() > bound / 2 && v1.Weight.ToArray().Min() < -bound / 2);
    }

    [Fact]
    public void FreshModuleIsAPlainConvolutionAndTrainsItsOffsetBranch() =>
        Gen.Select(Gen.Int[1, 2], Gen.Int[1, 3], Gen.Int[0, 1], Gen.Int[1, 2], Gen.Int[1, 2], Gen.Bool, Gen.Int[5, 7]).Sample((g, k, p, s, d, mod, size) =>
        {
            var layer = new DeformConv2d(2 * g, 2 * g, k, s, p, d, groups: g, offsetGroups: 2, modulated: mod, generator: new Generator(5));
            var x = Tensor.Randn([2, 2 * g, size, size + 1], new Generator(6));
            var y = layer.Forward(x);
            var plain = NaiveConv(x, layer.Weight, null, [s, s], [p, p], [d, d], g);
            var bias = layer.Bias!.ToDoubleArray();
            int per = y.Numel / (2 * 2 * g);
            // A fresh layer has zero offsets; a modulated one has the mask sigmoid(0) = 0.5.
            var want = plain.Select((v, i) => (mod ? 0.5 : 1) * v + bias[i / per % (2 * g)]).ToArray();
            AssertClose(want, y.ToDoubleArray(), 1e-5);

            y.Backward(Tensor.Randn(y.Shape, new Generator(7)));
            Assert.Equal(layer.OffsetWeight.Shape.ToArray(), layer.OffsetWeight.Grad!.Shape.ToArray());
            Assert.True(layer.OffsetWeight.Grad!.Abs().Sum().Item() > 0);
            Assert.True(layer.OffsetBias.Grad!.Abs().Sum().Item() > 0);
            Assert.NotNull(layer.Weight.Grad);
        }, iter: 12);

    [Fact]
    public void ModuleRejectsBadConstructorArgumentsAndInputs()
    {
        TestUtil.AssertOpError("DeformConv2d", () => new DeformConv2d(0, 2, 3));
        TestUtil.AssertOpError("DeformConv2d", () => new DeformConv2d(3, 2, 3, groups: 2));
        TestUtil.AssertOpError("DeformConv2d", () => new DeformConv2d(4, 3, 3, groups: 2));
        TestUtil.AssertOpError("DeformConv2d", () => new DeformConv2d(3, 2, 3, offsetGroups: 2));
        TestUtil.AssertOpError("DeformConv2d", () => new DeformConv2d(2, 2, 0));
        TestUtil.AssertOpError("DeformConv2d", () => new DeformConv2d(2, 2, 3, stride: 0));
        TestUtil.AssertOpError("DeformConv2d", () => new DeformConv2d(2, 2, 3, padding: -1));
        TestUtil.AssertOpError("DeformConv2d", () => new DeformConv2d(2, 2, 3, dilation: 0));
        TestUtil.AssertOpError("DeformConv2d", () => new DeformConv2d(2, 2, [3, 3, 3]));
        var layer = new DeformConv2d(2, 2, 3);
        TestUtil.AssertOpError("DeformConv2d", () => layer.Forward(Tensor.Zeros(2, 4, 4)));
        TestUtil.AssertOpError("DeformConv2d", () => layer.Forward(Tensor.Zeros(1, 2, 2, 4)));
        TestUtil.AssertOpError("deform_conv2d", () => layer.Forward(Tensor.Zeros(1, 3, 4, 4)));
    }
}
