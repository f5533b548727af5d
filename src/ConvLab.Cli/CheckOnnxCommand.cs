using System.CommandLine;
using ConvLab.Onnx;

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
            return 1;
        }
        if (filter != null) folders = folders.Where(f => Path.GetFileName(f).StartsWith(filter, StringComparison.Ordinal)).ToArray();
        var results = folders.Select(OnnxBackendTests.Run).ToList();
        return PassTable.Write(output, results, "family", "folders", r => Family(r.Name), r => r.Passed, r => r.MaxError,
            r => $"{(r.Passed ? "PASS" : "FAIL")} {r.Name}{(r.Passed ? "" : ": " + r.Reason)}", verbose, $"no ONNX test folders found under '{dir}'");
    }
}
