using System.Diagnostics;
using Xunit;

namespace ConvLab.Tests;

/// <summary>The `convlab` command run as a user types it: a separate process on the built CLI.</summary>
public class CliTests
{
    internal static (int Code, string Out) Convlab(params string[] args)
    {
        var (code, stdout, stderr) = Run(2, args);
        return (code, stdout + stderr);
    }

    /// <summary>Runs the built CLI with <paramref name="args"/>; the time limit is a hang guard, not a timing check.</summary>
    internal static (int Code, string Out, string Err) Run(int minutes, params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "ConvLab.Cli.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(minutes * 60_000), $"convlab did not finish within {minutes} minutes");
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    [Fact]
    public void CheckReferencePassesEveryCaseAndEndsWithTheCountLine()
    {
        var (code, text) = Convlab("check-reference", TestUtil.ReferenceDir);
        var lines = text.TrimEnd().Split('\n').Select(l => l.Trim()).ToArray();
        Assert.Matches(@"^\d+ passed, 0 failed$", lines[^1]);
        Assert.DoesNotContain(lines, l => l.StartsWith("FAIL ", StringComparison.Ordinal));
        Assert.Equal(0, code);
        Assert.Contains("conv2d", text);
    }

    [Fact]
    public void CheckReferenceOnAMissingDirectoryFailsWithAMessage()
    {
        var (code, text) = Convlab("check-reference", "/no/such/dir");
        Assert.NotEqual(0, code);
        Assert.Contains("does not exist", text);
    }
}
