using ConvLab.Onnx;
using Xunit;

namespace ConvLab.Tests;

/// <summary>
/// ONNX's own backend node tests (Debian's libonnx-testdata, installed by .ci/run): every folder of the ops the issue
/// lists passes, except the folders in <see cref="KnownUnsupported"/>, which must still fail for the stated reason.
/// </summary>
public class OnnxBackendNodeTests
{
    private const string DataDir = "/usr/share/libonnx-testdata/data";

    /// <summary>Folder-name prefixes under node/ (ONNX's operator tests).</summary>
    private static readonly string[] NodePrefixes =
    [
        "test_conv", "test_convtranspose", "test_maxpool", "test_averagepool", "test_globalaveragepool", "test_globalmaxpool",
        "test_batchnorm", "test_relu", "test_leakyrelu", "test_sigmoid", "test_tanh", "test_softmax", "test_gemm",
        "test_matmul", "test_flatten", "test_add", "test_concat", "test_pad", "test_constant_pad", "test_edge_pad",
        "test_reflect_pad", "test_resize", "test_dropout", "test_clip", "test_identity",
    ];

    /// <summary>Folder-name prefixes under pytorch-converted/ (PyTorch's module tests exported to ONNX).</summary>
    private static readonly string[] ConvertedPrefixes = ["test_Conv", "test_AvgPool", "test_MaxPool", "test_BatchNorm", "test_ConvTranspose"];

    /// <summary>Folders that fail, with why (also listed in the README).</summary>
    internal static readonly Dictionary<string, string> KnownUnsupported = new()
    {
        ["test_identity_opt"] = "optional-type input (not a tensor)",
        ["test_identity_sequence"] = "sequence-type input (not a tensor)",
        ["test_resize_tf_crop_and_resize"] = "tf_crop_and_resize coordinates",
        ["test_resize_downsample_scales_cubic"] = "cubic mode",
        ["test_resize_downsample_scales_cubic_A_n0p5_exclude_outside"] = "cubic mode",
        ["test_resize_downsample_scales_cubic_align_corners"] = "cubic mode",
        ["test_resize_downsample_sizes_cubic"] = "cubic mode",
        ["test_resize_upsample_scales_cubic"] = "cubic mode",
        ["test_resize_upsample_scales_cubic_A_n0p5_exclude_outside"] = "cubic mode",
        ["test_resize_upsample_scales_cubic_align_corners"] = "cubic mode",
        ["test_resize_upsample_scales_cubic_asymmetric"] = "cubic mode",
        ["test_resize_upsample_sizes_cubic"] = "cubic mode",
    };

    private static IEnumerable<string> Folders(string sub, string[] prefixes)
    {
        var dir = Path.Combine(DataDir, sub);
        Assert.True(Directory.Exists(dir), $"{dir} is missing: install Debian's libonnx-testdata (.ci/run does)");
        return OnnxBackendTests.FindTests(dir).Where(f => prefixes.Any(p => Path.GetFileName(f).StartsWith(p, StringComparison.Ordinal)));
    }

    [Fact]
    public void NodeTestsOfImportedOpsPass() => Check(Folders("node", NodePrefixes).ToList(), 150);

    [Fact]
    public void PyTorchConvertedTestsPass() => Check(Folders("pytorch-converted", ConvertedPrefixes).ToList(), 40);

    private static void Check(List<string> folders, int atLeast)
    {
        Assert.True(folders.Count >= atLeast, $"found only {folders.Count} test folders");
        var failures = new List<string>();
        foreach (var f in folders)
        {
            var r = OnnxBackendTests.Run(f);
            bool known = KnownUnsupported.ContainsKey(r.Name);
            if (r.Passed && known) failures.Add($"{r.Name} passes now: remove it from KnownUnsupported");
            if (!r.Passed && !known) failures.Add($"{r.Name}: {r.Reason}");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }
}
