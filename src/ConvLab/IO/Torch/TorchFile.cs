using System.IO.Compression;
using System.Numerics;

namespace ConvLab.IO.Torch;

/// <summary>
/// PyTorch <c>torch.save</c> files (<c>.pth</c>, <c>.pt</c>) read and written without Python and without running
/// anything from the file. Reads the zip format (PyTorch ≥ 1.6: <c>NAME/data.pkl</c>, <c>NAME/data/KEY</c> storages,
/// optional <c>NAME/byteorder</c>, the folder name taken from the archive) and the legacy format (magic number,
/// protocol version, system info, the object, the storage keys, then the raw storages). Pickles go through an
/// allowlist unpickler with the opcodes and globals of PyTorch's weights-only loader; a file that pickles code, a
/// module or any other global is refused. Every defect of a file is an <see cref="InvalidDataException"/> whose
/// message starts with the file name; a hostile file cannot make the reader allocate more than
/// <see cref="MaxExpansion"/> times its size (plus per-object overhead bounded by its pickle's length).
/// </summary>
public static class TorchFile
{
    /// <summary>Maximum nesting of containers (dicts, lists, tuples) accepted.</summary>
    public const int MaxDepth = 100;

    /// <summary>
    /// Bound on the bytes read out of the file (pickle plus storages) relative to its size. PyTorch stores zip entries
    /// uncompressed, so a genuine file needs 1; deflated entries written by other tools may need more.
    /// </summary>
    public const int MaxExpansion = 16;

    private const string LegacyMagic = "119547037146038801333356"; // 0x1950A86A20F9469CFC6C
    private const long LegacyProtocol = 1001;

    /// <summary>The object <c>torch.save</c> wrote to <paramref name="path"/>, with every tensor's storage read.</summary>
    public static TorchValue Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string file = Path.GetFileName(path);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            Span<byte> head = stackalloc byte[4];
            int got = fs.ReadAtLeast(head, 4, throwOnEndOfStream: false);
            fs.Position = 0;
            if (got >= 4 && head[0] == (byte)'P' && head[1] == (byte)'K' && head[2] == 3 && head[3] == 4) return LoadZip(file, fs);
            if (got >= 2 && head[0] == 0x80) return LoadLegacy(file, fs);
            throw new InvalidDataException($"{file}: not a torch.save file ({fs.Length} bytes; neither a zip archive nor a pickle)");
        }
        catch (InvalidDataException e) when (!e.Message.StartsWith(file + ":", StringComparison.Ordinal)) { throw Wrap(file, e); }
        catch (EndOfStreamException e) { throw new InvalidDataException($"{file}: truncated: {e.Message}", e); }
        catch (NotSupportedException e) { throw Wrap(file, e); }
        catch (IOException e) when (e is not FileNotFoundException and not DirectoryNotFoundException) { throw Wrap(file, e); }
    }

    /// <summary>
    /// The model tensors of a <c>.pth</c> file, as ConvLab tensors in file order (floating-point types as float32,
    /// integer and bool types as int64): the file's object itself when it is a state dict (a dict of tensors), or the
    /// state dict under <c>model</c>, <c>state_dict</c>, <c>model_state_dict</c> or <c>net</c> of a training checkpoint.
    /// A <c>module.</c> prefix on every key (from <c>nn.DataParallel</c>) is removed.
    /// </summary>
    public static OrderedDictionary<string, Tensor> LoadStateDict(string path)
    {
        var root = Load(path);
        return StateDictOf(root, Path.GetFileName(path));
    }

    /// <summary>The state dict inside <paramref name="root"/> (see <see cref="LoadStateDict"/>); <paramref name="file"/> names it in errors.</summary>
    public static OrderedDictionary<string, Tensor> StateDictOf(TorchValue root, string file)
    {
        ArgumentNullException.ThrowIfNull(root);
        if (root is not TorchDict dict)
            throw new InvalidDataException($"{file}: holds a {root.TypeName}, not a state dict or a checkpoint dict");
        if (IsStateDict(dict)) return Convert(dict);
        foreach (var key in (string[])["model", "state_dict", "model_state_dict", "net"])
            if (dict.TryGetValue(key, out var inner) && inner is TorchDict d && IsStateDict(d)) return Convert(d);
        var keys = dict.Items.Take(12).Select(kv => kv.Key.ToString());
        throw new InvalidDataException($"{file}: no state dict found: the file holds a {dict.TypeName} with keys [{string.Join(", ", keys)}{(dict.Count > 12 ? ", ..." : "")}], " +
            "which is neither a dict of tensors nor has one under 'model', 'state_dict', 'model_state_dict' or 'net'");
    }

    private static bool IsStateDict(TorchDict d) =>
        d.Count > 0 && d.Items.All(kv => kv.Key is TorchString && kv.Value is TorchTensor);

    private static OrderedDictionary<string, Tensor> Convert(TorchDict d)
    {
        bool strip = d.Items.All(kv => ((TorchString)kv.Key).Value.StartsWith("module.", StringComparison.Ordinal));
        var result = new OrderedDictionary<string, Tensor>(d.Count);
        foreach (var (k, v) in d.Items)
        {
            string name = ((TorchString)k).Value;
            result[strip ? name["module.".Length..] : name] = ((TorchTensor)v).ToTensor(floatAsFloat32: true, adopt: true);
        }
        return result;
    }

    /// <summary>
    /// Writes <paramref name="stateDict"/> atomically as PyTorch writes <c>torch.save(model.state_dict())</c>: a zip
    /// with an <c>OrderedDict</c> of tensors, one storage per tensor, loadable by <c>torch.load(path, weights_only=True)</c>.
    /// </summary>
    public static void SaveStateDict(string path, IReadOnlyDictionary<string, Tensor> stateDict)
    {
        ArgumentNullException.ThrowIfNull(stateDict);
        var dict = new TorchDict(ordered: true);
        foreach (var (name, t) in stateDict)
        {
            if (t is null) throw new ArgumentException($"save_state_dict: tensor '{name}' is null");
            dict.Set(name, TorchTensor.FromTensor(t));
        }
        Save(path, dict);
    }

    /// <summary>
    /// Writes <paramref name="value"/> atomically in PyTorch's zip format (pickle protocol 2, storages as uncompressed
    /// <c>archive/data/KEY</c> entries, little-endian). Tensors sharing a <see cref="TorchStorage"/> keep sharing it.
    /// </summary>
    public static void Save(string path, TorchValue value)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(value);
        var (pickle, storages) = TorchPickleWriter.Write(value);
        AtomicFile.Write(path, s =>
        {
            using var zip = new ZipArchive(s, ZipArchiveMode.Create, leaveOpen: true);
            WriteEntry(zip, "archive/data.pkl", pickle);
            WriteEntry(zip, "archive/byteorder", "little"u8);
            for (int i = 0; i < storages.Count; i++)
            {
                var entry = NewEntry(zip, $"archive/data/{i}");
                using var es = entry.Open();
                TorchPickleWriter.WriteLittleEndian(es, storages[i]);
            }
            WriteEntry(zip, "archive/version", "3\n"u8);
        });
    }

    private static void WriteEntry(ZipArchive zip, string name, ReadOnlySpan<byte> data)
    {
        using var es = NewEntry(zip, name).Open();
        es.Write(data);
    }

    private static ZipArchiveEntry NewEntry(ZipArchive zip, string name)
    {
        var entry = zip.CreateEntry(name, CompressionLevel.NoCompression);
        // PyTorch's own writer uses this fixed timestamp; it keeps files byte-identical across runs.
        entry.LastWriteTime = new DateTimeOffset(1980, 1, 1, 0, 0, 0, TimeSpan.Zero);
        return entry;
    }

    // ---------------------------------------------------------------- reading

    private sealed class Storages(string file, long budget)
    {
        public readonly Dictionary<string, TorchStorage> ByKey = new(StringComparer.Ordinal);
        public long Budget = budget;

        public TorchValue Load(TorchList pid, bool legacy)
        {
            var a = pid.Items;
            if (a.Count < 5 || a[0] is not TorchString { Value: "storage" })
                throw new InvalidDataException($"{file}: persistent id {Describe(pid)} is not a storage reference ('storage', type, key, location, size)");
            if (a[1] is not TorchGlobal type) throw new InvalidDataException($"{file}: storage type is a {a[1].TypeName}");
            TorchDType dtype;
            if (type.QualifiedName == "torch.UntypedStorage") dtype = TorchDType.UInt8;
            else if (!type.QualifiedName.StartsWith("torch.", StringComparison.Ordinal) || !TorchDTypes.TryFromStorageName(type.QualifiedName["torch.".Length..], out dtype))
                throw new InvalidDataException($"{file}: {type.QualifiedName} is not a storage type");
            if (a[2] is not TorchString { Value.Length: > 0 and <= 256 } key) throw new InvalidDataException($"{file}: storage key is not a short string ({a[2].TypeName})");
            if (a[3] is not TorchString) throw new InvalidDataException($"{file}: storage location is a {a[3].TypeName}, not a string");
            if (a[4] is not TorchInt { Value: >= 0 } numel) throw new InvalidDataException($"{file}: storage '{key.Value}' has size {a[4]}, not a non-negative int");
            if (a.Count > 6 || (a.Count == 6 && !(legacy && a[5] is TorchNone)))
                throw new InvalidDataException($"{file}: storage '{key.Value}': storage views of the pre-1.0 format are not supported");
            if (numel.Value > Budget / dtype.ElementSize())
                throw new InvalidDataException($"{file}: storage '{key.Value}' claims {numel.Value} {dtype.TorchName()} elements, more than the file can hold");
            if (ByKey.TryGetValue(key.Value, out var known))
            {
                if (known.DType != dtype || known.Numel != numel.Value)
                    throw new InvalidDataException($"{file}: storage '{key.Value}' is referenced as {known.Numel} x {known.DType.TorchName()} and as {numel.Value} x {dtype.TorchName()}");
                return known;
            }
            var s = new TorchStorage(dtype, key.Value, numel.Value);
            ByKey.Add(key.Value, s);
            return s;
        }

        public void Spend(long bytes, string what)
        {
            if (bytes > Budget) throw new InvalidDataException($"{file}: {what} needs {bytes} bytes, past the read limit of {MaxExpansion} x the file size");
            Budget -= bytes;
        }
    }

    private static TorchValue LoadZip(string file, FileStream fs)
    {
        long fileLen = fs.Length;
        using var zip = new ZipArchive(fs, ZipArchiveMode.Read, leaveOpen: true);
        var entries = new Dictionary<string, ZipArchiveEntry>(StringComparer.Ordinal);
        string? prefix = null;
        foreach (var e in zip.Entries)
        {
            int slash = e.FullName.IndexOf('/');
            if (slash <= 0) throw new InvalidDataException($"{file}: zip entry '{Short(e.FullName)}' is not inside a top folder (not a torch.save archive)");
            prefix ??= e.FullName[..(slash + 1)];
            if (!e.FullName.StartsWith(prefix, StringComparison.Ordinal))
                throw new InvalidDataException($"{file}: zip entry '{Short(e.FullName)}' is outside the archive's folder '{prefix}'");
            if (!entries.TryAdd(e.FullName[prefix.Length..], e)) throw new InvalidDataException($"{file}: zip entry '{Short(e.FullName)}' appears twice");
            if (e.CompressedLength < 0 || e.CompressedLength > fileLen || e.Length < 0)
                throw new InvalidDataException($"{file}: zip entry '{Short(e.FullName)}' claims {e.CompressedLength} compressed bytes in a {fileLen}-byte file");
        }
        if (prefix == null) throw new InvalidDataException($"{file}: empty zip archive");
        if (!entries.TryGetValue("data.pkl", out var pklEntry)) throw new InvalidDataException($"{file}: no {prefix}data.pkl in the archive (not a torch.save file)");

        var storages = new Storages(file, MaxExpansion * Math.Max(fileLen, 1));
        bool bigEndian = false;
        if (entries.TryGetValue("byteorder", out var bo))
        {
            var text = System.Text.Encoding.ASCII.GetString(ReadEntry(file, bo, 16, storages, "byteorder")).Trim();
            bigEndian = text switch
            {
                "little" => false,
                "big" => true,
                _ => throw new InvalidDataException($"{file}: byteorder is '{Short(text)}', expected 'little' or 'big'"),
            };
        }
        var pickle = ReadEntry(file, pklEntry, int.MaxValue, storages, "data.pkl");
        var root = new SafeUnpickler(file, pickle, pid => storages.Load(pid, legacy: false)).Load();
        foreach (var s in storages.ByKey.Values)
        {
            if (!entries.TryGetValue("data/" + s.Key, out var entry)) throw new InvalidDataException($"{file}: storage '{s.Key}' has no entry {prefix}data/{s.Key}");
            long need = s.Numel * s.DType.ElementSize();
            if (entry.Length != need)
                throw new InvalidDataException($"{file}: entry {prefix}data/{s.Key} has {entry.Length} bytes but the pickle declares {s.Numel} x {s.DType.TorchName()} = {need}");
            if (s.DType == TorchDType.Float32) s.Bind(ReadFloatEntry(file, entry, storages, $"storage '{s.Key}'"), bigEndian);
            else s.Bind(ReadEntry(file, entry, need, storages, $"storage '{s.Key}'"), bigEndian);
        }
        return root;
    }

    private static byte[] ReadEntry(string file, ZipArchiveEntry entry, long max, Storages budget, string what)
    {
        if (entry.Length > max) throw new InvalidDataException($"{file}: {what} is {entry.Length} bytes (at most {max} expected)");
        if (entry.Length > int.MaxValue - 64) throw new InvalidDataException($"{file}: {what} is {entry.Length} bytes, larger than this reader supports");
        budget.Spend(entry.Length, what);
        var data = new byte[entry.Length];
        using var s = entry.Open();
        s.ReadExactly(data);
        return data;
    }

    private static float[] ReadFloatEntry(string file, ZipArchiveEntry entry, Storages budget, string what)
    {
        if (entry.Length > int.MaxValue - 64) throw new InvalidDataException($"{file}: {what} is {entry.Length} bytes, larger than this reader supports");
        budget.Spend(entry.Length, what);
        // Not zeroed: ReadExactly fills every byte or throws.
        var data = GC.AllocateUninitializedArray<float>((int)(entry.Length / 4));
        using var s = entry.Open();
        s.ReadExactly(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()));
        return data;
    }

    private static TorchValue LoadLegacy(string file, FileStream fs)
    {
        if (fs.Length > int.MaxValue - 64) throw new InvalidDataException($"{file}: legacy-format file of {fs.Length} bytes is larger than this reader supports");
        var bytes = new byte[fs.Length];
        fs.ReadExactly(bytes);
        var storages = new Storages(file, bytes.Length);
        var up = new SafeUnpickler(file, bytes, pid => storages.Load(pid, legacy: true));
        var magic = up.Load();
        if (magic is not TorchBigInt big || big.Value != BigInteger.Parse(LegacyMagic))
            throw new InvalidDataException($"{file}: starts with a pickle of {magic} instead of PyTorch's magic number (not a torch.save file)");
        var protocol = up.Load();
        if (protocol is not TorchInt { Value: LegacyProtocol })
            throw new InvalidDataException($"{file}: legacy protocol version {protocol}, expected {LegacyProtocol}");
        var sysInfo = up.Load();
        bool bigEndian = sysInfo is TorchDict info && info.TryGetValue("little_endian", out var le) && le is TorchBool { Value: false };
        var root = up.Load();
        var keys = up.Load();
        if (keys is not TorchList { Kind: TorchSequenceKind.List } keyList) throw new InvalidDataException($"{file}: storage key list is a {keys.TypeName}");
        int pos = up.Position;
        foreach (var k in keyList.Items)
        {
            if (k is not TorchString key) throw new InvalidDataException($"{file}: storage key is a {k.TypeName}");
            if (!storages.ByKey.TryGetValue(key.Value, out var s)) throw new InvalidDataException($"{file}: storage '{Short(key.Value)}' is listed but no tensor uses it");
            if (s.IsBound) throw new InvalidDataException($"{file}: storage '{Short(key.Value)}' is listed twice");
            if (bytes.Length - pos < 8) throw new InvalidDataException($"{file}: truncated: storage '{key.Value}' has no size field at offset {pos}");
            long numel = bigEndian ? System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(bytes.AsSpan(pos)) : System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(pos));
            pos += 8;
            if (numel != s.Numel) throw new InvalidDataException($"{file}: storage '{key.Value}' has {numel} elements in its record but {s.Numel} in the pickle");
            long need = numel * s.DType.ElementSize();
            if (need > bytes.Length - pos)
                throw new InvalidDataException($"{file}: truncated: storage '{key.Value}' needs {need} bytes at offset {pos} but {bytes.Length - pos} remain");
            s.Bind(bytes.AsMemory(pos, (int)need), bigEndian);
            pos += (int)need;
        }
        foreach (var s in storages.ByKey.Values)
            if (!s.IsBound) throw new InvalidDataException($"{file}: storage '{s.Key}' is used by a tensor but missing from the storage list");
        return root;
    }

    private static string Describe(TorchList pid) => "(" + string.Join(", ", pid.Items.Take(6).Select(v => v.ToString())) + ")";

    private static string Short(string s) => s.Length <= 80 ? s : s[..80] + "...";

    private static InvalidDataException Wrap(string file, Exception e) => new($"{file}: {e.Message}", e);
}
