using ConvLab.Autograd;
using ConvLab.Models;
using ConvLab.NN;
using ConvLab.Onnx;
using Xunit;

namespace ConvLab.Tests;

/// <summary>OnnxModule.FuseForInference: batch norms folded into convolutions give the same outputs, and training is refused afterwards.</summary>
public class OnnxFuseTests
{
    private static (OnnxModule Imported, Module Zoo, Tensor X) ImportZoo(string name, string file)
    {
        var model = Zoo.Create(name, 10, new Generator(7));
        // Statistics away from (0, 1), so a fold that ignored them would show.
        using (new NoGrad())
            foreach (var (k, t) in model.NamedBuffers())
                if (k.EndsWith("running_mean", StringComparison.Ordinal)) t.Copy_(Tensor.Randn(t.Shape, new Generator(1), std: 0.2));
                else if (k.EndsWith("running_var", StringComparison.Ordinal)) t.Copy_(Tensor.Rand(t.Shape, new Generator(2)).AddScalar(0.5));
        model.Eval();
        var shape = OnnxExportTests.TestInput(name);
        OnnxExport.Export(model, shape, file);
        var imported = OnnxModule.Load(file);
        imported.Eval();
        return (imported, model, Tensor.Randn([2, .. shape], new Generator(3)));
    }

    [Theory]
    [InlineData("resnet18")]
    [InlineData("mobilenet_v2")]
    public void FoldingEveryBatchNormKeepsTheOutputsAndMatchesFusionFoldBatchNorm(string name)
    {
        var file = OnnxExportTests.TempFile(name);
        try
        {
            var (m, zoo, x) = ImportZoo(name, file);
            Tensor before, after, zooOut;
            using (new NoGrad()) before = m.Forward(x);
            var keys = m.StateDict().Keys.ToList();
            var pairs = m.FuseForInference();
            int batchNorms = zoo.NamedModules().Count(c => c.Module is BatchNorm2d);
            Assert.Equal(batchNorms, pairs.Count);
            Assert.Equal(pairs, m.FusedBatchNorms);
            using (new NoGrad()) after = m.Forward(x);
            double rel = OnnxImportTests.RelativeError(after.ToArray(), before.ToArray());
            Assert.True(rel <= 1e-5, $"{name}: fused vs unfused max |diff| / max |output| = {rel:E2}");
            Assert.Equal(keys, m.StateDict().Keys);

            // The same folded weights as ConvLab's own fold of the zoo model (both fold in double; ONNX stores epsilon
            // as a float, so a weight can differ in its last bit).
            var folded = Fusion.FoldBatchNorm(zoo, OnnxExportTests.TestInput(name));
            Assert.Equal(batchNorms, folded.Count);
            var mine = m.StateDict();
            foreach (var (conv, _) in folded)
            {
                var w = zoo.StateDict()[conv + ".weight"];
                Assert.True(OnnxImportTests.RelativeError(mine[conv + ".weight"].ToArray(), w.ToArray()) <= 1e-6, conv);
            }
            using (new NoGrad()) zooOut = zoo.Forward(x);
            Assert.True(OnnxImportTests.RelativeError(after.ToArray(), zooOut.ToArray()) <= 1e-5);
        }
        finally { File.Delete(file); }
    }

    [Fact]
    public void FusedModuleRefusesTrainingAndUnfusedOneStillTrains()
    {
        var file = OnnxExportTests.TempFile("resnet18");
        try
        {
            var (m, _, x) = ImportZoo("resnet18", file);
            m.FuseForInference();
            m.Train();
            var e = Assert.Throws<InvalidOperationException>(() => m.Forward(x));
            Assert.Contains("FuseForInference", e.Message);
            Assert.Contains("reload the file", e.Message);
            Assert.Throws<InvalidOperationException>(() => m.FuseForInference());

            // A fresh import of the same file is untouched: it trains, with batch statistics.
            var fresh = OnnxModule.Load(file);
            fresh.Train();
            fresh.Forward(x).Pow(2).Mean().Backward();
            Assert.All(fresh.Parameters(), p => Assert.NotNull(p.Grad));
            Assert.Empty(fresh.FusedBatchNorms);
        }
        finally { File.Delete(file); }
    }

    /// <summary>conv → bn, but the conv output is also added after the batch norm: the pair must not fold.</summary>
    private sealed class SharedConvOutput : Module
    {
        private readonly Conv2d _conv;
        private readonly BatchNorm2d _bn;

        public SharedConvOutput()
        {
            _conv = RegisterModule("conv", new Conv2d(3, 4, 3, padding: 1, bias: false, generator: new Generator(4)));
            _bn = RegisterModule("bn", new BatchNorm2d(4));
        }

        public override Tensor Forward(Tensor input)
        {
            var y = _conv.Call(input);
            return _bn.Call(y).Add(y);
        }
    }

    [Fact]
    public void ConvOutputReadElsewhereIsNotFolded()
    {
        var model = new SharedConvOutput();
        using (new NoGrad())
            foreach (var (k, t) in model.NamedBuffers())
                if (k == "bn.running_mean") t.Fill_(0.3);
        model.Eval();
        var file = OnnxExportTests.TempFile("shared");
        try
        {
            OnnxExport.Export(model, [3, 6, 6], file);
            var m = OnnxModule.Load(file);
            m.Eval();
            var x = Tensor.Randn([1, 3, 6, 6], new Generator(9));
            Tensor before, after;
            using (new NoGrad()) before = m.Forward(x);
            Assert.Empty(m.FuseForInference());
            using (new NoGrad()) after = m.Forward(x);
            Assert.Equal(before.ToArray(), after.ToArray());
        }
        finally { File.Delete(file); }
    }
}
