namespace ConvLab.NN;

/// <summary>Applies its children in order; children are named "0", "1", ... as in PyTorch.</summary>
public sealed class Sequential : Module
{
    private readonly List<Module> _layers = [];

    /// <summary>Creates a sequence of modules.</summary>
    public Sequential(params Module[] layers)
    {
        foreach (var l in layers) Append(l);
    }

    /// <summary>Adds a module at the end and returns this sequence.</summary>
    public Sequential Append(Module layer)
    {
        RegisterModule(_layers.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), layer);
        _layers.Add(layer);
        return this;
    }

    /// <summary>Number of layers.</summary>
    public int Count => _layers.Count;

    /// <summary>The layer at <paramref name="index"/>.</summary>
    public Module this[int index] => _layers[index];

    /// <summary>Puts <paramref name="layer"/> in place of the layer at <paramref name="index"/> (same state-dict name; used by <see cref="Fusion"/>).</summary>
    internal void Replace(int index, Module layer)
    {
        RegisterModule(index.ToString(System.Globalization.CultureInfo.InvariantCulture), layer);
        _layers[index] = layer;
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        foreach (var l in _layers) input = l.Call(input);
        return input;
    }
}

/// <summary>Residual composition y = body(x) + shortcut(x) (identity shortcut when none is given).</summary>
public sealed class Residual : Module
{
    private readonly Module _body;
    private readonly Module? _shortcut;

    /// <summary>Creates a residual block; children are named <c>body</c> and <c>shortcut</c>.</summary>
    public Residual(Module body, Module? shortcut = null)
    {
        _body = RegisterModule("body", body);
        if (shortcut != null) _shortcut = RegisterModule("shortcut", shortcut);
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        var y = _body.Call(input);
        var s = _shortcut?.Call(input) ?? input;
        if (!y.Shape.SequenceEqual(s.Shape))
            throw new ArgumentException($"residual: body output {ShapeUtil.Format(y.Shape)} and shortcut output {ShapeUtil.Format(s.Shape)} differ; give a projection shortcut");
        return y.Add(s);
    }
}

/// <summary>Dense (DenseNet-style) composition y = cat([x, body(x)], dim=1).</summary>
public sealed class DenseConcat : Module
{
    private readonly Module _body;

    /// <summary>Creates a dense connection around <paramref name="body"/> (child named <c>body</c>).</summary>
    public DenseConcat(Module body) => _body = RegisterModule("body", body);

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => Tensor.Cat([input, _body.Call(input)], 1);
}

/// <summary>Returns its input unchanged.</summary>
public sealed class Identity : Module
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => input;
}
