using System.Globalization;
using System.Text.Json;
using ConvLab.Analysis;
using ConvLab.Conformance;
using ConvLab.NN.Functional;
using CsCheck;
using Xunit;

namespace ConvLab.Tests;

/// <summary>`convlab conv` and `convlab pool` against the course's worked examples in ../shared/reference/seed_examples, as processes; the library side in-process.</summary>
public class WorkedConvTests
{
    private static (int Code, string Out, string Err) Convlab(params string[] args) => CliTests.Run(2, args);

    private static ReferenceCase Case(string name) => ReferenceCase.Load(Path.Combine(TestUtil.ReferenceDir, "seed_examples", name + ".json"));

    private static string R(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>A (1, 1, ...) reference tensor typed as the CLI takes it: a vector or a matrix.</summary>
    private static string Typed(Tensor t)
    {
        var d = t.ToDoubleArray();
        if (t.Rank == 3) return "[" + string.Join(",", d.Select(R)) + "]";
        int w = t.Shape[^1];
        return "[" + string.Join(",", Enumerable.Range(0, d.Length / w).Select(r => "[" + string.Join(",", d.Skip(r * w).Take(w).Select(R)) + "]")) + "]";
    }

    private static string Attr(ReferenceCase c, string key) => string.Join("x", c.Attrs[key].EnumerateArray().Select(e => e.GetInt32()));

    private static double[] Flat(JsonElement e) =>
        e.ValueKind == JsonValueKind.Array ? e.EnumerateArray().SelectMany(Flat).ToArray() : [e.GetDouble()];

    private static void AssertClose(Tensor expected, JsonElement actual, ReferenceCase c, string what)
    {
        var a = Flat(actual);
        var x = expected.ToDoubleArray();
        Assert.Equal(x.Length, a.Length);
        for (int i = 0; i < x.Length; i++)
            Assert.True(Math.Abs(a[i] - x[i]) <= c.Atol + c.Rtol * Math.Abs(x[i]), $"{c.Name} {what}[{i}]: expected {x[i]}, got {a[i]}");
    }

    [Theory]
    [InlineData("box_blur_3x3")]
    [InlineData("circular_edge_row1")]
    [InlineData("circular_edge_row5")]
    [InlineData("dilated_2x2_d2")]
    [InlineData("filter_recovery_1d")]
    [InlineData("transposed_1d_stride2")]
    [InlineData("transposed_2x2_by_2x2")]
    [InlineData("transposed_signed")]
    public void ConvMatchesTheSeedExample(string name)
    {
        var c = Case(name);
        var args = new List<string> { "conv", "--input", Typed(c.Inputs["input"]!), "--weight", Typed(c.Inputs["weight"]!),
            "--stride", Attr(c, "stride"), "--padding", Attr(c, "padding"), "--dilation", Attr(c, "dilation"), "--format", "json" };
        if (c.Op.StartsWith("conv_transpose", StringComparison.Ordinal)) args.AddRange(["--transposed", "--output-padding", Attr(c, "output_padding")]);
        else args.AddRange(["--mode", c.Attrs["padding_mode"].GetString()!]);
        var (code, text, err) = Convlab([.. args]);
        Assert.True(code == 0, err);
        using var doc = JsonDocument.Parse(text);
        AssertClose(c.Outputs["output"], doc.RootElement.GetProperty("output"), c, "output");
    }

    [Fact]
    public void SolveFilterRecoversTheSeedExampleFilter()
    {
        var c = Case("filter_recovery_1d");
        var (code, text, err) = Convlab("conv", "--solve-filter", "--input", Typed(c.Inputs["input"]!), "--output", Typed(c.Outputs["output"]), "--kernel", "3", "--format", "json");
        Assert.True(code == 0, err);
        using var doc = JsonDocument.Parse(text);
        AssertClose(c.Inputs["weight"]!, doc.RootElement.GetProperty("filter"), c, "filter");
        Assert.Equal("exactly determined", doc.RootElement.GetProperty("status").GetString());
        var (tcode, table, terr) = Convlab("conv", "--solve-filter", "--input", "[1,4,0,-2,3]", "--output", "[-2,2,11]", "--kernel", "3");
        Assert.True(tcode == 0, terr);
        Assert.Contains("filter: [2, -1, 3]", table);
    }

    [Theory]
    [InlineData("maxpool_backward_4x4", "max")]
    [InlineData("avgpool_backward_4x4", "avg")]
    public void PoolOutputAndGradientRoutingMatchTheSeedExample(string name, string type)
    {
        var c = Case(name);
        var (code, text, err) = Convlab("pool", "--input", Typed(c.Inputs["input"]!), "--type", type, "--kernel", Attr(c, "kernel_size"),
            "--stride", Attr(c, "stride"), "--padding", Attr(c, "padding"), "--grad", Typed(c.Upstream["output"]), "--format", "json");
        Assert.True(code == 0, err);
        using var doc = JsonDocument.Parse(text);
        AssertClose(c.Outputs["output"], doc.RootElement.GetProperty("output"), c, "output");
        AssertClose(c.Grads["input"], doc.RootElement.GetProperty("grad_input"), c, "grad_input");
    }

    [Fact]
    public void ExplainWritesEachSumAndIm2colTheExamsNineByFourMatrix()
    {
        var (code, text, err) = Convlab("conv", "--input", "[[1,2,3,0],[4,5,6,1],[7,8,9,2],[1,1,1,1]]", "--weight", "[[1,0,-1],[1,0,-1],[1,0,-1]]", "--explain", "--im2col");
        Assert.True(code == 0, err);
        Assert.Contains("y[0,1] = 2·1 + 3·0 + 0·(-1) + 5·1 + 6·0 + 1·(-1) + 8·1 + 9·0 + 2·(-1) = 12", text);
        Assert.Contains("column matrix 9x4", text);
        Assert.Contains("= [-6, 12, -4, 10], reshaped to 2x2", text);
        var (tcode, ttext, terr) = Convlab("conv", "--input", "[[1,2],[3,4]]", "--weight", "[[1,2],[3,4]]", "--transposed", "--explain");
        Assert.True(tcode == 0, terr);
        Assert.Contains("y[1,1] = 1·4 + 2·3 + 3·2 + 4·1 = 20", ttext);
        Assert.Contains("x[1,1] = 4 -> 4·w at offset 1,1:", ttext);
    }

    [Theory]
    [InlineData("--input", "conv", "--input", "[[1,2],[3]]", "--weight", "[[1]]")]
    [InlineData("--weight", "conv", "--input", "[[1,2],[3,4]]", "--weight", "[[1,1,1],[1,1,1],[1,1,1]]")]
    [InlineData("--weight", "conv", "--input", "[[1,2],[3,4]]", "--weight", "[1,1]")]
    [InlineData("--mode", "conv", "--input", "[1,2]", "--weight", "[1]", "--transposed", "--mode", "reflect")]
    [InlineData("--output", "conv", "--solve-filter", "--input", "[1,4,0,-2,3]", "--output", "[-2,2]", "--kernel", "3")]
    [InlineData("--kernel", "pool", "--input", "[[1,2],[3,4]]", "--kernel", "3")]
    [InlineData("--grad", "pool", "--input", "[[1,2],[3,4]]", "--grad", "[[1,2]]")]
    public void BadInputIsOneLineNamingTheOption(string option, params string[] args)
    {
        var (code, text, err) = Convlab(args);
        Assert.NotEqual(0, code);
        Assert.StartsWith(option + ":", err.Trim());
        Assert.Single(err.Trim().Split('\n'));
        Assert.DoesNotContain("   at ", err);
        Assert.Equal("", text);
    }

    [Fact]
    public void SolverSaysUnderAndOverDetermined()
    {
        var x = Tensor.FromArray(new double[] { 1, 4, 0, -2, 3 }, 5);
        var s = new WorkedConvSettings([1], [0], [1]);
        var over = WorkedConv.SolveFilter(x, WorkedConv.Compute(x, Tensor.FromArray(new double[] { 1, -1 }, 2), s).Output, [2], s);
        Assert.Equal("over-determined", over.Status);
        Assert.Equal([1.0, -1.0], over.Filter.ToDoubleArray());
        Assert.Equal(0, over.MaxResidual, 12);
        var under = WorkedConv.SolveFilter(Tensor.FromArray(new double[] { 1, 2, 3 }, 3), Tensor.FromArray(new double[] { 6 }, 1), [3], s);
        Assert.Equal("under-determined", under.Status);
        Assert.Equal(1, under.Rank);
        Assert.Equal(6, under.Reproduced.Item(), 9); // the minimum-norm filter still reproduces the output
    }

    [Fact]
    public void Im2colGemmEqualsTheFunctionalConvolutionOnRandomShapes()
    {
        Gen.Select(Gen.Int[3, 7], Gen.Int[3, 7], Gen.Int[1, 3], Gen.Int[1, 3], Gen.Int[1, 2], Gen.Int[0, 1], Gen.Int[0, 3]).Sample((h, w, k, stride, dil, pad, m) =>
        {
            var g = new Generator((ulong)(h * 97 + w * 13 + k));
            var x = Tensor.Randn([h, w], g, dtype: DType.Float64);
            var wt = Tensor.Randn([k, k], g, dtype: DType.Float64);
            var mode = new[] { "zeros", "reflect", "replicate", "circular" }[m];
            var s = new WorkedConvSettings([stride, stride], [pad, pad], [dil, dil], mode);
            if (dil * (k - 1) + 1 > Math.Min(h, w) + 2 * pad) return;
            var r = WorkedConv.Compute(x, wt, s);
            var expected = F.Conv2d(x.Reshape(1, 1, h, w), wt.Reshape(1, 1, k, k), stride: [stride], padding: [pad], dilation: [dil], paddingMode: mode).ToDoubleArray();
            var product = r.Im2col!.Product.ToDoubleArray();
            Assert.Equal(expected.Length, product.Length);
            Assert.Equal(expected.Length, r.Sums.Count);
            for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], product[i], 10);
        }, iter: 40);
    }

    [Fact]
    public void MatrixTextRoundTripsAndRejectsRaggedRows()
    {
        Gen.Int[1, 4].SelectMany(r => Gen.Int[1, 4].SelectMany(c => Gen.Int[-50, 50].Array[r * c].Select(d => (r, c, d)))).Sample(t =>
        {
            var m = Tensor.FromArray(t.d.Select(v => v / 4.0).ToArray(), t.r, t.c);
            var back = MatrixText.Parse(MatrixText.Format(m), "--input");
            Assert.Equal(m.Shape.ToArray(), back.Shape.ToArray());
            Assert.Equal(m.ToDoubleArray(), back.ToDoubleArray());
        });
        foreach (var bad in new[] { "[[1,2],[3]]", "[1,,2]", "[[1,2]", "[1,2]]", "", "[]", "[1,x]" })
            Assert.StartsWith("--input: ", Assert.Throws<ArgumentException>(() => MatrixText.Parse(bad, "--input")).Message);
    }
}
