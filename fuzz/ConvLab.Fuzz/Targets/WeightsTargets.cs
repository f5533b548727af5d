using System.IO.Compression;
using System.Text;
using ConvLab.IO;
using ConvLab.IO.Torch;
using ConvLab.NN;
using ConvLab.Training;

namespace ConvLab.Fuzz.Targets;

/// <summary>Tensor byte size, for the allocation budget.</summary>
internal static class Sizes
{
    internal static long Of(IEnumerable<Tensor> tensors) => tensors.Sum(t => (long)t.Numel * (t.DType == DType.Float32 ? 4 : 8));
}

/// <summary>safetensors files (<see cref="SafeTensors.Load(string)"/>).</summary>
public sealed class SafeTensorsTarget : FuzzTarget
{
    /// <inheritdoc/>
    public override string Name => "safetensors";
    /// <inheritdoc/>
    public override string Extension => ".safetensors";
    /// <inheritdoc/>
    public override Type[] Expected => [typeof(InvalidDataException)];
    /// <inheritdoc/>
    public override long Run(string path) => Sizes.Of(SafeTensors.Load(path).Values);

    /// <inheritdoc/>
    public override IEnumerable<(string, byte[])> Seeds(SeedContext context)
    {
        yield return ("f32-i64-f64", context.Capture("a.safetensors", p => SafeTensors.Save(p, new Dictionary<string, Tensor>
        {
            ["conv.weight"] = Tensor.Arange(0, 12).Reshape(2, 1, 2, 3),
            ["steps"] = Tensor.FromArray(new long[] { 3, -1 }, 2),
            ["scale"] = Tensor.FromArray(new double[] { 0.5 }, 1),
        }, new Dictionary<string, string> { ["format"] = "pt" })));
        yield return ("empty", context.Capture("b.safetensors", p => SafeTensors.Save(p, new Dictionary<string, Tensor>())));
        yield return ("scalar-and-zero", context.Capture("c.safetensors", p => SafeTensors.Save(p, new Dictionary<string, Tensor>
        {
            ["s"] = Tensor.FromArray(new float[] { 1 }), ["z"] = Tensor.Zeros([0, 3]),
        })));
        // The dtypes ConvLab reads but does not write: the header by hand, laid out as the reference implementation does.
        yield return ("narrow-dtypes", Hand(
            """{"b":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},"h":{"dtype":"F16","shape":[1],"data_offsets":[4,6]},"u":{"dtype":"U8","shape":[2],"data_offsets":[6,8]},"i":{"dtype":"I32","shape":[1],"data_offsets":[8,12]},"t":{"dtype":"BOOL","shape":[1],"data_offsets":[12,13]}}""",
            [0x80, 0x3f, 0x00, 0xc0, 0x00, 0x3c, 7, 255, 1, 0, 0, 0x80, 1]));
    }

    internal static byte[] Hand(string json, byte[] data)
    {
        var header = Encoding.UTF8.GetBytes(json);
        int padded = (header.Length + 7) / 8 * 8;
        var b = new byte[8 + padded + data.Length];
        BitConverter.TryWriteBytes(b.AsSpan(), (ulong)padded);
        header.CopyTo(b, 8);
        b.AsSpan(8 + header.Length, padded - header.Length).Fill((byte)' ');
        data.CopyTo(b, 8 + padded);
        return b;
    }
}

/// <summary>
/// ConvLab training checkpoints: <see cref="Checkpoint.Load"/> and then <see cref="Trainer.LoadCheckpoint(Checkpoint, string)"/>
/// into a small model, so the metadata (epoch, history JSON, generator state, ...) is parsed too.
/// </summary>
public sealed class CheckpointTarget : FuzzTarget
{
    /// <inheritdoc/>
    public override string Name => "checkpoint";
    /// <inheritdoc/>
    public override string Extension => ".ckpt";
    /// <inheritdoc/>
    public override Type[] Expected => [typeof(InvalidDataException)];

    private static (Trainer Trainer, Module Model) Make()
    {
        var model = new Sequential(new Conv2d(1, 2, 3, padding: 1, generator: new Generator(1)), new ReLU(), new Flatten(), new Linear(2 * 4 * 4, 3, generator: new Generator(2)));
        var opt = new Adam(model.Parameters(), 0.01);
        var sched = new CosineAnnealingLR(opt, 2);
        var pixels = Enumerable.Range(0, 6 * 16).Select(i => (byte)(i * 11)).ToArray();
        var data = new ConvLab.Data.InMemoryImageDataset(pixels, [0, 1, 2, 0, 1, 2], 1, 4, 4);
        var options = new TrainerOptions { Epochs = 1, BatchSize = 3, Seed = 1, ModelGenerator = new Generator(3), Prefetch = false };
        return (new Trainer(model, opt, sched, data, null, 3, options), model);
    }

    /// <inheritdoc/>
    public override long Run(string path)
    {
        var ckpt = Checkpoint.Load(path);
        Make().Trainer.LoadCheckpoint(ckpt, path);
        return Sizes.Of(ckpt.Tensors.Values);
    }

    /// <inheritdoc/>
    public override IEnumerable<(string, byte[])> Seeds(SeedContext context)
    {
        var (trainer, _) = Make();
        yield return ("untrained", context.Capture("a.ckpt", trainer.SaveCheckpoint));
        trainer.Fit();
        yield return ("one-epoch", context.Capture("b.ckpt", trainer.SaveCheckpoint));
    }
}

/// <summary>PyTorch <c>.pth</c> files (zip and legacy): <see cref="TorchFile.Load"/> and the state-dict lookup.</summary>
public sealed class PthTarget : FuzzTarget
{
    /// <inheritdoc/>
    public override string Name => "pth";
    /// <inheritdoc/>
    public override string Extension => ".pth";
    /// <inheritdoc/>
    public override Type[] Expected => [typeof(InvalidDataException)];

    /// <inheritdoc/>
    public override long Run(string path)
    {
        var root = TorchFile.Load(path);
        try { return Sizes.Of(TorchFile.StateDictOf(root, Path.GetFileName(path)).Values); }
        catch (InvalidDataException e) { CheckMessage(e, path); return 0; }
    }

    private static OrderedDictionary<string, Tensor> SmallStateDict() => new()
    {
        ["0.weight"] = Tensor.Arange(0, 8).Reshape(2, 1, 2, 2),
        ["0.bias"] = Tensor.FromArray(new float[] { 0.5f, -1 }, 2),
        ["1.num_batches_tracked"] = Tensor.FromArray(new long[] { 4 }),
    };

    /// <inheritdoc/>
    public override IEnumerable<(string, byte[])> Seeds(SeedContext context)
    {
        var sd = SmallStateDict();
        yield return ("state-dict", context.Capture("a.pth", p => TorchFile.SaveStateDict(p, sd)));
        var model = new Sequential(new Conv2d(1, 2, 2, generator: new Generator(1)), new BatchNorm2d(2));
        yield return ("module", context.Capture("b.pth", p => model.SavePth(p)));
        var ckpt = new TorchDict(ordered: false);
        var inner = new TorchDict(ordered: true);
        foreach (var (k, t) in sd) inner.Set(k, TorchTensor.FromTensor(t));
        ckpt.Set("model", inner);
        ckpt.Set("epoch", new TorchInt(3));
        ckpt.Set("lr", new TorchFloat(0.1));
        ckpt.Set("names", new TorchList(TorchSequenceKind.Tuple, [new TorchString("a"), TorchNone.Instance, TorchBool.True]));
        yield return ("checkpoint", context.Capture("c.pth", p => TorchFile.Save(p, ckpt)));
        yield return ("legacy", Legacy(context, inner));
        if (context.Shared is { } shared && File.Exists(Path.Combine(shared, "interop", "layouts.pth")))
            yield return ("shared-layouts", File.ReadAllBytes(Path.Combine(shared, "interop", "layouts.pth")));
    }

    // The pre-1.6 format, which ConvLab reads but does not write: five pickles (magic, protocol, sys info, the object,
    // the storage keys) followed by each storage as an 8-byte element count and its bytes. The object's pickle and the
    // storages come from a zip-format file the library wrote; the four small pickles are spelled out (protocol 2).
    private static byte[] Legacy(SeedContext context, TorchValue obj)
    {
        var zipBytes = context.Capture("legacy.pth", p => TorchFile.Save(p, obj));
        using var zip = new ZipArchive(new MemoryStream(zipBytes));
        byte[] Entry(string name)
        {
            using var s = zip.GetEntry("archive/" + name)!.Open();
            var ms = new MemoryStream();
            s.CopyTo(ms);
            return ms.ToArray();
        }
        static byte[] Str(string v) => [(byte)'X', .. BitConverter.GetBytes(v.Length), .. Encoding.ASCII.GetBytes(v)];
        var storages = zip.Entries.Where(e => e.FullName.StartsWith("archive/data/", StringComparison.Ordinal))
            .Select(e => e.FullName["archive/data/".Length..]).Order(StringComparer.Ordinal).ToList();
        var dtypeSize = new Dictionary<string, int>();
        var file = new MemoryStream();
        // 119547037146038801333356 = 0x1950A86A20F9469CFC6C as LONG1 (little-endian two's complement).
        file.Write([0x80, 2, 0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, (byte)'.']);
        file.Write([0x80, 2, (byte)'M', 0xe9, 0x03, (byte)'.']); // BININT2 1001
        file.Write([0x80, 2, (byte)'}', .. Str("little_endian"), 0x88, (byte)'s', (byte)'.']);
        file.Write(Entry("data.pkl"));
        file.Write([0x80, 2, (byte)']', (byte)'(', .. storages.SelectMany(Str), (byte)'e', (byte)'.']);
        var numel = ((TorchDict)obj).Items.Select(kv => ((TorchTensor)kv.Value).Storage).Distinct().ToList();
        for (int i = 0; i < storages.Count; i++)
        {
            var data = Entry("data/" + storages[i]);
            file.Write(BitConverter.GetBytes((long)numel[int.Parse(storages[i], System.Globalization.CultureInfo.InvariantCulture)].Numel));
            file.Write(data);
        }
        return file.ToArray();
    }
}
