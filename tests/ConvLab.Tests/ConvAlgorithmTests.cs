using ConvLab.Conformance;
using ConvLab.Conformance.Ops;
using ConvLab.Kernels;
using ConvLab.NN;
using ConvLab.NN.Functional;
using CsCheck;
using Xunit;

namespace ConvLab.Tests;

/// <summary>Every convolution algorithm, forced, against Im2colGemm (forward, input and weight gradients) and the reference cases.</summary>
public class ConvAlgorithmTests
{
    /// <summary>
    /// A convolution (in its conv geometry; a transposed case runs the conv_transpose that is its adjoint,
    /// with the same weight) that <see cref="Algo"/> can run. Tile is Winograd's F(m x m) (0 otherwise).
    /// </summary>
    public sealed record AlgoCase(ConvAlgorithm Algo, int D, int N, int Groups, int CinG, int CoutG, int[] K, int[] S, int[] P, int[] Dil, int[] Size, bool Transposed, int Tile)
    {
        public int[] OutSize => Enumerable.Range(0, D).Select(i => (Size[i] + 2 * P[i] - Dil[i] * (K[i] - 1) - 1) / S[i] + 1).ToArray();
        public int[] OutputPadding => Enumerable.Range(0, D).Select(i => Size[i] - ((OutSize[i] - 1) * S[i] - 2 * P[i] + Dil[i] * (K[i] - 1) + 1)).ToArray();
        public int[] InputShape => Transposed ? [N, Groups * CoutG, .. OutSize] : [N, Groups * CinG, .. Size];
        public int[] WeightShape => [Groups * CoutG, CinG, .. K];
        public override string ToString() =>
            $"{Algo}{(Tile > 0 ? $" F({Tile}x{Tile})" : "")}{(Transposed ? " transposed" : "")} d={D} N={N} g={Groups} cinG={CinG} coutG={CoutG} k=[{string.Join(",", K)}] s=[{string.Join(",", S)}] p=[{string.Join(",", P)}] dil=[{string.Join(",", Dil)}] size=[{string.Join(",", Size)}]";
    }

    private static Gen<AlgoCase> Cases(ConvAlgorithm algo) =>
        Gen.Select(Gen.Int[1, 3], Gen.Int[1, 2], Gen.Int[1, 3], Gen.Int[1, 3], Gen.Int[1, 6], Gen.Int[1, 4].Array[3], Gen.Int[1, 3].Array[3],
            Gen.Int[0, 3].Array[3], Gen.Int[1, 2].Array[3], Gen.Int[0, 9].Array[3], Gen.Int[0, 3],
        (d, n, g, cin, cout, k, s, p, dil, extra, flags) =>
        {
            bool transposed = (flags & 1) != 0, f4 = (flags & 2) != 0;
            if (algo is ConvAlgorithm.Direct or ConvAlgorithm.Depthwise) d = Math.Min(d, 2);
            if (algo == ConvAlgorithm.Winograd) d = 2;
            if (algo == ConvAlgorithm.Depthwise) { cin = 1; cout = Math.Min(cout, 3); }
            var kk = k[..d].ToArray(); var ss = s[..d].ToArray(); var pp = p[..d].Select(v => Math.Min(v, 2)).ToArray(); var dd = dil[..d].ToArray();
            if (algo == ConvAlgorithm.Gemm1x1) { Array.Fill(kk, 1); Array.Fill(pp, 0); }
            if (algo == ConvAlgorithm.Winograd) { Array.Fill(kk, 3); Array.Fill(ss, 1); Array.Fill(dd, 1); pp = p[..d].ToArray(); }
            if (d == 3) { kk = kk.Select(v => Math.Min(v, 2)).ToArray(); extra = extra.Select(v => Math.Min(v, 2)).ToArray(); }
            var size = Enumerable.Range(0, d).Select(i => Math.Max(1, dd[i] * (kk[i] - 1) + 1 - 2 * pp[i]) + extra[i]).ToArray();
            return new AlgoCase(algo, d, n, g, cin, cout, kk, ss, pp, dd, size, transposed, algo == ConvAlgorithm.Winograd ? (f4 ? 4 : 2) : 0);
        });

    private static Tensor Run(AlgoCase c, ConvAlgorithm algo, Tensor x, Tensor w)
    {
        var (s, p, dil, g) = (c.S, c.P, c.Dil, c.Groups);
        if (c.Transposed)
        {
            var op = c.OutputPadding;
            return c.D switch
            {
                1 => F.ConvTranspose1d(x, w, null, s, p, op, g, dil, algo),
                2 => F.ConvTranspose2d(x, w, null, s, p, op, g, dil, algo),
                _ => F.ConvTranspose3d(x, w, null, s, p, op, g, dil, algo),
            };
        }
        return c.D switch
        {
            1 => F.Conv1d(x, w, null, s, p, dil, g, algorithm: algo),
            2 => F.Conv2d(x, w, null, s, p, dil, g, algorithm: algo),
            _ => F.Conv3d(x, w, null, s, p, dil, g, algorithm: algo),
        };
    }

    /// <summary>Output, input gradient and weight gradient of sum(y·u) with the given algorithm and dtype.</summary>
    private static Tensor[] Passes(AlgoCase c, ConvAlgorithm algo, DType dtype, int seed)
    {
        var gen = new Generator((ulong)seed);
        var x = Tensor.Randn(c.InputShape, gen, dtype: DType.Float64).To(dtype).RequiresGrad_();
        var w = Tensor.Randn(c.WeightShape, gen, dtype: DType.Float64).To(dtype).RequiresGrad_();
        int saved = Winograd.TileOverride;
        Winograd.TileOverride = c.Tile;
        try
        {
            var y = Run(c, algo, x, w);
            var u = Tensor.Randn(y.Shape, gen, dtype: DType.Float64).To(dtype);
            y.Mul(u).Sum().Backward();
            return [y.Detach(), x.Grad!, w.Grad!];
        }
        finally { Winograd.TileOverride = saved; }
    }

    private static void AssertAllClose(Tensor[] got, Tensor[] want, double rel, string what)
    {
        string[] names = ["output", "input grad", "weight grad"];
        for (int i = 0; i < got.Length; i++)
        {
            Assert.Equal(want[i].Shape.ToArray(), got[i].Shape.ToArray());
            var a = got[i].ToDoubleArray(); var b = want[i].ToDoubleArray();
            double scale = Math.Max(1, b.Select(Math.Abs).DefaultIfEmpty(0).Max());
            for (int j = 0; j < a.Length; j++)
                Assert.True(Math.Abs(a[j] - b[j]) <= rel * scale, $"{what}: {names[i]}[{j}] {a[j]} vs Im2colGemm {b[j]}");
        }
    }

    [Theory]
    [InlineData(ConvAlgorithm.Direct)]
    [InlineData(ConvAlgorithm.Depthwise)]
    [InlineData(ConvAlgorithm.Gemm1x1)]
    [InlineData(ConvAlgorithm.Winograd)]
    [InlineData(ConvAlgorithm.Auto)]
    public void ForcedAlgorithmMatchesIm2colGemmInAllThreePasses(ConvAlgorithm algo)
    {
        Cases(algo).Sample(c =>
        {
            var want = Passes(c, ConvAlgorithm.Im2colGemm, DType.Float64, 3);
            AssertAllClose(Passes(c, algo, DType.Float64, 3), want, 1e-10, c.ToString());
            AssertAllClose(Passes(c, algo, DType.Float32, 3), want, 2e-4, c + " (float32)");
            if (algo != ConvAlgorithm.Winograd) return;
            // One tile row per chunk: results must not depend on how the tiles are chunked.
            int budget = Winograd.ChunkBudget;
            Winograd.ChunkBudget = 1;
            try { AssertAllClose(Passes(c, algo, DType.Float64, 3), want, 1e-10, c + " (one strip per chunk)"); }
            finally { Winograd.ChunkBudget = budget; }
        }, iter: 40, threads: 1);
    }

    [Fact]
    public void Im2colGemmMatchesDirectSummationThroughTheDepthwiseAndDirectKernelsToo()
    {
        // The comparisons above are only as good as Im2colGemm: pin it on one case against the definition.
        var x = Tensor.FromArray(new double[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, 1, 2, 5);
        var w = Tensor.FromArray(new double[] { 1, -1, 2, 0.5 }, 2, 1, 2);
        foreach (var algo in new[] { ConvAlgorithm.Im2colGemm, ConvAlgorithm.Direct, ConvAlgorithm.Depthwise })
        {
            var y = F.Conv1d(x, w, null, [2], [1], null, 2, algorithm: algo).ToDoubleArray();
            // channel 0: pad 0,1,2,3,4,5,pad -> windows (0,1),(2,3),(4,5): 1·a - 1·b; channel 1: (0,6),(7,8),(9,10): 2a + 0.5b
            Assert.Equal(new double[] { -1, -1, -1, 3, 18, 23 }, y);
        }
    }

    [Theory]
    [InlineData(ConvAlgorithm.Direct, 2, 3, 1, 3, 2, 2, 1, 1)]
    [InlineData(ConvAlgorithm.Depthwise, 4, 0, 4, 3, 1, 1, 2, 2)]
    [InlineData(ConvAlgorithm.Gemm1x1, 2, 3, 1, 1, 2, 0, 1, 1)]
    [InlineData(ConvAlgorithm.Winograd, 3, 4, 1, 3, 1, 1, 1, 1)]
    [InlineData(ConvAlgorithm.Winograd, 2, 2, 2, 3, 1, 2, 1, 1)]
    public void GradCheckWithForcedAlgorithm(ConvAlgorithm algo, int cin, int cout, int groups, int k, int stride, int pad, int dil, int mult)
    {
        var g = new Generator(5);
        int co = algo == ConvAlgorithm.Depthwise ? cin * mult : cout;
        var x = TestUtil.RandD(g, 2, cin, 7, 6);
        var w = TestUtil.RandD(g, co, cin / groups, k, k);
        var b = TestUtil.RandD(g, co);
        TestUtil.AssertGradCheck(t => F.Conv2d(t[0], t[1], t[2], [stride], [pad], [dil], groups, algorithm: algo), [x, w, b]);
        TestUtil.AssertGradCheck(t => F.ConvTranspose2d(t[0], t[1], t[2], [stride], [pad], null, groups, [dil], algo),
            [TestUtil.RandD(g, 2, co, 4, 5), w, TestUtil.RandD(g, cin)]);
    }

    /// <summary>
    /// Winograd's float32 error against the float64 result, norm-wise: max |y32 - y64| over
    /// u · max Σ|w||x| (the scale summation error is measured in; u = 2⁻²⁴). Direct summation stays near
    /// √n·u of it. The transforms multiply the rounding: F(2x2,3x3) uses the points (0, ±1, ∞), whose Bᵀ, G, Aᵀ
    /// entries are at most 1, and stays at the direct level; F(4x4,3x3) adds ±2, so Aᵀ has entries up to 8 and
    /// Bᵀ up to 5 and the error grows by about an order of magnitude. Measured over these shapes (C_in 1..64):
    /// F(2x2) ≤ 1.5·u, F(4x4) ≤ 16·u; the test asserts 4·u and 40·u.
    /// </summary>
    [Theory]
    [InlineData(2, 4.0)]
    [InlineData(4, 40.0)]
    public void WinogradErrorStaysWithinItsBound(int tile, double bound)
    {
        const double u = 1.0 / (1 << 24);
        double worst = 0;
        var seen = new List<string>();
        foreach (var (cin, cout, h, p) in new[] { (1, 3, 9, 1), (16, 8, 13, 0), (64, 16, 12, 1), (32, 32, 7, 2) })
        {
            var g = new Generator((ulong)(cin * 100 + h));
            var x32 = Tensor.Randn([2, cin, h, h + 1], g); var w32 = Tensor.Randn([cout, cin, 3, 3], g);
            var x = x32.Double(); var w = w32.Double();
            var want = F.Conv2d(x, w, (Tensor?)null, null, [p], algorithm: ConvAlgorithm.Im2colGemm).ToDoubleArray();
            var scale = F.Conv2d(x.Abs(), w.Abs(), (Tensor?)null, null, [p], algorithm: ConvAlgorithm.Im2colGemm).ToDoubleArray();
            int saved = Winograd.TileOverride;
            Winograd.TileOverride = tile;
            double[] got;
            try { got = F.Conv2d(x32, w32, (Tensor?)null, null, [p], algorithm: ConvAlgorithm.Winograd).ToDoubleArray(); }
            finally { Winograd.TileOverride = saved; }
            double w0 = 0, smax = scale.Max();
            for (int i = 0; i < got.Length; i++) w0 = Math.Max(w0, Math.Abs(got[i] - want[i]) / (smax * u));
            seen.Add($"cin={cin}: {w0:F2}");
            worst = Math.Max(worst, w0);
        }
        Assert.True(worst <= bound, $"F({tile}x{tile},3x3) error {worst:F2}·u·Σ|w||x| exceeds {bound}·u ({string.Join(", ", seen)})");
        Assert.True(worst > 0.01, "the float32 path should round somewhere; a zero error means the float64 path ran");
    }

    [Fact]
    public void ForcingAnAlgorithmThatCannotRunTheShapeNamesTheOpAndWhy()
    {
        var x = Tensor.Zeros(1, 4, 8, 8); var w = Tensor.Zeros(4, 4, 3, 3);
        var e = TestUtil.AssertOpError("conv2d", () => F.Conv2d(x, w, (Tensor?)null, [2], [1], algorithm: ConvAlgorithm.Winograd));
        Assert.Contains("Winograd", e.Message); Assert.Contains("stride", e.Message);
        e = TestUtil.AssertOpError("conv2d", () => F.Conv2d(x, w, (Tensor?)null, null, [1], algorithm: ConvAlgorithm.Gemm1x1));
        Assert.Contains("1x1", e.Message);
        e = TestUtil.AssertOpError("conv2d", () => F.Conv2d(x, w, algorithm: ConvAlgorithm.Depthwise));
        Assert.Contains("groups", e.Message);
        TestUtil.AssertOpError("conv3d", () => F.Conv3d(Tensor.Zeros(1, 2, 3, 3, 3), Tensor.Zeros(2, 1, 1, 1, 1), groups: 2, algorithm: ConvAlgorithm.Direct));
        TestUtil.AssertOpError("conv_transpose2d", () => F.ConvTranspose2d(x, w, null, [2], algorithm: ConvAlgorithm.Winograd));
        TestUtil.AssertOpError("conv2d", () => F.Conv2d(x, w, algorithm: (ConvAlgorithm)42));
        var layer = new Conv2d(4, 4, 3, stride: 2) { Algorithm = ConvAlgorithm.Winograd };
        TestUtil.AssertOpError("conv2d", () => layer.Forward(x));
        layer.Algorithm = ConvAlgorithm.Direct;
        Assert.Equal([1, 4, 3, 3], layer.Forward(x).Shape.ToArray());
    }

    [Fact]
    public void EachPassResolvesToTheForcedAlgorithmWhereItHasThatPassElseToAutosChoice()
    {
        var g3 = new ConvGeometry(8, 64, 64, 1, [56, 56], [56, 56], [3, 3], [1, 1], [1, 1], [1, 1]);
        Assert.Equal(ConvAlgorithm.Winograd, ConvDispatch.Resolve(ConvAlgorithm.Winograd, ConvPass.Forward, g3));
        Assert.Equal(ConvAlgorithm.Winograd, ConvDispatch.Resolve(ConvAlgorithm.Winograd, ConvPass.BackwardInput, g3));
        Assert.Equal(ConvDispatch.Resolve(ConvAlgorithm.Auto, ConvPass.BackwardWeight, g3), ConvDispatch.Resolve(ConvAlgorithm.Winograd, ConvPass.BackwardWeight, g3));
        Assert.NotEqual(ConvAlgorithm.Winograd, ConvDispatch.Resolve(ConvAlgorithm.Auto, ConvPass.BackwardWeight, g3));
        foreach (var pass in Enum.GetValues<ConvPass>())
            Assert.Equal(ConvAlgorithm.Direct, ConvDispatch.Resolve(ConvAlgorithm.Direct, pass, g3));
        var stem = new ConvGeometry(8, 3, 64, 1, [224, 224], [112, 112], [7, 7], [2, 2], [3, 3], [1, 1]);
        var dw = new ConvGeometry(8, 144, 144, 144, [56, 56], [28, 28], [3, 3], [2, 2], [1, 1], [1, 1]);
        var pw = new ConvGeometry(8, 64, 256, 1, [56, 56], [56, 56], [1, 1], [1, 1], [0, 0], [1, 1]);
        var c3d = new ConvGeometry(2, 4, 4, 1, [5, 5, 5], [3, 3, 3], [3, 3, 3], [1, 1, 1], [0, 0, 0], [1, 1, 1]);
        // Measured: im2col beats the direct kernel on the stem in every pass (batch 8 forward 14.5 vs 18.9 ms, forward+backward 51 vs 199 ms).
        foreach (var pass in Enum.GetValues<ConvPass>())
            Assert.Equal(ConvAlgorithm.Im2colGemm, ConvDispatch.Resolve(ConvAlgorithm.Auto, pass, stem));
        var wide = new ConvGeometry(8, 256, 256, 1, [14, 14], [14, 14], [3, 3], [1, 1], [1, 1], [1, 1]);
        Assert.Equal(ConvAlgorithm.Winograd, ConvDispatch.Resolve(ConvAlgorithm.Auto, ConvPass.Forward, wide));
        Assert.Equal(ConvAlgorithm.Im2colGemm, ConvDispatch.Resolve(ConvAlgorithm.Auto, ConvPass.Forward, g3)); // 56x56: wide per-image GEMM
        var cifar = new ConvGeometry(32, 64, 64, 1, [32, 32], [32, 32], [3, 3], [1, 1], [1, 1], [1, 1]);
        Assert.Equal(ConvAlgorithm.Winograd, ConvDispatch.Resolve(ConvAlgorithm.Auto, ConvPass.Forward, cifar));
        var mono = new ConvGeometry(128, 1, 32, 1, [28, 28], [28, 28], [3, 3], [1, 1], [1, 1], [1, 1]);
        Assert.Equal(ConvAlgorithm.Im2colGemm, ConvDispatch.Resolve(ConvAlgorithm.Auto, ConvPass.Forward, mono));
        Assert.Equal(ConvAlgorithm.Depthwise, ConvDispatch.Resolve(ConvAlgorithm.Auto, ConvPass.BackwardWeight, dw));
        Assert.Equal(ConvAlgorithm.Gemm1x1, ConvDispatch.Resolve(ConvAlgorithm.Auto, ConvPass.BackwardInput, pw));
        Assert.Equal(ConvAlgorithm.Im2colGemm, ConvDispatch.Resolve(ConvAlgorithm.Auto, ConvPass.Forward, c3d));
        // Batch 1 at 7x7 has 16 output tiles: too few to amortise Winograd's filter transform.
        var small = new ConvGeometry(1, 512, 512, 1, [7, 7], [7, 7], [3, 3], [1, 1], [1, 1], [1, 1]);
        Assert.Equal(ConvAlgorithm.Im2colGemm, ConvDispatch.Resolve(ConvAlgorithm.Auto, ConvPass.Forward, small));
        Assert.Equal(ConvAlgorithm.Winograd, ConvDispatch.Resolve(ConvAlgorithm.Winograd, ConvPass.Forward, small));
        Assert.Null(ConvDispatch.WhyNot(ConvAlgorithm.Im2colGemm, c3d));
        Assert.NotNull(ConvDispatch.WhyNot(ConvAlgorithm.Depthwise, c3d));
    }

    public static TheoryData<ConvAlgorithm> ForcedAlgorithms() =>
        [.. Enum.GetValues<ConvAlgorithm>().Where(a => a != ConvAlgorithm.Auto)];

    /// <summary>
    /// The conv reference cases with each algorithm forced: every case passes with every algorithm that can
    /// run it, the others are refused with the algorithm's reason (never a wrong answer).
    /// </summary>
    [Theory]
    [MemberData(nameof(ForcedAlgorithms))]
    public void ConvReferenceCasesPassWithEachApplicableForcedAlgorithm(ConvAlgorithm algo)
    {
        var files = ReferenceRunner.FindCases(TestUtil.ReferenceDir)
            .Where(f => Path.GetFileName(Path.GetDirectoryName(f))!.Contains("conv") && !f.Contains("deform")).ToList();
        Assert.NotEmpty(files);
        int ran = 0;
        var saved = ConvOps.Algorithm;
        ConvOps.Algorithm = algo;
        int tile = Winograd.TileOverride;
        try
        {
            foreach (var tiles in algo == ConvAlgorithm.Winograd ? new[] { 2, 4 } : [0])
            {
                Winograd.TileOverride = tiles;
                foreach (var f in files)
                {
                    var r = ReferenceRunner.RunFile(f, TestUtil.ReferenceDir);
                    if (!r.Passed && r.Reason.Contains($"algorithm {algo} cannot run")) continue;
                    Assert.True(r.Passed, $"{algo}: {r.Name}: {r.Reason}");
                    ran++;
                }
            }
        }
        finally { ConvOps.Algorithm = saved; Winograd.TileOverride = tile; }
        Assert.True(ran >= (algo == ConvAlgorithm.Im2colGemm ? files.Count : 2), $"{algo} ran only {ran} of {files.Count} cases");
    }
}

/// <summary><c>convlab bench conv</c> run as a process on tiny shapes (no timing is asserted).</summary>
public class BenchConvCliTests
{
    [Fact]
    public void BenchConvPrintsOneRowPerApplicableAlgorithmWithSmallErrors()
    {
        var (code, text) = CliTests.Convlab("bench", "conv", "--input", "2x4x9x9", "--out-channels", "4", "--kernel", "3", "--padding", "1", "--repeat", "1", "--threads", "1");
        Assert.Equal(0, code);
        foreach (var name in new[] { "Im2colGemm", "Direct", "Winograd F(2x2,3x3)", "Winograd F(4x4,3x3)", "Auto", "GFLOP/s", "% peak", "workspace" })
            Assert.Contains(name, text);
        Assert.Contains("not applicable: Depthwise", text);
        Assert.Contains("not applicable: Gemm1x1", text);
    }

    [Fact]
    public void BenchConvJsonListsEveryApplicableAlgorithmWithItsFigures()
    {
        var (code, text) = CliTests.Convlab("bench", "conv", "--input", "2x6x10x7", "--out-channels", "6", "--kernel", "3x1", "--stride", "2",
            "--groups", "6", "--backward", "--repeat", "1", "--format", "json");
        Assert.Equal(0, code);
        using var doc = System.Text.Json.JsonDocument.Parse(text);
        var results = doc.RootElement.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(new[] { "Im2colGemm", "Direct", "Depthwise", "Auto" }, results.Select(r => r.GetProperty("algorithm").GetString()).ToArray());
        foreach (var r in results)
        {
            Assert.True(r.GetProperty("max_abs_error").GetDouble() < 1e-3, r.ToString());
            Assert.True(r.GetProperty("median_ms").GetDouble() > 0);
            Assert.True(r.GetProperty("gflops").GetDouble() > 0);
        }
        Assert.True(doc.RootElement.GetProperty("peak_gflops").GetDouble() > 0);
    }

    [Fact]
    public void BenchConvTransposedAndBadInputs()
    {
        var (code, text) = CliTests.Convlab("bench", "conv", "--input", "1x4x5x5", "--out-channels", "2", "--kernel", "4", "--stride", "2", "--padding", "1",
            "--transposed", "--repeat", "1", "--format", "json");
        Assert.Equal(0, code);
        Assert.Contains("conv_transpose2d 1x4x5x5 -> 2", text);
        (code, text) = CliTests.Convlab("bench", "conv", "--input", "1x4x5", "--out-channels", "2", "--kernel", "3x3");
        Assert.NotEqual(0, code);
        Assert.Contains("bench conv: --kernel needs 1 or 1 values", text);
        (code, text) = CliTests.Convlab("bench", "conv", "--input", "1x4x5x5", "--out-channels", "3", "--kernel", "3", "--groups", "2");
        Assert.NotEqual(0, code);
        Assert.Contains("bench conv: --groups", text);
    }
}
