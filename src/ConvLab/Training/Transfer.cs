using System.Globalization;
using ConvLab.Autograd;
using ConvLab.NN;

namespace ConvLab.Training;

/// <summary>
/// Transfer learning: load pretrained weights into a model whose head has a different number of classes, and the four
/// classic scenarios as presets (<c>convlab train --transfer</c>). "Layers" are the modules that own parameters, in
/// order, with a normalisation layer joined to the layer before it (conv + its batch norm form one layer); the head is
/// the last layer.
/// </summary>
public static class Transfer
{
    /// <summary>The preset names accepted by <see cref="Apply"/> (<c>partial:K</c> takes a layer count).</summary>
    public const string Presets = "feature-extract | fine-tune | partial:K | full";

    /// <summary>The model's layers as lists of module paths (see the class summary).</summary>
    public static List<List<string>> Layers(Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var types = model.NamedModules().ToDictionary(m => m.Name, m => m.Module.GetType().Name);
        var layers = new List<List<string>>();
        foreach (var (name, _) in model.NamedParameters())
        {
            int dot = name.LastIndexOf('.');
            string owner = dot < 0 ? "" : name[..dot];
            if (layers.Count > 0 && layers[^1].Contains(owner)) continue;
            if (layers.Count > 0 && types.GetValueOrDefault(owner, "").Contains("Norm", StringComparison.Ordinal)) layers[^1].Add(owner);
            else layers.Add([owner]);
        }
        return layers;
    }

    /// <summary>
    /// Copies every tensor of <paramref name="weights"/> whose name and shape match the model; tensors of the model that
    /// find no match (typically the head, sized for another number of classes) keep their fresh initialisation and are
    /// returned. Throws when nothing matches (the weights belong to another architecture).
    /// </summary>
    public static IReadOnlyList<string> LoadPretrained(Module model, IReadOnlyDictionary<string, Tensor> weights)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(weights);
        var kept = new List<string>();
        int loaded = 0;
        using (new NoGrad())
            foreach (var (key, target) in model.StateDict())
            {
                if (weights.TryGetValue(key, out var src) && src.Shape.SequenceEqual(target.Shape)) { target.Copy_(src); loaded++; }
                else kept.Add(key);
            }
        if (loaded == 0) throw new ArgumentException($"transfer: none of the {weights.Count} pretrained tensors matches {model.GetType().Name} by name and shape");
        return kept;
    }

    /// <summary>
    /// Applies a preset and returns the optimizer's parameter groups (frozen parameters are in none, so they get no
    /// optimizer state). With L layers and base rate <paramref name="lr"/>:
    /// <c>feature-extract</c> (similar task, little data) freezes all but the head;
    /// <c>fine-tune</c> (similar task, much data) trains everything at lr / 10;
    /// <c>partial:K</c> (different task, little data) freezes layers 1..K and retrains K+1..L at lr;
    /// <c>full</c> (different task, much data) trains everything with layer-wise rates <c>lr * alpha^(L - l)</c>,
    /// alpha = 10^(-1/(L-1)), so layer 1 learns ten times slower than the head.
    /// </summary>
    public static List<ParamGroup> Apply(Module model, string preset, double lr)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(preset);
        var layers = Layers(model);
        int count = layers.Count;
        model.RequiresGrad(true);
        List<ParamGroup> Trainable(int fromLayer, Func<int, double> rate) =>
            [.. Enumerable.Range(fromLayer, count - fromLayer).Select(l => new ParamGroup(Params(model, layers[l]), rate(l)))];

        switch (preset)
        {
            case "feature-extract":
                FreezeLayers(model, layers, count - 1);
                return Trainable(count - 1, _ => lr);
            case "fine-tune":
                return [new ParamGroup(model.Parameters(), lr / 10)];
            case "full":
                double alpha = count > 1 ? Math.Pow(10, -1.0 / (count - 1)) : 1;
                return Trainable(0, l => lr * Math.Pow(alpha, count - 1 - l));
            default:
                if (preset.StartsWith("partial:", StringComparison.Ordinal)
                    && int.TryParse(preset.AsSpan(8), NumberStyles.None, CultureInfo.InvariantCulture, out int k))
                {
                    if (k < 1 || k >= count)
                        throw new ArgumentException($"transfer: partial:{k} must keep between 1 and {count - 1} of the model's {count} layers");
                    FreezeLayers(model, layers, k);
                    return Trainable(k, _ => lr);
                }
                throw new ArgumentException($"transfer: unknown preset '{preset}'; expected {Presets}");
        }
    }

    private static void FreezeLayers(Module model, List<List<string>> layers, int k) =>
        Freeze.ByPath(model, [.. layers.Take(k).SelectMany(l => l)]);

    private static IEnumerable<Tensor> Params(Module model, List<string> owners) =>
        model.NamedParameters().Where(p => owners.Contains(p.Name.LastIndexOf('.') is int d && d >= 0 ? p.Name[..d] : "")).Select(p => p.Parameter);
}
