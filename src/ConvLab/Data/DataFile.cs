using System.Buffers.Binary;
using System.IO.Compression;

namespace ConvLab.Data;

/// <summary>
/// Shared file plumbing for the dataset readers: transparent gzip, bounded reads and errors that name the file.
/// </summary>
internal static class DataFile
{
    /// <summary>First buffer of a read whose length the data does not vouch for (64 KiB: one gzip window-sized read).</summary>
    private const int InitialBuffer = 1 << 16;

    /// <summary>An <see cref="InvalidDataException"/> whose message starts with the file name.</summary>
    internal static InvalidDataException Error(string path, string message) => new($"{Path.GetFileName(path)}: {message}");

    /// <summary>
    /// Opens <paramref name="path"/>, decompressing when it starts with the gzip magic 1f 8b.
    /// <paramref name="fileLength"/> is the on-disk length (the decompressed length is unknown for gzip).
    /// </summary>
    internal static Stream Open(string path, out bool gzip, out long fileLength)
    {
        var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            fileLength = fs.Length;
            Span<byte> magic = stackalloc byte[2];
            gzip = ReadUpTo(fs, magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
            fs.Position = 0;
            return gzip ? new CheckedGzipStream(fs, path) : fs;
        }
        catch
        {
            fs.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Decompresses and, at the end of the data, checks the gzip trailer (CRC-32 and length), which GZipStream
    /// ignores: without this a file cut inside its trailer would load silently. Supports single-member files
    /// (what gzip writes).
    /// </summary>
    private sealed class CheckedGzipStream(FileStream file, string path) : Stream
    {
        private static readonly uint[] CrcTable = Enumerable.Range(0, 256).Select(n =>
        {
            uint c = (uint)n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            return c;
        }).ToArray();

        private readonly GZipStream _inner = new(file, CompressionMode.Decompress, leaveOpen: true);
        private uint _crc = 0xFFFFFFFFu;
        private long _length;
        private bool _verified;

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            int n = _inner.Read(buffer);
            if (n == 0 && buffer.Length > 0) { Verify(); return 0; }
            foreach (byte b in buffer[..n]) _crc = CrcTable[(_crc ^ b) & 0xff] ^ (_crc >> 8);
            _length += n;
            return n;
        }

        private void Verify()
        {
            if (_verified) return;
            _verified = true;
            Span<byte> trailer = stackalloc byte[8];
            long len = file.Length;
            if (len < 18 || RandomAccess.Read(file.SafeFileHandle, trailer, len - 8) != 8
                || BinaryPrimitives.ReadUInt32LittleEndian(trailer) != ~_crc
                || BinaryPrimitives.ReadUInt32LittleEndian(trailer[4..]) != (uint)_length)
                throw Error(path, $"gzip data is truncated or corrupt: the trailer does not match the {_length} bytes decompressed");
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _length; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) { _inner.Dispose(); file.Dispose(); }
            base.Dispose(disposing);
        }
    }

    /// <summary>Reads until <paramref name="dst"/> is full or the stream ends; returns the bytes read.</summary>
    internal static int ReadUpTo(Stream s, Span<byte> dst)
    {
        int total = 0;
        while (total < dst.Length)
        {
            int n = s.Read(dst[total..]);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    /// <summary>
    /// Reads exactly <paramref name="expected"/> bytes and checks that nothing follows. The buffer starts small and
    /// doubles as data arrives, so a corrupt header in a compressed file cannot trigger an allocation larger than
    /// twice the data actually present (fuzzing found a 4 MiB first buffer for a 28-byte file).
    /// <paramref name="claim"/> states what the header promised, for the error messages. <paramref name="lengthChecked"/>
    /// says the caller already matched <paramref name="expected"/> against the file length (a plain file): then the
    /// buffer is allocated at its final size at once.
    /// </summary>
    internal static byte[] ReadPayload(Stream s, long expected, string path, string claim, bool lengthChecked)
    {
        if (expected > Array.MaxLength) throw Error(path, $"{claim}, more than one array can hold");
        var buf = new byte[(int)Math.Min(expected, lengthChecked ? Array.MaxLength : InitialBuffer)];
        int filled = 0;
        while (true)
        {
            filled += ReadUpTo(s, buf.AsSpan(filled));
            if (filled < buf.Length || filled == expected) break;
            Array.Resize(ref buf, (int)Math.Min(expected, 2L * buf.Length));
        }
        if (filled < expected) throw Error(path, $"{claim} but the data ends after {filled} of them");
        if (s.ReadByte() != -1) throw Error(path, $"{claim} but more data follows");
        return buf;
    }

    /// <summary>Reads a stream to its end, growing the buffer with the data actually present.</summary>
    internal static byte[] ReadToEnd(Stream s, string path)
    {
        var buf = new byte[InitialBuffer];
        long filled = 0;
        while (true)
        {
            filled += ReadUpTo(s, buf.AsSpan((int)filled));
            if (filled < buf.Length) break;
            if (buf.Length == Array.MaxLength) throw Error(path, "data is larger than one array can hold");
            Array.Resize(ref buf, (int)Math.Min(Array.MaxLength, 2L * buf.Length));
        }
        Array.Resize(ref buf, (int)filled);
        return buf;
    }

    /// <summary>
    /// Runs a reader, rewrapping decoder failures (corrupt gzip) so that every data error names the file.
    /// </summary>
    internal static T Guard<T>(string path, Func<T> read)
    {
        string prefix = Path.GetFileName(path) + ":";
        try { return read(); }
        catch (InvalidDataException e) when (!e.Message.StartsWith(prefix, StringComparison.Ordinal))
        {
            throw Error(path, $"corrupt compressed data ({e.Message})");
        }
    }
}
