using System.CommandLine;
using System.Diagnostics;
using ConvLab.IO;
using ConvLab.IO.Torch;
using Spectre.Console;

namespace ConvLab.Cli;

/// <summary>
/// <c>convlab convert INPUT OUTPUT</c>: a state dict from a .pth, a .safetensors, a run folder or a freshly initialised
/// zoo model, written as .pth (PyTorch's zip format) or .safetensors by OUTPUT's extension.
/// </summary>
internal static class ConvertCommand
{
    public static Command Create()
    {
        var input = new Argument<string>("input") { Description = "A .pth/.pt or .safetensors file, a run folder, or a zoo model name (fresh seeded weights)" };
        var output = new Argument<string>("output") { Description = "The file to write: .pth/.pt (torch.save zip format) or .safetensors" };
        var classes = new Option<int?>("--classes") { Description = "Classes of a zoo model given as INPUT (default: the model's usual number)" };
        var seed = new Option<int>("--seed") { Description = "Seed of a zoo model's initial weights", DefaultValueFactory = _ => 0 };
        var repeat = new Option<int>("--repeat") { Description = "Read INPUT this many times and report the median read time", DefaultValueFactory = _ => 1 };
        var cmd = new Command("convert", "Convert weights between PyTorch .pth and safetensors (state-dict keys kept).") { input, output, classes, seed, repeat };
        cmd.SetAction(pr => Run(pr.GetValue(input)!, pr.GetValue(output)!, pr.GetValue(classes), pr.GetValue(seed), pr.GetValue(repeat), Console.Out));
        return cmd;
    }

    public static int Run(string input, string outputPath, int? classes, int seed, int repeat, TextWriter output)
    {
        var console = TrainCommand.Console(output);
        try
        {
            if (repeat < 1) throw new ArgumentException($"convert: --repeat must be at least 1, got {repeat}");
            if (classes is < 1) throw new ArgumentException($"convert: --classes must be at least 1, got {classes}");
            string ext = Path.GetExtension(outputPath).ToLowerInvariant();
            if (ext is not (".pth" or ".pt" or ".safetensors"))
                throw new ArgumentException($"convert: output '{outputPath}' must end in .pth, .pt or .safetensors");
            IReadOnlyDictionary<string, Tensor> weights;
            string what;
            if (File.Exists(input) || Directory.Exists(input))
            {
                string path = Directory.Exists(input) ? Path.Combine(input, RunFolder.Weights) : input;
                if (!File.Exists(path)) throw new ArgumentException($"convert: {path} not found; is '{input}' a run folder?");
                var times = new double[repeat];
                OrderedDictionary<string, Tensor>? loaded = null;
                for (int i = 0; i < repeat; i++)
                {
                    var sw = Stopwatch.StartNew();
                    loaded = WeightsFile.Load(path);
                    times[i] = sw.Elapsed.TotalMilliseconds;
                }
                weights = loaded!;
                Array.Sort(times);
                long bytes = new FileInfo(path).Length;
                what = $"read {path} ({bytes / 1e6:F1} MB, {(WeightsFile.IsTorchFile(path) ? "pth" : "safetensors")}): {weights.Count} tensors in {times[repeat / 2]:F1} ms" +
                    (repeat > 1 ? $" (median of {repeat}, min {times[0]:F1})" : "");
            }
            else if (Models.Zoo.Names.Contains(input))
            {
                var model = Models.Zoo.Create(input, classes ?? ModelArgument.Defaults(input).Classes, new Generator((ulong)seed));
                weights = model.StateDict();
                what = $"{input}: fresh weights (seed {seed}), {weights.Count} tensors";
            }
            else throw new ArgumentException($"convert: '{input}' is neither a file, a run folder nor a zoo model (see convlab models)");

            if (ext == ".safetensors") SafeTensors.Save(outputPath, weights);
            else TorchFile.SaveStateDict(outputPath, weights);
            console.MarkupLineInterpolated($"{what}");
            console.MarkupLineInterpolated($"wrote {outputPath}");
            return 0;
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or FileNotFoundException)
        {
            return TrainCommand.Fail(output, e.Message);
        }
    }
}
