using System.CommandLine;
using ConvLab.Conformance;
using Spectre.Console;

namespace ConvLab.Cli;

/// <summary><c>convlab check-reference DIR</c>: runs every reference case and prints a table per family.</summary>
internal static class CheckReferenceCommand
{
    public static Command Create()
    {
        var dir = new Argument<string>("dir") { Description = "Directory of reference cases (family folders of *.json)" };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "List every case, not only failures" };
        var cmd = new Command("check-reference", "Run PyTorch reference cases (forward and backward) and compare within each case's tolerance.") { dir, verbose };
        cmd.SetAction(pr => Run(pr.GetValue(dir)!, pr.GetValue(verbose), Console.Out));
        return cmd;
    }

    public static int Run(string dir, bool verbose, TextWriter output)
    {
        IReadOnlyList<string> files;
        try { files = ReferenceRunner.FindCases(dir); }
        catch (DirectoryNotFoundException e)
        {
            output.WriteLine(e.Message);
            output.WriteLine("0 passed, 1 failed");
            return 1;
        }
        var results = files.Select(f => ReferenceRunner.RunFile(f, dir)).ToList();
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors });
        var table = new Table().AddColumns("family", "cases", "passed", "failed", "max |error|");
        foreach (var g in results.GroupBy(r => r.Family).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            int pass = g.Count(r => r.Passed);
            double err = g.Where(r => !double.IsNaN(r.MaxError)).Select(r => r.MaxError).DefaultIfEmpty(0).Max();
            table.AddRow(Markup.Escape(g.Key), g.Count().ToString(), pass.ToString(), (g.Count() - pass).ToString(), err.ToString("0.0e+0", System.Globalization.CultureInfo.InvariantCulture));
        }
        console.Write(table);
        foreach (var r in results.Where(r => verbose || !r.Passed))
            output.WriteLine($"{(r.Passed ? "PASS" : "FAIL")} {r.Name} [{r.Op}]{(r.Passed ? "" : ": " + r.Reason)}");
        int passed = results.Count(r => r.Passed), failed = results.Count - passed;
        if (results.Count == 0) output.WriteLine($"no reference cases found under '{dir}'");
        output.WriteLine($"{passed} passed, {failed} failed");
        return failed == 0 && results.Count > 0 ? 0 : 1;
    }
}
