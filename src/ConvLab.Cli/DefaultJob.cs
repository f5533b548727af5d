namespace ConvLab.Cli;

/// <summary>What <c>convlab</c> does with no arguments (until the training issue lands).</summary>
internal static class DefaultJob
{
    public static int Run(TextWriter output)
    {
        output.WriteLine("ConvLab: no default job yet.");
        return 0;
    }
}
