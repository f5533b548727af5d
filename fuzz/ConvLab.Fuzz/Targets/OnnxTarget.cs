using ConvLab.NN;
using ConvLab.Onnx;

namespace ConvLab.Fuzz.Targets;

/// <summary>ONNX model import (<see cref="OnnxModule.Load"/>): protobuf parsing and the graph checks of the importer.</summary>
public sealed class OnnxTarget : FuzzTarget
{
    /// <inheritdoc/>
    public override string Name => "onnx";
    /// <inheritdoc/>
    public override string Extension => ".onnx";
    /// <inheritdoc/>
    public override Type[] Expected => [typeof(InvalidDataException), typeof(NotSupportedException)];

    /// <inheritdoc/>
    public override long Run(string path) => Sizes.Of(OnnxModule.Load(path).StateDict().Values);

    /// <inheritdoc/>
    public override IEnumerable<(string, byte[])> Seeds(SeedContext context)
    {
        var g = new Generator(1);
        var cnn = new Sequential(new Conv2d(1, 2, 3, padding: 1, generator: g), new BatchNorm2d(2), new ReLU(), new MaxPool2d(2),
            new Flatten(), new Linear(2 * 2 * 2, 3, generator: g));
        yield return ("cnn", context.Capture("a.onnx", p => OnnxExport.Export(cnn, [1, 4, 4], p)));
        var mixed = new Sequential(new Conv2d(2, 2, 1, groups: 2, generator: g), new AvgPool2d([2]), new Sigmoid(), new GlobalAvgPool2d(), new Flatten());
        yield return ("depthwise", context.Capture("b.onnx", p => OnnxExport.Export(mixed, [2, 4, 4], p, opset: 13)));
    }
}
