using System.Buffers.Binary;
using System.IO.Compression;
using ConvLab.Analysis;
using ConvLab.Data;
using ConvLab.Imaging;
using Xunit;

namespace ConvLab.Tests;

/// <summary>
/// Inputs found by the coverage-guided fuzzers in fuzz/ (SharpFuzz + afl-fuzz, docs/reliability.md) that broke a reader's
/// contract, kept as they were found: each must now be refused with the documented exception, a message naming the file
/// (or the spec position), within the fuzz harness's allocation budget and without hanging.
/// </summary>
public class FuzzRegressionTests
{
    /// <summary>The fuzz harness's rule for a refused input: 16 bytes per input byte plus 1 MiB (fuzz/ConvLab.Fuzz/Harness.cs).</summary>
    private static long Budget(long inputBytes) => 16 * inputBytes + (1 << 20);

    /// <summary>
    /// Runs <paramref name="read"/> on <paramref name="bytes"/> saved as <paramref name="name"/>, expecting
    /// <typeparamref name="T"/>; returns it with the managed bytes the reader allocated on its second run (the first pays
    /// one-time costs such as type initialisers).
    /// </summary>
    private static (T Error, long Allocated) Refuse<T>(byte[] bytes, string name, Action<string> read) where T : Exception
    {
        var dir = Directory.CreateTempSubdirectory("convlab-fuzzreg-");
        try
        {
            var path = Path.Combine(dir.FullName, name);
            File.WriteAllBytes(path, bytes);
            T? error = null;
            long allocated = 0;
            // On its own thread so that a regression into a hang fails the test instead of stalling the suite.
            var task = Task.Run(() =>
            {
                for (int run = 0; run < 2; run++)
                {
                    long before = GC.GetAllocatedBytesForCurrentThread();
                    error = Assert.Throws<T>(() => read(path));
                    allocated = GC.GetAllocatedBytesForCurrentThread() - before;
                }
            });
            Assert.True(task.Wait(TimeSpan.FromMinutes(1)), $"{name}: reader did not finish within a minute");
            Assert.DoesNotContain("   at ", error!.Message);
            return (error, allocated);
        }
        finally { dir.Delete(true); }
    }

    private static void AssertWithinBudget(long allocated, byte[] input) =>
        Assert.True(allocated <= Budget(input.Length), $"allocated {allocated} bytes for a {input.Length}-byte input (budget {Budget(input.Length)})");

    /// <summary>Finding idx-1: a 28-byte gzip file made the IDX reader allocate a 4 MiB buffer before the data ended.</summary>
    [Fact]
    public void TruncatedGzipIdxAllocatesLittle()
    {
        var found = Convert.FromHexString("1f8b08000000000002036360e0606458606065609b79c09d0d000000");
        var (e, allocated) = Refuse<InvalidDataException>(found, "t10k-images-idx3-ubyte.gz", p => IdxReader.ReadImages(p));
        Assert.StartsWith("t10k-images-idx3-ubyte.gz: ", e.Message);
        AssertWithinBudget(allocated, found);
    }

    /// <summary>Finding idx-gzip-2: a compressed label file whose header claims 16,713,731 labels but holds 119.</summary>
    [Fact]
    public void GzipIdxClaimingMillionsOfLabelsAllocatesLittle()
    {
        var plain = new byte[8 + 119];
        BinaryPrimitives.WriteInt32BigEndian(plain, IdxReader.LabelsMagic);
        BinaryPrimitives.WriteInt32BigEndian(plain.AsSpan(4), 16_713_731);
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.SmallestSize, leaveOpen: true)) gz.Write(plain);
        var file = ms.ToArray();
        var (e, allocated) = Refuse<InvalidDataException>(file, "labels.gz", p => IdxReader.ReadLabels(p));
        Assert.Contains("header says 16713731 labels but the data ends after 119 of them", e.Message);
        AssertWithinBudget(allocated, file);
    }

    /// <summary>Finding spec-1: POOL0 reached a division by its zero stride (DivideByZeroException).</summary>
    [Fact]
    public void ZeroPoolKernelIsASyntaxError()
    {
        var e = Assert.Throws<SpecSyntaxException>(() => SpecParser.Parse("INPUT 28x28x1, CONV3-10, POOL0, POOL2, FLATTEN,2, CONV3-10, PN, FC-3"));
        Assert.Equal("POOL0", e.Token);
        Assert.Contains("kernel size and stride must be positive", e.Problem);
        Assert.Throws<SpecSyntaxException>(() => SpecParser.Parse("INPUT 8x8x1, maxpool 2x2/0"));
    }

    /// <summary>
    /// Finding spec-7: an 86-byte spec refused at its third layer first allocated the 57 MB weight of its second; the
    /// whole spec is now checked before any weight exists.
    /// </summary>
    [Fact]
    public void LateSpecErrorAllocatesNoEarlierWeights()
    {
        const string found = "INPUT 8x8x2, deconv 4x222224/2 p1 4, oordconv 3x3 p1 4, deformconv 3x3 p1 4, avgoftmax";
        SpecSyntaxException? e = null;
        long allocated = 0;
        for (int run = 0; run < 2; run++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            e = Assert.Throws<SpecSyntaxException>(() => SpecParser.Parse(found));
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }
        Assert.Equal("oordconv", e!.Token);
        Assert.True(allocated <= Budget(found.Length), $"allocated {allocated} bytes before refusing the spec");
    }

    /// <summary>A spec of layers each within the per-tensor limit but 2 GiB of weights in total is refused before allocating.</summary>
    [Fact]
    public void SpecWeightsAreLimitedInTotal()
    {
        const string spec = "INPUT 1x1x16384, fc 16384, fc 16384";
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<SpecSyntaxException>(() => SpecParser.Parse(spec));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20);
        Assert.Contains("limit for a whole spec", e.Problem);
        Assert.Equal(spec.LastIndexOf("fc", StringComparison.Ordinal) + 1, e.Column);
    }

    /// <summary>
    /// The image findings: a 35-byte GIF claiming 17993x14648 pixels allocated 1 GB up front; a valid 35-byte GIF with a
    /// 1x1 frame placed at (14848, 4864) decoded to a 14849x4865 canvas (1.7 GB of planes, seconds of work: a
    /// decompression bomb); a truncated 59-byte GIF claiming 65280x128 (under the bomb threshold) allocated 33 MB of
    /// managed pixels before the decoder failed, where pixels now go to native memory that only decoded rows touch.
    /// </summary>
    [Theory]
    [InlineData("474946383961494638396101000100800000ff00000000ff2c001c000002024401003b", "bomb.gif", "17993x14648 for a 35-byte file")]
    [InlineData("47494638396101000100800000ff00000000ff2c003a0013010001000002024401003b", "frame.gif", "14849x4865 for a 35-byte file, more than 32768 pixels per byte (a decompression bomb)")]
    [InlineData("47494638396101000100800000ff00006700ff2c0000800000ff00006700ff2c000000000100610100010080010000000100610100010080010080", "cut.gif", "truncated (59 bytes hold only part of the 65280x128 image)")]
    public void HostileGifsAreRefusedWithoutAllocatingTheirClaim(string hex, string name, string expected)
    {
        var found = Convert.FromHexString(hex);
        var (e, allocated) = Refuse<InvalidDataException>(found, name, p => ImageFile.Load(p));
        Assert.StartsWith(name + ": ", e.Message);
        Assert.Contains(expected, e.Message);
        AssertWithinBudget(allocated, found);
    }

    /// <summary>The bomb guard leaves large but genuinely stored images alone: a 4097x4097 PNG of noise loads.</summary>
    [Fact]
    public void LargeRealImageStillLoads()
    {
        var noise = Tensor.Rand([1, 4097, 4097], new Generator(3));
        var path = Path.Combine(Path.GetTempPath(), $"convlab-fuzzreg-{Guid.NewGuid():N}.png");
        try
        {
            File.WriteAllBytes(path, ImageFile.EncodePng(noise));
            var loaded = ImageFile.Load(path, 1);
            Assert.Equal([1, 4097, 4097], loaded.Shape.ToArray());
        }
        finally { File.Delete(path); }
    }
}
