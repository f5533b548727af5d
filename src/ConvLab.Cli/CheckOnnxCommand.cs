using System.CommandLine;
using ConvLab.Onnx;
using Spectre.Console;

namespace ConvLab.Cli;

/// <summary><c>convlab check-onnx DIR</c>: runs ONNX backend test folders and prints a pass table per op.</summary>
internal static class CheckOnnxCommand
{
    public static Command Create()
    {
        var dir = new Argument<string>("dir") { Description = "An ONNX backend test folder (model.onnx + test_data_set_*) or a directory of them" };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "List every folder, not only failures" };
        var filter = new Option<string?>("--filter") { Description = "Only folders whose name starts with this prefix (e.g. test_conv)" };
        var cmd = new Command("check-onnx", "Run ONNX backend test folders through the ONNX importer and compare the outputs.") { dir, verbose, filter };
        cmd.SetAction(pr => Run(pr.GetValue(dir)!, pr.GetValue(verbose), pr.GetValue(filter), Console.Out));
        return cmd;
    }

    /// <summary>The op family of a backend test folder: the first word after <c>test_</c>.</summary>
    private static string Family(string name)
    {
        var s = name.StartsWith("test_", StringComparison.Ordinal) ? name[5..] : name;
        int u = s.IndexOf('_');
        return u > 0 ? s[..u] : s;
    }

    public static int Run(string dir, bool verbose, string? filter, TextWriter output)
    {
        IReadOnlyList<string> folders;
        try { folders = OnnxBackendTests.FindTests(dir); }
        catch (DirectoryNotFoundException e)
        {
            output.WriteLine(e.Message);
            output.WriteLine("0 passed, 1 failed");
            return 1;
        }
        if (filter != null) folders = folders.Where(f => Path.GetFileName(f).StartsWith(filter, StringComparison.Ordinal)).ToArray();
        var results = folders.Select(OnnxBackendTests.Run).ToList();
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors });
        var table = new Table().AddColumns("family", "folders", "passed", "failed", "max |error|");
        foreach (var g in results.GroupBy(r => Family(r.Name)).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            int pass = g.Count(r => r.Passed);
            double err = g.Where(r => !double.IsNaN(r.MaxError)).Select(r => r.MaxError).DefaultIfEmpty(0).Max();
            table.AddRow(Markup.Escape(g.Key), g.Count().ToString(), pass.ToString(), (g.Count() - pass).ToString(), err.ToString("0.0e+0", System.Globalization.CultureInfo.InvariantCulture));
        }
        console.Write(table);
        foreach (var r in results.Where(r => verbose || !r.Passed))
            output.WriteLine($"{(r.Passed ? "PASS" : "FAIL")} {r.Name}{(r.Passed ? "" : ": " + r.Reason)}");
        int passed = results.Count(r => r.Passed), failed = results.Count - passed;
        if (results.Count == 0) output.WriteLine($"no ONNX test folders found under '{dir}'");
        output.WriteLine($"{passed} passed, {failed} failed");
        return failed == 0 && results.Count > 0 ? 0 : 1;
    }
}
