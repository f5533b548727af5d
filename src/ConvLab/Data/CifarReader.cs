namespace ConvLab.Data;

/// <summary>
/// Records read from a CIFAR binary file: <see cref="Pixels"/> holds Count x 3 x 32 x 32 bytes (channel-major,
/// as stored), <see cref="Labels"/> the class of each record (the fine label for CIFAR-100).
/// </summary>
/// <param name="Pixels">The pixel bytes, record after record.</param>
/// <param name="Labels">Class labels (CIFAR-10 label, or CIFAR-100 fine label).</param>
/// <param name="CoarseLabels">CIFAR-100 superclass labels; null for CIFAR-10.</param>
public sealed record CifarRecords(byte[] Pixels, long[] Labels, long[]? CoarseLabels)
{
    /// <summary>Number of records.</summary>
    public int Count => Labels.Length;
}

/// <summary>Reads CIFAR-10 binary files (data_batch_1..5.bin, test_batch.bin): 1 label byte + 3072 pixel bytes per record.</summary>
public static class Cifar10Reader
{
    /// <summary>Reads one batch file (plain or gzip).</summary>
    public static CifarRecords Read(string path) => CifarBinary.Read(path, [10]);
}

/// <summary>Reads CIFAR-100 binary files (train.bin, test.bin): coarse label byte, fine label byte, 3072 pixel bytes per record.</summary>
public static class Cifar100Reader
{
    /// <summary>Reads one file (plain or gzip).</summary>
    public static CifarRecords Read(string path) => CifarBinary.Read(path, [20, 100]);
}

internal static class CifarBinary
{
    internal const int PixelBytes = 3 * 32 * 32;

    /// <summary><paramref name="classes"/> gives the number of classes of each leading label byte.</summary>
    internal static CifarRecords Read(string path, int[] classes) => DataFile.Guard(path, () =>
    {
        int labelBytes = classes.Length, recordSize = labelBytes + PixelBytes;
        using var s = DataFile.Open(path, out bool gzip, out long fileLength);
        if (!gzip && fileLength % recordSize != 0)
            throw DataFile.Error(path, $"file holds {fileLength} bytes, not a multiple of the {recordSize}-byte record size");
        var raw = DataFile.ReadToEnd(s, path);
        if (raw.Length % recordSize != 0)
            throw DataFile.Error(path, $"data holds {raw.Length} bytes, not a multiple of the {recordSize}-byte record size");
        int n = raw.Length / recordSize;
        var pixels = new byte[(long)n * PixelBytes];
        var labels = new long[labelBytes][];
        for (int k = 0; k < labelBytes; k++) labels[k] = new long[n];
        for (int i = 0; i < n; i++)
        {
            int rec = i * recordSize;
            for (int k = 0; k < labelBytes; k++)
            {
                int v = raw[rec + k];
                if (v >= classes[k])
                    throw DataFile.Error(path, $"record {i} has label {v} but the format has {classes[k]} classes (0..{classes[k] - 1})");
                labels[k][i] = v;
            }
            raw.AsSpan(rec + labelBytes, PixelBytes).CopyTo(pixels.AsSpan(i * PixelBytes));
        }
        return labelBytes == 1 ? new CifarRecords(pixels, labels[0], null) : new CifarRecords(pixels, labels[1], labels[0]);
    });
}
