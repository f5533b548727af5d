using System.CommandLine;
using System.Globalization;
using ConvLab.Analysis;
using ConvLab.Models;
using ConvLab.NN;

namespace ConvLab.Cli;

/// <summary>
/// The MODEL argument and options shared by the calculator commands (summary, rf, memory): resolves a zoo name (or a
/// spec string, through <see cref="SpecParser"/>) to a model and its default input, and parses <c>CxHxW</c> shapes.
/// </summary>
internal static class ModelArgument
{
    /// <summary>The calculator options every command takes.</summary>
    internal sealed class Options
    {
        public readonly Argument<string> Model = new("model") { Description = "A zoo model name (see `convlab models`) or a spec string" };
        public readonly Option<string?> Input = new("--input") { Description = "Input shape without batch as CxHxW (default: the model's usual input, e.g. 3x224x224)" };
        public readonly Option<int> Batch = new("--batch") { Description = "Batch size for the training-memory estimate", DefaultValueFactory = _ => 1 };
        public readonly Option<string> Optimizer = new("--optimizer") { Description = "sgd, momentum, rmsprop, adam or adamw", DefaultValueFactory = _ => "adam" };
        public readonly Option<int?> Classes = new("--classes") { Description = "Number of classes (default: the model's usual number)" };
        public readonly Option<string> Format = new("--format") { Description = "table, json or markdown", DefaultValueFactory = _ => "table" };
        public readonly Option<bool> Explain = new("--explain") { Description = "Show every quantity as formula, substituted numbers and result" };

        public void AddTo(Command cmd)
        {
            cmd.Arguments.Add(Model);
            foreach (var o in new Option[] { Input, Batch, Optimizer, Classes, Format, Explain }) cmd.Options.Add(o);
        }
    }

    /// <summary>Defaults per zoo model: number of classes and input shape (C, H, W).</summary>
    internal static (int Classes, int[] Input) Defaults(string name) => name.ToLowerInvariant() switch
    {
        "lenet5" or "simple_cnn" => (10, [1, 28, 28]),
        "cifar_resnet18" => (10, [3, 32, 32]),
        "unet" => (2, [1, 572, 572]),
        "yolov1_head" => (20, [1024, 7, 7]),
        "yolov3" => (80, [3, 416, 416]),
        "darknet53" => (1000, [3, 256, 256]),
        "fcn32s" => (21, [3, 224, 224]),
        _ => (1000, [3, 224, 224]),
    };

    /// <summary>Resolves MODEL to a model and its input shape (the --input option wins when given).</summary>
    internal static (Module Model, int[] Input) Resolve(string model, string? input, int? classes)
    {
        if (string.IsNullOrWhiteSpace(model))
            throw new ArgumentException($"model: expected a zoo name or a spec string; zoo: {string.Join(", ", Zoo.Names)}");
        var key = model.Trim().ToLowerInvariant();
        if (!Zoo.Names.Contains(key) && SpecParser.LooksLikeSpec(model))
        {
            if (classes != null) throw new ArgumentException("--classes: does not apply to a spec; its last layer sets the outputs");
            var spec = SpecParser.Parse(model, input != null ? ParseShape(input) : null);
            return (spec.Module, spec.InputShape);
        }
        if (!Zoo.Names.Contains(key))
            throw new ArgumentException($"model: unknown model '{model}'. Give a zoo name ({string.Join(", ", Zoo.Names)}) or a spec string such as \"INPUT 28x28x1, CONV3-10, POOL2, FC-3\".");
        var (defClasses, defInput) = Defaults(key);
        int n = classes ?? defClasses;
        if (n < 1) throw new ArgumentException($"--classes: must be positive, got {n}");
        return (Zoo.Create(key, n), input != null ? ParseShape(input) : defInput);
    }

    /// <summary>Parses <c>3x224x224</c> (C x H x W; also 1-D/3-D spatial forms) into sizes.</summary>
    internal static int[] ParseShape(string text)
    {
        var parts = text.Split('x', 'X', ',');
        var result = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out result[i]) || result[i] < 1)
                throw new ArgumentException($"--input: expected positive sizes as CxHxW (e.g. 3x224x224), got '{text}'");
        if (result.Length < 2)
            throw new ArgumentException($"--input: expected at least channels and one spatial size as CxHxW (e.g. 3x224x224), got '{text}'");
        return result;
    }

    /// <summary>Runs the summary for the parsed options; errors become a message and exit code 2.</summary>
    internal static int Run(ParseResult pr, Options o, Action<ModelSummary, string, bool, TextWriter> render, TextWriter output)
    {
        try
        {
            var format = pr.GetValue(o.Format)!.ToLowerInvariant();
            if (format is not ("table" or "json" or "markdown"))
                throw new ArgumentException($"--format: expected table, json or markdown, got '{format}'");
            if (pr.GetValue(o.Batch) is var batch and < 1) throw new ArgumentException($"--batch: must be at least 1, got {batch}");
            var optimizer = pr.GetValue(o.Optimizer)!;
            if (optimizer.ToLowerInvariant() is not ("sgd" or "momentum" or "rmsprop" or "adam" or "adamw"))
                throw new ArgumentException($"--optimizer: unknown optimizer '{optimizer}'; expected sgd, momentum, rmsprop, adam or adamw");
            var (model, input) = Resolve(pr.GetValue(o.Model)!, pr.GetValue(o.Input), pr.GetValue(o.Classes));
            var summary = Summary.Of(model, input, pr.GetValue(o.Batch), pr.GetValue(o.Optimizer)!);
            render(summary, format, pr.GetValue(o.Explain), output);
            return 0;
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
    }
}
