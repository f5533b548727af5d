using System.CommandLine;
using ConvLab.Models;

namespace ConvLab.Cli;

/// <summary><c>convlab models [--format table|json|markdown]</c>: the zoo with default inputs and parameter counts.</summary>
internal static class ModelsCommand
{
    public static Command Create()
    {
        var format = new Option<string>("--format") { Description = "table, json or markdown", DefaultValueFactory = _ => "table" };
        var counts = new Option<bool>("--params") { Description = "Also build each model to count its parameters (slow: several hundred MB for the largest)" };
        var cmd = new Command("models", "List the model zoo: names, default input shape and classes (with --params, parameter counts).") { format, counts };
        cmd.SetAction(pr => Run(pr.GetValue(format)!.ToLowerInvariant(), pr.GetValue(counts), Console.Out));
        return cmd;
    }

    internal static int Run(string format, bool counts, TextWriter output)
    {
        if (format is not ("table" or "json" or "markdown"))
        {
            Console.Error.WriteLine($"error: --format: expected table, json or markdown, got '{format}'");
            return 2;
        }
        var rows = Zoo.Names.Select(n =>
        {
            var (classes, input) = ModelArgument.Defaults(n);
            long? p = counts ? Zoo.Create(n, classes).ParameterCount() : null;
            return (Name: n, Input: input, Classes: classes, Params: p);
        }).ToList();
        if (format == "json")
        {
            output.WriteLine(System.Text.Json.JsonSerializer.Serialize(rows.Select(r => new { name = r.Name, input = r.Input, classes = r.Classes, @params = r.Params }),
                new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }
        string[] header = counts ? ["model", "default input", "classes", "params"] : ["model", "default input", "classes"];
        CalculatorOutput.Table(output, format, header, rows.Select(r =>
            new[] { r.Name, string.Join("x", r.Input), r.Classes.ToString(System.Globalization.CultureInfo.InvariantCulture), r.Params is { } p ? CalculatorOutput.N(p) : "" }[..header.Length]));
        return 0;
    }
}
