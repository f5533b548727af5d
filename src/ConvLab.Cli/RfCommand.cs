using System.CommandLine;
using ConvLab.Analysis;

namespace ConvLab.Cli;

/// <summary><c>convlab rf MODEL [--input CxHxW] [--format ...] [--explain]</c>: receptive field, jump and start per layer.</summary>
internal static class RfCommand
{
    public static Command Create()
    {
        var o = new ModelArgument.Options();
        var cmd = new Command("rf", "Receptive field size, jump (effective stride) and start (centre of the first output's field) of every layer; merges take the union of their inputs.");
        o.AddTo(cmd);
        cmd.SetAction(pr => ModelArgument.Run(pr, o, Render, Console.Out));
        return cmd;
    }

    internal static void Render(ModelSummary s, string format, bool explain, TextWriter output)
    {
        if (format == "json") { CalculatorOutput.Json(output, s, explain); return; }
        CalculatorOutput.Table(output, format, ["name", "type", "output", "RF", "jump", "start"],
            s.Layers.Select(l => new[] { l.Name, l.Type, CalculatorOutput.Shape(l.OutputShape), CalculatorOutput.Pair(l.ReceptiveField), CalculatorOutput.Pair(l.Jump), CalculatorOutput.Pair(l.Start) }));
        var last = s.Layers.LastOrDefault(l => l.ReceptiveField.Length > 0);
        output.WriteLine();
        if (last != null)
            output.WriteLine($"{(format == "markdown" ? "- " : "")}receptive field of the output: {CalculatorOutput.Pair(last.ReceptiveField)} pixels (jump {CalculatorOutput.Pair(last.Jump)})");
        if (!explain) return;
        output.WriteLine();
        foreach (var l in s.Layers)
        {
            var rf = l.Explain.Where(q => q.Symbol.StartsWith("RF", StringComparison.Ordinal) || q.Symbol.StartsWith("j", StringComparison.Ordinal) || q.Symbol.StartsWith("start", StringComparison.Ordinal)).ToList();
            if (rf.Count == 0) continue;
            output.WriteLine($"{l.Name} ({l.Type})");
            foreach (var q in rf) output.WriteLine((format == "markdown" ? "- " : "  ") + q.Explain());
        }
    }
}
