using System.IO.Compression;
using System.Text.Json;
using ConvLab.Autograd;
using ConvLab.IO;
using ConvLab.IO.Torch;
using ConvLab.Models;
using ConvLab.NN;
using CsCheck;
using Xunit;

namespace ConvLab.Tests;

/// <summary>PyTorch .pth files: the fixtures PyTorch wrote in ../shared/interop, the writer, hostile files.</summary>
public class PthTests
{
    internal static string InteropDir => Path.GetFullPath(Path.Combine(TestUtil.RepoRoot, "..", "shared", "interop"));

    private static string Fixture(string name)
    {
        var path = Path.Combine(InteropDir, name);
        Assert.True(File.Exists(path), $"fixture {path} is missing");
        return path;
    }

    private static JsonElement Manifest() => JsonDocument.Parse(File.ReadAllText(Fixture("manifest.json"))).RootElement;

    private static float[] ReadFloats(string name)
    {
        var bytes = File.ReadAllBytes(Fixture(name));
        var f = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, f, 0, f.Length * 4);
        return f;
    }

    private static int[] Shape(JsonElement e) => e.EnumerateArray().Select(d => d.GetInt32()).ToArray();

    // The fixtures' simple_cnn has a Dropout at classifier.3 (identity in eval mode), so its last linear layer is
    // classifier.4; ConvLab's SimpleCnn has none and calls it classifier.3. Everything else has the same keys.
    private static OrderedDictionary<string, Tensor> FixtureStateDict(string file)
    {
        var sd = TorchFile.LoadStateDict(Fixture(file));
        if (!sd.ContainsKey("classifier.4.weight")) return sd;
        var renamed = new OrderedDictionary<string, Tensor>();
        foreach (var (k, v) in sd) renamed[k.Replace("classifier.4.", "classifier.3.")] = v;
        return renamed;
    }

    private static string Layout(TorchTensor t) =>
        $"{t.DType.TorchName()} [{string.Join(",", t.Shape)}] stride [{string.Join(",", t.Strides)}] offset {t.StorageOffset}";

    public static TheoryData<string> AcceptedFiles()
    {
        var data = new TheoryData<string>();
        var m = Manifest();
        foreach (var model in m.GetProperty("models").EnumerateArray()) data.Add(model.GetProperty("pth").GetString()!);
        foreach (var c in m.GetProperty("checkpoints").EnumerateArray())
            if (c.GetProperty("expect").GetString() == "accept") data.Add(c.GetProperty("file").GetString()!);
        return data;
    }

    [Theory]
    [MemberData(nameof(AcceptedFiles))]
    public void EveryAcceptedFixtureLoadsAndHasTensors(string file)
    {
        var root = TorchFile.Load(Fixture(file));
        var dict = Assert.IsType<TorchDict>(root);
        Assert.True(dict.Count > 0);
        int tensors = 0;
        var todo = new Stack<TorchValue>([root]);
        while (todo.Count > 0)
            switch (todo.Pop())
            {
                case TorchTensor t: tensors++; Assert.Equal(t.Numel, t.ToDoubleArray().Length); break;
                case TorchDict d: foreach (var (k, v) in d.Items) { todo.Push(k); todo.Push(v); } break;
                case TorchList l: foreach (var v in l.Items) todo.Push(v); break;
            }
        Assert.True(tensors > 0);
    }

    /// <summary>The ConvLab model for a fixture: the zoo's, or the test-side rebuild of tiny_unet.</summary>
    internal static Module FixtureModel(string name, int classes) => name == "tiny_unet" ? new PthTinyUnet() : Zoo.Create(name, classes);

    [Theory]
    [InlineData("simple_cnn")]
    [InlineData("squeezenet1_1")]
    [InlineData("mobilenet_v2")]
    [InlineData("tiny_unet")]
    public void ModelWithPyTorchWeightsReproducesPyTorchsOutput(string name)
    {
        var entry = Manifest().GetProperty("models").EnumerateArray().Single(m => m.GetProperty("name").GetString() == name);
        var outShape = Shape(entry.GetProperty("output").GetProperty("shape"));
        var model = FixtureModel(name, outShape[1]);
        var (missing, unexpected) = model.LoadStateDict(FixtureStateDict(entry.GetProperty("pth").GetString()!));
        Assert.Empty(missing);
        Assert.Empty(unexpected);
        model.Eval();
        var x = Tensor.FromArray(ReadFloats(entry.GetProperty("input").GetProperty("file").GetString()!), Shape(entry.GetProperty("input").GetProperty("shape")));
        Tensor y;
        using (new NoGrad()) y = model.Call(x);
        Assert.Equal(outShape, y.Shape.ToArray());
        var expected = ReadFloats(entry.GetProperty("output").GetProperty("file").GetString()!);
        var actual = y.Read<float>().ToArray();
        double scale = expected.Max(v => Math.Abs((double)v)), worst = 0;
        for (int i = 0; i < expected.Length; i++) worst = Math.Max(worst, Math.Abs(expected[i] - (double)actual[i]));
        Assert.True(worst <= 1e-4 * scale, $"{name}: max |diff| {worst:g3} > 1e-4 x largest output {scale:g3}");
    }

    [Fact]
    public void TinyUnetRebuildHasExactlyTheFixturesKeysAndShapes()
    {
        // Same names, order, shapes and dtypes as torch.save wrote, so nothing is matched by accident of a lenient load.
        var sd = TorchFile.LoadStateDict(Fixture("tiny_unet.pth"));
        var mine = new PthTinyUnet().StateDict();
        Assert.Equal(sd.Keys, mine.Keys);
        foreach (var (k, t) in sd)
        {
            Assert.Equal(t.DType, mine[k].DType);
            Assert.Equal(t.Shape.ToArray(), mine[k].Shape.ToArray());
        }
        Assert.Equal(0, sd["enc1.1.num_batches_tracked"].Rank);
    }

    [Fact]
    public void TrainingCheckpointGivesTheModelTensorsAndKeepsTheRest()
    {
        var path = Fixture("training_checkpoint.pth");
        var root = Assert.IsType<TorchDict>(TorchFile.Load(path));
        Assert.Equal(3, Assert.IsType<TorchInt>(root["epoch"]).Value);
        Assert.Equal(0.9123, Assert.IsType<TorchFloat>(root["best_acc"]).Value);
        var args = Assert.IsType<TorchDict>(root["args"]);
        Assert.Equal(0.001, Assert.IsType<TorchFloat>(args["lr"]).Value);
        Assert.Equal(["a", "b"], Assert.IsType<TorchList>(args["tags"]).Items.Select(v => ((TorchString)v).Value));
        var opt = Assert.IsType<TorchDict>(root["optimizer"]);
        var state = Assert.IsType<TorchDict>(opt["state"]);
        Assert.IsType<TorchInt>(state.Items[0].Key);
        var group = Assert.IsType<TorchDict>(Assert.IsType<TorchList>(opt["param_groups"])[0]);
        Assert.Equal(TorchSequenceKind.Tuple, Assert.IsType<TorchList>(group["betas"]).Kind);
        Assert.IsType<TorchNone>(group["foreach"]);

        var model = new SimpleCnn();
        var (missing, unexpected) = model.LoadStateDict(FixtureStateDict("training_checkpoint.pth"));
        Assert.Empty(missing);
        Assert.Empty(unexpected);
        // PyTorch: c['model']['features.0.weight'].double().sum()
        Assert.Equal(-4.387385924346745, model.StateDict()["features.0.weight"].ToDoubleArray().Sum(), 5);
    }

    [Fact]
    public void LegacyFormatHoldsTheSameTensorsAsTheCheckpointsModel()
    {
        var legacy = TorchFile.LoadStateDict(Fixture("simple_cnn.legacy.pth"));
        var zip = TorchFile.LoadStateDict(Fixture("training_checkpoint.pth"));
        Assert.Equal(zip.Keys, legacy.Keys);
        foreach (var (k, t) in zip)
        {
            Assert.Equal(t.DType, legacy[k].DType);
            Assert.Equal(t.Shape.ToArray(), legacy[k].Shape.ToArray());
            if (t.DType == DType.Int64) Assert.Equal(t.Read<long>().ToArray(), legacy[k].Read<long>().ToArray());
            else Assert.Equal(t.Read<float>().ToArray(), legacy[k].Read<float>().ToArray());
        }
        Assert.Equal(4, legacy["features.1.num_batches_tracked"].Read<long>()[0]);
    }

    [Fact]
    public void LayoutsMatchTheManifestAndViewsShareTheirStorage()
    {
        var root = Assert.IsType<TorchDict>(TorchFile.Load(Fixture("layouts.pth")));
        var values = Manifest().GetProperty("checkpoints").EnumerateArray().Single(c => c.GetProperty("file").GetString() == "layouts.pth").GetProperty("values");
        foreach (var v in values.EnumerateObject())
        {
            var t = Assert.IsType<TorchTensor>(root[v.Name]);
            Assert.Equal(Shape(v.Value.GetProperty("shape")), t.Shape.ToArray());
            Assert.Equal(v.Value.GetProperty("dtype").GetString(), t.DType.TorchName());
            Assert.Equal(v.Value.GetProperty("data").EnumerateArray().Select(d => d.GetDouble()).ToArray(), t.ToDoubleArray());
        }
        var a = (TorchTensor)root["shared_a"];
        Assert.Same(a.Storage, ((TorchTensor)root["transposed"]).Storage);
        Assert.Same(a.Storage, ((TorchTensor)root["row_view"]).Storage);
        Assert.Equal([1L, 4L], ((TorchTensor)root["transposed"]).Strides);
        Assert.Equal(8, ((TorchTensor)root["row_view"]).StorageOffset);
        Assert.Equal(DType.Float32, ((TorchTensor)root["bf16"]).ToTensor().DType);
        Assert.Equal(DType.Int64, ((TorchTensor)root["bool_mask"]).ToTensor().DType);
    }

    [Fact]
    public void PickledModuleIsRefusedWithAdvice()
    {
        var e = Assert.Throws<InvalidDataException>(() => TorchFile.Load(Fixture("whole_module.pth")));
        Assert.StartsWith("whole_module.pth: ", e.Message);
        Assert.Contains("refused global __main__.SimpleCnn", e.Message);
        Assert.Contains("save model.state_dict()", e.Message);
    }

    [Fact]
    public void MaliciousPickleIsRefusedAndRunsNothing()
    {
        const string marker = "/tmp/convlab-pickle-executed";
        if (File.Exists(marker)) File.Delete(marker);
        var e = Assert.Throws<InvalidDataException>(() => TorchFile.LoadStateDict(Fixture("malicious.pth")));
        Assert.StartsWith("malicious.pth: ", e.Message);
        Assert.Contains("refused global posix.system", e.Message);
        Assert.False(File.Exists(marker));
    }

    [Fact]
    public void WrittenStateDictReadsBackIdenticallyAndIsLaidOutLikePyTorchs()
    {
        var dir = Directory.CreateTempSubdirectory("convlab-pth-");
        try
        {
            var path = Path.Combine(dir.FullName, "m.pth");
            var model = new SimpleCnn(generator: new Generator(3));
            model.SavePth(path);
            var back = TorchFile.LoadStateDict(path);
            var original = model.StateDict();
            Assert.Equal(original.Keys, back.Keys);
            foreach (var (k, t) in original)
            {
                Assert.Equal(t.DType, back[k].DType);
                if (t.DType == DType.Int64) Assert.Equal(t.Read<long>().ToArray(), back[k].Read<long>().ToArray());
                else Assert.Equal(t.Read<float>().ToArray(), back[k].Read<float>().ToArray());
            }

            // Same structure as torch.save(state_dict()) of the same network: an OrderedDict with the same keys in
            // order, each a contiguous tensor of the same dtype, shape and strides in its own storage.
            var mine = Assert.IsType<TorchDict>(TorchFile.Load(path));
            var torchs = Assert.IsType<TorchDict>(TorchFile.Load(Fixture("simple_cnn.pth")));
            Assert.True(mine.IsOrdered);
            Assert.Equal(torchs.Items.Select(kv => kv.Key.ToString()!.Replace("classifier.4.", "classifier.3.")), mine.Items.Select(kv => kv.Key.ToString()));
            for (int i = 0; i < torchs.Count; i++)
            {
                var (a, b) = ((TorchTensor)torchs.Items[i].Value, (TorchTensor)mine.Items[i].Value);
                Assert.Equal(Layout(a), Layout(b));
                Assert.Equal(a.Storage.Numel, b.Storage.Numel);
            }
            using var zip = ZipFile.OpenRead(path);
            Assert.Equal("archive/data.pkl", zip.Entries[0].FullName);
            Assert.Contains(zip.Entries, e => e.FullName == "archive/version");
            Assert.All(zip.Entries, e => Assert.Equal(e.Length, e.CompressedLength));
            Assert.Equal(original.Count, zip.Entries.Count(e => e.FullName.StartsWith("archive/data/")));
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void RewritingLayoutsKeepsValuesDtypesAndSharedStorage()
    {
        var dir = Directory.CreateTempSubdirectory("convlab-pth-");
        try
        {
            var path = Path.Combine(dir.FullName, "layouts.pth");
            var original = (TorchDict)TorchFile.Load(Fixture("layouts.pth"));
            TorchFile.Save(path, original);
            var back = Assert.IsType<TorchDict>(TorchFile.Load(path));
            Assert.Equal(original.Count, back.Count);
            foreach (var (k, v) in original.Items)
            {
                var (a, b) = ((TorchTensor)v, (TorchTensor)back[k.ToString()]);
                Assert.Equal(Layout(a), Layout(b));
                Assert.Equal(a.ToDoubleArray(), b.ToDoubleArray());
            }
            Assert.Same(((TorchTensor)back["shared_a"]).Storage, ((TorchTensor)back["transposed"]).Storage);
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void WeightsFileTellsPthFromSafetensors()
    {
        var dir = Directory.CreateTempSubdirectory("convlab-pth-");
        try
        {
            var model = new SimpleCnn(generator: new Generator(5));
            var st = Path.Combine(dir.FullName, "m.safetensors");
            model.SaveSafeTensors(st);
            Assert.False(WeightsFile.IsTorchFile(st));
            Assert.True(WeightsFile.IsTorchFile(Fixture("simple_cnn.pth")));
            Assert.True(WeightsFile.IsTorchFile(Fixture("simple_cnn.legacy.pth")));
            Assert.Equal(model.StateDict().Keys.Order(), WeightsFile.Load(st).Keys.Order());
            Assert.Equal(18, WeightsFile.Load(Fixture("simple_cnn.pth")).Count);
        }
        finally { dir.Delete(true); }
    }

    private static TorchValue RandomValue(Random rng, int depth)
    {
        int pick = rng.Next(depth >= 3 ? 7 : 12);
        switch (pick)
        {
            case 0: return TorchNone.Instance;
            case 1: return rng.Next(2) == 0 ? TorchBool.True : TorchBool.False;
            case 2: return new TorchInt(rng.Next(4) switch { 0 => rng.Next(256), 1 => rng.Next(70000), 2 => -rng.Next(), _ => rng.NextInt64(long.MinValue, long.MaxValue) });
            case 3: return new TorchFloat(rng.NextDouble() * 1e6 - 5e5);
            case 4: return new TorchString(new string(Enumerable.Range(0, rng.Next(12)).Select(_ => "aZ09._-é€"[rng.Next(9)]).ToArray()));
            case 5:
                {
                    // A view with random dtype, offset and strides into a random storage.
                    var dtype = (TorchDType)rng.Next(10);
                    int rank = rng.Next(4);
                    var shape = Enumerable.Range(0, rank).Select(_ => rng.Next(4)).ToArray();
                    var strides = shape.Select(_ => (long)rng.Next(1, 5)).ToArray();
                    long offset = rng.Next(3), last = offset;
                    for (int d = 0; d < rank; d++) last += Math.Max(shape[d] - 1, 0) * strides[d];
                    var bytes = new byte[(last + 1 + rng.Next(3)) * dtype.ElementSize()];
                    rng.NextBytes(bytes);
                    if (dtype == TorchDType.Bool) for (int j = 0; j < bytes.Length; j++) bytes[j] &= 1;
                    return new TorchTensor(new TorchStorage(dtype, bytes), offset, shape, strides, requiresGrad: rng.Next(2) == 0);
                }
            case 6: return TorchTensor.FromTensor(Tensor.Randn([rng.Next(1, 4), rng.Next(1, 4)], new Generator((ulong)rng.Next())));
            case 7 or 8:
                {
                    var d = new TorchDict(ordered: pick == 8);
                    int n = rng.Next(5);
                    for (int j = 0; j < n; j++) d.Set(rng.Next(2) == 0 ? new TorchString($"k{j}") : new TorchInt(j), RandomValue(rng, depth + 1));
                    return d;
                }
            default:
                {
                    var kind = (TorchSequenceKind)(pick - 9);
                    int n = rng.Next(6);
                    // Set items must be hashable: plain scalars.
                    return new TorchList(kind, Enumerable.Range(0, n).Select(j => kind == TorchSequenceKind.Set ? new TorchInt(j) : RandomValue(rng, depth + 1)));
                }
        }
    }

    private static string Canonical(TorchValue v) => v switch
    {
        TorchTensor t => $"{Layout(t)} rg={t.RequiresGrad} [{string.Join(",", t.ToDoubleArray().Select(x => x.ToString("R")))}]",
        TorchDict d => $"{d.TypeName}{{{string.Join(", ", d.Items.Select(kv => Canonical(kv.Key) + ": " + Canonical(kv.Value)))}}}",
        TorchList l => $"{l.TypeName}[{string.Join(", ", l.Items.Select(Canonical))}]",
        TorchInt i => $"int {i.Value}",
        TorchString str => $"str '{str.Value}'",
        _ => $"{v.TypeName} {v}",
    };

    [Fact]
    public void RandomStructuresSurviveWriteAndRead()
    {
        var dir = Directory.CreateTempSubdirectory("convlab-pthprop-");
        try
        {
            var path = Path.Combine(dir.FullName, "value.pth");
            Gen.UInt.Sample(seed =>
            {
                var rng = new Random((int)seed);
                var value = new TorchDict(ordered: true);
                int n = rng.Next(1, 5);
                for (int j = 0; j < n; j++) value.Set($"v{j}", RandomValue(rng, 1));
                TorchFile.Save(path, value);
                Assert.Equal(Canonical(value), Canonical(TorchFile.Load(path)));
            }, iter: 60, threads: 1);
        }
        finally { dir.Delete(true); }
    }
}
