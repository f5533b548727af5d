using System.Diagnostics;

namespace ConvLab.Fuzz;

/// <summary>
/// Runs one input through a target and enforces the rules: only the documented exceptions, messages that name the
/// file, and no more managed allocation than <see cref="InputFactor"/> x input + <see cref="OutputFactor"/> x
/// retained output + <see cref="SlackBytes"/>. Any breach is a <see cref="FuzzFinding"/>, which afl-fuzz records as a crash.
/// </summary>
public sealed class Harness
{
    /// <summary>Allowed allocation per input byte (a "small multiple": readers buffer, copy and parse).</summary>
    public const long InputFactor = 16;
    /// <summary>Allowed allocation per byte the reader hands back (the result plus one working copy, rounded up).</summary>
    public const long OutputFactor = 4;
    /// <summary>Fixed allowance for buffers, parser state and messages.</summary>
    public const long SlackBytes = 1 << 20;

    private readonly FuzzTarget _target;
    private readonly string _path;

    /// <summary>A harness writing inputs under <paramref name="workDir"/>.</summary>
    public Harness(FuzzTarget target, string workDir)
    {
        _target = target;
        Directory.CreateDirectory(workDir);
        _path = Path.Combine(workDir, "input" + target.Extension);
    }

    /// <summary>What one execution did.</summary>
    /// <param name="Outcome">"ok" or the expected exception's type name.</param>
    /// <param name="Message">The exception message (or "").</param>
    /// <param name="Allocated">Managed bytes allocated by the reader on this thread.</param>
    /// <param name="Retained">Bytes of decoded data the reader returned.</param>
    /// <param name="Elapsed">Wall time of the call.</param>
    public sealed record Result(string Outcome, string Message, long Allocated, long Retained, TimeSpan Elapsed);

    /// <summary>Runs <paramref name="input"/>; throws <see cref="FuzzFinding"/> (or lets an unexpected exception escape) on a finding.</summary>
    public Result Execute(byte[] input)
    {
        var file = _target.Prepare(input);
        var first = Once(file);
        // One-time costs (type initialisers, regex and JIT tables) land on the first input that reaches a code path:
        // only an excess that repeats is the reader's.
        if (first.Allocated > Budget(file.Length, first.Retained))
        {
            var again = Once(file);
            if (again.Allocated > Budget(file.Length, again.Retained))
                throw new FuzzFinding($"{_target.Name}: allocated {again.Allocated} bytes for a {file.Length}-byte input that yields {again.Retained} bytes " +
                                      $"(budget {Budget(file.Length, again.Retained)}); outcome: {again.Outcome} {again.Message}");
            return again;
        }
        return first;
    }

    /// <summary>The allocation allowed for an input of <paramref name="inputBytes"/> yielding <paramref name="retained"/> bytes.</summary>
    public static long Budget(long inputBytes, long retained) => InputFactor * inputBytes + OutputFactor * retained + SlackBytes;

    private Result Once(byte[] file)
    {
        File.WriteAllBytes(_path, file);
        var sw = Stopwatch.StartNew();
        long before = GC.GetAllocatedBytesForCurrentThread();
        try
        {
            long retained = _target.Run(_path);
            return new Result("ok", "", GC.GetAllocatedBytesForCurrentThread() - before, retained, sw.Elapsed);
        }
        catch (Exception e) when (_target.Expected.Any(t => t.IsInstanceOfType(e)))
        {
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            if (_target.MessageNamesFile) FuzzTarget.CheckMessage(e, _path);
            else if (e.Message.Length == 0 || e.Message.Contains("\n   at ", StringComparison.Ordinal))
                throw new FuzzFinding($"{_target.Name}: {e.GetType().Name} message is empty or holds a stack trace", e);
            return new Result(e.GetType().Name, e.Message, allocated, 0, sw.Elapsed);
        }
    }
}
