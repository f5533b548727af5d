using System.CommandLine;
using ConvLab.IO;
using ConvLab.NN;
using ConvLab.Onnx;

namespace ConvLab.Cli;

/// <summary><c>convlab export RUN|MODEL [--weights FILE] --onnx FILE [--opset N]</c>: writes a model as ONNX with a dynamic batch axis.</summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var source = new Argument<string>("model") { Description = "A run folder written by convlab train, a zoo model name or a spec string" };
        var onnx = new Option<string>("--onnx") { Description = "The .onnx file to write", Required = true };
        var weights = new Option<string?>("--weights") { Description = "Weights to load first (.safetensors or .pth; a run folder brings its own)" };
        var opset = new Option<int?>("--opset") { Description = "ONNX opset, 13 or newer (default 17; 19 with deformable convolution)" };
        var input = new Option<string?>("--input") { Description = "Input shape without batch as CxHxW (default: the run's or model's usual input)" };
        var classes = new Option<int?>("--classes") { Description = "Number of classes of a zoo model (default: its usual number)" };
        var cmd = new Command("export", "Export a run or model to ONNX (opset 17, dynamic batch, state-dict names for initializers).") { source, onnx, weights, opset, input, classes };
        cmd.SetAction(pr => Run(pr.GetValue(source)!, pr.GetValue(onnx)!, pr.GetValue(weights), pr.GetValue(opset), pr.GetValue(input), pr.GetValue(classes), Console.Out));
        return cmd;
    }

    public static int Run(string source, string onnx, string? weights, int? opset, string? input, int? classes, TextWriter output)
    {
        try
        {
            CliPaths.OutputFile("--onnx", onnx);
            if (opset is < 13) throw new ArgumentException($"--opset: {opset} is not supported (13 or newer)");
            Module model;
            int[] shape;
            if (Directory.Exists(source))
            {
                var metrics = RunFolder.ReadMetrics(source);
                model = RunFolder.LoadModel(source, metrics);
                shape = input != null ? ModelArgument.ParseShape(input) : metrics.InputShape;
            }
            else (model, shape) = ModelArgument.Resolve(source, input, classes);
            if (weights != null)
            {
                if (!File.Exists(weights)) throw new ArgumentException($"--weights: {weights}: file not found");
                var (missing, unexpected) = model.LoadStateDict(CliPaths.Read("--weights", () => WeightsFile.Load(weights)), strict: false);
                if (missing.Count > 0 || unexpected.Count > 0)
                    throw new ArgumentException($"--weights: {weights} does not fit the model (missing: {string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? ", ..." : "")}; unexpected: {string.Join(", ", unexpected.Take(5))}{(unexpected.Count > 5 ? ", ..." : "")})");
            }
            int written = OnnxExport.Export(model, shape, onnx, opset);
            output.WriteLine($"wrote {onnx}: opset {written}, input [batch, {string.Join(", ", shape)}], {model.ParameterCount():N0} parameters");
            return 0;
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or IOException or UnauthorizedAccessException)
        {
            return TrainCommand.Fail(output, e.Message);
        }
    }
}
