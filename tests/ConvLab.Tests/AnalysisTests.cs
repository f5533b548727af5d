using ConvLab.Analysis;
using ConvLab.Autograd;
using ConvLab.Models;
using ConvLab.NN;
using ConvLab.NN.Functional;
using ConvLab.Training;
using CsCheck;
using Xunit;

namespace ConvLab.Tests;

public class AnalysisTests
{
    /// <summary>Two small input sizes per zoo model (real forwards stay cheap) — every zoo name must appear.</summary>
    public static IEnumerable<object[]> ZooInputs() => Zoo.Names.Select(n => new object[] { n });

    private static (int[] A, int[] B) SmallInputs(string name) => name switch
    {
        "lenet5" or "simple_cnn" => ([1, 28, 28], [1, 28, 28]),
        "unet" => ([1, 32, 32], [1, 40, 48]),
        "alexnet" => ([3, 64, 64], [3, 64, 80]),
        "yolov1_head" => ([1024, 7, 7], [1024, 7, 7]),
        "darknet53" or "yolov3" or "tiny_yolo" => ([3, 32, 32], [3, 64, 96]),
        _ => ([3, 32, 32], [3, 32, 48]),
    };

    /// <summary>
    /// The zoo model, except where building it costs seconds of weight initialisation: the YOLOv1 head with a narrow
    /// hidden layer, FCN-32s at a quarter of the width (the zoo's own constructor), and the VGGs as their feature stacks
    /// (their head — adaptive pooling to 7x7, Linear/ReLU/Dropout — is AlexNet's, checked in full).
    /// </summary>
    private static Module Create(string name) => name switch
    {
        "yolov1_head" => new YoloV1Head(inChannels: 1024, hidden: 64, generator: new Generator(1)),
        "fcn32s" => new FCN32s(21, 4, new Generator(1)),
        _ when name.StartsWith("vgg", StringComparison.Ordinal) =>
            VGG.MakeLayers(int.Parse(name[3..5], System.Globalization.CultureInfo.InvariantCulture), name.EndsWith("_bn", StringComparison.Ordinal), new Generator(1)),
        _ => Zoo.Create(name, ModelClasses(name), new Generator(1)),
    };

    private static int ModelClasses(string name) => name switch { "lenet5" or "simple_cnn" => 10, "fcn32s" => 21, "unet" => 2, "yolov3" => 80, "tiny_yolo" => 4, _ => 1000 };

    [Theory]
    [MemberData(nameof(ZooInputs))]
    public void MetaForwardShapesEqualRealForwardShapes(string name)
    {
        var model = Create(name);
        model.Eval();
        var (a, b) = SmallInputs(name);
        foreach (var (input, batch) in new[] { (a, 1), (b, 1) })
        {
            var meta = Summary.TraceCalls(model, Tensor.Meta([batch, .. input]));
            IReadOnlyList<(string Path, int[] Shape)> real;
            using (new NoGrad()) real = Summary.TraceCalls(model, Tensor.Randn([batch, .. input], new Generator(2)));
            Assert.Equal(real.Count, meta.Count);
            for (int i = 0; i < real.Count; i++)
            {
                Assert.Equal(real[i].Path, meta[i].Path);
                Assert.Equal(real[i].Shape, meta[i].Shape);
            }
            // The summary's rows end in the model's output.
            var s = Summary.Of(model, input, batch);
            Assert.Equal(real[^1].Shape[1..], s.OutputShape);
            Assert.Equal(model.ParameterCount(), s.Layers.Sum(l => l.Params));
        }
        // The meta pass at full size (milliseconds, no arithmetic).
        int[] full = a[0] == 3 ? [3, name is "darknet53" or "yolov3" or "tiny_yolo" ? 416 : 224, name is "darknet53" or "yolov3" or "tiny_yolo" ? 416 : 224] : name == "unet" ? [1, 572, 572] : a;
        var big = Summary.Of(model, full, 32);
        Assert.True(big.OutputShape.Length > 0 && big.Macs > 0 && big.Memory.TotalBytes > big.ModelBytes);
        if (model is ResNet or MobileNetV2 or DenseNet121 or AlexNet) Assert.Equal([1000], big.OutputShape);
    }

    [Fact]
    public void ConvAndLinearMacsEqualTheAnalyticFormula() =>
        Gen.Select(Gen.Int[1, 4], Gen.Int[1, 4], Gen.Int[1, 3], Gen.Int[1, 5], Gen.Int[1, 3], Gen.Int[0, 2], Gen.Int[1, 2], Gen.Int[5, 20]).Sample(
            (g, cinG, coutG, k, s, p, d, size) =>
            {
                int cin = g * cinG, cout = g * coutG;
                if (d * (k - 1) + 1 > size + 2 * p) return;
                var conv = new Conv2d(cin, cout, k, s, p, d, g, bias: s % 2 == 0, generator: new Generator(3));
                int[] real;
                using (new NoGrad()) real = conv.Call(Tensor.Randn([1, cin, size, size + 1], new Generator(4))).Shape.ToArray();
                int flat = real[1] * real[2] * real[3];
                var model = new Sequential(conv, new Flatten(), new Linear(flat, 7));
                var sum = Summary.Of(model, [cin, size, size + 1]);
                var c = sum.Layers[0];
                long macs = (long)real[2] * real[3] * cout * (cin / g) * k * k;
                Assert.Equal(macs, c.Macs);
                Assert.Equal(2 * macs + (conv.Bias != null ? (long)cout * real[2] * real[3] : 0), c.Flops);
                Assert.Equal(real[1..], c.OutputShape);
                Assert.Equal(conv.ParameterCount(), c.Params);
                var fc = sum.Layers[^1];
                Assert.Equal((long)flat * 7, fc.Macs);
                Assert.Equal(2L * flat * 7 + 7, fc.Flops);
            }, iter: 60);

    /// <summary>A random stack of convolutions and average pools (max pooling routes gradients to one pixel, so it is left out).</summary>
    private static readonly Gen<(int K, int S, int P, int D, bool Pool)[]> Layers =
        Gen.Select(Gen.Int[1, 5], Gen.Int[1, 3], Gen.Int[0, 2], Gen.Int[1, 2], Gen.Int[0, 3])
           .Select((k, s, p, d, pool) => (k, s, Math.Min(p, k / 2), pool == 0 ? 1 : d, pool == 0)).Array[1, 4];

    private static Module Build((int K, int S, int P, int D, bool Pool)[] layers) =>
        new Sequential(layers.Select(l => l.Pool ? (Module)new AvgPool2d(l.K, l.S, l.P) : new Conv2d(1, 1, l.K, l.S, l.P, l.D, bias: false)).ToArray());

    private static (double Rf, double Jump, double Lo) Recursive((int K, int S, int P, int D, bool Pool)[] layers)
    {
        double rf = 1, jump = 1, lo = 0;
        foreach (var l in layers)
        {
            rf += (l.K - 1) * l.D * jump;  // RF_l = RF_{l-1} + (k_l - 1)*d_l*prod(s_1..s_{l-1})
            lo -= l.P * jump;              // first input pixel of output 0
            jump *= l.S;
        }
        return (rf, jump, lo);
    }

    /// <summary>The input pixels whose gradient is non-zero for output pixel (oy, ox), as a bounding box per dimension.</summary>
    private static (int Lo, int Hi)[] GradientBox(Module model, int h, int w, int oy, int ox, Func<Tensor, Tensor> pick)
    {
        var x = Tensor.Ones([1, 1, h, w]).RequiresGrad_();
        pick(model.Call(x)).Backward();
        var grad = x.Grad!.ToArray();
        int y0 = int.MaxValue, y1 = -1, x0 = int.MaxValue, x1 = -1;
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++)
                if (grad[i * w + j] != 0) { y0 = Math.Min(y0, i); y1 = Math.Max(y1, i); x0 = Math.Min(x0, j); x1 = Math.Max(x1, j); }
        return [(y0, y1), (x0, x1)];
    }

    [Fact]
    public void ReceptiveFieldEqualsTheRecursiveFormulaAndTheGradientSupport() =>
        Gen.Select(Layers, Gen.Int[0, 1000]).Sample((layers, pick) =>
        {
            const int h = 40, w = 37;
            var model = Build(layers);
            foreach (var p in model.Parameters()) using (new NoGrad()) p.Fill_(1); // positive weights: no cancellation hides a pixel
            ModelSummary s;
            try { s = Summary.Of(model, [1, h, w]); }
            catch (ArgumentException) { return; } // the stack does not fit the input
            var last = s.Layers[^1];
            var (rf, jump, lo0) = Recursive(layers);
            Assert.Equal([rf, rf], last.ReceptiveField);
            Assert.Equal([jump, jump], last.Jump);
            // An output pixel whose whole field lies inside the image (clipping at a dilated border leaves holes).
            int[] Inside(int n, int size) => Enumerable.Range(0, n).Where(o => lo0 + o * jump >= 0 && lo0 + o * jump + rf - 1 <= size - 1).ToArray();
            int[] ys = Inside(last.OutputShape[1], h), xs = Inside(last.OutputShape[2], w);
            if (ys.Length == 0 || xs.Length == 0) return;
            int oy = ys[pick % ys.Length], ox = xs[pick / 7 % xs.Length];
            var box = GradientBox(model, h, w, oy, ox, y => y.Select(0, 0).Select(0, 0).Select(0, oy).Select(0, ox));
            var o = new[] { oy, ox };
            for (int dim = 0; dim < 2; dim++)
            {
                // The field of output o spans start + o*jump -/+ (rf - 1)/2.
                double centre = last.Start[dim] + o[dim] * last.Jump[dim];
                Assert.Equal(lo0 + o[dim] * jump, centre - (rf - 1) / 2);
                Assert.Equal(((int)(centre - (rf - 1) / 2), (int)(centre + (rf - 1) / 2)), box[dim]);
            }
        }, iter: 40);

    [Fact]
    public void MergesTakeTheUnionOfTheirInputsReceptiveFields()
    {
        // Residual: body 3x3 -> 3x3 (RF 5) plus a 1x1 shortcut; dense concat of the input with a dilated 3x3 (RF 5): unions.
        var residual = new Residual(new Sequential(new Conv2d(1, 1, 3, padding: 1, bias: false), new Conv2d(1, 1, 3, padding: 1, bias: false)), new Conv2d(1, 1, 1, bias: false));
        var model = new Sequential(residual, new DenseConcat(new Conv2d(1, 1, 3, padding: 2, dilation: 2, bias: false)), new Conv2d(2, 1, 3, stride: 2, bias: false));
        foreach (var p in model.Parameters()) using (new NoGrad()) p.Fill_(1);
        var s = Summary.Of(model, [1, 21, 21]);
        Assert.Equal(new double[] { 5, 5 }, s.Layers.First(l => l.Type == "add").ReceptiveField);
        Assert.Equal(new double[] { 9, 9 }, s.Layers.First(l => l.Type == "cat").ReceptiveField);
        var last = s.Layers[^1];
        Assert.Equal(new double[] { 11, 11 }, last.ReceptiveField);
        var box = GradientBox(model, 21, 21, 4, 4, y => y.Select(0, 0).Select(0, 0).Select(0, 4).Select(0, 4));
        double centre = last.Start[0] + 4 * last.Jump[0];
        Assert.Equal(((int)(centre - 5), (int)(centre + 5)), box[0]);
        Assert.Equal(((int)(centre - 5), (int)(centre + 5)), box[1]);
    }

    [Fact]
    public void CourseExamplesAreReproduced()
    {
        Assert.Equal("O = floor((227 - 11 + 2*0) / 4) + 1 = 55", Formulas.ConvOutput(227, 11, 4).Explain());
        // 128x128 input, three 5x5 stride-2 convolutions 3->64->128->256 (padding 2): 4,864 / 204,928 / 819,456 parameters, RF 29.
        var model = new Sequential(new Conv2d(3, 64, 5, 2, 2), new Conv2d(64, 128, 5, 2, 2), new Conv2d(128, 256, 5, 2, 2));
        var s = Summary.Of(model, [3, 128, 128]);
        Assert.Equal(new long[] { 4864, 204928, 819456 }, s.Layers.Select(l => l.Params));
        Assert.Equal(new double[] { 29, 29 }, s.Layers[^1].ReceptiveField);
        Assert.Equal(new[] { 256, 16, 16 }, s.OutputShape);
    }

    [Fact]
    public void SummaryRejectsBadArgumentsByName()
    {
        var model = new Sequential(new Conv2d(3, 4, 3));
        Assert.StartsWith("summary:", Assert.Throws<ArgumentException>(() => Summary.Of(model, [3, 0, 4])).Message);
        Assert.StartsWith("summary:", Assert.Throws<ArgumentException>(() => Summary.Of(model, [3, 8, 8], batch: 0)).Message);
        Assert.StartsWith("optimizer:", Assert.Throws<ArgumentException>(() => Summary.Of(model, [3, 8, 8], optimizer: "lbfgs")).Message);
        Assert.StartsWith("conv2d:", Assert.Throws<ArgumentException>(() => Summary.Of(model, [2, 8, 8])).Message);
        Assert.Throws<InvalidOperationException>(() => Tensor.Meta([2, 2]).ToArray());
        Assert.Throws<InvalidOperationException>(() => Tensor.Meta([2, 2])[0, 1]);
        Assert.Contains("device='meta'", Tensor.Meta([2, 3]).ToString());
    }
}

/// <summary>
/// The training-memory estimate against a real ConvLab training step. The measurement is process-wide (live bytes after
/// full collections), so it runs in a fresh `convlab memory --measure` process: in the test host, other tests' pooled
/// scratch and its trimming by the GC would move the figure.
/// </summary>
public class TrainingMemoryTests(Xunit.Abstractions.ITestOutputHelper log)
{
    public static IEnumerable<object[]> Cases() =>
    [
        ["lenet5", 16, "adam"], ["lenet5", 64, "adam"],
        ["resnet18", 2, "momentum"], ["resnet18", 8, "momentum"],
        ["mobilenet_v2", 2, "rmsprop"], ["mobilenet_v2", 8, "rmsprop"],
    ];

    [Theory]
    [MemberData(nameof(Cases))]
    public void EstimateIsWithin20PercentOfTheMeasuredTrainingStep(string name, int batch, string optimizer)
    {
        string input = name == "lenet5" ? "1x28x28" : "3x32x32";
        var (code, stdout, stderr) = CliTests.Run(3, "memory", name, "--input", input, "--classes", "10", "--batch", batch.ToString(),
            "--optimizer", optimizer, "--measure", "--format", "json");
        Assert.True(code == 0, stderr);
        var memory = System.Text.Json.JsonDocument.Parse(stdout).RootElement.GetProperty("memory");
        long estimate = memory.GetProperty("total_bytes").GetInt64(), measured = memory.GetProperty("measured_bytes").GetInt64();
        long step = memory.GetProperty("measured_step_bytes").GetInt64(), scratch = memory.GetProperty("measured_scratch_bytes").GetInt64();
        Assert.Equal(measured, step + scratch);
        // The step holds at least the parameters, their gradients and the optimizer state: a floor the probe must clear.
        Assert.True(step > memory.GetProperty("param_bytes").GetInt64() + memory.GetProperty("gradient_bytes").GetInt64() + memory.GetProperty("optimizer_bytes").GetInt64());
        double ratio = (double)estimate / measured;
        log.WriteLine($"{name} batch {batch} {optimizer}: estimate {estimate:N0}, measured {measured:N0} (step {step:N0} + scratch {scratch:N0}), ratio {ratio:0.000}");
        Assert.True(ratio is > 0.8 and < 1.2, $"{name} batch {batch}: estimate {estimate:N0} vs measured {measured:N0} bytes (ratio {ratio:0.000})");
    }
}
