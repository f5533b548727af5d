using System.IO.Compression;
using System.Text;
using ConvLab.IO.Torch;
using CsCheck;
using Xunit;

namespace ConvLab.Tests;

/// <summary>Hostile and damaged .pth files: refused with an InvalidDataException naming the file, never a crash, hang or large allocation.</summary>
public class PthRobustnessTests
{
    // A bound on what reading any file may allocate: MaxExpansion x its size covers the storages; the rest is
    // zip and pickle bookkeeping.
    private static long AllocationBound(int fileBytes) => (TorchFile.MaxExpansion + 8L) * fileBytes + (4 << 20);

    /// <summary>Loads <paramref name="bytes"/> as NAME.pth; returns the error message, or null if it loaded.</summary>
    private static string? LoadOrError(byte[] bytes, string name = "fuzz.pth", long? bound = null)
    {
        var dir = Directory.CreateTempSubdirectory("convlab-pthfuzz-");
        try
        {
            var path = Path.Combine(dir.FullName, name);
            File.WriteAllBytes(path, bytes);
            string? error = null;
            long allocated = 0;
            // A hang guard (the reader works on its own thread so a runaway loop fails the test instead of stalling it).
            var task = Task.Run(() =>
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                try
                {
                    var root = TorchFile.Load(path);
                    if (root is TorchDict d)
                        foreach (var (_, v) in d.Items)
                            if (v is TorchTensor t) t.ToTensor();
                }
                catch (InvalidDataException e) { error = e.Message; }
                allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            });
            Assert.True(task.Wait(TimeSpan.FromMinutes(1)), $"{name}: reader did not finish within a minute");
            Assert.True(allocated <= (bound ?? AllocationBound(bytes.Length)), $"{name}: reading {bytes.Length} bytes allocated {allocated}");
            if (error != null) Assert.StartsWith(name + ": ", error);
            return error;
        }
        finally { dir.Delete(true); }
    }

    private static byte[] FixtureBytes(string name) => File.ReadAllBytes(Path.Combine(PthTests.InteropDir, name));

    [Fact]
    public void TruncatedFixturesFailCleanly()
    {
        foreach (var name in (string[])["tiny_unet.pth", "layouts.pth", "simple_cnn.legacy.pth"])
        {
            var bytes = FixtureBytes(name);
            Assert.Null(LoadOrError(bytes));
            Gen.Int[0, bytes.Length - 1].Sample(n => Assert.NotNull(LoadOrError(bytes[..n])), iter: 40, threads: 1);
        }
    }

    [Fact]
    public void FlippedBytesNeverCrash()
    {
        foreach (var name in (string[])["tiny_unet.pth", "layouts.pth", "malicious.pth"])
        {
            var bytes = FixtureBytes(name);
            Gen.Select(Gen.Int[0, bytes.Length - 1].Array[1, 6], Gen.Byte.Array[6]).Sample((positions, values) =>
            {
                var copy = (byte[])bytes.Clone();
                for (int i = 0; i < positions.Length; i++) copy[positions[i]] ^= (byte)(values[i] | 1);
                LoadOrError(copy);
            }, iter: 60, threads: 1);
        }
    }

    [Fact]
    public void FlippedPickleBytesNeverCrash()
    {
        // Flips inside data.pkl itself (re-zipped so the archive stays valid) exercise the unpickler, not the zip reader.
        using var zip = new ZipArchive(new MemoryStream(FixtureBytes("layouts.pth")));
        var entries = zip.Entries.Select(e =>
        {
            using var s = e.Open();
            var ms = new MemoryStream();
            s.CopyTo(ms);
            return (e.FullName, Data: ms.ToArray());
        }).ToList();
        var pickle = entries.Single(e => e.FullName.EndsWith("/data.pkl")).Data;
        Gen.Select(Gen.Int[2, pickle.Length - 1].Array[1, 4], Gen.Byte.Array[4]).Sample((positions, values) =>
        {
            var mutated = (byte[])pickle.Clone();
            for (int i = 0; i < positions.Length; i++) mutated[positions[i]] = values[i];
            LoadOrError(Zip(entries.Select(e => e.FullName.EndsWith("/data.pkl") ? (e.FullName, mutated) : e).ToArray()));
        }, iter: 300, threads: 1);
    }

    [Fact]
    public void FlippedLegacyPickleBytesNeverCrash()
    {
        var bytes = FixtureBytes("simple_cnn.legacy.pth");
        Gen.Select(Gen.Int[0, 2600].Array[1, 4], Gen.Byte.Array[4]).Sample((positions, values) =>
        {
            var copy = (byte[])bytes.Clone();
            for (int i = 0; i < positions.Length; i++) copy[positions[i]] = values[i];
            LoadOrError(copy);
        }, iter: 60, threads: 1);
    }

    // ---- hand-made hostile files

    private static byte[] Zip(params (string Name, byte[] Data)[] entries)
    {
        var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (name, data) in entries)
            {
                using var s = zip.CreateEntry(name, CompressionLevel.NoCompression).Open();
                s.Write(data);
            }
        return ms.ToArray();
    }

    private static byte[] Pth(byte[] pickle, params (string Key, byte[] Data)[] storages) =>
        Zip([("archive/data.pkl", pickle), .. storages.Select(s => ($"archive/data/{s.Key}", s.Data)), ("archive/version", "3\n"u8.ToArray())]);

    /// <summary>Pickle bytes from parts: strings as ASCII, bytes, ints as one byte.</summary>
    private static byte[] P(params object[] parts)
    {
        var ms = new MemoryStream();
        foreach (var p in parts)
            switch (p)
            {
                case string s: ms.Write(Encoding.ASCII.GetBytes(s)); break;
                case byte[] b: ms.Write(b); break;
                case int i: ms.WriteByte((byte)i); break;
            }
        return ms.ToArray();
    }

    private static byte[] Unicode(string s) => P("X", BitConverter.GetBytes(s.Length), s);

    // {'w': tensor over FloatStorage '0' of `numel` elements with the given offset, size and stride}
    private static byte[] TensorPickle(long numel, int offset, int size, int stride) => P(
        0x80, 2, "}(", Unicode("w"), "ctorch._utils\n_rebuild_tensor_v2\n",
        "((", Unicode("storage"), "ctorch\nFloatStorage\n", Unicode("0"), Unicode("cpu"), 0x8a, 8, BitConverter.GetBytes(numel), "tQ",
        "J", BitConverter.GetBytes(offset), "J", BitConverter.GetBytes(size), 0x85, "J", BitConverter.GetBytes(stride), 0x85,
        0x89, "ccollections\nOrderedDict\n)RtRu.");

    [Fact]
    public void HandMadeTensorPickleLoads()
    {
        Assert.Null(LoadOrError(Pth(TensorPickle(4, 1, 3, 1), ("0", new byte[16]))));
    }

    [Theory]
    [InlineData(1L << 40, 0, 4, 1, 16, "claims")]
    [InlineData(4L, 0, 5, 1, 16, "reaches past the storage")]
    [InlineData(4L, 2, 2, 2, 16, "reaches past the storage")]
    [InlineData(4L, -1, 2, 1, 16, "negative")]
    [InlineData(4L, 0, 2, -1, 16, "negative")]
    [InlineData(4L, 0, 4, 1, 12, "has 12 bytes but the pickle declares 4 x float32 = 16")]
    public void StorageAndViewBoundsAreChecked(long numel, int offset, int size, int stride, int entryBytes, string message)
    {
        var error = LoadOrError(Pth(TensorPickle(numel, offset, size, stride), ("0", new byte[entryBytes])));
        Assert.NotNull(error);
        Assert.Contains(message, error);
    }

    public static TheoryData<string, byte[], string> HostilePickles() => new()
    {
        { "eval", P(0x80, 2, "cbuiltins\neval\n", Unicode("1"), 0x85, "R."), "refused global builtins.eval" },
        { "stack global", P(0x80, 4, Unicode("os"), Unicode("system"), 0x93, Unicode("x"), 0x85, "R."), "refused global os.system" },
        { "inst", P(0x80, 2, "(ios\nsystem\n."), "not accepted" },
        { "reduce non-callable", P(0x80, 2, "}", ")R."), "REDUCE calls a dict" },
        { "ordered dict args", P(0x80, 2, "ccollections\nOrderedDict\n", "K", 1, 0x85, "R."), "not allowed" },
        { "build on list", P(0x80, 2, "]}b."), "BUILD of a list is not allowed" },
        { "recursive list", P(0x80, 2, "]q", 0, "h", 0, "a."), "recursive" },
        { "cycle through two lists", P(0x80, 2, "]q", 0, "]q", 1, "h", 0, "ah", 1, "a0."), "recursive" },
        { "memo before put", P(0x80, 2, "h", 7, "."), "memo entry 7 is read before it is written" },
        { "long string", P(0x80, 2, "X", BitConverter.GetBytes(0x7ffffff0), "abc."), "remain" },
        { "long bytes8", P(0x80, 4, 0x8e, BitConverter.GetBytes(long.MaxValue), "."), "remain" },
        { "no stop", P(0x80, 2, "]]]"), "truncated" },
        { "two values at stop", P(0x80, 2, "]]."), "STOP with 2 stack items" },
        { "bad utf8", P(0x80, 2, "X", BitConverter.GetBytes(2), 0xff, 0xfe, "."), "UTF-8" },
        { "odd setitems", P(0x80, 2, "}(K", 1, "u."), "odd number" },
        { "unhashable key", P(0x80, 2, "}]K", 1, "s."), "unhashable" },
        { "persid not storage", P(0x80, 2, Unicode("x"), 0x85, "Q."), "not a storage reference" },
        { "protocol 6", P(0x80, 6, "N."), "protocol 6" },
        { "deep nesting", P([0x80, 2, .. Enumerable.Repeat((object)"]", TorchFile.MaxDepth + 2), .. Enumerable.Repeat((object)"a", TorchFile.MaxDepth + 1), "."]), "nesting deeper" },
    };

    [Theory]
    [MemberData(nameof(HostilePickles))]
    public void HostilePicklesAreRefused(string what, byte[] pickle, string message)
    {
        var error = LoadOrError(Pth(pickle), "hostile.pth");
        Assert.True(error != null, what);
        Assert.Contains(message, error);
    }

    [Fact]
    public void ManyObjectsCostABoundedAmountPerPickleByte()
    {
        // 200k one-byte EMPTY_LIST opcodes: the most objects per byte a pickle can ask for.
        var pickle = P([0x80, 2, .. Enumerable.Repeat((object)"]", 200_000), "."]);
        // Each costs one small object and a stack slot; the stack's growth is amortised.
        var error = LoadOrError(Pth(pickle), "lists.pth", bound: 64L * pickle.Length + (1 << 20));
        Assert.Contains("STOP with 200000 stack items", error);
    }

    private static List<(string Name, byte[] Data)> Entries(string fixture)
    {
        using var zip = new ZipArchive(new MemoryStream(FixtureBytes(fixture)));
        return zip.Entries.Select(e =>
        {
            using var s = e.Open();
            var ms = new MemoryStream();
            s.CopyTo(ms);
            return (e.FullName, ms.ToArray());
        }).ToList();
    }

    [Fact]
    public void DeflatedEntriesAndAnyFolderNameAreRead()
    {
        // PyTorch stores entries uncompressed, but a re-zipped file (other tools, other folder name) must read the same.
        var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (name, data) in Entries("tiny_unet.pth"))
            {
                using var s = zip.CreateEntry("renamed" + name[name.IndexOf('/')..], CompressionLevel.Optimal).Open();
                s.Write(data);
            }
        var dir = Directory.CreateTempSubdirectory("convlab-pthzip-");
        try
        {
            var path = Path.Combine(dir.FullName, "deflated.pth");
            File.WriteAllBytes(path, ms.ToArray());
            var expected = TorchFile.LoadStateDict(Path.Combine(PthTests.InteropDir, "tiny_unet.pth"));
            var actual = TorchFile.LoadStateDict(path);
            Assert.Equal(expected.Keys, actual.Keys);
            foreach (var (k, t) in expected) Assert.Equal(t.ToDoubleArray(), actual[k].ToDoubleArray());
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void BigEndianStoragesAreSwapped()
    {
        // {'w': float32 [1, 2, -3.5, 0.25]} as a big-endian machine writes it: byteorder "big", storage bytes swapped.
        float[] values = [1, 2, -3.5f, 0.25f];
        var be = values.SelectMany(v => BitConverter.GetBytes(v).Reverse()).ToArray();
        var bytes = Zip(("archive/data.pkl", TensorPickle(4, 0, 4, 1)), ("archive/byteorder", "big"u8.ToArray()), ("archive/data/0", be), ("archive/version", "3\n"u8.ToArray()));
        var dir = Directory.CreateTempSubdirectory("convlab-pthbe-");
        try
        {
            var path = Path.Combine(dir.FullName, "be.pth");
            File.WriteAllBytes(path, bytes);
            var t = (TorchTensor)((TorchDict)TorchFile.Load(path))["w"];
            Assert.True(t.Storage.BigEndian);
            Assert.Equal(values.Select(v => (double)v), t.ToDoubleArray());
            Assert.Equal(values, TorchFile.LoadStateDict(path)["w"].Read<float>().ToArray());
            // Rewritten by ConvLab it is little-endian and still the same values.
            var again = Path.Combine(dir.FullName, "le.pth");
            TorchFile.Save(again, TorchFile.Load(path));
            Assert.Equal(values, TorchFile.LoadStateDict(again)["w"].Read<float>().ToArray());
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void NotATorchFileIsNamed()
    {
        Assert.Contains("neither a zip archive nor a pickle", LoadOrError("hello"u8.ToArray(), "text.pth"));
        Assert.Contains("no archive/data.pkl", LoadOrError(Zip(("archive/other", [1])), "nopkl.pth"));
        Assert.Contains("not inside a top folder", LoadOrError(Zip(("data.pkl", [1])), "flat.pth"));
    }
}
