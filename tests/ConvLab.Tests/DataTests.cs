using System.Buffers.Binary;
using System.IO.Compression;
using ConvLab.Data;
using CsCheck;
using Xunit;

namespace ConvLab.Tests;

public sealed class DataTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("convlab-data-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // ---------- file builders ----------

    private static byte[] Idx(int magic, int[] dims, byte[] payload)
    {
        var b = new byte[4 + 4 * dims.Length + payload.Length];
        BinaryPrimitives.WriteInt32BigEndian(b, magic);
        for (int d = 0; d < dims.Length; d++) BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(4 + 4 * d), dims[d]);
        payload.CopyTo(b, 4 + 4 * dims.Length);
        return b;
    }

    private static byte[] Gzip(byte[] data)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest)) gz.Write(data);
        return ms.ToArray();
    }

    private static byte[] RandomBytes(int n, int seed, int max = 256)
    {
        var r = new Random(seed);
        var b = new byte[n];
        for (int i = 0; i < n; i++) b[i] = (byte)r.Next(max);
        return b;
    }

    private string Write(string name, byte[] bytes)
    {
        var p = Path.Combine(_dir, name);
        File.WriteAllBytes(p, bytes);
        return p;
    }

    private static InvalidDataException AssertDataError(string path, Action read, string? contains = null)
    {
        var e = Assert.Throws<InvalidDataException>(read);
        Assert.StartsWith(Path.GetFileName(path) + ":", e.Message);
        if (contains != null) Assert.Contains(contains, e.Message);
        return e;
    }

    // ---------- IDX ----------

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void IdxRoundTripsPlainAndGzip(bool gzip)
    {
        var pixels = RandomBytes(3 * 4 * 5, 1);
        var labels = RandomBytes(3, 2, 10);
        byte[] img = Idx(IdxReader.ImagesMagic, [3, 4, 5], pixels), lab = Idx(IdxReader.LabelsMagic, [3], labels);
        var ip = Write("img", gzip ? Gzip(img) : img);
        var lp = Write("lab", gzip ? Gzip(lab) : lab);
        var r = IdxReader.ReadImages(ip);
        Assert.Equal((3, 4, 5), (r.Count, r.Rows, r.Cols));
        Assert.Equal(pixels, r.Pixels);
        Assert.Equal(labels, IdxReader.ReadLabels(lp));
    }

    [Fact]
    public void IdxErrorsNameTheFileAndTheProblem()
    {
        var img = Idx(IdxReader.ImagesMagic, [3, 4, 5], RandomBytes(60, 3));
        var lab = Idx(IdxReader.LabelsMagic, [3], [1, 2, 3]);
        AssertDataError(Write("a-labels", lab), () => IdxReader.ReadImages(Path.Combine(_dir, "a-labels")), "magic number 0x00000801 is not 0x00000803");
        var shortPlain = Write("train-images-idx3-ubyte", img[..^7]);
        AssertDataError(shortPlain, () => IdxReader.ReadImages(shortPlain), "header says 3 images of 4x5 (60 bytes) but file holds 53 bytes");
        var longPlain = Write("long", [.. img, 0]);
        AssertDataError(longPlain, () => IdxReader.ReadImages(longPlain), "file holds 61 bytes");
        var shortGz = Write("short.gz", Gzip(img[..^7]));
        AssertDataError(shortGz, () => IdxReader.ReadImages(shortGz), "header says 3 images of 4x5 (60 bytes) but the data ends after 53");
        var longGz = Write("long.gz", Gzip([.. img, 0]));
        AssertDataError(longGz, () => IdxReader.ReadImages(longGz), "more data follows");
        var cutGz = Write("cut.gz", Gzip(img)[..^4]);
        AssertDataError(cutGz, () => IdxReader.ReadImages(cutGz), "gzip data is truncated or corrupt");
        var header = Write("hdr", img[..9]);
        AssertDataError(header, () => IdxReader.ReadImages(header), "inside the IDX header");
        var negative = Write("neg", Idx(IdxReader.LabelsMagic, [-5], []));
        AssertDataError(negative, () => IdxReader.ReadLabels(negative), "negative");
        var empty = Write("empty", []);
        AssertDataError(empty, () => IdxReader.ReadLabels(empty), "after 0 bytes");
    }

    [Fact]
    public void HugeHeaderInSmallGzipFailsWithoutHugeAllocation()
    {
        var p = Write("huge.gz", Gzip(Idx(IdxReader.ImagesMagic, [int.MaxValue, 1 << 15, 1 << 15], RandomBytes(100, 4))));
        AssertDataError(p, () => IdxReader.ReadImages(p), "more than one array can hold");
        var q = Write("big.gz", Gzip(Idx(IdxReader.ImagesMagic, [1 << 20, 32, 32], RandomBytes(100, 4))));
        long before = GC.GetTotalAllocatedBytes(precise: true);
        AssertDataError(q, () => IdxReader.ReadImages(q), "but the data ends after 100");
        // The header promised 1 GiB; the reader must only have grown its buffer with the data present.
        Assert.True(GC.GetTotalAllocatedBytes(precise: true) - before < 64 << 20);
    }

    [Fact]
    public void TruncatedOrCorruptedFilesOnlyEverGiveNamedDataErrors()
    {
        var img = Idx(IdxReader.ImagesMagic, [6, 7, 8], RandomBytes(6 * 7 * 8, 5));
        var variants = new[] { ("t-plain", img), ("t-gz", Gzip(img)) };
        foreach (var (name, full) in variants)
        {
            Gen.Select(Gen.Int[0, full.Length - 1], Gen.Int[0, full.Length - 1], Gen.Byte, Gen.Bool).Sample((cut, pos, value, corrupt) =>
            {
                var bytes = corrupt ? full.ToArray() : full[..cut];
                if (corrupt) bytes[pos] = value;
                var p = Write(name, bytes);
                try
                {
                    var r = IdxReader.ReadImages(p);
                    // Only a corruption that keeps the header and size may load.
                    Assert.True(corrupt);
                    Assert.Equal(6 * 7 * 8, r.Pixels.Length);
                }
                catch (InvalidDataException e)
                {
                    Assert.StartsWith(name + ":", e.Message);
                }
            }, iter: 150, threads: 1);
        }
    }

    // ---------- datasets ----------

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MnistLoadsTheStandardFilesAndScalesPixels(bool gzip)
    {
        var pixels = RandomBytes(4 * 28 * 28, 6);
        byte[] labels = [3, 1, 4, 1];
        string ext = gzip ? ".gz" : "";
        var img = Idx(IdxReader.ImagesMagic, [4, 28, 28], pixels);
        var lab = Idx(IdxReader.LabelsMagic, [4], labels);
        Write("t10k-images-idx3-ubyte" + ext, gzip ? Gzip(img) : img);
        Write("t10k-labels-idx1-ubyte" + ext, gzip ? Gzip(lab) : lab);
        var ds = FashionMnist.Load(_dir, train: false);
        Assert.Equal(4, ds.Count);
        var (x, y) = ds.Get(2);
        Assert.Equal([1, 28, 28], x.Shape.ToArray());
        Assert.Equal(4L, y);
        var v = x.ToArray();
        for (int i = 0; i < v.Length; i++) Assert.Equal(pixels[2 * 784 + i] / 255f, v[i], 6);
        Assert.Throws<FileNotFoundException>(() => Mnist.Load(_dir, train: true));
    }

    [Fact]
    public void LabelCountMismatchNamesTheLabelFile()
    {
        Write("train-images-idx3-ubyte", Idx(IdxReader.ImagesMagic, [3, 2, 2], new byte[12]));
        var lp = Write("train-labels-idx1-ubyte.gz", Gzip(Idx(IdxReader.LabelsMagic, [2], [0, 1])));
        AssertDataError(lp, () => Mnist.Load(_dir, train: true), "holds 2 labels but train-images-idx3-ubyte holds 3 images");
    }

    [Fact]
    public void RealFashionMnistFromTheDebianPackage()
    {
        // .ci/run installs dataset-fashion-mnist, so a missing folder is a failure, not a skip.
        const string dir = "/usr/share/datasets/fashion-mnist";
        Assert.True(File.Exists(Path.Combine(dir, "t10k-images-idx3-ubyte.gz")), $"{dir} is missing: apt-get install dataset-fashion-mnist");
        var ds = FashionMnist.Load(dir, train: false);
        Assert.Equal(10000, ds.Count);
        Assert.All(Enumerable.Range(0, 10), c => Assert.Equal(1000, ds.Labels.ToArray().Count(l => l == c)));
    }

    private static byte[] CifarRecord(byte[] labels, int seed) => [.. labels, .. RandomBytes(3072, seed)];

    [Fact]
    public void CifarRoundTripsAndValidates()
    {
        var recs = Enumerable.Range(0, 3).Select(i => CifarRecord([(byte)(i + 7)], i)).ToArray();
        var p = Write("data_batch_1.bin", recs.SelectMany(r => r).ToArray());
        var r10 = Cifar10Reader.Read(p);
        Assert.Equal([7L, 8, 9], r10.Labels);
        Assert.Null(r10.CoarseLabels);
        Assert.Equal(recs.SelectMany(r => r[1..]).ToArray(), r10.Pixels);
        Assert.Equal(r10.Pixels, Cifar10Reader.Read(Write("gz.bin", Gzip(File.ReadAllBytes(p)))).Pixels);

        var c100 = Write("train.bin", [.. CifarRecord([19, 99], 1), .. CifarRecord([0, 5], 2)]);
        var r100 = Cifar100Reader.Read(c100);
        Assert.Equal([99L, 5], r100.Labels);
        Assert.Equal([19L, 0], r100.CoarseLabels!);
        Assert.Equal(2, Cifar100.Load(_dir, train: true, coarse: true).Count);

        var ragged = Write("test_batch.bin", [.. CifarRecord([1], 3), 0, 0]);
        AssertDataError(ragged, () => Cifar10Reader.Read(ragged), "not a multiple of the 3073-byte record size");
        AssertDataError(ragged, () => Cifar10.Load(_dir, train: false));
        var badLabel = Write("bad.bin", CifarRecord([10], 4));
        AssertDataError(badLabel, () => Cifar10Reader.Read(badLabel), "record 0 has label 10");
        AssertDataError(c100, () => Cifar10Reader.Read(c100));
    }

    [Fact]
    public void Cifar10LoadsAllTrainingBatches()
    {
        for (int b = 1; b <= 5; b++) Write($"data_batch_{b}.bin", CifarRecord([(byte)b], b));
        var ds = Cifar10.Load(_dir, train: true);
        Assert.Equal(5, ds.Count);
        Assert.Equal([1L, 2, 3, 4, 5], ds.Labels.ToArray());
        Assert.Equal([3, 32, 32], ds.Get(4).Input.Shape.ToArray());
    }

    // ---------- loader ----------

    /// <summary>Sample i is a 1x2x2 image filled with i; label 100 + i; optionally throws at one index.</summary>
    private sealed class Counting(int n, int throwAt = -1) : IDataset
    {
        public int Calls;
        public Thread? LastThread;
        public int Count => n;

        public (Tensor Input, long Label) Get(int index)
        {
            Interlocked.Increment(ref Calls);
            LastThread = Thread.CurrentThread;
            if (index == throwAt) throw new InvalidOperationException($"sample {index} is broken");
            return (Tensor.Full([1, 2, 2], index), 100 + index);
        }
    }

    private static long[][] Targets(IEnumerable<(Tensor Input, Tensor Target)> batches) =>
        batches.Select(b => b.Target.ToInt64Array()).ToArray();

    [Fact]
    public void LoaderBatchesInOrderWithAndWithoutDropLast()
    {
        var batches = new DataLoader(new Counting(10), 4).ToList();
        Assert.Equal([4, 4, 2], batches.Select(b => b.Input.Size(0)));
        Assert.Equal([2, 1, 2, 2], batches[2].Input.Shape.ToArray());
        Assert.Equal(DType.Int64, batches[0].Target.DType);
        Assert.Equal([108L, 109], batches[2].Target.ToInt64Array());
        Assert.Equal(Enumerable.Repeat(9f, 4), batches[2].Input.ToArray()[4..]);
        var dl = new DataLoader(new Counting(10), 4, dropLast: true);
        Assert.Equal(2, dl.BatchCount);
        Assert.Equal([4, 4], dl.Select(b => b.Input.Size(0)));
        Assert.Empty(new DataLoader(new Counting(3), 4, dropLast: true));
    }

    [Fact]
    public void ShuffleIsSeededPerEpochAndCoversEveryIndex()
    {
        var a = new DataLoader(new Counting(20), 6, shuffle: true, seed: 7);
        var e0 = Targets(a).SelectMany(t => t).ToArray();
        var e1 = Targets(a).SelectMany(t => t).ToArray();
        Assert.Equal(2, a.Epoch);
        Assert.Equal(Enumerable.Range(100, 20).Select(i => (long)i), e0.Order());
        Assert.Equal(Enumerable.Range(100, 20).Select(i => (long)i), e1.Order());
        Assert.NotEqual(e0, e1);
        var b = new DataLoader(new Counting(20), 6, shuffle: true, seed: 7, prefetch: false);
        Assert.Equal(e0, Targets(b).SelectMany(t => t));
        Assert.Equal(e1, Targets(b.GetEpoch(1)).SelectMany(t => t));
        Assert.NotEqual(e0, Targets(new DataLoader(new Counting(20), 6, shuffle: true, seed: 8)).SelectMany(t => t));
    }

    [Fact]
    public void PrefetchGivesTheSameAugmentedBatches()
    {
        var ds = new InMemoryImageDataset(RandomBytes(9 * 2 * 6 * 6, 9), Enumerable.Range(0, 9).Select(i => (long)i).ToArray(), 2, 6, 6);
        var t = new Compose(new RandomCrop([6], padding: 2), new RandomHorizontalFlip(), new ElasticDeformation(2, 1));
        var on = new DataLoader(ds, 4, shuffle: true, seed: 3, transform: t).GetEpoch(2).ToList();
        var off = new DataLoader(ds, 4, shuffle: true, seed: 3, transform: t, prefetch: false).GetEpoch(2).ToList();
        Assert.Equal(on.Count, off.Count);
        for (int i = 0; i < on.Count; i++)
        {
            Assert.Equal(off[i].Input.ToArray(), on[i].Input.ToArray());
            Assert.Equal(off[i].Target.ToInt64Array(), on[i].Target.ToInt64Array());
        }
        // The augmentation really is random: epoch 3 differs.
        var other = new DataLoader(ds, 4, shuffle: false, seed: 3, transform: t).GetEpoch(3).First().Input.ToArray();
        Assert.NotEqual(new DataLoader(ds, 4, shuffle: false, seed: 3, transform: t).GetEpoch(2).First().Input.ToArray(), other);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void WorkerExceptionsSurfaceOnTheConsumer(bool prefetch)
    {
        var seen = new List<long>();
        var e = Assert.Throws<InvalidOperationException>(() =>
        {
            foreach (var (_, y) in new DataLoader(new Counting(10, throwAt: 6), 3, prefetch: prefetch)) seen.AddRange(y.ToInt64Array());
        });
        Assert.Equal("sample 6 is broken", e.Message);
        Assert.Equal([100L, 101, 102, 103, 104, 105], seen);
    }

    [Fact]
    public void AbandonedEnumerationStopsTheWorker()
    {
        var ds = new Counting(1000);
        using (var it = new DataLoader(ds, 10).GetEnumerator())
        {
            Assert.True(it.MoveNext());
            Thread.Sleep(50);
        }
        int calls = ds.Calls;
        // At most the consumed batch, one queued and one in progress.
        Assert.InRange(calls, 10, 30);
        Assert.NotSame(Thread.CurrentThread, ds.LastThread);
        Assert.False(ds.LastThread!.IsAlive);
        Thread.Sleep(50);
        Assert.Equal(calls, ds.Calls);
        Assert.Single(new DataLoader(ds, 10).Take(1));
        TestUtil.AssertOpError("DataLoader", () => _ = new DataLoader(ds, 0));
    }

    [Fact]
    public void DroppedEnumeratorWithoutDisposeStopsTheWorker()
    {
        var ds = new Counting(1000);
        StartAndDrop(new DataLoader(ds, 10));
        var worker = ds.LastThread!;
        // Liveness check, not a timing assertion: the worker must end once the enumerator is collected.
        for (int i = 0; i < 50 && worker.IsAlive; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            worker.Join(100);
        }
        Assert.False(worker.IsAlive);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void StartAndDrop(DataLoader loader)
    {
        var it = loader.GetEnumerator();
        Assert.True(it.MoveNext());
    }

    [Fact]
    public void MismatchedSampleShapesAreReported()
    {
        var t = new RandomCropByIndex();
        var e = Assert.Throws<InvalidOperationException>(() => new DataLoader(new Counting(4), 4, transform: t, prefetch: false).ToList());
        Assert.StartsWith("DataLoader: sample 1 has shape", e.Message);
    }

    private sealed class RandomCropByIndex : Transform
    {
        private int _n;
        public override Tensor Apply(Tensor sample, Generator generator) => _n++ == 0 ? sample : Tensor.Zeros(1, 1, 1);
    }

    // ---------- transforms ----------

    private static Tensor Img(int seed, int c = 3, int h = 5, int w = 7) => Tensor.Rand([c, h, w], new Generator((ulong)seed));

    [Fact]
    public void FlipTwiceIsIdentityAndFlipReversesRows()
    {
        var g = new Generator(1);
        var x = Img(1);
        var flip = new RandomHorizontalFlip(1);
        var once = flip.Apply(x, g);
        Assert.Equal(x[2, 3, 0], once[2, 3, 6]);
        Assert.Equal(x.ToArray(), flip.Apply(once, g).ToArray());
        Assert.Equal(x.ToArray(), new Compose(flip, flip).Apply(x, g).ToArray());
        Assert.Equal(x.ToArray(), new RandomHorizontalFlip(0).Apply(x, g).ToArray());
        TestUtil.AssertOpError("RandomHorizontalFlip", () => _ = new RandomHorizontalFlip(1.5));
    }

    [Fact]
    public void RandomCropIsAWindowOfThePaddedImage()
    {
        var x = Img(2);
        Assert.Equal(x.ToArray(), new RandomCrop([5, 7]).Apply(x, new Generator(3)).ToArray());
        Gen.Select(Gen.Int[1, 9], Gen.Int[1, 11], Gen.Int[0, 3], Gen.ULong).Sample((ch, cw, pad, seed) =>
        {
            var crop = new RandomCrop([ch, cw], pad);
            if (ch > 5 + 2 * pad || cw > 7 + 2 * pad)
            {
                TestUtil.AssertOpError("RandomCrop", () => crop.Apply(x, new Generator(seed)));
                return;
            }
            var y = crop.Apply(x, new Generator(seed));
            Assert.Equal([3, ch, cw], y.Shape.ToArray());
            // Find the window by brute force among all offsets of the zero-padded input.
            var padded = NN.Functional.F.Pad(x.Unsqueeze(0), [pad, pad, pad, pad]).Squeeze(0);
            bool found = false;
            for (int t = 0; t <= 5 + 2 * pad - ch && !found; t++)
                for (int l = 0; l <= 7 + 2 * pad - cw && !found; l++)
                    found = padded.Narrow(1, t, ch).Narrow(2, l, cw).ToArray().SequenceEqual(y.ToArray());
            Assert.True(found);
        }, iter: 40);
        TestUtil.AssertOpError("RandomCrop", () => _ = new RandomCrop([0]));
        TestUtil.AssertOpError("RandomCrop", () => _ = new RandomCrop([3], -1));
        TestUtil.AssertOpError("RandomCrop", () => new RandomCrop([3]).Apply(Tensor.Zeros(3, 3), new Generator()));
    }

    [Fact]
    public void AffineIdentityRotationAndShift()
    {
        var x = Img(4, 2, 6, 6);
        Assert.Equal(x.ToArray(), new RandomAffine(0).Apply(x, new Generator(1)).ToArray());
        Assert.Equal(x.ToArray(), new RandomAffine(0, [0, 0], [1, 1], [0]).Apply(x, new Generator(1)).ToArray());
        var v = x.ToArray();
        // 90 degrees clockwise: output (i, j) = input (w-1-j, i).
        var rot = RandomAffine.Warp(v, 2, 6, 6, Math.PI / 2, 0, 0, 1, 0, 0);
        for (int c = 0; c < 2; c++)
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 6; j++)
                    Assert.Equal(v[c * 36 + (5 - j) * 6 + i], rot[c * 36 + i * 6 + j], 5);
        // Shift right by 2: the first two columns are zero fill.
        var shift = RandomAffine.Warp(v, 2, 6, 6, 0, 2, 0, 1, 0, 0);
        Assert.Equal(0f, shift[7]);
        Assert.Equal(v[0], shift[2]);
        Gen.Select(Gen.Double[0, 180], Gen.Double[0, 1], Gen.Double[0.5, 2], Gen.Double[0, 40], Gen.ULong).Sample((deg, tr, sc, sh, seed) =>
        {
            var y = new RandomAffine(deg, [tr, tr], [sc, sc * 1.1], [sh]).Apply(x, new Generator(seed));
            Assert.Equal([2, 6, 6], y.Shape.ToArray());
            Assert.All(y.ToArray(), f => Assert.True(float.IsFinite(f)));
        }, iter: 30);
        TestUtil.AssertOpError("RandomAffine", () => _ = new RandomAffine(-1));
        TestUtil.AssertOpError("RandomAffine", () => _ = new RandomAffine(0, [2, 0]));
        TestUtil.AssertOpError("RandomAffine", () => _ = new RandomAffine(0, scale: [0, 1]));
        TestUtil.AssertOpError("RandomAffine", () => _ = new RandomAffine(0, shear: [1, 2, 3]));
    }

    [Fact]
    public void NormalizeMatchesTheFormula()
    {
        var x = Img(5, 3, 4, 4);
        var y = new Normalize([0.1f, 0.2f, 0.3f], [0.5f, 2f, 4f]).Apply(x, new Generator()).ToArray();
        var v = x.ToArray();
        float[] m = [0.1f, 0.2f, 0.3f], s = [0.5f, 2f, 4f];
        for (int i = 0; i < v.Length; i++) Assert.Equal((v[i] - m[i / 16]) / s[i / 16], y[i], 6);
        var one = new Normalize([0.5f], [0.25f]).Apply(x, new Generator()).ToArray();
        Assert.Equal((v[40] - 0.5f) / 0.25f, one[40], 6);
        TestUtil.AssertOpError("Normalize", () => _ = new Normalize([0f], [0f]));
        TestUtil.AssertOpError("Normalize", () => new Normalize([0f, 0f], [1f, 1f]).Apply(x, new Generator()));
    }

    [Fact]
    public void ElasticDeformationIdentityAndRandomness()
    {
        var x = Img(6, 2, 8, 9);
        Assert.Equal(x.ToArray(), new ElasticDeformation(0, 3).Apply(x, new Generator(1)).ToArray());
        var e = new ElasticDeformation(4, 2);
        var a = e.Apply(x, new Generator(2));
        Assert.Equal([2, 8, 9], a.Shape.ToArray());
        Assert.NotEqual(x.ToArray(), a.ToArray());
        Assert.Equal(a.ToArray(), e.Apply(x, new Generator(2)).ToArray());
        Assert.NotEqual(a.ToArray(), e.Apply(x, new Generator(3)).ToArray());
        // A constant image stays constant wherever the displacement keeps samples inside (smooth field, small alpha).
        var flat = new ElasticDeformation(0.3, 4).Apply(Tensor.Full([1, 8, 8], 0.5), new Generator(4)).ToArray();
        Assert.All(flat.Where((_, i) => i / 8 is > 0 and < 7 && i % 8 is > 0 and < 7), f => Assert.Equal(0.5f, f, 5));
        TestUtil.AssertOpError("ElasticDeformation", () => _ = new ElasticDeformation(-1, 1));
        TestUtil.AssertOpError("ElasticDeformation", () => _ = new ElasticDeformation(1, double.NaN));
    }
}
