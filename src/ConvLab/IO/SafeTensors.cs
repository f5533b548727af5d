using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Unicode;

namespace ConvLab.IO;

/// <summary>
/// The safetensors format (Hugging Face): an 8-byte little-endian header length N, N bytes of UTF-8 JSON
/// (<c>{"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [begin, end]}}</c>, padded with
/// spaces to a multiple of 8), then the raw little-endian tensor data with offsets relative to its start.
/// Files written here are laid out exactly as the reference implementation lays them out.
/// </summary>
public static class SafeTensors
{
    private const string MetadataKey = "__metadata__";
    // The reference implementation refuses larger headers; a bound also stops a hostile file from
    // making the JSON parser chew through gigabytes.
    private const long MaxHeaderBytes = 100_000_000;

    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private enum Kind { F32, F64, I64, F16, BF16, I32, I16, I8, U8, U16, U32, Bool }

    private static readonly Dictionary<string, (Kind Kind, int Size)> Readable = new()
    {
        ["F32"] = (Kind.F32, 4), ["F64"] = (Kind.F64, 8), ["I64"] = (Kind.I64, 8),
        ["F16"] = (Kind.F16, 2), ["BF16"] = (Kind.BF16, 2),
        ["I32"] = (Kind.I32, 4), ["I16"] = (Kind.I16, 2), ["I8"] = (Kind.I8, 1),
        ["U8"] = (Kind.U8, 1), ["U16"] = (Kind.U16, 2), ["U32"] = (Kind.U32, 4), ["BOOL"] = (Kind.Bool, 1),
    };

    private static readonly HashSet<string> KnownUnsupported =
        ["U64", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64"];

    private sealed record Entry(string Name, Kind Kind, int Size, int[] Shape, long Begin, long End);

    /// <summary>
    /// Writes <paramref name="tensors"/> (float32, float64 or int64; any shape, strides and views allowed) and
    /// optional string <paramref name="metadata"/> atomically to <paramref name="path"/>. Tensors are laid out
    /// like the reference implementation: by dtype (I64, F64, F32), then by name (ordinal).
    /// </summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        foreach (var (name, t) in tensors)
        {
            if (name == MetadataKey) throw new ArgumentException($"safetensors: tensor name '{MetadataKey}' is reserved for metadata");
            if (t is null) throw new ArgumentException($"safetensors: tensor '{name}' is null");
        }
        if (metadata != null)
            foreach (var (k, v) in metadata)
                if (v is null) throw new ArgumentException($"safetensors: metadata value for '{k}' is null");

        var ordered = tensors.OrderByDescending(kv => kv.Value.DType switch { DType.Int64 => 2, DType.Float64 => 1, _ => 0 })
            .ThenBy(kv => kv.Key, StringComparer.Ordinal).ToList();
        var header = BuildHeader(ordered, metadata);
        AtomicFile.Write(path, s =>
        {
            var len = new byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
            s.Write(len);
            s.Write(header);
            foreach (var (_, t) in ordered)
            {
                switch (t.DType)
                {
                    case DType.Float32: WriteLittleEndian(s, t.Read<float>()); break;
                    case DType.Float64: WriteLittleEndian(s, t.Read<double>()); break;
                    default: WriteLittleEndian(s, t.Read<long>()); break;
                }
            }
        });
    }

    private static byte[] BuildHeader(List<KeyValuePair<string, Tensor>> ordered, IReadOnlyDictionary<string, string>? metadata)
    {
        var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, WriterOptions))
        {
            w.WriteStartObject();
            if (metadata != null)
            {
                w.WriteStartObject(MetadataKey);
                foreach (var (k, v) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, t) in ordered)
            {
                long bytes = (long)t.Numel * (t.DType == DType.Float32 ? 4 : 8);
                w.WriteStartObject(name);
                w.WriteString("dtype", t.DType switch { DType.Float32 => "F32", DType.Float64 => "F64", _ => "I64" });
                w.WriteStartArray("shape");
                foreach (var d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += bytes;
            }
            w.WriteEndObject();
        }
        while (ms.Length % 8 != 0) ms.WriteByte((byte)' ');
        return ms.ToArray();
    }

    private static void WriteLittleEndian<T>(Stream s, ReadOnlySpan<T> data) where T : unmanaged
    {
        var bytes = MemoryMarshal.AsBytes(data);
        if (BitConverter.IsLittleEndian) { s.Write(bytes); return; }
        var copy = bytes.ToArray();
        SwapBytes(copy, System.Runtime.CompilerServices.Unsafe.SizeOf<T>());
        s.Write(copy);
    }

    private static void SwapBytes(Span<byte> bytes, int size)
    {
        if (size == 1) return;
        for (int i = 0; i + size <= bytes.Length; i += size) bytes.Slice(i, size).Reverse();
    }

    /// <summary>Reads all tensors of a safetensors file, in header order. See <see cref="Load(string, out OrderedDictionary{string, string})"/>.</summary>
    public static OrderedDictionary<string, Tensor> Load(string path) => Load(path, out _);

    /// <summary>
    /// Reads all tensors of a safetensors file, in header order, and its <c>__metadata__</c> (empty if absent).
    /// F32, F64 and I64 load as they are; F16/BF16 widen to float32 and 8-32-bit integers and BOOL to int64.
    /// Every defect of the file is an <see cref="InvalidDataException"/> whose message starts with the file name.
    /// </summary>
    public static OrderedDictionary<string, Tensor> Load(string path, out OrderedDictionary<string, string> metadata)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var file = Path.GetFileName(path);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            long fileLen = fs.Length;
            if (fileLen < 8) throw Bad(file, $"file has {fileLen} bytes, fewer than the 8-byte header length field");
            var lenBytes = new byte[8];
            fs.ReadExactly(lenBytes);
            ulong n = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
            if (n > (ulong)(fileLen - 8))
                throw Bad(file, $"header length {n} is larger than the {fileLen - 8} bytes that follow the length field");
            if ((long)n > MaxHeaderBytes) throw Bad(file, $"header length {n} exceeds the limit of {MaxHeaderBytes} bytes");
            var header = new byte[n];
            fs.ReadExactly(header);
            var entries = ParseHeader(file, header, out metadata);
            long dataStart = 8 + (long)n;
            CheckLayout(file, entries, fileLen - dataStart);

            var result = new OrderedDictionary<string, Tensor>(entries.Count);
            foreach (var e in entries)
            {
                fs.Position = dataStart + e.Begin;
                result.Add(e.Name, ReadTensor(fs, e));
            }
            return result;
        }
        catch (EndOfStreamException)
        {
            // Only reachable if the file shrinks while being read; the layout was checked against its length.
            throw Bad(file, "file ended while reading tensor data (truncated)");
        }
    }

    private static List<Entry> ParseHeader(string file, byte[] header, out OrderedDictionary<string, string> metadata)
    {
        if (!Utf8.IsValid(header)) throw Bad(file, "header is not valid UTF-8");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 16 }); }
        catch (JsonException e) { throw Bad(file, $"header is not valid JSON: {e.Message}"); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw Bad(file, $"header must be a JSON object, found {root.ValueKind}");
            metadata = [];
            var entries = new List<Entry>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var prop in root.EnumerateObject())
            {
                if (!seen.Add(prop.Name)) throw Bad(file, $"header lists '{prop.Name}' twice");
                if (prop.Name == MetadataKey) metadata = ParseMetadata(file, prop.Value);
                else entries.Add(ParseEntry(file, prop.Name, prop.Value));
            }
            return entries;
        }
    }

    private static OrderedDictionary<string, string> ParseMetadata(string file, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object) throw Bad(file, $"{MetadataKey} must be an object of strings, found {value.ValueKind}");
        var meta = new OrderedDictionary<string, string>();
        foreach (var p in value.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.String) throw Bad(file, $"{MetadataKey} value of '{p.Name}' must be a string, found {p.Value.ValueKind}");
            if (!meta.TryAdd(p.Name, p.Value.GetString()!)) throw Bad(file, $"{MetadataKey} lists '{p.Name}' twice");
        }
        return meta;
    }

    private static Entry ParseEntry(string file, string name, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object) throw Bad(file, $"tensor '{name}': entry must be an object, found {value.ValueKind}");
        if (!value.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw Bad(file, $"tensor '{name}': missing or non-string \"dtype\"");
        var dtype = dt.GetString()!;
        if (!Readable.TryGetValue(dtype, out var kind))
            throw Bad(file, KnownUnsupported.Contains(dtype)
                ? $"tensor '{name}': dtype {dtype} is not supported (readable: {string.Join(", ", Readable.Keys)})"
                : $"tensor '{name}': unknown dtype '{dtype}'");

        if (!value.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw Bad(file, $"tensor '{name}': missing or non-array \"shape\"");
        var shape = new int[sh.GetArrayLength()];
        long numel = 1;
        bool empty = false;
        int i = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long v) || v < 0 || v > int.MaxValue)
                throw Bad(file, $"tensor '{name}': shape entry {Snippet(d)} is not a dimension size in [0, {int.MaxValue}]");
            shape[i++] = (int)v;
            if (v == 0) empty = true;
            else if (!empty && (numel *= v) > int.MaxValue)
                throw Bad(file, $"tensor '{name}': shape {ShapeUtil.Format(shape)} has more than {int.MaxValue} elements");
        }
        if (empty) numel = 0;

        if (!value.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw Bad(file, $"tensor '{name}': \"data_offsets\" must be an array [begin, end]");
        long begin = Offset(file, name, off[0]), end = Offset(file, name, off[1]);
        if (end < begin) throw Bad(file, $"tensor '{name}': data_offsets [{begin}, {end}] end before they begin");
        long need = numel * kind.Size;
        if (end - begin != need)
            throw Bad(file, $"tensor '{name}': data_offsets [{begin}, {end}] span {end - begin} bytes but shape {ShapeUtil.Format(shape)} of {dtype} needs {need}");
        return new Entry(name, kind.Kind, kind.Size, shape, begin, end);
    }

    private static long Offset(string file, string name, JsonElement e) =>
        e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out long v) && v >= 0
            ? v : throw Bad(file, $"tensor '{name}': data offset {Snippet(e)} is not a non-negative integer");

    // Like the reference implementation: tensors must tile the data section exactly, with no gap, overlap or trailing bytes.
    private static void CheckLayout(string file, List<Entry> entries, long dataLen)
    {
        long pos = 0;
        string? prev = null;
        foreach (var e in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (e.Begin < pos) throw Bad(file, $"tensor '{e.Name}' data [{e.Begin}, {e.End}] overlaps tensor '{prev}' (ending at {pos})");
            if (e.Begin > pos) throw Bad(file, $"tensor '{e.Name}' data starts at {e.Begin}, leaving a gap after offset {pos}");
            if (e.End > dataLen) throw Bad(file, $"tensor '{e.Name}' data ends at {e.End} but the data section has only {dataLen} bytes (truncated)");
            pos = e.End;
            prev = e.Name;
        }
        if (pos != dataLen) throw Bad(file, $"data section has {dataLen} bytes but the tensors cover only {pos}");
    }

    private static Tensor ReadTensor(Stream s, Entry e)
    {
        var dtype = e.Kind switch { Kind.F32 or Kind.F16 or Kind.BF16 => DType.Float32, Kind.F64 => DType.Float64, _ => DType.Int64 };
        var t = Tensor.Zeros(e.Shape, dtype);
        switch (e.Kind)
        {
            case Kind.F32: ReadLittleEndian(s, t.Span<float>()); return t;
            case Kind.F64: ReadLittleEndian(s, t.Span<double>()); return t;
            case Kind.I64: ReadLittleEndian(s, t.Span<long>()); return t;
        }
        var raw = new byte[e.End - e.Begin];
        s.ReadExactly(raw);
        int n = t.Numel;
        if (dtype == DType.Float32)
        {
            var dst = t.Span<float>();
            for (int i = 0; i < n; i++)
            {
                ushort bits = BinaryPrimitives.ReadUInt16LittleEndian(raw.AsSpan(2 * i));
                dst[i] = e.Kind == Kind.F16 ? (float)BitConverter.UInt16BitsToHalf(bits) : BitConverter.Int32BitsToSingle(bits << 16);
            }
        }
        else
        {
            var dst = t.Span<long>();
            for (int i = 0; i < n; i++)
            {
                dst[i] = e.Kind switch
                {
                    Kind.I32 => BinaryPrimitives.ReadInt32LittleEndian(raw.AsSpan(4 * i)),
                    Kind.U32 => BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(4 * i)),
                    Kind.I16 => BinaryPrimitives.ReadInt16LittleEndian(raw.AsSpan(2 * i)),
                    Kind.U16 => BinaryPrimitives.ReadUInt16LittleEndian(raw.AsSpan(2 * i)),
                    Kind.I8 => (sbyte)raw[i],
                    _ => raw[i],
                };
            }
        }
        return t;
    }

    private static void ReadLittleEndian<T>(Stream s, Span<T> dst) where T : unmanaged
    {
        var bytes = MemoryMarshal.AsBytes(dst);
        s.ReadExactly(bytes);
        if (!BitConverter.IsLittleEndian) SwapBytes(bytes, System.Runtime.CompilerServices.Unsafe.SizeOf<T>());
    }

    private static string Snippet(JsonElement e)
    {
        var text = e.GetRawText();
        return text.Length <= 40 ? text : text[..40] + "...";
    }

    private static InvalidDataException Bad(string file, string message) => new($"{file}: {message}");
}
