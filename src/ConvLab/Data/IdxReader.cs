using System.Buffers.Binary;

namespace ConvLab.Data;

/// <summary>Images read from an IDX file: <see cref="Pixels"/> holds Count x Rows x Cols bytes, row-major.</summary>
/// <param name="Pixels">The pixel bytes, image after image.</param>
/// <param name="Count">Number of images.</param>
/// <param name="Rows">Image height.</param>
/// <param name="Cols">Image width.</param>
public sealed record IdxImages(byte[] Pixels, int Count, int Rows, int Cols);

/// <summary>
/// Reads IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed (detected by content, not name).
/// Every problem with the data is an <see cref="InvalidDataException"/> whose message starts with the file name.
/// </summary>
public static class IdxReader
{
    /// <summary>Magic number of an unsigned-byte 3-d IDX file (images).</summary>
    public const int ImagesMagic = 0x00000803;

    /// <summary>Magic number of an unsigned-byte 1-d IDX file (labels).</summary>
    public const int LabelsMagic = 0x00000801;

    /// <summary>Reads an image file (magic 0x00000803, dimensions [N, rows, cols]).</summary>
    public static IdxImages ReadImages(string path)
    {
        var (dims, data) = Read(path, ImagesMagic, "images");
        return new IdxImages(data, dims[0], dims[1], dims[2]);
    }

    /// <summary>Reads a label file (magic 0x00000801, dimension [N]).</summary>
    public static byte[] ReadLabels(string path) => Read(path, LabelsMagic, "labels").Data;

    private static (int[] Dims, byte[] Data) Read(string path, int magic, string kind) => DataFile.Guard(path, () =>
    {
        using var s = DataFile.Open(path, out bool gzip, out long fileLength);
        int rank = magic & 0xff;
        int headerLen = 4 + 4 * rank;
        Span<byte> header = stackalloc byte[headerLen];
        int got = DataFile.ReadUpTo(s, header[..4]);
        if (got < 4) throw DataFile.Error(path, $"file ends inside the IDX header after {got} bytes");
        int found = BinaryPrimitives.ReadInt32BigEndian(header);
        if (found != magic)
            throw DataFile.Error(path, $"magic number 0x{found:x8} is not 0x{magic:x8} (IDX unsigned-byte {kind})");
        got = 4 + DataFile.ReadUpTo(s, header[4..]);
        if (got < headerLen) throw DataFile.Error(path, $"file ends inside the IDX header after {got} of {headerLen} bytes");

        var dims = new int[rank];
        long expected = 1;
        for (int d = 0; d < rank; d++)
        {
            dims[d] = BinaryPrimitives.ReadInt32BigEndian(header[(4 + 4 * d)..]);
            if (dims[d] < 0) throw DataFile.Error(path, $"header gives a negative size {dims[d]} for dimension {d}");
            expected *= dims[d];
            // Saturate early so that the product of several large sizes cannot overflow.
            if (expected > Array.MaxLength) expected = (long)Array.MaxLength + 1;
        }
        string claim = kind == "images"
            ? $"header says {dims[0]} images of {dims[1]}x{dims[2]} ({(Int128)dims[0] * dims[1] * dims[2]} bytes)"
            : $"header says {dims[0]} labels";
        if (!gzip && fileLength != headerLen + expected)
            throw DataFile.Error(path, $"{claim} but file holds {fileLength - headerLen} bytes after the {headerLen}-byte header");
        return (dims, DataFile.ReadPayload(s, expected, path, claim, lengthChecked: !gzip));
    });
}
