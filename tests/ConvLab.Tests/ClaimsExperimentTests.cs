using CsCheck;
using System.Text.Json.Nodes;
using ConvLab.Data;
using ConvLab.NN;
using ConvLab.Stats;
using ConvLab.Training;
using Xunit;

namespace ConvLab.Tests;

/// <summary>The claims experiments (issue 13) run as a user types them, `--quick`, checked on invariants that hold for any seed.</summary>
public class ClaimsExperimentTests
{
    private static (JsonNode Results, string Dir) RunQuick(string name, params string[] extra)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"convlab-claims-{name}-{Guid.NewGuid():N}");
        var (code, stdout, stderr) = CliTests.Run(5, ["experiment", name, "--quick", "--seed", "3", "--out", dir, .. extra]);
        Assert.True(code == 0, $"exit {code}: {stdout}{stderr}");
        var results = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "results.json")))!;
        foreach (var f in results["figures"]!.AsArray())
            Assert.True(new FileInfo(Path.Combine(dir, f!.GetValue<string>())).Length > 1000, $"{name}: figure {f} is missing or empty");
        Assert.Contains("## ", File.ReadAllText(Path.Combine(dir, "report.md")));
        return (results, dir);
    }

    private static IEnumerable<JsonNode> Rows(JsonNode r, string key) => r[key]!.AsArray().Select(n => n!);

    [Fact]
    public void EquivarianceHoldsExactlyWithCircularPaddingAndForStrideMultiples()
    {
        var (r, _) = RunQuick("equivariance");
        var rows = Rows(r, "equivariance").ToList();
        Assert.Contains(rows, e => (string)e["case"]! == "conv_circular");
        foreach (var e in rows)
        {
            string c = (string)e["case"]!;
            int shift = (int)e["shift"]!;
            double err = (double)e["relative_error"]!;
            if (c is "conv_circular" or "gap_circular" || (c == "conv_stride2" && shift % 2 == 0)) Assert.True(err <= 1e-5, $"{c} shift {shift}: {err}");
            if (c is "conv_zeros" or "conv_rot90" || (c == "conv_stride2" && shift % 2 == 1)) Assert.True(err > 1e-2, $"{c} shift {shift}: {err}");
        }
        // Zero padding breaks equivariance only within the padding's reach of the borders and the wrap seam.
        foreach (var b in Rows(r, "zero_padding_error_near_seams")) Assert.True((double)b["fraction"]! > 1 - 1e-9);
        foreach (var e in Rows(r, "gap_edges")) Assert.True((double)e["relative_error"]! <= 1e-5);
        var neuron = Rows(r, "mlp_neuron").Select(n => (double)n["mlp_preactivation"]!).ToArray();
        Assert.Equal([255.0, 128.0, 0.0], neuron);
        foreach (var p in Rows(r, "pool_tolerance").Where(p => (int)p["shift"]! == 0)) Assert.Equal(1.0, (double)p["fraction_unchanged"]!);
    }

    [Fact]
    public void WeightGradientIsThePatchSumAndResidualScalingScalesTheStemGradient()
    {
        var (r, _) = RunQuick("gradients");
        Assert.True((double)r["patch_identity_max_relative_error"]! <= 1e-5);
        Assert.True((double)r["sgd_step"]!["gradient_vs_patch_sum_max_relative_error"]! <= 1e-5);
        Assert.True((double)r["sgd_step"]!["step_vs_w0_minus_lr_patch_sum_max_relative_error"]! <= 1e-5);
        var rows = Rows(r, "residual").ToList();
        foreach (var depth in rows.Select(x => (int)x["depth"]!).Distinct())
        {
            var plain = rows.Single(x => (int)x["depth"]! == depth && (double)x["gamma"]! == 1);
            var scaled = rows.Single(x => (int)x["depth"]! == depth && (double)x["gamma"]! != 1);
            double ratio = (double)scaled["bottom_grad_norm"]! / (double)plain["bottom_grad_norm"]!;
            Assert.Equal(Math.Pow(1 / Math.Sqrt(2), depth - 2), ratio, 1e-4);
        }
        foreach (var g in Rows(r, "grad_std")) Assert.Equal((int)g["n"]! - 2, (double)g["theory"]!);
        var routing = r["pool_routing"]!;
        Assert.Equal(10.0, routing["max_pool_grad"]!.AsArray().Sum(v => (double)v!)); // every upstream value lands once
        Assert.Equal(10.0, routing["avg_pool_grad"]!.AsArray().Sum(v => (double)v!));
    }

    [Fact]
    public void ConvolutionalizedClassifierKeepsItsLogitsAndCountsItsWindows()
    {
        var (r, _) = RunQuick("fcn", "--data", "embedded");
        Assert.True((double)r["logits_max_relative_error"]! <= 1e-5);
        Assert.Equal(3, r["replaced"]!.AsArray().Count);
        foreach (var t in Rows(r, "timing"))
        {
            int side = ((int)t["canvas"]! - 28) / 4 + 1;
            Assert.Equal(side, (int)t["map_side"]!);
            Assert.Equal(side * side, (int)t["windows"]!);
            Assert.True((double)t["fcn_seconds"]! > 0 && (double)t["sliding_seconds"]! > 0);
        }
        Assert.Equal(((int)r["canvas"]! / 4) - 6, (int)r["map_side"]!);
    }

    [Fact]
    public void CoordConvComparesEveryTaskAndSplitWithACorrectedAlpha()
    {
        var (r, _) = RunQuick("coordconv");
        var tasks = Rows(r, "tasks").ToList();
        Assert.Equal(["classification / uniform", "classification / quadrant", "regression / uniform", "regression / quadrant"],
            tasks.Select(t => $"{(string)t["task"]!} / {(string)t["split"]!}"));
        foreach (var t in tasks)
        {
            double p = (double)t["p_value"]!, alpha = (double)t["alpha_bonferroni"]!;
            Assert.Equal(0.05 / tasks.Count, alpha, 1e-12);
            Assert.InRange(p, 0, 1);
            Assert.Equal(p <= alpha, (bool)t["significant"]!);
            Assert.Equal(784, (int)t["test_examples"]!);
            foreach (var m in new[] { "conv", "coordconv" })
            {
                Assert.True((long)t[m]!["params"]! > 0);
                Assert.InRange((double)t[m]!["test_accuracy"]!, 0, 1);
                Assert.True((double)t[m]!["mae"]! >= 0);
                Assert.True((double)t[m]!["within_1px"]! <= (double)t[m]!["within_2px"]!);
                Assert.True((double)t[m]!["test_accuracy"]! <= (double)t[m]!["within_1px"]!);
            }
            Assert.True((double)t["df"]! == 783);
        }
        // Each task's two models are the documented architectures at width 8 (parameter counts by hand).
        long Params(int i, string m) => (long)tasks[i][m]!["params"]!;
        Assert.Equal(2 * 8 * 16 + 8 + 4 * (8 * 8 * 16 + 8) + 8 + 1, Params(0, "conv"));       // deconv
        Assert.Equal((2 + 2) * 8 + 8 + 2 * (8 * 8 + 8) + 8 + 1, Params(0, "coordconv"));     // CoordConv 1x1 net
        Assert.Equal(9 * 8 + 8 + 3 * (8 * 8 * 9 + 8) + 8 * 16 * 2 + 2, Params(2, "conv"));  // strided-conv regressor
        Assert.Equal((1 + 2) * 8 + 8 + 8 * 8 + 8 + 8 * 2 + 2, Params(2, "coordconv"));      // CoordConv regressor
    }

    /// <summary>Runs <c>experiment NAME --quick --set SETTING</c> (plus <paramref name="extra"/>) and checks it fails with a one-line error naming the setting and <paramref name="expected"/>.</summary>
    private static void RejectsSetting(string name, string setting, string[] extra, params string[] expected)
    {
        var (code, stdout, stderr) = CliTests.Run(2, ["experiment", name, "--quick", .. extra, "--set", setting, "--out", Path.Combine(Path.GetTempPath(), $"convlab-claims-bad-{Guid.NewGuid():N}")]);
        Assert.NotEqual(0, code);
        foreach (var e in (string[])[setting, .. expected]) Assert.Contains(e, stdout + stderr);
        Assert.DoesNotContain("   at ", stdout + stderr);
    }

    [Theory]
    [InlineData("task=segmentation", "classification, regression")]
    [InlineData("split=diagonal", "uniform, quadrant")]
    public void UnknownCoordConvTaskOrSplitIsAnErrorNamingTheOption(string setting, string names) => RejectsSetting("coordconv", setting, [], names);

    [Fact]
    public void BudgetModelsMeetTheBudgetWithTheCalculatorsCounts()
    {
        var (r, _) = RunQuick("budget", "--data", "embedded");
        long budget = (long)r["budget_macs"]!;
        var models = Rows(r, "models").ToList();
        Assert.Equal(8, models.Count + r["left_out"]!.AsArray().Count); // every default family is trained or named as left out
        Assert.Contains(models, m => (string)m["name"]! == "1x conv7");
        Assert.Contains(models, m => (string)m["name"]! == "3x conv3");
        foreach (var m in models)
        {
            int depth = (int)m["depth"]!, kernel = (int)m["kernel"]!, width = (int)m["width"]!;
            Assert.InRange((double)(long)m["macs"]! / budget, 0.95, 1.05);
            // The same network built here from public modules: its parameters and MACs by the calculator must be the reported ones.
            var layers = new List<Module>();
            for (int i = 0; i < depth; i++) { layers.Add(new Conv2d(i == 0 ? 1 : width, width, kernel, 1, kernel / 2)); layers.Add(new ReLU()); }
            layers.AddRange([new MaxPool2d([4, 4]), new Flatten(), new Linear(width * 7 * 7, 10)]);
            var summary = ConvLab.Analysis.Summary.Of(new Sequential([.. layers]), [1, 28, 28]);
            Assert.Equal(summary.Params, (long)m["params"]!);
            Assert.Equal(summary.Macs, (long)m["macs"]!);
            Assert.Equal(width * 7 * 7 * 10 + 10, (long)m["classifier_params"]!);
            Assert.Equal(1 + depth * (kernel - 1), (int)m["receptive_field"]!);
            Assert.InRange((double)m["test_accuracy"]!, 0, 1);
        }
    }

    [Theory]
    [InlineData("budget_macs=1000", "fits no model")]
    [InlineData("families=3x4", "odd kernel")]
    public void BudgetNoModelFitsOrABadFamilyIsAnErrorNamingTheOption(string setting, string message) => RejectsSetting("budget", setting, ["--data", "embedded"], message);

    [Fact]
    public void CheckerboardOverlapCountsAreTheKnownPatterns()
    {
        var (r, _) = RunQuick("checkerboard");
        var rows = Rows(r, "upsamplers").ToDictionary(u => (string)u["upsampler"]!);
        Assert.Equal((1.0, 4.0), ((double)rows["deconv 3x3/2"]["overlap_interior_min"]!, (double)rows["deconv 3x3/2"]["overlap_interior_max"]!));
        Assert.Equal((4.0, 4.0), ((double)rows["deconv 4x4/2"]["overlap_interior_min"]!, (double)rows["deconv 4x4/2"]["overlap_interior_max"]!));
        Assert.Equal((9.0, 9.0), ((double)rows["resize + conv 3x3"]["overlap_interior_min"]!, (double)rows["resize + conv 3x3"]["overlap_interior_max"]!));
    }

    [Fact]
    public void RooflineBoundFollowsIntensityAgainstTheRidge()
    {
        var (r, _) = RunQuick("roofline");
        double ridge = (double)r["ridge_flops_per_byte"]!;
        Assert.True((double)r["peak_gflops"]! > 0 && (double)r["bandwidth_gbs"]! > 0);
        var layers = Rows(r, "layers").ToList();
        foreach (var l in layers)
            Assert.Equal((double)l["intensity"]! < ridge ? "memory" : "compute", (string)l["bound"]!);
        double Intensity(string kind) => layers.Where(l => (string)l["kind"]! == kind).Min(l => (double)l["intensity"]!);
        Assert.True(Intensity("depthwise 3x3") < Intensity("conv 3x3") / 10);
        Assert.True(Intensity("depthwise 3x3") < Intensity("conv 1x1"));
    }

    [Fact]
    public void TransferFillsTheTableCachesTheSourceAndRejectsAnUnknownStrategy()
    {
        var (r, dir) = RunQuick("transfer", "--data", "embedded");
        var table = Rows(r, "table").ToList();
        Assert.Equal(2 * 2 * 4, table.Count); // targets x data sizes x quick strategies
        foreach (var c in table) Assert.InRange((double)c["test_accuracy"]!, 0, 1);
        Assert.Equal(["features.3 (block 1)", "features.7 (block 2)", "classifier.2 (fc1)"], Rows(r, "layers").Select(l => (string)l["layer"]!));
        foreach (var l in Rows(r, "layers")) Assert.InRange((double)l["cka"]!, 0, 1 + 1e-9);
        Assert.False((bool)r["source_cached"]!);
        Assert.True(File.Exists(Path.Combine(dir, "source.safetensors")));

        var (code, stdout, stderr) = CliTests.Run(2, "experiment", "transfer", "--quick", "--data", "embedded", "--set", "strategy=freeze-half", "--out", dir);
        Assert.NotEqual(0, code);
        Assert.Contains("strategy=freeze-half", stdout + stderr);
        Assert.DoesNotContain("   at ", stdout + stderr);
    }

    [Fact]
    public void ScalePyramidUnitsAgreeOneScaleApart()
    {
        var (r, _) = RunQuick("scale-pyramid");
        foreach (var c in Rows(r, "correlations"))
        {
            Assert.Equal((int)c["small_scale"]! + 1, (int)c["large_scale"]!);
            Assert.True((double)c["pearson"]! > 0.9999, $"scale {c["small_scale"]}: r = {c["pearson"]}");
            Assert.True((double)c["same_index_pearson"]! < (double)c["pearson"]!);
        }
    }

    /// <summary>scipy.stats.ttest_rel(a, b) = (2.4425210522959855, 0.050299107277014365), scipy 1.10.1.</summary>
    [Fact]
    public void PairedTTestMatchesScipy()
    {
        double[] a = [2.1, 3.4, 1.9, 5.6, 4.4, 3.3, 2.8], b = [1.8, 2.9, 2.2, 4.1, 3.9, 3.0, 2.1];
        var t = TTest.Paired(a, b);
        Assert.Equal(2.4425210522959855, t.T, 1e-12);
        Assert.Equal(0.050299107277014365, t.PValue, 1e-10);
        Assert.Equal(6, t.Df);
        // Bonferroni at 0.05 over four tests rejects p ≤ 0.0125; BH rejects the k smallest with p_(k) ≤ k·0.05/4.
        double[] p = [0.01, 0.02, 0.03, 0.5];
        Assert.Equal([true, false, false, false], MultipleTesting.Bonferroni(p, 0.05));
        Assert.Equal([true, true, true, false], MultipleTesting.BenjaminiHochberg(p, 0.05));
    }

    [Fact]
    public void SubsetSelectsAndFiltersSamples()
    {
        var data = new InMemoryImageDataset([0, 10, 20, 30, 40], [0, 1, 0, 1, 1], 1, 1, 1);
        var s = new Subset(data, [4, 0]);
        Assert.Equal(2, s.Count);
        Assert.Equal(1, s.Get(0).Label);
        Assert.Equal(40 / 255f, s.Get(0).Input.Item(), 1e-6);
        Assert.Equal([1, 3, 4], Subset.Where(data, l => l == 1).Indices);
        Assert.Equal([1, 3], Subset.Where(data, l => l == 1, 2).Indices);
        TestUtil.AssertOpError("subset", () => new Subset(data, [5]));
    }

    [Fact]
    public void RegressionObjectiveFitsALineWithTheTrainer()
    {
        var g = new Generator(1);
        var xs = Enumerable.Range(0, 64).Select(i => (float)(i / 32.0 - 1)).ToArray();
        var data = new FuncRegressionDataset(xs.Length, i => (Tensor.FromArray([xs[i]], 1), Tensor.FromArray([2 * xs[i] + 1], 1)));
        var model = new Linear(1, 1, generator: g);
        var trainer = new Trainer(model, new SGD(model.Parameters(), 0.1), null, new RegressionObjective(data, data, 8, 5), new TrainerOptions { Epochs = 30, BatchSize = 8 });
        trainer.Fit();
        Assert.True(trainer.History[^1].TestLoss < 1e-4, $"MSE {trainer.History[^1].TestLoss}");
        Assert.Equal(2.0, model.Weight.Item(), 1e-2);
        Assert.Equal(1.0, model.Bias!.Item(), 1e-2);
        TestUtil.AssertOpError("regression", () => new RegressionObjective(data, null, 8, 0, "cosine"));
    }
}

public class CkaTests
{
    [Fact]
    public void CkaOfARepresentationWithItselfIsOneAndIgnoresRotationAndScale()
    {
        Gen.Select(Gen.Int[4, 12], Gen.Int[2, 6], Gen.UInt, Gen.Double[0.01, 100]).Sample((n, p, seed, scale) =>
        {
            var g = new Generator(seed);
            var x = Tensor.Randn([n, p], g, dtype: DType.Float64);
            // A random orthogonal p x p matrix: Gram-Schmidt on a Gaussian matrix.
            var q = Orthogonal(p, g);
            var y = x.Matmul(q) * scale;
            Assert.Equal(1.0, Cka.Linear(x, x), 1e-9);
            Assert.Equal(1.0, Cka.Linear(x, y), 1e-9);
            var z = Tensor.Randn([n, p + 1], g, dtype: DType.Float64);
            Assert.Equal(Cka.Linear(x, z), Cka.Linear(y, z), 1e-9);
            Assert.InRange(Cka.Linear(x, z), 0, 1 + 1e-12);
        });
        TestUtil.AssertOpError("cka", () => Cka.Linear(Tensor.Zeros(3, 2), Tensor.Zeros(4, 2)));
    }

    private static Tensor Orthogonal(int p, Generator g)
    {
        var a = Tensor.Randn([p, p], g, dtype: DType.Float64).ToDoubleArray();
        for (int j = 0; j < p; j++)
        {
            for (int k = 0; k < j; k++)
            {
                double dot = 0;
                for (int i = 0; i < p; i++) dot += a[i * p + j] * a[i * p + k];
                for (int i = 0; i < p; i++) a[i * p + j] -= dot * a[i * p + k];
            }
            double norm = Math.Sqrt(Enumerable.Range(0, p).Sum(i => a[i * p + j] * a[i * p + j]));
            for (int i = 0; i < p; i++) a[i * p + j] /= norm;
        }
        return Tensor.FromArray(a, p, p);
    }
}
