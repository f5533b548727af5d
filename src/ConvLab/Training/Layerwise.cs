using ConvLab.NN;

namespace ConvLab.Training;

/// <summary>Layer-wise learning-rate decay: deeper (later) layers train faster than early ones.</summary>
public static class LayerwiseLr
{
    /// <summary>
    /// One parameter group per layer l = 1..L with <c>lr_l = baseLr * alpha^(L - l)</c>, so the last layer gets
    /// <paramref name="baseLr"/>. Layers are <paramref name="paths"/> (module paths as in <c>NamedModules</c>, in order)
    /// or else the model's top-level children. Only parameters that require grad are included, a parameter goes to the
    /// first layer whose path prefixes its name, layers without trainable parameters get no group, and trainable
    /// parameters outside every layer (e.g. the root's own) form a last group at <paramref name="baseLr"/>.
    /// </summary>
    public static List<ParamGroup> Groups(Module model, double baseLr, double alpha, IReadOnlyList<string>? paths = null, double weightDecay = double.NaN)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!(baseLr >= 0) || !(alpha > 0)) throw new ArgumentException($"layerwise_lr: expected base_lr >= 0 and alpha > 0, got base_lr={baseLr}, alpha={alpha}");
        var layers = paths?.ToList() ?? [.. model.NamedChildren().Select(c => c.Name)];
        var known = model.NamedModules().Select(m => m.Name).ToHashSet();
        foreach (var p in layers)
            if (!known.Contains(p)) throw new ArgumentException($"layerwise_lr: model has no module '{p}'");
        int count = layers.Count;
        var buckets = new List<Tensor>[count + 1];
        for (int i = 0; i <= count; i++) buckets[i] = [];
        foreach (var (name, p) in model.NamedParameters())
        {
            if (!p.RequiresGrad) continue;
            int l = layers.FindIndex(path => Freeze.Under(name, path));
            buckets[l < 0 ? count : l].Add(p);
        }
        var groups = new List<ParamGroup>();
        for (int i = 0; i <= count; i++)
            if (buckets[i].Count > 0)
                groups.Add(new ParamGroup(buckets[i], baseLr * Math.Pow(alpha, i < count ? count - 1 - i : 0), weightDecay));
        return groups;
    }
}

/// <summary>Freezing helpers: set <c>RequiresGrad = false</c> on parts of a model.</summary>
public static class Freeze
{
    internal static bool Under(string name, string prefix) =>
        prefix.Length == 0 || name == prefix || (name.StartsWith(prefix, StringComparison.Ordinal) && name[prefix.Length] == '.');

    /// <summary>Freezes every parameter whose dotted name is, or lies under, one of the prefixes; returns how many were frozen.</summary>
    public static int ByPath(Module model, params string[] prefixes)
    {
        ArgumentNullException.ThrowIfNull(model);
        var named = model.NamedParameters().ToList();
        foreach (var pre in prefixes)
            if (!named.Any(np => Under(np.Name, pre))) throw new ArgumentException($"freeze: no parameter matches '{pre}'");
        int n = 0;
        foreach (var (name, p) in named)
            if (prefixes.Any(pre => Under(name, pre))) { p.RequiresGrad = false; n++; }
        return n;
    }

    /// <summary>Freezes the first <paramref name="k"/> top-level children of the model.</summary>
    public static void UpToDepth(Module model, int k)
    {
        ArgumentNullException.ThrowIfNull(model);
        var children = model.NamedChildren().ToList();
        if (k < 0 || k > children.Count) throw new ArgumentException($"freeze: depth {k} out of range [0, {children.Count}] for {model.GetType().Name}");
        foreach (var (_, c) in children.Take(k)) c.RequiresGrad(false);
    }
}
