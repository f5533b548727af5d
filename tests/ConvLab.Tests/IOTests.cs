using System.Buffers.Binary;
using System.Text;
using ConvLab.IO;
using ConvLab.NN;
using CsCheck;
using Xunit;

namespace ConvLab.Tests;

public sealed class IOTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("convlab-io-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    // CsCheck runs samples in parallel: each sample gets its own folder (the file name stays, messages name it).
    private string FreshPath(string name) => Path.Combine(Directory.CreateDirectory(Path.Combine(_dir, Guid.NewGuid().ToString("N"))).FullName, name);

    private static Tensor RandomTensor(Random rng, DType dtype, int[] shape)
    {
        int n = ShapeUtil.Numel(shape);
        switch (dtype)
        {
            case DType.Float32:
                // Random bit patterns cover NaN payloads, infinities, subnormals and -0: the round trip must be bit-exact.
                return Tensor.FromArray(Enumerable.Range(0, n).Select(_ => BitConverter.Int32BitsToSingle(rng.Next(int.MinValue, int.MaxValue))).ToArray(), shape);
            case DType.Float64:
                return Tensor.FromArray(Enumerable.Range(0, n).Select(_ => BitConverter.Int64BitsToDouble(rng.NextInt64(long.MinValue, long.MaxValue))).ToArray(), shape);
            default:
                return Tensor.FromArray(Enumerable.Range(0, n).Select(_ => rng.NextInt64(long.MinValue, long.MaxValue)).ToArray(), shape);
        }
    }

    private static byte[] Bits(Tensor t) => t.DType switch
    {
        DType.Float32 => t.Read<float>().ToArray().SelectMany(BitConverter.GetBytes).ToArray(),
        DType.Float64 => t.Read<double>().ToArray().SelectMany(BitConverter.GetBytes).ToArray(),
        _ => t.Read<long>().ToArray().SelectMany(BitConverter.GetBytes).ToArray(),
    };

    private static void AssertSame(Tensor expected, Tensor actual, string name)
    {
        Assert.True(expected.DType == actual.DType, $"{name}: dtype {actual.DType} != {expected.DType}");
        Assert.True(expected.Shape.SequenceEqual(actual.Shape), $"{name}: shape {ShapeUtil.Format(actual.Shape)} != {ShapeUtil.Format(expected.Shape)}");
        Assert.Equal(Bits(expected), Bits(actual));
    }

    private static readonly string[] NameParts = ["w", "layer.0.weight", "β/ü ñ", "a\"b\\c", "x", "running_var", "日本"];

    [Fact]
    public void RoundTripOfRandomTensorsIsBitExact()
    {
        Gen.Select(Gen.Int[0, 6], Gen.Int[0, 3], Gen.UInt).Sample((count, nMeta, seed) =>
        {
            var path = FreshPath("rt.safetensors");
            var rng = new Random((int)seed);
            var tensors = new Dictionary<string, Tensor>();
            for (int i = 0; i < count; i++)
            {
                var shape = Enumerable.Range(0, rng.Next(0, 5)).Select(_ => rng.Next(0, 4)).ToArray();
                var t = RandomTensor(rng, (DType)rng.Next(0, 3), shape);
                if (t.Rank >= 2 && rng.Next(2) == 0) t = t.Transpose(0, 1); // non-contiguous views are written in logical order
                tensors[NameParts[rng.Next(NameParts.Length)] + i] = t;
            }
            var meta = Enumerable.Range(0, nMeta).ToDictionary(i => $"k{i}{NameParts[rng.Next(NameParts.Length)]}", i => $"v{rng.Next()}\n\"ä\"");
            SafeTensors.Save(path, tensors, nMeta == 0 ? null : meta);

            var bytes = File.ReadAllBytes(path);
            long n = BinaryPrimitives.ReadInt64LittleEndian(bytes);
            Assert.Equal(0, (8 + n) % 8);
            var loaded = SafeTensors.Load(path, out var loadedMeta);
            Assert.Equal(tensors.Keys.Order(StringComparer.Ordinal), loaded.Keys.Order(StringComparer.Ordinal));
            foreach (var (k, t) in tensors) AssertSame(t, loaded[k], k);
            Assert.Equal(nMeta == 0 ? [] : meta.OrderBy(kv => kv.Key, StringComparer.Ordinal), loadedMeta.OrderBy(kv => kv.Key, StringComparer.Ordinal));
            // Layout as the reference implementation writes it: I64, then F64, then F32 blocks, each sorted by name.
            var expectedOrder = tensors.OrderByDescending(kv => kv.Value.DType switch { DType.Int64 => 2, DType.Float64 => 1, _ => 0 })
                .ThenBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => kv.Key);
            Assert.Equal(expectedOrder, loaded.Keys);
        }, iter: 60);
    }

    [Fact]
    public void SaveIsDeterministicAndIndependentOfInsertionOrder()
    {
        var rng = new Random(1);
        var a = new Dictionary<string, Tensor> { ["b"] = RandomTensor(rng, DType.Float32, [2, 3]), ["a"] = RandomTensor(rng, DType.Int64, []), ["c"] = RandomTensor(rng, DType.Float64, [0]) };
        var b = a.Reverse().ToDictionary();
        SafeTensors.Save(PathOf("a"), a, new Dictionary<string, string> { ["x"] = "1", ["y"] = "2" });
        SafeTensors.Save(PathOf("b"), b, new Dictionary<string, string> { ["y"] = "2", ["x"] = "1" });
        Assert.Equal(File.ReadAllBytes(PathOf("a")), File.ReadAllBytes(PathOf("b")));
    }

    [Fact]
    public void LayoutMatchesTheFormatByteForByte()
    {
        // The reference implementation's own examples: a header padded with spaces to a multiple of 8, data right after.
        var path = PathOf("golden.safetensors");
        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["attn0"] = Tensor.Arange(0, 6).Reshape(1, 1, 2, 3) });
        var header = "{\"attn0\":{\"dtype\":\"F32\",\"shape\":[1,1,2,3],\"data_offsets\":[0,24]}}       ";
        byte[] expected = [72, 0, 0, 0, 0, 0, 0, 0, .. Encoding.ASCII.GetBytes(header), .. new[] { 0f, 1, 2, 3, 4, 5 }.SelectMany(BitConverter.GetBytes)];
        Assert.Equal(expected, File.ReadAllBytes(path));

        SafeTensors.Save(path, new Dictionary<string, Tensor>(), new Dictionary<string, string> { ["framework"] = "pt" });
        Assert.Equal([40, 0, 0, 0, 0, 0, 0, 0, .. Encoding.ASCII.GetBytes("{\"__metadata__\":{\"framework\":\"pt\"}}     ")], File.ReadAllBytes(path));
        Assert.Empty(SafeTensors.Load(path));
    }

    [Fact]
    public void SaveRejectsReservedName()
    {
        var e = Assert.Throws<ArgumentException>(() => SafeTensors.Save(PathOf("x"), new Dictionary<string, Tensor> { ["__metadata__"] = Tensor.Zeros(1) }));
        Assert.StartsWith("safetensors:", e.Message);
        Assert.False(File.Exists(PathOf("x")));
    }

    private static Sequential ConvBn(ulong seed) =>
        new(new Conv2d(1, 2, 3, generator: new Generator(seed)), new BatchNorm2d(2));

    [Fact]
    public void ModuleRoundTripIncludesBuffers()
    {
        var src = ConvBn(1);
        src.Train();
        src.Forward(Tensor.Randn([3, 1, 5, 5], new Generator(2)));
        src.Forward(Tensor.Randn([3, 1, 5, 5], new Generator(3)));
        var path = PathOf("m.safetensors");
        src.SaveSafeTensors(path);

        var raw = SafeTensors.Load(path);
        Assert.Equal(["0.bias", "0.weight", "1.bias", "1.num_batches_tracked", "1.running_mean", "1.running_var", "1.weight"], raw.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(DType.Int64, raw["1.num_batches_tracked"].DType);
        Assert.Equal(0, raw["1.num_batches_tracked"].Rank);
        Assert.Equal(2L, raw["1.num_batches_tracked"].Read<long>()[0]);

        var dst = ConvBn(99);
        var (missing, unexpected) = dst.LoadSafeTensors(path);
        Assert.Empty(missing);
        Assert.Empty(unexpected);
        var s = src.StateDict();
        foreach (var (k, t) in dst.StateDict()) AssertSame(s[k], t, k);
    }

    [Fact]
    public void StrictLoadReportsKeyMismatch()
    {
        var path = PathOf("conv.safetensors");
        new Conv2d(1, 2, 3).SaveSafeTensors(path);
        var e = Assert.Throws<ArgumentException>(() => ConvBn(0).LoadSafeTensors(path));
        Assert.StartsWith("load_state_dict:", e.Message);
        Assert.Contains("missing keys", e.Message);
        var (missing, unexpected) = new Sequential(new Conv2d(1, 2, 3)).LoadSafeTensors(path, strict: false);
        Assert.Equal(["0.weight", "0.bias"], missing);
        Assert.Equal(["bias", "weight"], unexpected); // file order: sorted by name
        var shape = Assert.Throws<ArgumentException>(() => new Conv2d(1, 3, 3).LoadSafeTensors(path));
        Assert.Contains("size mismatch", shape.Message);
    }

    private static string AssetPath => Path.Combine(AppContext.BaseDirectory, "Assets", "torch_conv_bn.safetensors");

    [Fact]
    public void PyTorchWrittenFileLoadsWithIdenticalValues()
    {
        var model = ConvBn(5);
        var (missing, unexpected) = model.LoadSafeTensors(AssetPath);
        Assert.Empty(missing);
        Assert.Empty(unexpected);
        var sd = model.StateDict();
        // Values printed by Assets/make_torch_conv_bn.py from the torch state_dict.
        Assert.Equal([-0.0024956068955361843f, 0.17881453037261963f, -0.2743483781814575f, -0.24531301856040955f, -0.1283847987651825f, 0.08938579261302948f, -0.006604393478482962f, 0.2642965018749237f, -0.029581349343061447f, 0.08820419013500214f, -0.10073769092559814f, -0.06552179902791977f, -0.3184494972229004f, -0.22076070308685303f, -0.13740770518779755f, 0.012347857467830181f, 0.13177840411663055f, 0.2000076025724411f], sd["0.weight"].Read<float>().ToArray());
        Assert.Equal([2, 1, 3, 3], sd["0.weight"].Shape.ToArray());
        Assert.Equal([-0.22598037123680115f, -0.14515428245067596f], sd["0.bias"].Read<float>().ToArray());
        Assert.Equal([1.1816085577011108f, 1.415194034576416f], sd["1.weight"].Read<float>().ToArray());
        Assert.Equal([-0.10290008783340454f, 0.3741558790206909f], sd["1.bias"].Read<float>().ToArray());
        Assert.Equal([-0.04794926941394806f, -0.03225402534008026f], sd["1.running_mean"].Read<float>().ToArray());
        Assert.Equal([0.7976663112640381f, 0.8066537976264954f], sd["1.running_var"].Read<float>().ToArray());
        Assert.Equal([3L], sd["1.num_batches_tracked"].Read<long>().ToArray());

        SafeTensors.Load(AssetPath, out var meta);
        Assert.Equal("pt", meta["format"]);
        // Written back by ConvLab with the same metadata, the file is byte-identical to the PyTorch-side one.
        var path = PathOf("again.safetensors");
        model.SaveSafeTensors(path, meta);
        Assert.Equal(File.ReadAllBytes(AssetPath), File.ReadAllBytes(path));
    }

    // ------------------------------------------------------------------ damaged files

    private static byte[] Craft(string headerJson, int dataBytes, long? lengthField = null)
    {
        var h = Encoding.UTF8.GetBytes(headerJson);
        var file = new byte[8 + h.Length + dataBytes];
        BinaryPrimitives.WriteInt64LittleEndian(file, lengthField ?? h.Length);
        h.CopyTo(file, 8);
        return file;
    }

    private void AssertInvalid(byte[] file, string fragment)
    {
        var path = PathOf("bad.safetensors");
        File.WriteAllBytes(path, file);
        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path));
        Assert.StartsWith("bad.safetensors: ", e.Message);
        Assert.Contains(fragment, e.Message);
    }

    [Fact]
    public void DamagedFilesAreReportedPrecisely()
    {
        const string ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        AssertInvalid([1, 2, 3], "fewer than the 8-byte");
        AssertInvalid(Craft(ok, 8, lengthField: long.MaxValue), "larger than");
        AssertInvalid(Craft(ok, 8, lengthField: -1), "larger than");
        AssertInvalid(Craft("{\"a\":", 8), "not valid JSON");
        AssertInvalid(Craft("[1,2]", 0), "must be a JSON object");
        AssertInvalid(Craft("{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "unknown dtype 'Q7'");
        AssertInvalid(Craft("{\"a\":{\"dtype\":\"U64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8), "not supported");
        AssertInvalid(Craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8), "needs 12");
        AssertInvalid(Craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,8]}}", 8), "shape entry");
        AssertInvalid(Craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[65536,65536],\"data_offsets\":[0,8]}}", 8), "more than");
        AssertInvalid(Craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8), "end before");
        AssertInvalid(Craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8), "data_offsets");
        AssertInvalid(Craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12), "overlaps");
        AssertInvalid(Craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12), "gap");
        AssertInvalid(Craft(ok, 4), "truncated");
        AssertInvalid(Craft(ok, 12), "cover only 8");
        AssertInvalid(Craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0), "twice");
        AssertInvalid(Craft("{\"__metadata__\":{\"k\":1}}", 0), "must be a string");
        var badUtf8 = Craft("{\"x\":1}", 0);
        badUtf8[10] = 0xFF;
        AssertInvalid(badUtf8, "UTF-8");
    }

    [Fact]
    public void OtherDtypesWiden()
    {
        var header = "{\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[4,6]},\"i\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[6,10]},\"u\":{\"dtype\":\"BOOL\",\"shape\":[1,1],\"data_offsets\":[10,11]}}";
        var file = Craft(header.PadRight(header.Length + (8 - header.Length % 8) % 8), 11);
        int d = file.Length - 11;
        byte[] data = [0x00, 0x3C, 0x00, 0xC1, 0x80, 0x3F, 0xFE, 0xFF, 0xFF, 0xFF, 0x01];
        data.CopyTo(file, d);
        var path = PathOf("wide.safetensors");
        File.WriteAllBytes(path, file);
        var t = SafeTensors.Load(path);
        Assert.Equal([1.0f, -2.5f], t["h"].Read<float>().ToArray());
        Assert.Equal([1.0f], t["b"].Read<float>().ToArray());
        Assert.Equal([-2L], t["i"].Read<long>().ToArray());
        Assert.Equal(DType.Int64, t["u"].DType);
        Assert.Equal([1, 1], t["u"].Shape.ToArray());
    }

    private byte[] ValidFile()
    {
        var rng = new Random(7);
        var path = PathOf("valid.safetensors");
        SafeTensors.Save(path, new Dictionary<string, Tensor>
        {
            ["conv.weight"] = RandomTensor(rng, DType.Float32, [2, 1, 2, 2]),
            ["bn.num_batches_tracked"] = RandomTensor(rng, DType.Int64, []),
            ["empty"] = RandomTensor(rng, DType.Float64, [0, 3]),
            ["d"] = RandomTensor(rng, DType.Float64, [3]),
        }, new Dictionary<string, string> { ["epoch"] = "3" });
        return File.ReadAllBytes(path);
    }

    private void AssertLoadsOrInvalid(byte[] file, bool mustFail)
    {
        var path = FreshPath("corrupt.safetensors");
        File.WriteAllBytes(path, file);
        try
        {
            var t = SafeTensors.Load(path);
            Assert.False(mustFail, "a damaged file loaded without error");
            foreach (var v in t.Values) Assert.True(v.Numel >= 0);
        }
        catch (InvalidDataException e)
        {
            Assert.StartsWith("corrupt.safetensors: ", e.Message);
        }
    }

    [Fact]
    public void RandomTruncationsAlwaysFailCleanly()
    {
        var valid = ValidFile();
        Gen.Int[0, valid.Length - 1].Sample(len => AssertLoadsOrInvalid(valid[..len], mustFail: true), iter: 150);
    }

    [Fact]
    public void RandomHeaderByteFlipsLoadOrFailCleanly()
    {
        var valid = ValidFile();
        int headerEnd = 8 + (int)BinaryPrimitives.ReadInt64LittleEndian(valid);
        Gen.Select(Gen.Int[0, headerEnd - 1].Array[1, 4], Gen.Byte.Array[4]).Sample((positions, values) =>
        {
            var file = (byte[])valid.Clone();
            for (int i = 0; i < positions.Length; i++) file[positions[i]] = values[i];
            AssertLoadsOrInvalid(file, mustFail: false);
        }, iter: 400);
    }

    // ------------------------------------------------------------------ atomic writes and checkpoints

    [Fact]
    public void FailedAtomicWriteLeavesOldFileIntact()
    {
        var path = PathOf("keep.bin");
        File.WriteAllBytes(path, [1, 2, 3]);
        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, s =>
        {
            s.Write(new byte[100_000]);
            throw new InvalidOperationException("writer died");
        }));
        Assert.Equal([1, 2, 3], File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFiles(_dir));

        AtomicFile.Write(path, s => s.Write([9, 8]));
        Assert.Equal([9, 8], File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFiles(_dir));
    }

    [Fact]
    public void CheckpointRoundTrip()
    {
        var rng = new Random(3);
        var tensors = new Dictionary<string, Tensor>
        {
            ["model.0.weight"] = RandomTensor(rng, DType.Float32, [4, 3]),
            ["optim.state.0.exp_avg"] = RandomTensor(rng, DType.Float64, [4, 3]),
            ["optim.step"] = RandomTensor(rng, DType.Int64, []),
        };
        var meta = new Dictionary<string, string> { ["epoch"] = "12", ["optimizer"] = "AdamW", ["rng"] = "0123456789abcdef;17" };
        var path = PathOf("ckpt.safetensors");
        Checkpoint.Save(path, tensors, meta);
        var c = Checkpoint.Load(path);
        Assert.Equal(meta.OrderBy(kv => kv.Key), c.Meta.OrderBy(kv => kv.Key));
        foreach (var (k, t) in tensors) AssertSame(t, c.Tensors[k], k);

        Assert.StartsWith("checkpoint:", Assert.Throws<ArgumentException>(() => Checkpoint.Save(path, tensors, new Dictionary<string, string> { [Checkpoint.VersionKey] = "9" })).Message);
        SafeTensors.Save(PathOf("plain.safetensors"), tensors);
        Assert.StartsWith("plain.safetensors: not a ConvLab checkpoint", Assert.Throws<InvalidDataException>(() => Checkpoint.Load(PathOf("plain.safetensors"))).Message);
    }
}
