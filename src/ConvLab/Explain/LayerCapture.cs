using System.Globalization;
using ConvLab.Analysis;
using ConvLab.Autograd;
using ConvLab.NN;

namespace ConvLab.Explain;

/// <summary>
/// Reads a layer's output from one real forward pass through the tracer that <see cref="Module.Call"/> already reports
/// to (no hooks on modules), and the gradient that reaches it from the autograd graph's own backward
/// (<see cref="Engine"/>). A layer is named by its module path (<c>layer4.1.conv2</c>, <c>features.28</c>), optionally
/// followed by <c>@k</c> to pick the k-th call (0-based, negative from the end) of a module the forward uses more than
/// once; without it the last call is taken.
/// </summary>
internal static class LayerCapture
{
    /// <summary>One forward with the chosen layer's output.</summary>
    internal sealed record Result(Tensor Output, Tensor Activation, string Label, Tracer Tracer);

    /// <summary>Runs <paramref name="model"/> on <paramref name="input"/> and returns its output with the layer's output.</summary>
    internal static Result Forward(Module model, Tensor input, string layer, string op)
    {
        ArgumentNullException.ThrowIfNull(layer);
        var (path, call) = Parse(layer, op);
        var module = Find(model, path, op);
        var tracer = new Tracer(model, input.Rank > 0 ? input.Shape[0] : 1);
        Tensor output;
        using (tracer.Activate()) output = Attributions.RunModel(model, input, op);
        var outputs = tracer.Invocations.Where(c => ReferenceEquals(c.Module, module)).Select(c => c.Output).ToList();
        if (outputs.Count == 0)
            throw new LayerPathException($"{op}: layer '{path}' is never called by the model's forward", layer);
        int k = call ?? outputs.Count - 1;
        if (k < 0) k += outputs.Count;
        if (k < 0 || k >= outputs.Count)
            throw new LayerPathException($"{op}: layer '{layer}' asks for call {call} but the forward calls '{path}' {outputs.Count} time(s)", layer);
        return new(output, outputs[k], call == null ? path : $"{path}@{k}", tracer);
    }

    /// <summary>Splits <c>path@k</c>.</summary>
    private static (string Path, int? Call) Parse(string layer, string op)
    {
        int at = layer.LastIndexOf('@');
        if (at < 0) return (layer, null);
        if (!int.TryParse(layer.AsSpan(at + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int k))
            throw new LayerPathException($"{op}: layer '{layer}': the call index after '@' must be an integer", layer);
        return (layer[..at], k);
    }

    /// <summary>The module at <paramref name="path"/>; an unknown path lists the nearest existing names.</summary>
    internal static Module Find(Module model, string path, string op)
    {
        var all = model.NamedModules().Where(m => m.Name.Length > 0).ToList();
        foreach (var (name, m) in all) if (name == path) return m;
        var nearest = all.Select(m => m.Name).Distinct().OrderBy(n => Distance(n, path)).ThenBy(n => n, StringComparer.Ordinal).Take(5).ToList();
        throw new LayerPathException(nearest.Count == 0
            ? $"{op}: layer '{path}' does not exist (the model has no submodules)"
            : $"{op}: layer '{path}' does not exist; nearest names: {string.Join(", ", nearest)}", path, nearest);
    }

    /// <summary>Levenshtein distance.</summary>
    private static int Distance(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) prev[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }
}
