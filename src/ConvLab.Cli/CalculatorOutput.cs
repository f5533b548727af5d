using System.Globalization;
using System.Text;
using System.Text.Json;
using ConvLab.Analysis;
using Spectre.Console;

namespace ConvLab.Cli;

/// <summary>Renders calculator results as a Spectre table, Markdown, or the documented JSON contract (docs/calculator.md).</summary>
internal static class CalculatorOutput
{
    internal const string Conventions =
        "MAC = one multiply-add (conv/linear only); FLOPs = 2*MACs + bias adds for conv/linear, per-element ops for pooling " +
        "(comparisons / adds), activations (1), normalisation (2), residual adds (1); per sample. Shapes are CxHxW without batch.";

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    internal static string N(long v) => v.ToString("N0", Inv);

    internal static string Shape(int[] s) => "[" + string.Join(", ", s) + "]";

    internal static string Pair(double[] v) => v.Length == 0 ? "-" : string.Join("x", v.Select(Formulas.Num));

    internal static string MB(double bytes) => (bytes / (1024.0 * 1024.0)).ToString("0.00", Inv) + " MB";

    internal static IAnsiConsole Console(TextWriter output)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors });
        console.Profile.Width = 250; // wide tables are not wrapped when the output is redirected
        return console;
    }

    /// <summary>Writes a table (header + rows) as Spectre table or Markdown.</summary>
    internal static void Table(TextWriter output, string format, string[] header, IEnumerable<string[]> rows)
    {
        if (format == "markdown")
        {
            output.WriteLine("| " + string.Join(" | ", header) + " |");
            output.WriteLine("|" + string.Concat(header.Select(_ => "---|")));
            foreach (var r in rows) output.WriteLine("| " + string.Join(" | ", r.Select(c => c.Replace("|", "\\|"))) + " |");
            return;
        }
        var table = new Table().AddColumns(header);
        foreach (var r in rows) table.AddRow(r.Select(Markup.Escape).ToArray());
        Console(output).Write(table);
    }

    /// <summary>The worked formulas of every layer (and of the memory estimate).</summary>
    internal static void Explain(TextWriter output, ModelSummary s, string format, bool memory)
    {
        string bullet = format == "markdown" ? "- " : "  ";
        output.WriteLine();
        foreach (var l in s.Layers.Where(l => l.Explain.Count > 0))
        {
            output.WriteLine(format == "markdown" ? $"**{l.Name}** ({l.Type})" : $"{l.Name} ({l.Type})");
            foreach (var q in l.Explain) output.WriteLine(bullet + q.Explain());
        }
        if (!memory) return;
        output.WriteLine(format == "markdown" ? "**training memory**" : "training memory");
        foreach (var q in s.Memory.Explain) output.WriteLine(bullet + q.Explain());
    }

    /// <summary>The worked formulas as an <c>"explain"</c> array of strings.</summary>
    private static void Explains(Utf8JsonWriter w, IEnumerable<Quantity> quantities)
    {
        w.WriteStartArray("explain");
        foreach (var q in quantities) w.WriteStringValue(q.Explain());
        w.WriteEndArray();
    }

    /// <summary>The JSON contract of <c>convlab summary --format json</c> (documented in docs/calculator.md).</summary>
    internal static void Json(TextWriter output, ModelSummary s, bool explain, bool layers = true, MeasuredMemory? measured = null)
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            Ints(w, "input", s.Input);
            w.WriteNumber("batch", s.Batch);
            w.WriteString("optimizer", s.Memory.Optimizer);
            Ints(w, "output_shape", s.OutputShape);
            w.WriteString("conventions", Conventions);
            if (layers)
            {
                w.WriteStartArray("layers");
                foreach (var l in s.Layers)
                {
                    w.WriteStartObject();
                    w.WriteString("name", l.Name);
                    w.WriteString("type", l.Type);
                    Ints(w, "output_shape", l.OutputShape);
                    w.WriteNumber("params", l.Params);
                    w.WriteNumber("trainable_params", l.TrainableParams);
                    w.WriteNumber("macs", l.Macs);
                    w.WriteNumber("flops", l.Flops);
                    w.WriteNumber("activation_bytes", l.ActivationBytes);
                    Nums(w, "receptive_field", l.ReceptiveField);
                    Nums(w, "jump", l.Jump);
                    Nums(w, "start", l.Start);
                    if (explain) Explains(w, l.Explain);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            w.WriteStartObject("total");
            w.WriteNumber("params", s.Params);
            w.WriteNumber("trainable_params", s.TrainableParams);
            w.WriteNumber("macs", s.Macs);
            w.WriteNumber("flops", s.Flops);
            w.WriteNumber("activation_bytes", s.ActivationBytes);
            w.WriteNumber("model_bytes", s.ModelBytes);
            w.WriteNumber("training_memory_bytes", s.Memory.TotalBytes);
            w.WriteEndObject();
            var m = s.Memory;
            w.WriteStartObject("memory");
            w.WriteNumber("param_bytes", m.ParamBytes);
            w.WriteNumber("gradient_bytes", m.GradientBytes);
            w.WriteNumber("optimizer_bytes", m.OptimizerBytes);
            w.WriteNumber("activation_bytes", m.ActivationBytes);
            w.WriteNumber("workspace_bytes", m.WorkspaceBytes);
            w.WriteNumber("total_bytes", m.TotalBytes);
            if (measured != null)
            {
                w.WriteNumber("measured_step_bytes", measured.StepBytes);
                w.WriteNumber("measured_scratch_bytes", measured.ScratchBytes);
                w.WriteNumber("measured_bytes", measured.TotalBytes);
            }
            if (explain) Explains(w, m.Explain);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        output.WriteLine(Encoding.UTF8.GetString(buffer.ToArray()));
    }

    private static void Ints(Utf8JsonWriter w, string name, int[] values)
    {
        w.WriteStartArray(name);
        foreach (var v in values) w.WriteNumberValue(v);
        w.WriteEndArray();
    }

    // Integral values are written as JSON integers; fractional jumps/starts (after upsampling, 'same' padding) as decimals.
    private static void Nums(Utf8JsonWriter w, string name, double[] values)
    {
        w.WriteStartArray(name);
        foreach (var v in values)
            if (v == Math.Floor(v) && Math.Abs(v) < 9e15) w.WriteNumberValue((long)v);
            else w.WriteNumberValue(v);
        w.WriteEndArray();
    }
}
