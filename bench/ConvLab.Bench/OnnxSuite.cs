using ConvLab.Autograd;
using ConvLab.Models;
using ConvLab.NN;
using ConvLab.Onnx;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace ConvLab.Bench;

/// <summary>
/// The onnx suite: one exported ONNX file per model, run by ConvLab (imported as an <see cref="OnnxModule"/>, trainable,
/// batch norm unfused) and by ONNX Runtime's CPU provider with the same number of intra-op threads (its default graph
/// optimisations on: batch norm fused into convolutions, as ORT serves a file). Two more kinds of case split the gap,
/// each timing two ConvLab variants against each other in one ABBA-alternated case (pairs measured apart on a loaded
/// machine differ by more than the effect): the import after <see cref="OnnxModule.FuseForInference"/> against the plain
/// import (what batch norm costs; models with batch norm only), and the zoo model itself after
/// <see cref="Fusion.FoldBatchNorm"/> against the fused import (what interpreting the graph costs).
/// </summary>
static class OnnxSuite
{
    /// <summary>How ConvLab runs the model.</summary>
    private enum Variant { Import, FusedImport, ZooFolded }

    /// <summary>(ConvLab side, other side): the other side is ONNX Runtime when null.</summary>
    private static readonly (Variant Side, Variant? Against)[] Pairs =
        [(Variant.Import, null), (Variant.FusedImport, Variant.Import), (Variant.ZooFolded, Variant.FusedImport)];

    public static IEnumerable<(string Name, Func<Case> Make)> Cases(int threads)
    {
        foreach (var model in new[] { "mobilenet_v2", "squeezenet1_1", "resnet18" })
            foreach (var n in new[] { 1, 16 })
                foreach (var (side, against) in Pairs)
                {
                    // squeezenet1_1 has no batch norm: its fused import is its import.
                    if (model == "squeezenet1_1" && side == Variant.FusedImport) continue;
                    string name = $"onnx {model} infer b{n} 3x224x224" + (against is { } a ? $" {Label(side)} vs {Label(a)}" : "");
                    yield return (name, () => Make(name, model, n, threads, side, against));
                }
    }

    private static string Label(Variant v) => v switch { Variant.Import => "import", Variant.FusedImport => "fused", _ => "zoo+fold" };

    private static Case Make(string name, string modelName, int n, int threads, Variant side, Variant? against)
    {
        var file = Path.Combine(Path.GetTempPath(), $"convlab-bench-{modelName}.onnx");
        Module NewZoo() => Zoo.Create(modelName, 1000, new Generator(20261204));
        var zoo = NewZoo();
        OnnxExport.Export(zoo, [3, 224, 224], file);
        long flops = Analysis.Summary.Of(zoo, [3, 224, 224]).Flops * n;
        var x = Tensor.Randn([n, 3, 224, 224], new Generator(7));
        Func<float[]> MakeRunner(Variant v)
        {
            Module module;
            if (v == Variant.ZooFolded)
            {
                module = NewZoo();
                module.Eval();
                Fusion.FoldBatchNorm(module, [3, 224, 224]);
            }
            else
            {
                var imported = OnnxModule.Load(file);
                imported.Eval();
                if (v == Variant.FusedImport) imported.FuseForInference();
                module = imported;
            }
            var recycler = new StorageRecycler();
            return () => Suites.Recycled(recycler, () => { using var _ = new NoGrad(); return module.Forward(x).ToArray(); });
        }
        if (against == null && Environment.GetEnvironmentVariable("CONVLAB_BENCH_PROFILE") == "1") Profile(name, file, x, threads);
        var runC = MakeRunner(side);
        Func<float[]> runPeer;
        string peerName;
        if (against is { } other) { runPeer = MakeRunner(other); peerName = Label(other); }
        else
        {
            var options = new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL };
            var session = new InferenceSession(file, options);
            var dense = new DenseTensor<float>(x.ToArray(), [n, 3, 224, 224]);
            var inputs = new List<NamedOnnxValue> { NamedOnnxValue.CreateFromTensor(session.InputMetadata.Keys.First(), dense) };
            runPeer = () =>
            {
                using var r = session.Run(inputs);
                return r.First().AsTensor<float>().ToArray();
            };
            peerName = "ONNX Runtime";
        }
        File.Delete(file);
        return new Case("onnx", name, flops, n, () => runC(), () => runPeer(), () => Runner.RelErr(runC(), runPeer())) { PeerName = peerName };
    }

    /// <summary>
    /// Where the time goes, per op type: ConvLab's fused import (wall time per node) and ONNX Runtime's own profile
    /// (kernel time per node, after its graph rewrites), each the mean of a few forwards after one warm-up; to stderr.
    /// </summary>
    private static void Profile(string name, string file, Tensor x, int threads)
    {
        const int runs = 3;
        var m = OnnxModule.Load(file);
        m.Eval();
        m.FuseForInference();
        var recycler = new StorageRecycler();
        Suites.Recycled(recycler, () => { using var _ = new NoGrad(); return m.Forward(x).ToArray(); });
        m.OpSeconds = [];
        for (int r = 0; r < runs; r++) Suites.Recycled(recycler, () => { using var _ = new NoGrad(); return m.Forward(x).ToArray(); });
        var mine = m.OpSeconds.ToDictionary(kv => kv.Key, kv => kv.Value * 1e3 / runs);

        var options = new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL, EnableProfiling = true,
            ProfileOutputPathPrefix = Path.Combine(Path.GetTempPath(), "convlab-bench-ort-profile") };
        string trace;
        using (var session = new InferenceSession(file, options))
        {
            var inputs = new List<NamedOnnxValue> { NamedOnnxValue.CreateFromTensor(session.InputMetadata.Keys.First(), new DenseTensor<float>(x.ToArray(), x.Shape.ToArray())) };
            for (int r = 0; r <= runs; r++) { using var _ = session.Run(inputs); }
            trace = session.EndProfiling();
        }
        // Chrome-trace events: a node's kernel time is "<node>_kernel_time" with its op in args.op_name, once per run; the
        // first run (warm-up) of each node is dropped.
        var ort = new Dictionary<string, double>();
        using (var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(trace)))
        {
            var events = doc.RootElement.EnumerateArray()
                .Where(e => e.TryGetProperty("cat", out var cat) && cat.GetString() == "Node" && e.GetProperty("name").GetString()!.EndsWith("_kernel_time", StringComparison.Ordinal))
                .Select(e => (Node: e.GetProperty("name").GetString()!, Op: e.GetProperty("args").GetProperty("op_name").GetString()!, Ts: e.GetProperty("ts").GetDouble(), Ms: e.GetProperty("dur").GetDouble() / 1e3));
            foreach (var node in events.GroupBy(e => e.Node))
                foreach (var e in node.OrderBy(e => e.Ts).Skip(1)) ort[e.Op] = ort.GetValueOrDefault(e.Op) + e.Ms / runs;
        }
        File.Delete(trace);
        static string Table(Dictionary<string, double> ms)
        {
            double total = ms.Values.Sum();
            return $"{total:F1} ms: " + string.Join(", ", ms.OrderByDescending(kv => kv.Value).Select(kv => $"{kv.Key} {kv.Value:F1} ({100 * kv.Value / total:F0}%)"));
        }
        Console.Error.WriteLine($"profile {name}\n  ConvLab fused import {Table(mine)}\n  ONNX Runtime         {Table(ort)}");
    }
}
