using System.CommandLine;
using System.Text.Json;
using ConvLab.IO;
using ConvLab.Onnx;

namespace ConvLab.Cli;

/// <summary>
/// <c>convlab import FILE.onnx --out RUN</c>: imports an ONNX graph as a ConvLab module and writes a folder with the
/// graph (<c>model.onnx</c>), its weights under their initializer names (<c>model.safetensors</c>) and what was
/// imported (<c>import.json</c>).
/// </summary>
internal static class ImportCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "The .onnx file to import" };
        var outDir = new Option<string>("--out") { Description = "Folder to write (model.onnx, model.safetensors, import.json)", Required = true };
        var cmd = new Command("import", "Import an ONNX CNN as a trainable ConvLab module and save its graph and weights.") { file, outDir };
        cmd.SetAction(pr => Run(pr.GetValue(file)!, pr.GetValue(outDir)!, Console.Out));
        return cmd;
    }

    public static int Run(string file, string outDir, TextWriter output)
    {
        try
        {
            var module = OnnxModule.Load(file);
            Directory.CreateDirectory(outDir);
            AtomicFile.Write(Path.Combine(outDir, "model.onnx"), s => { using var src = File.OpenRead(file); src.CopyTo(s); });
            module.SaveSafeTensors(Path.Combine(outDir, "model.safetensors"), new Dictionary<string, string> { ["source"] = Path.GetFileName(file) });
            var info = new
            {
                source = Path.GetFullPath(file),
                opset = module.Opset,
                inputs = module.InputNames,
                outputs = module.OutputNames,
                input_shape = module.InputShape,
                folded_nodes = module.FoldedNodes,
                parameters = module.ParameterCount(),
                state_dict = module.StateDict().Keys,
            };
            AtomicFile.Write(Path.Combine(outDir, "import.json"), s => JsonSerializer.Serialize(s, info, new JsonSerializerOptions { WriteIndented = true }));
            output.WriteLine($"imported {file}: opset {module.Opset}, {module.ParameterCount():N0} parameters in {module.NamedParameters().Count()} tensors, {module.FoldedNodes} constant nodes folded; wrote {outDir}");
            return 0;
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or NotSupportedException or IOException or UnauthorizedAccessException)
        {
            return TrainCommand.Fail(output, e.Message);
        }
    }
}
