using System.CommandLine;
using ConvLab.Analysis;

namespace ConvLab.Cli;

/// <summary><c>convlab summary MODEL [--input CxHxW] [--batch B] [--optimizer adam] [--format table|json|markdown] [--explain]</c>: the per-layer calculator table.</summary>
internal static class SummaryCommand
{
    public static Command Create()
    {
        var o = new ModelArgument.Options();
        var cmd = new Command("summary", "Per-layer output shapes, parameters, MACs, FLOPs, activation bytes and receptive fields, with totals and the training-memory estimate (shape inference, no arithmetic).");
        o.AddTo(cmd);
        cmd.SetAction(pr => ModelArgument.Run(pr, o, Render, Console.Out));
        return cmd;
    }

    internal static void Render(ModelSummary s, string format, bool explain, TextWriter output)
    {
        if (format == "json") { CalculatorOutput.Json(output, s, explain); return; }
        CalculatorOutput.Table(output, format,
            ["name", "type", "output", "params", "MACs", "FLOPs", "act. bytes", "RF", "jump", "start"],
            s.Layers.Select(l => new[]
            {
                l.Name, l.Type, CalculatorOutput.Shape(l.OutputShape), CalculatorOutput.N(l.Params) + (l.TrainableParams != l.Params ? $" ({CalculatorOutput.N(l.Params - l.TrainableParams)} frozen)" : ""),
                CalculatorOutput.N(l.Macs), CalculatorOutput.N(l.Flops), CalculatorOutput.N(l.ActivationBytes),
                CalculatorOutput.Pair(l.ReceptiveField), CalculatorOutput.Pair(l.Jump), CalculatorOutput.Pair(l.Start),
            }));
        var m = s.Memory;
        string b = format == "markdown" ? "- " : "";
        output.WriteLine();
        output.WriteLine($"{b}input {CalculatorOutput.Shape(s.Input)} -> output {CalculatorOutput.Shape(s.OutputShape)}");
        output.WriteLine($"{b}params: {CalculatorOutput.N(s.Params)} (trainable {CalculatorOutput.N(s.TrainableParams)}, frozen {CalculatorOutput.N(s.Params - s.TrainableParams)})");
        output.WriteLine($"{b}MACs: {CalculatorOutput.N(s.Macs)}   FLOPs: {CalculatorOutput.N(s.Flops)}   (per sample)");
        output.WriteLine($"{b}activations: {CalculatorOutput.N(s.ActivationBytes)} bytes per sample (sum of layer outputs)");
        output.WriteLine($"{b}model size: {CalculatorOutput.MB(s.ModelBytes)} ({CalculatorOutput.N(s.ModelBytes)} bytes)");
        output.WriteLine($"{b}training memory at batch {m.Batch} with {m.Optimizer}: {CalculatorOutput.MB(m.TotalBytes)} ({CalculatorOutput.N(m.TotalBytes)} bytes)");
        output.WriteLine($"{b}conventions: {CalculatorOutput.Conventions}");
        if (explain) CalculatorOutput.Explain(output, s, format, memory: true);
    }
}
