using ConvLab.Autograd;
using ConvLab.Onnx;
using Xunit;

namespace ConvLab.Tests;

/// <summary>Truncated and corrupted ONNX files give a clear error naming the file: no crash, no hang, no allocation far past the file's size.</summary>
public class OnnxRobustnessTests
{
    public static TheoryData<string> Files() => ["simple_cnn.opset17.onnx", "tiny_unet.opset13.onnx", "squeezenet1_1.opset17.onnx"];

    [Theory]
    [MemberData(nameof(Files))]
    public async Task TruncationsAndByteFlipsFailCleanly(string name)
    {
        var fixture = OnnxImportTests.Fixtures().Single(f => name.StartsWith(f.Name + ".", StringComparison.Ordinal));
        var original = File.ReadAllBytes(Path.Combine(OnnxImportTests.InteropDir, name));
        var input = Tensor.FromArray(fixture.Input, fixture.InputShape);
        var rng = new Random(16);
        var path = Path.Combine(Path.GetTempPath(), $"convlab-fuzz-{Guid.NewGuid():N}.onnx");
        int refused = 0, cases = 0;
        try
        {
            for (int k = 0; k < 40; k++)
            {
                byte[] bytes;
                if (k % 2 == 0) bytes = original[..rng.Next(original.Length)];
                else
                {
                    bytes = (byte[])original.Clone();
                    // Flips land in the graph structure (the first kilobytes) as often as in weight data.
                    int flips = 1 + rng.Next(8);
                    for (int f = 0; f < flips; f++)
                    {
                        int at = rng.Next(2) == 0 ? rng.Next(Math.Min(4096, bytes.Length)) : rng.Next(bytes.Length);
                        bytes[at] ^= (byte)(1 << rng.Next(8));
                    }
                }
                File.WriteAllBytes(path, bytes);
                cases++;
                OnnxModule? m = null;
                Exception? error = null;
                long allocated = 0;
                // On its own thread, so a runaway loop fails the test instead of stalling it.
                var load = Task.Run(() =>
                {
                    long before = GC.GetAllocatedBytesForCurrentThread();
                    try { m = OnnxModule.Load(path); }
                    catch (Exception e) when (e is InvalidDataException or NotSupportedException) { error = e; }
                    allocated = GC.GetAllocatedBytesForCurrentThread() - before;
                });
                Assert.True(await Task.WhenAny(load, Task.Delay(TimeSpan.FromMinutes(1))) == load, $"case {k}: loading did not finish within a minute");
                await load; // any other exception fails the test here
                Assert.True(allocated <= 16L * bytes.Length + (64 << 20), $"case {k}: loading {bytes.Length} bytes allocated {allocated}");
                if (error != null)
                {
                    Assert.Contains(path, error.Message);
                    refused++;
                    continue;
                }
                // A file that still parses runs or fails with an op error; nothing else.
                m!.Eval();
                try { using (new NoGrad()) m.Forward(input); }
                catch (ArgumentException) { }
            }
        }
        finally { File.Delete(path); }
        Assert.True(refused > cases / 4, $"only {refused} of {cases} damaged files were refused");
    }

    [Fact]
    public void DamagedTestTensorNamesTheFile()
    {
        var pb = Directory.GetFiles("/usr/share/libonnx-testdata/data/node/test_conv_with_strides_padding", "input_0.pb", SearchOption.AllDirectories).First();
        var bytes = File.ReadAllBytes(pb);
        var path = Path.Combine(Path.GetTempPath(), $"convlab-fuzz-{Guid.NewGuid():N}.pb");
        try
        {
            File.WriteAllBytes(path, bytes[..(bytes.Length - 7)]);
            var e = Assert.Throws<InvalidDataException>(() => OnnxFile.ReadTensor(path));
            Assert.Contains(path, e.Message);
        }
        finally { File.Delete(path); }
    }
}
