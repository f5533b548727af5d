using System.Text.Json;
using ConvLab.Autograd;
using ConvLab.Onnx;
using Xunit;

namespace ConvLab.Tests;

/// <summary>ONNX import: PyTorch's exports in ../shared/interop reproduce PyTorch's outputs; ONNX's own backend node tests pass.</summary>
public class OnnxImportTests
{
    internal static string InteropDir => Path.GetFullPath(Path.Combine(TestUtil.ReferenceDir, "..", "interop"));

    internal sealed record Fixture(string Name, int[] InputShape, float[] Input, int[] OutputShape, float[] Output, Dictionary<string, string> Onnx);

    internal static IReadOnlyList<Fixture> Fixtures()
    {
        var manifest = Path.Combine(InteropDir, "manifest.json");
        Assert.True(File.Exists(manifest), $"interop fixtures missing: {manifest}");
        using var doc = JsonDocument.Parse(File.ReadAllText(manifest));
        var list = new List<Fixture>();
        foreach (var m in doc.RootElement.GetProperty("models").EnumerateArray())
        {
            float[] Read(JsonElement e) => Floats(Path.Combine(InteropDir, e.GetProperty("file").GetString()!));
            int[] Shape(JsonElement e) => e.GetProperty("shape").EnumerateArray().Select(v => v.GetInt32()).ToArray();
            var onnx = m.GetProperty("onnx").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
            list.Add(new(m.GetProperty("name").GetString()!, Shape(m.GetProperty("input")), Read(m.GetProperty("input")),
                Shape(m.GetProperty("output")), Read(m.GetProperty("output")), onnx));
        }
        return list;
    }

    private static float[] Floats(string path)
    {
        var b = File.ReadAllBytes(path);
        var f = new float[b.Length / 4];
        Buffer.BlockCopy(b, 0, f, 0, f.Length * 4);
        return f;
    }

    /// <summary>max |a − b| / max |b|.</summary>
    internal static double RelativeError(float[] actual, float[] expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        double maxRef = expected.Max(v => Math.Abs((double)v)), maxDiff = 0;
        for (int i = 0; i < expected.Length; i++) maxDiff = Math.Max(maxDiff, Math.Abs((double)actual[i] - expected[i]));
        return maxDiff / Math.Max(maxRef, 1e-30);
    }

    public static TheoryData<string, string> FixtureFiles()
    {
        var data = new TheoryData<string, string>();
        foreach (var f in Fixtures())
            foreach (var (opset, file) in f.Onnx) data.Add(f.Name, file);
        return data;
    }

    [Theory]
    [MemberData(nameof(FixtureFiles))]
    public void PyTorchExportImportsAndReproducesPyTorch(string model, string file)
    {
        var f = Fixtures().Single(x => x.Name == model);
        var m = OnnxModule.Load(Path.Combine(InteropDir, file));
        m.Eval();
        Tensor y;
        using (new NoGrad()) y = m.Forward(Tensor.FromArray(f.Input, f.InputShape));
        Assert.Equal(f.OutputShape, y.Shape.ToArray());
        double rel = RelativeError(y.ToArray(), f.Output);
        Assert.True(rel <= 1e-4, $"{file}: max |diff| / max |output| = {rel:E2}");
    }

    [Fact]
    public void ImportedModuleFineTunes()
    {
        // The imported weights are parameters: one SGD step on a squared-output loss must lower it.
        var f = Fixtures().Single(x => x.Name == "simple_cnn");
        var m = OnnxModule.Load(Path.Combine(InteropDir, f.Onnx["17"]));
        Assert.Contains(m.NamedParameters(), p => p.Name == "classifier.1.weight");
        var opt = new Training.SGD(m.Parameters(), lr: 1e-3);
        var x = Tensor.FromArray(f.Input, f.InputShape);
        double Loss() { using (new NoGrad()) return m.Forward(x).Pow(2).Mean().Item(); }
        double before = Loss();
        m.ZeroGrad();
        m.Forward(x).Pow(2).Mean().Backward();
        Assert.All(m.Parameters(), p => Assert.NotNull(p.Grad));
        opt.Step();
        Assert.True(Loss() < before, $"loss {before} did not decrease");
    }

    [Fact]
    public void UnsupportedOpsAreListedWithNodeNames()
    {
        var dir = Path.Combine(Path.GetTempPath(), "convlab-onnx-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var model = new Onnx.Proto.ModelProto { IrVersion = 8, Graph = new Onnx.Proto.GraphProto() };
            model.OpsetImport.Add(new Onnx.Proto.OperatorSetIdProto { Version = 17 });
            model.Graph.Input.Add(new Onnx.Proto.ValueInfoProto { Name = "x" });
            model.Graph.Output.Add(new Onnx.Proto.ValueInfoProto { Name = "z" });
            var a = new Onnx.Proto.NodeProto { OpType = "Einsum", Name = "mix" }; a.Input.Add("x"); a.Output.Add("y");
            var b = new Onnx.Proto.NodeProto { OpType = "Relu", Name = "act" }; b.Input.Add("y"); b.Output.Add("y2");
            var c = new Onnx.Proto.NodeProto { OpType = "NonMaxSuppression", Name = "nms" }; c.Input.Add("y2"); c.Output.Add("z");
            model.Graph.Node.Add(a); model.Graph.Node.Add(b); model.Graph.Node.Add(c);
            var path = Path.Combine(dir, "m.onnx");
            OnnxFile.WriteModel(path, model);
            var e = Assert.Throws<NotSupportedException>(() => OnnxModule.Load(path));
            Assert.Contains(path, e.Message);
            Assert.Contains("Einsum (node 'mix')", e.Message);
            Assert.Contains("NonMaxSuppression (node 'nms')", e.Message);
            Assert.DoesNotContain("Relu", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }
}
