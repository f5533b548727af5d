namespace ConvLab.Onnx;

/// <summary>The outcome of one ONNX backend test folder.</summary>
/// <param name="Name">Folder name (e.g. <c>test_conv_with_strides_padding</c>).</param>
/// <param name="Ops">Op types of the model's nodes, comma-separated (empty when the model did not load).</param>
/// <param name="Passed">Every data set's outputs matched.</param>
/// <param name="MaxError">Largest |ConvLab − expected| over all outputs (NaN when nothing was compared).</param>
/// <param name="Reason">Why it failed (empty when it passed).</param>
public sealed record OnnxTestResult(string Name, string Ops, bool Passed, double MaxError, string Reason);

/// <summary>
/// Runs ONNX backend test folders (<c>model.onnx</c> with <c>test_data_set_*/input_*.pb</c> and <c>output_*.pb</c>,
/// the layout of ONNX's <c>onnx/backend/test/data</c>) through <see cref="OnnxModule"/>. An output passes when
/// |actual − expected| ≤ atol + rtol·|expected| element-wise with ONNX's backend-test tolerances (rtol 1e-3,
/// atol 1e-7), raised to atol 1e-5 for float32 sums, and shapes match exactly.
/// </summary>
public static class OnnxBackendTests
{
    /// <summary>Relative tolerance (ONNX's backend runner uses 1e-3).</summary>
    public const double Rtol = 1e-3;

    /// <summary>Absolute tolerance: ONNX uses 1e-7; float32 accumulation order differs from NumPy's float64, so 1e-5.</summary>
    public const double Atol = 1e-5;

    /// <summary>Test folders under <paramref name="dir"/>: the directory itself when it holds a <c>model.onnx</c>, else its sub-folders that do.</summary>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist.</exception>
    public static IReadOnlyList<string> FindTests(string dir)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"check-onnx: directory '{dir}' not found");
        if (File.Exists(Path.Combine(dir, "model.onnx"))) return [dir];
        return Directory.GetDirectories(dir).Where(d => File.Exists(Path.Combine(d, "model.onnx"))).Order(StringComparer.Ordinal).ToArray();
    }

    /// <summary>Runs one test folder; never throws for a bad model or data (the failure is the result).</summary>
    public static OnnxTestResult Run(string folder)
    {
        string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(folder));
        string ops = "";
        try
        {
            var modelPath = Path.Combine(folder, "model.onnx");
            var proto = OnnxFile.ReadModel(modelPath);
            ops = string.Join(",", proto.Graph.Node.Select(n => n.OpType).Distinct());
            var module = OnnxModule.Load(modelPath);
            module.Eval();
            var sets = Directory.GetDirectories(folder, "test_data_set_*").Order(StringComparer.Ordinal).ToArray();
            if (sets.Length == 0) return new(name, ops, false, double.NaN, "no test_data_set_* folders");
            double maxErr = 0;
            foreach (var set in sets)
            {
                var inputs = Numbered(set, "input").Select(OnnxFile.ReadTensor).ToArray();
                var expected = Numbered(set, "output").Select(OnnxFile.ReadTensor).ToArray();
                IReadOnlyList<Tensor> actual;
                using (new Autograd.NoGrad()) actual = module.Run(inputs);
                if (actual.Count < expected.Length) return new(name, ops, false, double.NaN, $"{Path.GetFileName(set)}: {actual.Count} outputs, expected {expected.Length}");
                for (int i = 0; i < expected.Length; i++)
                {
                    var (ok, err, why) = Compare(actual[i], expected[i]);
                    maxErr = Math.Max(maxErr, err);
                    if (!ok) return new(name, ops, false, maxErr, $"{Path.GetFileName(set)} output {i}: {why}");
                }
            }
            return new(name, ops, true, maxErr, "");
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or NotSupportedException or IOException or InvalidOperationException)
        {
            return new(name, ops, false, double.NaN, e.Message.ReplaceLineEndings(" "));
        }
    }

    private static string[] Numbered(string set, string prefix) =>
        Directory.GetFiles(set, prefix + "_*.pb")
            .OrderBy(f => int.TryParse(Path.GetFileNameWithoutExtension(f)[(prefix.Length + 1)..], out var k) ? k : int.MaxValue)
            .ToArray();

    /// <summary>Element-wise comparison within <see cref="Atol"/> + <see cref="Rtol"/>·|expected|; NaN matches NaN.</summary>
    internal static (bool Ok, double MaxError, string Why) Compare(Tensor actual, Tensor expected)
    {
        if (!actual.Shape.SequenceEqual(expected.Shape))
            return (false, double.NaN, $"shape {ShapeUtil.Format(actual.Shape)}, expected {ShapeUtil.Format(expected.Shape)}");
        var a = actual.Contiguous().ToDoubleArray(); var b = expected.ToDoubleArray();
        double max = 0;
        for (int i = 0; i < a.Length; i++)
        {
            if (double.IsNaN(b[i]) && double.IsNaN(a[i])) continue;
            if (double.IsInfinity(b[i]) && a[i] == b[i]) continue;
            double d = Math.Abs(a[i] - b[i]);
            if (!(d <= Atol + Rtol * Math.Abs(b[i]))) return (false, d, $"element {i}: {a[i]:R} vs expected {b[i]:R}");
            max = Math.Max(max, d);
        }
        return (true, max, "");
    }
}
