using System.CommandLine;
using System.Globalization;
using ConvLab.Autograd;
using ConvLab.NN.Functional;
using Spectre.Console;

namespace ConvLab.Cli;

/// <summary><c>convlab predict RUN --index i ... | IMAGE ...</c>: the top-k classes of test images (by index) or image files, with probabilities.</summary>
internal static class PredictCommand
{
    public static Command Create()
    {
        var run = new Argument<string>("run") { Description = "Run folder written by convlab train" };
        var images = new Argument<string[]>("images") { Description = "Image files to classify (PNG/JPEG)", Arity = ArgumentArity.ZeroOrMore };
        var index = new Option<int[]>("--index") { Description = "Indices into the run's test set", AllowMultipleArgumentsPerToken = true };
        var top = new Option<int>("--top") { Description = "Number of classes to list", DefaultValueFactory = _ => 3 };
        var data = new Option<string?>("--data") { Description = "Test data for --index instead of the run's own (an IDX folder or 'embedded')" };
        var cmd = new Command("predict", "Classify test images (--index) or image files with a saved run; prints the top classes and probabilities.") { run, images, index, top, data };
        cmd.SetAction(pr => Run(pr.GetValue(run)!, pr.GetValue(index) ?? [], pr.GetValue(images) ?? [], pr.GetValue(top), pr.GetValue(data), Console.Out));
        return cmd;
    }

    public static int Run(string runDir, int[] indices, string[] files, int top, string? data, TextWriter output)
    {
        var console = TrainCommand.Console(output);
        try
        {
            if (indices.Length == 0 && files.Length == 0) throw new ArgumentException("predict: give test-set indices (--index i ...) or image files");
            if (top < 1) throw new ArgumentException($"predict: --top must be at least 1, got {top}");
            var metrics = RunFolder.ReadMetrics(runDir);
            var model = RunFolder.LoadModel(runDir, metrics);
            var names = metrics.ClassNames;
            var inputs = new List<(string Label, Tensor Image, long? Truth)>();
            if (indices.Length > 0)
            {
                var test = TrainDataSource.Load(TrainDataSource.Resolve(data ?? metrics.DataSource), trainSplit: false).Test;
                foreach (int i in indices)
                {
                    if ((uint)i >= (uint)test.Count) throw new ArgumentException($"predict: --index {i} is outside the test set [0, {test.Count})");
                    var (x, y) = test.Get(i);
                    inputs.Add(($"test #{i}", x, y));
                }
            }
            foreach (var f in files) inputs.Add((f, LoadImage(f, metrics.InputShape), null));

            foreach (var (label, image, truth) in inputs)
            {
                Tensor probs;
                using (new NoGrad()) probs = F.Softmax(model.Forward(image.Unsqueeze(0)), 1);
                var p = probs.ToArray();
                var table = new Table().Title(Markup.Escape(label + (truth is long t ? $" (true class: {names[t]})" : "")))
                    .AddColumns("rank", "class", "probability");
                foreach (var (c, rank) in Enumerable.Range(0, p.Length).OrderByDescending(c => p[c]).Take(top).Select((c, r) => (c, r + 1)))
                    table.AddRow(rank.ToString(CultureInfo.InvariantCulture), Markup.Escape($"{c} {names[c]}"), p[c].ToString("P2", CultureInfo.InvariantCulture));
                console.Write(table);
            }
            return 0;
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or FileNotFoundException or NotSupportedException)
        {
            return TrainCommand.Fail(output, e.Message);
        }
    }

    /// <summary>
    /// Decodes an image file into the run's input shape [C, H, W] (values in [0, 1], as training saw them): gray or
    /// RGB as the model expects, resized (antialiased bilinear) when the file has another size.
    /// </summary>
    private static Tensor LoadImage(string path, int[] inputShape)
    {
        if (!File.Exists(path)) throw new ArgumentException($"predict: image file '{path}' not found");
        return Imaging.ImageFile.Load(path, inputShape[0], inputShape[1], inputShape[2]);
    }
}
