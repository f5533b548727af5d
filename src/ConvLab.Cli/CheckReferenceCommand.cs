using System.CommandLine;
using ConvLab.Conformance;

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
            return 1;
        }
        var results = files.Select(f => ReferenceRunner.RunFile(f, dir)).ToList();
        return PassTable.Write(output, results, "family", "cases", r => r.Family, r => r.Passed, r => r.MaxError,
            r => $"{(r.Passed ? "PASS" : "FAIL")} {r.Name} [{r.Op}]{(r.Passed ? "" : ": " + r.Reason)}", verbose, $"no reference cases found under '{dir}'");
    }
}
