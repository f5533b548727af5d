using ConvLab.Autograd;
using ConvLab.Models;
using ConvLab.Onnx;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace ConvLab.Bench;

/// <summary>
/// The onnx suite: one exported ONNX file per model, run by ConvLab (imported as an <see cref="OnnxModule"/>) and by
/// ONNX Runtime's CPU provider with the same number of intra-op threads (its default graph optimisations on: batch
/// norm fused into convolutions, as ORT serves a file).
/// </summary>
static class OnnxSuite
{
    public static IEnumerable<(string Name, Func<Case> Make)> Cases(int threads)
    {
        foreach (var model in new[] { "mobilenet_v2", "squeezenet1_1", "resnet18" })
            foreach (var n in new[] { 1, 16 })
            {
                string name = $"onnx {model} infer b{n} 3x224x224";
                yield return (name, () => Make(name, model, n, threads));
            }
    }

    private static Case Make(string name, string modelName, int n, int threads)
    {
        var zoo = Zoo.Create(modelName, 1000, new Generator(20261204));
        var file = Path.Combine(Path.GetTempPath(), $"convlab-bench-{modelName}.onnx");
        OnnxExport.Export(zoo, [3, 224, 224], file);
        long flops = Analysis.Summary.Of(zoo, [3, 224, 224]).Flops * n;
        var module = OnnxModule.Load(file);
        module.Eval();
        var options = new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL };
        var session = new InferenceSession(file, options);
        File.Delete(file);
        var x = Tensor.Randn([n, 3, 224, 224], new Generator(7));
        var dense = new DenseTensor<float>(x.ToArray(), [n, 3, 224, 224]);
        var inputs = new List<NamedOnnxValue> { NamedOnnxValue.CreateFromTensor(session.InputMetadata.Keys.First(), dense) };
        var recycler = new StorageRecycler();
        float[] RunC() => Suites.Recycled(recycler, () => { using var _ = new NoGrad(); return module.Forward(x).ToArray(); });
        float[] RunO()
        {
            using var r = session.Run(inputs);
            return r.First().AsTensor<float>().ToArray();
        }
        return new Case("onnx", name, flops, n, () => RunC(), () => RunO(), () => Runner.RelErr(RunC(), RunO())) { PeerName = "ONNX Runtime" };
    }
}
