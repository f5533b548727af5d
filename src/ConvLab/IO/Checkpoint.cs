namespace ConvLab.IO;

/// <summary>
/// A training checkpoint: named tensors (weights, optimizer state, ...) plus string metadata (epoch, optimizer
/// name, schedule state, RNG state as text), stored as a safetensors file with the metadata in
/// <c>__metadata__</c>. Tensors round-trip bit for bit; writes are atomic.
/// </summary>
public sealed class Checkpoint
{
    /// <summary>Metadata key marking a file as a ConvLab checkpoint (reserved; value is the format version).</summary>
    public const string VersionKey = "convlab.checkpoint";

    private const string Version = "1";

    /// <summary>Tensors in file order.</summary>
    public IReadOnlyDictionary<string, Tensor> Tensors { get; }

    /// <summary>User metadata (without <see cref="VersionKey"/>).</summary>
    public IReadOnlyDictionary<string, string> Meta { get; }

    private Checkpoint(IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string> meta) => (Tensors, Meta) = (tensors, meta);

    /// <summary>Atomically writes <paramref name="tensors"/> and <paramref name="meta"/> to <paramref name="path"/>.</summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string> meta)
    {
        ArgumentNullException.ThrowIfNull(meta);
        if (meta.ContainsKey(VersionKey)) throw new ArgumentException($"checkpoint: metadata key '{VersionKey}' is reserved");
        var all = new Dictionary<string, string>(meta) { [VersionKey] = Version };
        SafeTensors.Save(path, tensors, all);
    }

    /// <summary>
    /// Reads a checkpoint written by <see cref="Save"/>. A damaged file, or a safetensors file that is not a
    /// ConvLab checkpoint, is an <see cref="InvalidDataException"/> whose message starts with the file name.
    /// </summary>
    public static Checkpoint Load(string path)
    {
        var tensors = SafeTensors.Load(path, out var meta);
        if (!meta.TryGetValue(VersionKey, out var v))
            throw new InvalidDataException($"{Path.GetFileName(path)}: not a ConvLab checkpoint (no '{VersionKey}' in __metadata__)");
        if (v != Version)
            throw new InvalidDataException($"{Path.GetFileName(path)}: checkpoint format version '{v}' is not supported (expected '{Version}')");
        meta.Remove(VersionKey);
        return new Checkpoint(tensors, meta);
    }
}
