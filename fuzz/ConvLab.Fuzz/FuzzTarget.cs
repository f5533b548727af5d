namespace ConvLab.Fuzz;

/// <summary>
/// One parser under fuzz. The harness writes each input to a file named <c>input{Extension}</c> (the readers take
/// paths, and their messages must name the file) and calls <see cref="Run"/>. Only the exception types in
/// <see cref="Expected"/> are the reader's documented "bad input" answer; anything else escaping is a finding.
/// </summary>
public abstract class FuzzTarget
{
    /// <summary>Name used on the command line and for corpus folders.</summary>
    public abstract string Name { get; }

    /// <summary>File extension of the input file (some readers are told the format by it; most sniff content).</summary>
    public virtual string Extension => ".bin";

    /// <summary>The documented bad-input exception types; a subclass of one counts.</summary>
    public abstract Type[] Expected { get; }

    /// <summary>
    /// Whether a bad-input message must name the file (every file reader promises it; the spec parser points
    /// at a position in the text instead).
    /// </summary>
    public virtual bool MessageNamesFile => true;

    /// <summary>Turns the fuzzer's bytes into the file the reader sees (identity except for idx-gzip).</summary>
    public virtual byte[] Prepare(byte[] input) => input;

    /// <summary>
    /// Parses the file at <paramref name="path"/> and returns how many bytes of decoded data it holds on to (tensors,
    /// pixels, parameters): the allocation check allows a multiple of that on top of the input size.
    /// </summary>
    public abstract long Run(string path);

    /// <summary>
    /// For targets that run several readers on one input: an expected refusal from one of them must still name the
    /// file and carry a plain message.
    /// </summary>
    internal static void CheckMessage(Exception e, string path)
    {
        if (!e.Message.Contains(Path.GetFileName(path), StringComparison.Ordinal))
            throw new FuzzFinding($"{e.GetType().Name} does not name the file: {e.Message}", e);
        if (e.Message.Contains("\n   at ", StringComparison.Ordinal))
            throw new FuzzFinding($"{e.GetType().Name} message holds a stack trace", e);
    }

    /// <summary>Small valid files for the seed corpus, made with the library's own writers.</summary>
    public abstract IEnumerable<(string Name, byte[] Bytes)> Seeds(SeedContext context);
}

/// <summary>What seed generation may read: a scratch folder and, optionally, the shared reference folder.</summary>
/// <param name="Scratch">A folder for temporary files.</param>
/// <param name="Shared">The shared folder (../shared), or null when absent.</param>
public sealed record SeedContext(string Scratch, string? Shared)
{
    /// <summary>Writes with <paramref name="write"/> to a scratch file and returns the bytes.</summary>
    public byte[] Capture(string name, Action<string> write)
    {
        var path = Path.Combine(Scratch, name);
        write(path);
        var bytes = File.ReadAllBytes(path);
        File.Delete(path);
        return bytes;
    }
}

/// <summary>An input that broke a rule of the harness (wrong exception type, message without the file, allocation).</summary>
public sealed class FuzzFinding(string message, Exception? inner = null) : Exception(message, inner);
