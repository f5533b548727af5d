using System.CommandLine;
using ConvLab.Analysis;

namespace ConvLab.Cli;

/// <summary><c>convlab memory MODEL --batch B --optimizer adam [--input CxHxW] [--format ...] [--explain]</c>: the training-memory estimate.</summary>
internal static class MemoryCommand
{
    public static Command Create()
    {
        var o = new ModelArgument.Options();
        var cmd = new Command("memory", "Training-memory estimate: parameters + gradients + optimizer state + activations kept for backward at the batch size + workspace.");
        o.AddTo(cmd);
        cmd.SetAction(pr => ModelArgument.Run(pr, o, Render, Console.Out));
        return cmd;
    }

    internal static void Render(ModelSummary s, string format, bool explain, TextWriter output)
    {
        if (format == "json") { CalculatorOutput.Json(output, s, explain, layers: false); return; }
        var m = s.Memory;
        string[] Row(string what, long bytes) => [what, CalculatorOutput.N(bytes), CalculatorOutput.MB(bytes)];
        CalculatorOutput.Table(output, format, ["component", "bytes", "MB"],
        [
            Row("parameters + buffers", m.ParamBytes),
            Row("gradients", m.GradientBytes),
            Row($"optimizer state ({m.Optimizer})", m.OptimizerBytes),
            Row($"activations kept for backward (batch {m.Batch})", m.ActivationBytes),
            Row("workspace", m.WorkspaceBytes),
            Row("total", m.TotalBytes),
        ]);
        if (!explain) return;
        output.WriteLine();
        foreach (var q in m.Explain) output.WriteLine((format == "markdown" ? "- " : "  ") + q.Explain());
    }
}
