using System.Text.Json;
using ConvLab.Autograd;
using ConvLab.Experiments.InductiveBias;
using ConvLab.IO;
using ConvLab.Vision;
using Xunit;

namespace ConvLab.Tests;

/// <summary>The notebook experiments: `convlab experiment inductive-bias|filters --quick` end to end as processes, and the seed-independent invariants in-process.</summary>
public class NotebookExperimentTests
{
    private static string TempDir() => Directory.CreateTempSubdirectory("convlab-nb-").FullName;

    private static JsonElement RunQuick(string dir, params string[] extra)
    {
        var (code, text, err) = CliTests.Run(5, ["experiment", .. extra, "--quick", "--out", dir]);
        Assert.True(code == 0, text + err);
        Assert.True(File.Exists(Path.Combine(dir, "report.md")));
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "results.json")));
        var root = doc.RootElement.Clone();
        var figures = root.GetProperty("figures").EnumerateArray().Select(f => f.GetString()!).ToList();
        Assert.NotEmpty(figures);
        foreach (var f in figures)
        {
            var bytes = File.ReadAllBytes(Path.Combine(dir, f));
            Assert.True(bytes.Length > 100 && bytes[1] == (byte)'P' && bytes[2] == (byte)'N' && bytes[3] == (byte)'G', f);
        }
        return root;
    }

    [Fact]
    public void InductiveBiasQuickWritesTheContractAndKeepsTheInvariants()
    {
        var dir = TempDir();
        try
        {
            var r = RunQuick(dir, "inductive-bias");
            Assert.Equal(606, r.GetProperty("cnn_params").GetInt64());
            Assert.Equal(39_793, r.GetProperty("mlp_params").GetInt64());
            var sweep = r.GetProperty("sweep").EnumerateArray().ToList();
            Assert.True(sweep.Count >= 2);
            foreach (var row in sweep)
                foreach (var key in new[] { "images_per_class", "cnn_val_accuracy", "mlp_val_accuracy", "edge_init_val_accuracy" })
                    Assert.InRange(row.GetProperty(key).GetDouble(), 0, key == "images_per_class" ? 1000 : 1);
            foreach (var section in new[] { "domain_shift", "permuted" })
                foreach (var key in new[] { "images_per_class", "cnn_val_accuracy", "mlp_val_accuracy" })
                    Assert.True(r.GetProperty(section).TryGetProperty(key, out _), $"{section}.{key}");
            var five = r.GetProperty("five_classes");
            Assert.InRange(five.GetProperty("max_pool_val_accuracy").GetDouble(), 0, 1);
            Assert.InRange(five.GetProperty("avg_pool_val_accuracy").GetDouble(), 0, 1);
            // The permuted MLP starts from the same function (first-layer columns permuted likewise) and sees the same
            // batches: only the order of float sums differs, so at most one validation image may flip.
            var p = r.GetProperty("permuted");
            int valImages = 3 * 20;
            Assert.True(Math.Abs(p.GetProperty("mlp_val_accuracy").GetDouble() - p.GetProperty("mlp_original_val_accuracy").GetDouble()) <= 1.0 / valImages + 1e-9);
            // Loose: with hand-made edge detectors only a 12-parameter linear layer has to learn, even in the quick budget.
            Assert.True(sweep[^1].GetProperty("edge_init_val_accuracy").GetDouble() >= 0.6);
            var report = File.ReadAllText(Path.Combine(dir, "report.md"));
            foreach (var heading in new[] { "Q1", "Q2", "Q3", "Q4", "Q5", "Q6", "Targets" }) Assert.Contains("## " + heading, report);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void ModelsHaveTheNotebooksParameterCountsWhateverTheSeed()
    {
        foreach (ulong seed in new ulong[] { 0, 1, 12345 })
        {
            Assert.Equal(606, EdgeModels.Cnn(seed).ParameterCount());
            Assert.Equal(39_793, EdgeModels.Mlp(seed).ParameterCount());
            Assert.Equal(12, EdgeModels.EdgeInitCnn(seed).ParameterCount(trainableOnly: true));
        }
    }

    [Fact]
    public void PermutedMlpComputesTheSameFunctionOnPermutedPixels()
    {
        var perm = EdgeImages.Permutation(5);
        var original = EdgeImages.Create(4, 9);
        var permuted = EdgeImages.Create(4, 9, permutation: perm);
        var a = EdgeModels.Mlp(3);
        var b = EdgeModels.PermutedMlp(3, perm);
        using var _ = new NoGrad();
        for (int i = 0; i < original.Count; i++)
        {
            var ya = a.Forward(original.Get(i).Input.Unsqueeze(0)).ToDoubleArray();
            var yb = b.Forward(permuted.Get(i).Input.Unsqueeze(0)).ToDoubleArray();
            for (int k = 0; k < ya.Length; k++) Assert.Equal(ya[k], yb[k], 4);
            Assert.Equal(original.Get(i).Label, permuted.Get(i).Label);
        }
    }

    [Fact]
    public void CircularPaddingMakesTheCnnInvariantToEvenShiftsAndReflectDoesNot()
    {
        // The premise of Q4's diagnostic: moving a band 14 rows down (an even circular shift) leaves the circular-padded
        // CNN's logits unchanged, whatever the seed, kernel size or image; the notebook's reflect padding changes them.
        var images = EdgeImages.Create(3, 21, region: BandRegion.TopLeft);
        using var _ = new NoGrad();
        foreach (var (seed, k) in new[] { (1UL, 7), (2UL, 3), (3UL, 5) })
        {
            var circular = EdgeModels.Cnn(seed, kernel: k, paddingMode: "circular");
            var reflect = EdgeModels.Cnn(seed, kernel: k);
            double reflectChange = 0;
            for (int i = 0; i < images.Count; i++)
            {
                var px = images.Pixels(i).ToArray();
                var shifted = new float[px.Length];
                for (int y = 0; y < 28; y++)
                    for (int x = 0; x < 28; x++) shifted[((y + 14) % 28) * 28 + (x + 14) % 28] = px[y * 28 + x];
                var a = Tensor.FromArray(px, 1, 1, 28, 28);
                var b = Tensor.FromArray(shifted, 1, 1, 28, 28);
                var ya = circular.Forward(a).ToDoubleArray();
                var yb = circular.Forward(b).ToDoubleArray();
                for (int j = 0; j < ya.Length; j++) Assert.Equal(ya[j], yb[j], 5);
                var ra = reflect.Forward(a).ToDoubleArray();
                var rb = reflect.Forward(b).ToDoubleArray();
                reflectChange = Math.Max(reflectChange, ra.Zip(rb, (p, q) => Math.Abs(p - q)).Max());
            }
            Assert.True(reflectChange > 1e-4, $"reflect padding, kernel {k}: the shift changed the logits by at most {reflectChange}");
        }
    }

    [Fact]
    public void ShippedSampleImageIsWhatTheGeneratorDraws()
    {
        // tools/sample-image writes the PNG from Vision.SampleImage at 8 bits per channel; the embedded file must decode
        // to exactly those levels, so neither can change without the other.
        var shipped = Experiments.Filters.ShippedSampleImage.Load();
        Assert.Equal(new[] { 3, Vision.SampleImage.Size, Vision.SampleImage.Size }, shipped.Shape.ToArray());
        var drawn = Vision.SampleImage.Create().ToArray();
        var decoded = shipped.ToArray();
        int differing = Enumerable.Range(0, drawn.Length).Count(i => decoded[i] != MathF.Round(Math.Clamp(drawn[i], 0f, 1f) * 255f) / 255f);
        Assert.Equal(0, differing);
        Assert.True(Experiments.Filters.ShippedSampleImage.Bytes().Take(8).SequenceEqual(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }), "the shipped file is a PNG");
    }

    [Fact]
    public void EdgeImagesFollowTheNotebooksRecipe()
    {
        var d = EdgeImages.Create(20, 4);
        var again = EdgeImages.Create(20, 4);
        for (int i = 0; i < d.Count; i++)
        {
            var px = d.Pixels(i).ToArray();
            Assert.Equal(px, again.Pixels(i).ToArray());
            float bg = px.Min();
            Assert.InRange(bg, 0, 0.2f);
            var band = px.Where(v => v != bg).ToArray();
            string cls = d.ClassNames[(int)d.Get(i).Label];
            if (cls == "none") { Assert.Empty(band); continue; }
            Assert.All(band, v => Assert.InRange(v, 0.25f, 1f));
            // A horizontal band fills whole rows (1-4 of them), a vertical one whole columns.
            int lines = Enumerable.Range(0, 28).Count(k => Enumerable.Range(0, 28).All(j => (cls == "horizontal" ? px[k * 28 + j] : px[j * 28 + k]) != bg));
            Assert.InRange(lines, 1, 4);
            Assert.Equal(lines * 28, band.Length);
        }
        var top = EdgeImages.Create(10, 2, region: BandRegion.TopLeft);
        for (int i = 0; i < top.Count; i++)
        {
            var px = top.Pixels(i).ToArray();
            float bg = px.Min();
            Assert.All(Enumerable.Range(0, 784).Where(k => px[k] != bg), k => Assert.True(top.Get(i).Label == 0 ? k / 28 < 14 : k % 28 < 14));
        }
        Assert.Equal(EdgeImages.FiveClasses, EdgeImages.Create(1, 1, classes: 5).ClassNames);
    }

    [Fact]
    public void FiltersQuickWithoutARunSaysSoAndWithARunMatchesItsFilters()
    {
        var dir = TempDir();
        try
        {
            var r = RunQuick(Path.Combine(dir, "plain"), "filters");
            Assert.Equal(JsonValueKind.Null, r.GetProperty("learned").ValueKind);
            Assert.Contains("No `--run DIR` was given", File.ReadAllText(Path.Combine(dir, "plain", "report.md")));
            var blur = r.GetProperty("blur").EnumerateArray().Select(b => b.GetProperty("mean_abs_laplacian").GetDouble()).ToList();
            Assert.True(blur[0] > blur[1] && blur[1] > blur[2], "a larger box removes more detail on the sample image");

            // A run folder as `convlab train` leaves it: model.safetensors of the default model, two filters set by hand.
            var runDir = Path.Combine(dir, "run");
            Directory.CreateDirectory(runDir);
            var model = new Models.SimpleCnn();
            var conv = (NN.Conv2d)model.Features[0];
            var w = conv.Weight.ToArray();
            Filters.Parse("sobel-y").Kernel.ToArray().CopyTo(w, 0);
            Filters.Box(3).Neg().ToArray().CopyTo(w, 9);
            using (new NoGrad()) conv.Weight.Copy_(Tensor.FromArray(w, conv.Weight.Shape.ToArray()));
            model.SaveSafeTensors(Path.Combine(runDir, "model.safetensors"));
            var withRun = RunQuick(Path.Combine(dir, "with-run"), "filters", "--run", runDir);
            var matches = withRun.GetProperty("learned").GetProperty("matches").EnumerateArray().ToList();
            Assert.Equal(32, matches.Count);
            Assert.Equal("sobel-y", matches[0].GetProperty("best_match").GetString());
            Assert.Equal(1, matches[0].GetProperty("cosine").GetDouble(), 9);
            Assert.Equal("box:3", matches[1].GetProperty("best_match").GetString());
            Assert.Equal(-1, matches[1].GetProperty("cosine").GetDouble(), 9);
            Assert.Contains("learned-vs-hand.png", withRun.GetProperty("figures").EnumerateArray().Select(f => f.GetString()));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [InlineData("--image", "--image", "BROKEN")]
    [InlineData("--run", "--run", "EMPTYDIR")]
    public void FiltersBadInputNamesTheOption(string option, params string[] args)
    {
        var dir = TempDir();
        try
        {
            string broken = Path.Combine(dir, "broken.jpg");
            File.WriteAllBytes(broken, [0xFF, 0xD8, 0xFF, 1, 2, 3]);
            var full = args.Select(a => a switch { "BROKEN" => broken, "EMPTYDIR" => dir, _ => a }).ToArray();
            var (code, text, err) = CliTests.Run(2, ["experiment", "filters", "--quick", "--out", Path.Combine(dir, "out"), .. full]);
            Assert.NotEqual(0, code);
            var last = (text + err).Trim().Split('\n')[^1];
            Assert.StartsWith(option + ":", last);
            Assert.DoesNotContain("   at ", text + err);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void MemoryQuickMeasuresEachConfigurationAndTrainsEachBatch()
    {
        var dir = TempDir();
        try
        {
            var r = RunQuick(dir, "memory", "--data", "embedded");
            var rows = r.GetProperty("rows").EnumerateArray().ToList();
            Assert.True(rows.Count >= 4);
            Assert.Equal(["sgd", "momentum", "adam"], rows.Take(3).Select(x => x.GetProperty("optimizer").GetString()));
            foreach (var row in rows)
            {
                Assert.False(string.IsNullOrEmpty(row.GetProperty("model").GetString()));
                Assert.True(row.GetProperty("batch").GetInt32() > 0);
                Assert.True(row.GetProperty("estimated_bytes").GetInt64() > 0);
                Assert.True(row.GetProperty("measured_bytes").GetInt64() > 0, "a quick configuration fits any budget, so it is measured");
            }
            // Optimizer state is real memory: momentum keeps one slot, Adam two, in the measurement as in the estimate.
            var m = rows.Take(3).Select(x => x.GetProperty("measured_bytes").GetInt64()).ToList();
            Assert.True(m[0] < m[1] && m[1] < m[2], string.Join(", ", m));
            var runs = r.GetProperty("batch_runs").EnumerateArray().ToList();
            Assert.True(runs.Count >= 2);
            foreach (var run in runs)
            {
                Assert.True(run.GetProperty("seconds").GetDouble() > 0);
                Assert.True(run.GetProperty("lr").GetDouble() > 0);
                Assert.InRange(run.GetProperty("final_train_accuracy").GetDouble(), 0, 1);
            }
            Assert.True(r.GetProperty("largest_batch").GetProperty("by_estimate").GetInt32() > 0);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void UnknownInductiveBiasSectionIsNamedBeforeAnyWork()
    {
        var dir = TempDir();
        try
        {
            var (code, text, err) = CliTests.Run(2, "experiment", "inductive-bias", "--quick", "--set", "sections=q4,q9", "--out", dir);
            Assert.NotEqual(0, code);
            var last = (text + err).Trim().Split('\n')[^1];
            Assert.Contains("sections=", last);
            Assert.Contains("\"q4,q9\"", last);
            Assert.False(File.Exists(Path.Combine(dir, "examples.png")));
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [Theory]
    [InlineData("below one training step", "1KB")]
    [InlineData("expected a positive size", "lots")]
    public void MemoryBudgetErrorsNameTheOption(string why, string budget)
    {
        var dir = TempDir();
        try
        {
            var (code, text, err) = CliTests.Run(2, "experiment", "memory", "--quick", "--budget", budget, "--out", dir);
            Assert.NotEqual(0, code);
            var last = (text + err).Trim().Split('\n')[^1];
            Assert.StartsWith("--budget:", last);
            Assert.Contains(why, last);
        }
        finally { Directory.Delete(dir, true); }
    }
}
