using ConvLab.Autograd;
using ConvLab.Models;
using ConvLab.Onnx;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Xunit;

namespace ConvLab.Tests;

/// <summary>Export: every zoo model's ONNX file loads in ONNX Runtime and gives ConvLab's output; the import round trip gives it too.</summary>
public class OnnxExportTests
{
    /// <summary>Small inputs that keep each model's shapes valid and the suite fast.</summary>
    internal static int[] TestInput(string name) => name switch
    {
        "lenet5" or "simple_cnn" => [1, 28, 28],
        "unet" => [1, 32, 32],
        "yolov1_head" => [1024, 7, 7],
        "alexnet" or "squeezenet1_1" or "yolov3" or "darknet53" => [3, 64, 64],
        _ => [3, 32, 32],
    };

    public static TheoryData<string> ZooNames() => [.. Zoo.Names];

    internal static string TempFile(string name) => Path.Combine(Path.GetTempPath(), $"convlab-onnx-{name}-{Guid.NewGuid():N}.onnx");

    /// <summary>Runs <paramref name="file"/> in ONNX Runtime on one float32 input and returns the first output.</summary>
    internal static (float[] Data, int[] Shape) RunOrt(string file, Tensor input)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 1 };
        using var session = new InferenceSession(file, options);
        var dense = new DenseTensor<float>(input.Contiguous().ToArray(), input.Shape.ToArray());
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(session.InputMetadata.Keys.First(), dense)]);
        var t = results.First().AsTensor<float>();
        return (t.ToArray(), t.Dimensions.ToArray());
    }

    [Theory]
    [MemberData(nameof(ZooNames))]
    public void ZooModelExportsAndOnnxRuntimeAgrees(string name)
    {
        var model = Zoo.Create(name, name == "yolov1_head" ? 20 : 10, new Generator(7));
        model.Eval();
        var shape = TestInput(name);
        // Batch 2 while the export traced batch 1: the batch axis must really be dynamic.
        var x = Tensor.Randn([2, .. shape], new Generator(3));
        Tensor expected;
        using (new NoGrad()) expected = model.Forward(x);
        var file = TempFile(name);
        try
        {
            OnnxExport.Export(model, shape, file);
            var (ort, ortShape) = RunOrt(file, x);
            Assert.Equal(expected.Shape.ToArray(), ortShape);
            double rel = OnnxImportTests.RelativeError(ort, expected.Contiguous().ToArray());
            Assert.True(rel <= 1e-4, $"{name}: ORT vs ConvLab max |diff| / max |output| = {rel:E2}");

            var imported = OnnxModule.Load(file);
            imported.Eval();
            Tensor back;
            using (new NoGrad()) back = imported.Forward(x);
            double relBack = OnnxImportTests.RelativeError(back.Contiguous().ToArray(), expected.Contiguous().ToArray());
            Assert.True(relBack <= 1e-5, $"{name}: round trip max |diff| / max |output| = {relBack:E2}");
            // Every exported weight keeps its state-dict name (num_batches_tracked is not used by inference).
            var names = model.StateDict().Keys.Where(k => !k.EndsWith("num_batches_tracked", StringComparison.Ordinal)).Order(StringComparer.Ordinal);
            Assert.Equal(names, imported.StateDict().Keys.Order(StringComparer.Ordinal));
        }
        finally { File.Delete(file); }
    }

    [Theory]
    [InlineData("squeezenet1_1")]
    [InlineData("tiny_unet")]
    public void ExportWithPyTorchWeightsReproducesPyTorchInOnnxRuntime(string name)
    {
        // NAME.pth from torch.save → ConvLab → ONNX → ONNX Runtime gives PyTorch's own output. tiny_unet puts reflect
        // padding, both resize modes, average pooling, a transposed conv and a skip concat through the exporter.
        var f = OnnxImportTests.Fixtures().Single(x => x.Name == name);
        var model = PthTests.FixtureModel(name, f.OutputShape[1]);
        var (missing, unexpected) = model.LoadStateDict(IO.WeightsFile.Load(Path.Combine(OnnxImportTests.InteropDir, name + ".pth")));
        Assert.Empty(missing);
        Assert.Empty(unexpected);
        var file = TempFile(name);
        try
        {
            OnnxExport.Export(model, f.InputShape[1..], file);
            var (ort, shape) = RunOrt(file, Tensor.FromArray(f.Input, f.InputShape));
            Assert.Equal(f.OutputShape, shape);
            double rel = OnnxImportTests.RelativeError(ort, f.Output);
            Assert.True(rel <= 1e-4, $"{name}: ORT vs PyTorch max |diff| / max |output| = {rel:E2}");
        }
        finally { File.Delete(file); }
    }

    /// <summary>Layers no zoo model has, each exported after a convolution.</summary>
    private static NN.Module Layer(string name) => name switch
    {
        "sigmoid" => new NN.Sigmoid(),
        "tanh" => new NN.Tanh(),
        "hardswish" => new NN.Hardswish(),
        "hardsigmoid" => new NN.Hardsigmoid(),
        "relu6" => new NN.ReLU6(),
        "silu" => new NN.SiLU(),
        "elu" => new NN.ELU(0.7),
        "softplus" => new NN.Softplus(),
        "gelu" => new NN.GELU(),
        "leaky_relu" => new NN.LeakyReLU(0.2),
        "softmax" => new NN.Softmax(1),
        "log_softmax" => new NN.LogSoftmax(1),
        "avg_pool_padded_exclude" => new NN.AvgPool2d([3], [2], [1], countIncludePad: false),
        "avg_pool_padded_include" => new NN.AvgPool2d([3], [2], [1], ceilMode: true),
        "max_pool_dilated" => new NN.MaxPool2d([2], [1], dilation: [2]),
        _ => throw new ArgumentException(name),
    };

    [Theory]
    [InlineData("sigmoid")]
    [InlineData("tanh")]
    [InlineData("hardswish")]
    [InlineData("hardsigmoid")]
    [InlineData("relu6")]
    [InlineData("silu")]
    [InlineData("elu")]
    [InlineData("softplus")]
    [InlineData("gelu")]
    [InlineData("leaky_relu")]
    [InlineData("softmax")]
    [InlineData("log_softmax")]
    [InlineData("avg_pool_padded_exclude")]
    [InlineData("avg_pool_padded_include")]
    [InlineData("max_pool_dilated")]
    public void LayerExportsAndOnnxRuntimeAgrees(string layer)
    {
        var model = new NN.Sequential(new NN.Conv2d(3, 4, 3, padding: 1, generator: new Generator(2)), Layer(layer));
        model.Eval();
        var x = Tensor.Randn([2, 3, 9, 9], new Generator(4), std: 2);
        Tensor expected;
        using (new NoGrad()) expected = model.Forward(x);
        var file = TempFile(layer);
        try
        {
            OnnxExport.Export(model, [3, 9, 9], file);
            var (ort, shape) = RunOrt(file, x);
            Assert.Equal(expected.Shape.ToArray(), shape);
            double rel = OnnxImportTests.RelativeError(ort, expected.Contiguous().ToArray());
            Assert.True(rel <= 1e-4, $"{layer}: ORT vs ConvLab max |diff| / max |output| = {rel:E2}");
            var imported = OnnxModule.Load(file);
            imported.Eval();
            Tensor back;
            using (new NoGrad()) back = imported.Forward(x);
            Assert.True(OnnxImportTests.RelativeError(back.Contiguous().ToArray(), expected.Contiguous().ToArray()) <= 1e-5, $"{layer}: round trip differs");

            // The imported graph's backward (e.g. Erf's, for GELU) gives the original's input gradient.
            float[] InputGrad(NN.Module m)
            {
                var xi = x.Clone().RequiresGrad_();
                m.Forward(xi).Mul(Tensor.Randn(expected.Shape, new Generator(6))).Sum().Backward();
                return xi.Grad!.ToArray();
            }
            Assert.True(OnnxImportTests.RelativeError(InputGrad(imported), InputGrad(model)) <= 1e-5, $"{layer}: input gradients differ");
        }
        finally { File.Delete(file); }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DeformableConvolutionExportsAtOpset19(bool modulated)
    {
        var g = new Generator(11);
        var deform = new NN.DeformConv2d(3, 8, 3, padding: 1, modulated: modulated, generator: g);
        // Non-zero offset weights, so the offsets (and mask) really move the sampling points.
        using (new NoGrad()) deform.OffsetWeight.Copy_(Tensor.Randn(deform.OffsetWeight.Shape, g, std: 0.3));
        var model = new NN.Sequential(deform, new NN.ReLU());
        model.Eval();
        var x = Tensor.Randn([2, 3, 8, 8], new Generator(5));
        Tensor expected;
        using (new NoGrad()) expected = model.Forward(x);
        var file = TempFile("deform");
        try
        {
            Assert.Equal(19, OnnxExport.Export(model, [3, 8, 8], file));
            var imported = OnnxModule.Load(file);
            imported.Eval();
            Tensor back;
            using (new NoGrad()) back = imported.Forward(x);
            Assert.True(OnnxImportTests.RelativeError(back.ToArray(), expected.ToArray()) <= 1e-5);
            var (ort, shape) = RunOrt(file, x);
            Assert.Equal(expected.Shape.ToArray(), shape);
            double rel = OnnxImportTests.RelativeError(ort, expected.ToArray());
            Assert.True(rel <= 1e-4, $"ORT vs ConvLab max |diff| / max |output| = {rel:E2}");
        }
        finally { File.Delete(file); }
    }
}
