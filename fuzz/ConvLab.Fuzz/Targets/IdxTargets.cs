using ConvLab.Data;

namespace ConvLab.Fuzz.Targets;

/// <summary>IDX images and labels (MNIST format), plain or gzip, detected by content: the raw bytes as given.</summary>
public sealed class IdxTarget : FuzzTarget
{
    /// <inheritdoc/>
    public override string Name => "idx";
    /// <inheritdoc/>
    public override string Extension => "-ubyte";
    /// <inheritdoc/>
    public override Type[] Expected => [typeof(InvalidDataException)];

    /// <inheritdoc/>
    public override long Run(string path) => Read(path);

    // A file is an image file or a label file: the image reader's refusal is checked, then the label reader decides.
    internal static long Read(string path)
    {
        try { return IdxReader.ReadImages(path).Pixels.Length; }
        catch (InvalidDataException e) { CheckMessage(e, path); }
        return IdxReader.ReadLabels(path).Length;
    }

    /// <inheritdoc/>
    public override IEnumerable<(string, byte[])> Seeds(SeedContext context)
    {
        yield return ("images-3x4x5", Targets.Seeds.Idx(3, 4, 5));
        yield return ("images-0x28x28", Targets.Seeds.Idx(0, 28, 28));
        yield return ("labels-7", Targets.Seeds.Idx(7));
        yield return ("images-2x3x3.gz", Targets.Seeds.Gzip(Targets.Seeds.Idx(2, 3, 3)));
        yield return ("labels-5.gz", Targets.Seeds.Gzip(Targets.Seeds.Idx(5)));
    }
}

/// <summary>
/// The same IDX parser behind the gzip path: the harness compresses the fuzzer's bytes, so mutations reach the header
/// and payload checks of the streaming reader instead of dying on the gzip CRC.
/// </summary>
public sealed class IdxGzipTarget : FuzzTarget
{
    /// <inheritdoc/>
    public override string Name => "idx-gzip";
    /// <inheritdoc/>
    public override string Extension => "-ubyte.gz";
    /// <inheritdoc/>
    public override Type[] Expected => [typeof(InvalidDataException)];
    /// <inheritdoc/>
    public override byte[] Prepare(byte[] input) => Targets.Seeds.Gzip(input);
    /// <inheritdoc/>
    public override long Run(string path) => IdxTarget.Read(path);

    /// <inheritdoc/>
    public override IEnumerable<(string, byte[])> Seeds(SeedContext context)
    {
        yield return ("images-3x4x5", Targets.Seeds.Idx(3, 4, 5));
        yield return ("labels-7", Targets.Seeds.Idx(7));
        yield return ("images-1x28x28", Targets.Seeds.Idx(1, 28, 28));
    }
}

/// <summary>CIFAR-10 and CIFAR-100 binary batches (plain or gzip).</summary>
public sealed class CifarTarget : FuzzTarget
{
    /// <inheritdoc/>
    public override string Name => "cifar";
    /// <inheritdoc/>
    public override string Extension => ".bin";
    /// <inheritdoc/>
    public override Type[] Expected => [typeof(InvalidDataException)];

    /// <inheritdoc/>
    public override long Run(string path)
    {
        // A file is at most one of the two formats: the CIFAR-10 reader's refusal is checked, then CIFAR-100 decides.
        try { return Size(Cifar10Reader.Read(path)); }
        catch (InvalidDataException e) { CheckMessage(e, path); }
        return Size(Cifar100Reader.Read(path));
    }

    private static long Size(CifarRecords r) => r.Pixels.Length + 8L * r.Labels.Length + 8L * (r.CoarseLabels?.Length ?? 0);

    /// <inheritdoc/>
    public override IEnumerable<(string, byte[])> Seeds(SeedContext context)
    {
        yield return ("cifar10-1", Targets.Seeds.Cifar(1, 1));
        yield return ("cifar100-1", Targets.Seeds.Cifar(1, 2));
        yield return ("cifar10-2.gz", Targets.Seeds.Gzip(Targets.Seeds.Cifar(2, 1)));
        yield return ("empty", []);
    }
}
