using System.CommandLine;
using ConvLab.Analysis;

namespace ConvLab.Cli;

/// <summary>
/// <c>convlab memory MODEL --batch B --optimizer adam [--input CxHxW] [--format ...] [--explain] [--measure]</c>: the
/// training-memory estimate, and with <c>--measure</c> the live bytes of a real training step in this process beside it.
/// </summary>
internal static class MemoryCommand
{
    public static Command Create()
    {
        var o = new ModelArgument.Options();
        var cmd = new Command("memory", "Training-memory estimate: parameters + gradients + optimizer state + activations kept for backward at the batch size + workspace.");
        var measure = new Option<bool>("--measure") { Description = "Also run real training steps at the batch size in this process (a warm-up step, then a step and the next forward pass) and report the live managed bytes at the end of that forward pass, beside the estimate" };
        o.AddTo(cmd);
        cmd.Options.Add(measure);
        cmd.SetAction(pr => ModelArgument.Run(pr, o, (s, format, explain, output) =>
        {
            MeasuredMemory? measured = pr.GetValue(measure)
                ? MemoryProbe.MeasureTrainingStep(() => ModelArgument.Resolve(pr.GetValue(o.Model)!, pr.GetValue(o.Input), pr.GetValue(o.Classes)).Model,
                    s.Input, s.Batch, s.Memory.Optimizer)
                : null;
            Render(s, format, explain, output, measured);
        }, Console.Out));
        return cmd;
    }

    internal static void Render(ModelSummary s, string format, bool explain, TextWriter output, MeasuredMemory? measured = null)
    {
        if (format == "json") { CalculatorOutput.Json(output, s, explain, layers: false, measured); return; }
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
            .. measured is { } mm
                ? new[] { Row("measured: training step", mm.StepBytes), Row("measured: kernel scratch kept between steps", mm.ScratchBytes), Row("measured total", mm.TotalBytes) }
                : [],
        ]);
        if (measured is { } me) output.WriteLine($"estimate / measured = {(double)m.TotalBytes / me.TotalBytes:0.000}");
        if (!explain) return;
        output.WriteLine();
        foreach (var q in m.Explain) output.WriteLine((format == "markdown" ? "- " : "  ") + q.Explain());
    }
}
