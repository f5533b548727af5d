using Spectre.Console;

namespace ConvLab.Cli;

/// <summary>The report check-reference and check-onnx print: a table per group, the failures (or every row), and the count line.</summary>
internal static class PassTable
{
    /// <summary>Writes the report and returns the exit code (0 only when something ran and all of it passed).</summary>
    public static int Write<T>(TextWriter output, IReadOnlyList<T> results, string groupHeader, string countHeader, Func<T, string> group,
        Func<T, bool> passed, Func<T, double> maxError, Func<T, string> line, bool verbose, string emptyMessage)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors });
        var table = new Table().AddColumns(groupHeader, countHeader, "passed", "failed", "max |error|");
        foreach (var g in results.GroupBy(group).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            int pass = g.Count(passed);
            double err = g.Select(maxError).Where(e => !double.IsNaN(e)).DefaultIfEmpty(0).Max();
            table.AddRow(Markup.Escape(g.Key), g.Count().ToString(), pass.ToString(), (g.Count() - pass).ToString(), err.ToString("0.0e+0", System.Globalization.CultureInfo.InvariantCulture));
        }
        console.Write(table);
        foreach (var r in results.Where(r => verbose || !passed(r))) output.WriteLine(line(r));
        int ok = results.Count(passed), failed = results.Count - ok;
        if (results.Count == 0) output.WriteLine(emptyMessage);
        output.WriteLine($"{ok} passed, {failed} failed");
        return failed == 0 && results.Count > 0 ? 0 : 1;
    }
}
