using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using ConvLab.Analysis;
using Spectre.Console;

namespace ConvLab.Cli;

/// <summary><c>convlab compare NAME [--settings] [--bias] [--explain] [--format table|json|markdown]</c>: the classic trade-offs (logic in <see cref="Comparisons"/>).</summary>
internal static class CompareCommand
{
    public static Command Create()
    {
        var name = new Argument<string?>("name") { Description = "Comparison to run (omit to list them)", Arity = ArgumentArity.ZeroOrOne };
        var keys = Comparisons.All.SelectMany(c => c.Settings).GroupBy(s => s.Key).Select(g => g.First()).ToArray();
        var options = keys.Select(s => new Option<int?>("--" + s.Key) { Description = s.Description + " (see `convlab compare` for each default)" }).ToArray();
        var bias = new Option<bool>("--bias") { Description = "Count biases in parameter counts (textbook ratios use weights only)" };
        var explain = new Option<bool>("--explain") { Description = "Show every quantity as formula = substituted numbers = result" };
        var format = new Option<string>("--format") { Description = "table, json or markdown", DefaultValueFactory = _ => "table" };
        format.AcceptOnlyFromAmong("table", "json", "markdown");
        var cmd = new Command("compare", "Classic CNN design trade-offs: parameters, MACs, receptive field and memory of two designs, with their working.") { name, bias, explain, format };
        foreach (var o in options) cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            var given = new Dictionary<string, int>();
            for (int i = 0; i < keys.Length; i++)
                if (pr.GetValue(options[i]) is int v) given[keys[i].Key] = v;
            return Run(pr.GetValue(name), given, pr.GetValue(bias), pr.GetValue(explain), pr.GetValue(format)!, Console.Out, Console.Error);
        });
        return cmd;
    }

    public static int Run(string? name, IReadOnlyDictionary<string, int> settings, bool bias, bool explain, string format, TextWriter output, TextWriter error)
    {
        if (name == null)
        {
            if (settings.Count > 0)
            {
                error.WriteLine("compare: settings need a comparison name; run `convlab compare` to list them");
                return 1;
            }
            ListComparisons(format, output);
            return 0;
        }
        Comparison c;
        try { c = Comparisons.Run(name, settings, bias); }
        catch (ArgumentException e)
        {
            error.WriteLine(e.Message);
            return 1;
        }
        switch (format)
        {
            case "json": output.WriteLine(Json(c, explain)); break;
            case "markdown": output.Write(Markdown(c, explain)); break;
            default: Table(c, explain, output); break;
        }
        return 0;
    }

    private static string Settings(Comparison c) => string.Join(" ", c.Settings.Select(kv => $"--{kv.Key} {kv.Value}"));

    private static string Conventions(Comparison c) =>
        $"parameters: {(c.Bias ? "weights + biases" : "weights only (--bias adds biases)")}; MACs: one multiply-add, per sample, biases not counted; FLOPs = 2*MACs";

    private static string Value(double v) =>
        v == Math.Floor(v) && Math.Abs(v) < 1e18 ? ((long)v).ToString("N0", CultureInfo.InvariantCulture) : v.ToString("G4", CultureInfo.InvariantCulture);

    private static string Unit(ComparisonStep s) => s.Unit switch { "%" => " %", "x" => "x", _ => "" };

    private static string RatioText(ComparisonRow r) => r.A.Value == 0 ? "-" : (r.B.Value / r.A.Value).ToString("0.###", CultureInfo.InvariantCulture) + "x";

    private static IEnumerable<string> ExplainLines(ComparisonStep s) =>
        [$"{s.Label}: {s.Quantity.Symbol} = {s.Quantity.Formula} = {s.Quantity.Substituted} = {Formulas.Num(s.Quantity.Value)}"];

    private static IEnumerable<(string Header, IReadOnlyList<ComparisonStep> Steps)> Sections(Comparison c) =>
        [($"A: {c.A.Name}", c.A.Steps), ($"B: {c.B.Name}", c.B.Steps), ("B vs A", c.Verdict)];

    private static void Table(Comparison c, bool explain, TextWriter output)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors });
        output.WriteLine($"{c.Name}: {c.Title}");
        output.WriteLine($"settings: {Settings(c)}{(c.Bias ? " --bias" : "")}");
        var table = new Table().AddColumns("quantity", "A: " + Markup.Escape(c.A.Name), "B: " + Markup.Escape(c.B.Name), "B/A");
        foreach (var r in c.Rows) table.AddRow(Markup.Escape(r.Label), Value(r.A.Value), Value(r.B.Value), RatioText(r));
        console.Write(table);
        foreach (var v in c.Verdict) output.WriteLine($"{v.Label}: {Value(v.Quantity.Value)}{Unit(v)}");
        output.WriteLine(c.Summary);
        output.WriteLine(Conventions(c));
        if (!explain) return;
        foreach (var (header, steps) in Sections(c))
        {
            output.WriteLine();
            output.WriteLine(header);
            foreach (var s in steps)
                foreach (var line in ExplainLines(s)) output.WriteLine("  " + line);
        }
    }

    private static string Markdown(Comparison c, bool explain)
    {
        static string Cell(string s) => s.Replace("|", "\\|", StringComparison.Ordinal);
        var sb = new StringBuilder();
        sb.AppendLine($"### {c.Name}: {Cell(c.Title)}").AppendLine();
        sb.AppendLine($"Settings: `{Settings(c)}{(c.Bias ? " --bias" : "")}`").AppendLine();
        sb.AppendLine($"| quantity | A: {Cell(c.A.Name)} | B: {Cell(c.B.Name)} | B/A |");
        sb.AppendLine("|---|---:|---:|---:|");
        foreach (var r in c.Rows) sb.AppendLine($"| {Cell(r.Label)} | {Value(r.A.Value)} | {Value(r.B.Value)} | {RatioText(r)} |");
        sb.AppendLine();
        foreach (var v in c.Verdict) sb.AppendLine($"- {Cell(v.Label)}: {Value(v.Quantity.Value)}{Unit(v)}");
        sb.AppendLine().AppendLine(c.Summary).AppendLine().AppendLine($"_{Conventions(c)}_");
        if (explain)
            foreach (var (header, steps) in Sections(c))
            {
                sb.AppendLine().AppendLine($"**{Cell(header)}**").AppendLine();
                foreach (var s in steps)
                    foreach (var line in ExplainLines(s)) sb.AppendLine($"- `{line}`");
            }
        return sb.ToString();
    }

    private static string Json(Comparison c, bool explain)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("comparison", c.Name);
            w.WriteString("title", c.Title);
            w.WriteStartObject("settings");
            foreach (var (k, v) in c.Settings) w.WriteNumber(k, v);
            w.WriteEndObject();
            w.WriteBoolean("bias", c.Bias);
            w.WriteString("a", c.A.Name);
            w.WriteString("b", c.B.Name);
            w.WriteStartArray("rows");
            foreach (var r in c.Rows)
            {
                w.WriteStartObject();
                w.WriteString("quantity", r.Label);
                w.WriteNumber("a", r.A.Value);
                w.WriteNumber("b", r.B.Value);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            WriteSteps(w, "verdict", c.Verdict);
            w.WriteString("summary", c.Summary);
            if (explain)
            {
                WriteSteps(w, "a_steps", c.A.Steps);
                WriteSteps(w, "b_steps", c.B.Steps);
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    private static void WriteSteps(Utf8JsonWriter w, string name, IReadOnlyList<ComparisonStep> steps)
    {
        w.WriteStartArray(name);
        foreach (var s in steps)
        {
            w.WriteStartObject();
            w.WriteString("label", s.Label);
            w.WriteString("symbol", s.Quantity.Symbol);
            w.WriteString("formula", s.Quantity.Formula);
            w.WriteString("substituted", s.Quantity.Substituted);
            w.WriteNumber("value", s.Quantity.Value);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private static void ListComparisons(string format, TextWriter output)
    {
        if (format == "json")
        {
            output.WriteLine(JsonSerializer.Serialize(Comparisons.All.Select(i => new
            {
                name = i.Name, title = i.Title, settings = i.Settings.Select(s => new { key = s.Key, description = s.Description, @default = s.Default }),
            }), new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
            return;
        }
        if (format == "markdown")
        {
            output.WriteLine("| comparison | what | settings (default) |");
            output.WriteLine("|---|---|---|");
            foreach (var i in Comparisons.All)
                output.WriteLine($"| {i.Name} | {i.Title} | {string.Join(", ", i.Settings.Select(s => $"--{s.Key} {s.Default}"))} |");
            return;
        }
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors });
        var table = new Table().AddColumns("comparison", "what", "settings (default)");
        foreach (var i in Comparisons.All)
            table.AddRow(i.Name, Markup.Escape(i.Title), string.Join(" ", i.Settings.Select(s => $"--{s.Key} {s.Default}")));
        console.Write(table);
        output.WriteLine("run: convlab compare NAME [settings] [--bias] [--explain] [--format table|json|markdown]");
    }
}
