using System.Text;
using ConvLab.Analysis;
using ConvLab.Conformance;

namespace ConvLab.Fuzz.Targets;

/// <summary>The course spec notation (<see cref="SpecParser.Parse"/>), the input read as UTF-8 text.</summary>
public sealed class SpecTarget : FuzzTarget
{
    /// <inheritdoc/>
    public override string Name => "spec";
    /// <inheritdoc/>
    public override string Extension => ".txt";
    /// <inheritdoc/>
    public override Type[] Expected => [typeof(SpecSyntaxException)];
    /// <inheritdoc/>
    public override bool MessageNamesFile => false;

    /// <inheritdoc/>
    public override long Run(string path)
    {
        var model = SpecParser.Parse(File.ReadAllText(path, Encoding.UTF8)).Module;
        return Sizes.Of(model.StateDict().Values);
    }

    /// <inheritdoc/>
    public override IEnumerable<(string, byte[])> Seeds(SeedContext context)
    {
        string[] specs =
        [
            "INPUT 28x28x1, CONV3-10, POOL2, CONV3-10, POOL2, FLATTEN, FC-3",
            "INPUT 32x32x3 -> [CONV3-8, RELU]*2 -> POOL2 -> FC-10",
            "INPUT 16x16x3; conv 3x3/2 p1 8; bn; relu; maxpool 3x3/2; gap; fc 4",
            "INPUT 12x12x4\n# depthwise\ndwconv 3x3; pwconv 8; sepconv 3x3 8; relu6\nfc 2",
            "INPUT 8x8x2, deconv 4x4/2 p1 4, coordconv 3x3 p1 4, deformconv 3x3 p1 4, avgpool 2x2, lrelu, FC-2, softmax",
            "INPUT 9x9x1, conv 3x3 d2 s1 p2x1 g1 nobias 2, tanh, sigmoid, dense 3",
        ];
        for (int i = 0; i < specs.Length; i++) yield return ($"spec{i}", Encoding.UTF8.GetBytes(specs[i]));
    }
}

/// <summary>Reference-case JSON files (<see cref="ReferenceCase.Load"/>).</summary>
public sealed class ReferenceTarget : FuzzTarget
{
    /// <inheritdoc/>
    public override string Name => "reference";
    /// <inheritdoc/>
    public override string Extension => ".json";
    /// <inheritdoc/>
    public override Type[] Expected => [typeof(CaseFormatException)];

    /// <inheritdoc/>
    public override long Run(string path)
    {
        var c = ReferenceCase.Load(path);
        return Sizes.Of(c.Inputs.Values.OfType<Tensor>().Concat(c.Outputs.Values).Concat(c.Upstream.Values).Concat(c.Grads.Values));
    }

    /// <inheritdoc/>
    public override IEnumerable<(string, byte[])> Seeds(SeedContext context)
    {
        yield return ("conv2d", Encoding.UTF8.GetBytes("""
            {"name": "conv2d_small", "family": "conv2d", "op": "conv2d", "attrs": {"stride": [1, 1], "padding": 0, "bias": true},
             "inputs": {"input": {"shape": [1, 1, 2, 2], "dtype": "float32", "data": [1, 2, 3, "NaN"]},
                        "weight": {"shape": [1, 1, 1, 1], "data": [0.5]}, "bias": null},
             "outputs": {"out": {"shape": [1, 1, 2, 2], "dtype": "float64", "data": [0.5, 1, 1.5, 2]}},
             "upstream": {"out": {"shape": [1, 1, 2, 2], "data": [1, 1, 1, 1]}},
             "grads": {"input": {"shape": [4], "dtype": "int64", "data": [1, 2, -3, 4]}},
             "tolerance": {"rtol": 1e-5, "atol": 1e-6}, "model": [{"op": "relu"}]}
            """));
        if (context.Shared is not { } shared || !Directory.Exists(Path.Combine(shared, "reference"))) yield break;
        // A few of the smallest real cases, read in place (never copied into the repository).
        var small = Directory.EnumerateFiles(Path.Combine(shared, "reference"), "*.json", SearchOption.AllDirectories)
            .Select(f => new FileInfo(f)).Where(f => f.Length < 4096).OrderBy(f => f.Length).ThenBy(f => f.FullName, StringComparer.Ordinal).Take(6);
        foreach (var f in small) yield return ($"shared-{f.Directory!.Name}-{Path.GetFileNameWithoutExtension(f.Name)}", File.ReadAllBytes(f.FullName));
    }
}
