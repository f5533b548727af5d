using System.Buffers.Binary;
using System.IO.Compression;

namespace ConvLab.Fuzz.Targets;

/// <summary>Byte-level helpers for seed files whose formats ConvLab reads but does not write (IDX, CIFAR).</summary>
internal static class Seeds
{
    internal static byte[] Gzip(byte[] data)
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.SmallestSize, leaveOpen: true)) gz.Write(data);
        return ms.ToArray();
    }

    /// <summary>An IDX file: magic 0x0000080R, big-endian sizes, then the bytes (a ramp).</summary>
    internal static byte[] Idx(params int[] dims)
    {
        long n = dims.Aggregate(1L, (a, d) => a * d);
        var b = new byte[4 + 4 * dims.Length + n];
        BinaryPrimitives.WriteInt32BigEndian(b, 0x800 | dims.Length);
        for (int i = 0; i < dims.Length; i++) BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(4 + 4 * i), dims[i]);
        for (long i = 0; i < n; i++) b[4 + 4 * dims.Length + i] = (byte)(i * 37 % dims.Length == 0 ? i % 10 : i * 7);
        return b;
    }

    /// <summary><paramref name="records"/> CIFAR records with <paramref name="labelBytes"/> leading label bytes.</summary>
    internal static byte[] Cifar(int records, int labelBytes)
    {
        int size = labelBytes + 3072;
        var b = new byte[records * size];
        for (int r = 0; r < records; r++)
        {
            for (int k = 0; k < labelBytes; k++) b[r * size + k] = (byte)((r + 3 * k) % 10);
            for (int i = 0; i < 3072; i++) b[r * size + labelBytes + i] = (byte)(i * 13 + r);
        }
        return b;
    }
}
