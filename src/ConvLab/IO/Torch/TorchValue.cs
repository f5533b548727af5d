using System.Globalization;

namespace ConvLab.IO.Torch;

/// <summary>
/// A value read from (or to be written to) a PyTorch <c>torch.save</c> file: the data-only subset of Python objects the
/// weights-only unpickler can produce. Containers are built by the reader, frozen once placed inside another container
/// (so the structure is a tree without cycles) and never hold more than <see cref="TorchFile.MaxDepth"/> levels.
/// </summary>
public abstract class TorchValue
{
    private protected TorchValue() { }

    /// <summary>Nesting depth: 0 for scalars and tensors, 1 + the deepest item for containers.</summary>
    public int Depth { get; private protected set; }

    /// <summary>A short Python-like description of the value's type (for error messages).</summary>
    public abstract string TypeName { get; }

    /// <inheritdoc/>
    public override string ToString() => TypeName;
}

/// <summary>Python's <c>None</c>.</summary>
public sealed class TorchNone : TorchValue
{
    private TorchNone() { }

    /// <summary>The single instance.</summary>
    public static TorchNone Instance { get; } = new();

    /// <inheritdoc/>
    public override string TypeName => "None";
}

/// <summary>A Python <c>bool</c>.</summary>
public sealed class TorchBool(bool value) : TorchValue
{
    /// <summary>Shared <c>True</c>.</summary>
    public static TorchBool True { get; } = new(true);

    /// <summary>Shared <c>False</c>.</summary>
    public static TorchBool False { get; } = new(false);

    /// <summary>The value.</summary>
    public bool Value { get; } = value;

    /// <inheritdoc/>
    public override string TypeName => "bool";

    /// <inheritdoc/>
    public override string ToString() => Value ? "True" : "False";
}

/// <summary>A Python <c>int</c> that fits in 64 bits.</summary>
public sealed class TorchInt(long value) : TorchValue
{
    /// <summary>The value.</summary>
    public long Value { get; } = value;

    /// <inheritdoc/>
    public override string TypeName => "int";

    /// <inheritdoc/>
    public override string ToString() => Value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>A Python <c>int</c> too large for 64 bits (the legacy format's magic number is one).</summary>
public sealed class TorchBigInt(System.Numerics.BigInteger value) : TorchValue
{
    /// <summary>The value.</summary>
    public System.Numerics.BigInteger Value { get; } = value;

    /// <inheritdoc/>
    public override string TypeName => "int";

    /// <inheritdoc/>
    public override string ToString() => Value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>A Python <c>float</c>.</summary>
public sealed class TorchFloat(double value) : TorchValue
{
    /// <summary>The value.</summary>
    public double Value { get; } = value;

    /// <inheritdoc/>
    public override string TypeName => "float";

    /// <inheritdoc/>
    public override string ToString() => Value.ToString("R", CultureInfo.InvariantCulture);
}

/// <summary>A Python <c>str</c>.</summary>
public sealed class TorchString(string value) : TorchValue
{
    /// <summary>The value.</summary>
    public string Value { get; } = value ?? throw new ArgumentNullException(nameof(value));

    /// <inheritdoc/>
    public override string TypeName => "str";

    /// <inheritdoc/>
    public override string ToString() => Value;
}

/// <summary>A Python <c>bytes</c> (or <c>bytearray</c>).</summary>
public sealed class TorchBytes(byte[] value) : TorchValue
{
    /// <summary>The bytes.</summary>
    public ReadOnlyMemory<byte> Value { get; } = value ?? throw new ArgumentNullException(nameof(value));

    /// <inheritdoc/>
    public override string TypeName => "bytes";
}

/// <summary>
/// A reference to an allowlisted global that is data rather than code: a dtype (<c>torch.float32</c>), a layout
/// (<c>torch.strided</c>), a device, a storage or tensor type. Rebuild functions are never exposed as values.
/// </summary>
public sealed class TorchGlobal : TorchValue
{
    internal TorchGlobal(string qualifiedName) => QualifiedName = qualifiedName;

    /// <summary>Dotted Python name, e.g. <c>torch.float32</c>.</summary>
    public string QualifiedName { get; }

    /// <inheritdoc/>
    public override string TypeName => QualifiedName;
}

/// <summary>Which Python sequence type a <see cref="TorchList"/> is.</summary>
public enum TorchSequenceKind
{
    /// <summary><c>list</c></summary>
    List,
    /// <summary><c>tuple</c> (also <c>torch.Size</c>)</summary>
    Tuple,
    /// <summary><c>set</c></summary>
    Set,
    /// <summary><c>frozenset</c></summary>
    FrozenSet,
}

/// <summary>Shared freezing and depth bookkeeping of containers.</summary>
public abstract class TorchContainer : TorchValue
{
    private protected TorchContainer() { }

    internal bool Frozen { get; private set; }

    // A container is frozen when it becomes an item of another one. Pickles of data never modify a container after
    // that (only self-referential structures do), and freezing keeps every value a tree of bounded depth.
    internal void Adopt(TorchValue item, string op)
    {
        if (Frozen) throw new InvalidDataException($"{op} modifies a container that is already part of another one (recursive structures are not supported)");
        if (item is TorchContainer c)
        {
            if (ReferenceEquals(c, this)) throw new InvalidDataException($"{op} puts a container into itself (recursive structures are not supported)");
            c.Frozen = true;
        }
        if (item.Depth + 1 > Depth)
        {
            if (item.Depth + 1 > TorchFile.MaxDepth) throw new InvalidDataException($"{op}: nesting deeper than {TorchFile.MaxDepth} levels");
            Depth = item.Depth + 1;
        }
    }

    internal void Freeze() => Frozen = true;
}

/// <summary>A Python list, tuple, set or frozenset, in pickle order.</summary>
public sealed class TorchList : TorchContainer
{
    // Allocated on first add: a pickle can ask for one empty container per byte, so empty ones stay small.
    private List<TorchValue>? _items;

    /// <summary>An empty sequence of the given kind.</summary>
    public TorchList(TorchSequenceKind kind = TorchSequenceKind.List) => Kind = kind;

    /// <summary>A sequence of the given items.</summary>
    public TorchList(TorchSequenceKind kind, IEnumerable<TorchValue> items) : this(kind)
    {
        ArgumentNullException.ThrowIfNull(items);
        foreach (var item in items) Add(item);
    }

    /// <summary>The Python type.</summary>
    public TorchSequenceKind Kind { get; }

    /// <summary>The items.</summary>
    public IReadOnlyList<TorchValue> Items => _items ?? (IReadOnlyList<TorchValue>)[];

    /// <summary>Number of items.</summary>
    public int Count => _items?.Count ?? 0;

    /// <summary>Item <paramref name="index"/>.</summary>
    public TorchValue this[int index] => Items[index];

    /// <inheritdoc/>
    public override string TypeName => Kind switch
    {
        TorchSequenceKind.List => "list",
        TorchSequenceKind.Tuple => "tuple",
        TorchSequenceKind.Set => "set",
        _ => "frozenset",
    };

    /// <summary>Appends an item (containers added become frozen).</summary>
    public void Add(TorchValue item)
    {
        ArgumentNullException.ThrowIfNull(item);
        Adopt(item, "append");
        (_items ??= []).Add(item);
    }
}

/// <summary>
/// A Python <c>dict</c> or <c>collections.OrderedDict</c> in insertion order. Keys are strings, ints, floats, bools,
/// None or tuples; setting an existing key replaces its value in place, as Python does. Attributes set on an
/// OrderedDict by the pickle (PyTorch's <c>_metadata</c> of a state dict) are kept in <see cref="Attributes"/>.
/// </summary>
public sealed class TorchDict : TorchContainer
{
    // Allocated on first use, as in TorchList.
    private List<KeyValuePair<TorchValue, TorchValue>>? _items;
    private Dictionary<object, int>? _index;
    private Dictionary<string, TorchValue>? _attributes;

    /// <summary>An empty dict (<paramref name="ordered"/>: an <c>OrderedDict</c>).</summary>
    public TorchDict(bool ordered = false) => IsOrdered = ordered;

    /// <summary>True for <c>collections.OrderedDict</c> (what <c>state_dict()</c> returns).</summary>
    public bool IsOrdered { get; }

    /// <summary>The entries in insertion order.</summary>
    public IReadOnlyList<KeyValuePair<TorchValue, TorchValue>> Items => _items ?? (IReadOnlyList<KeyValuePair<TorchValue, TorchValue>>)[];

    /// <summary>Number of entries.</summary>
    public int Count => _items?.Count ?? 0;

    /// <summary>Instance attributes restored by the pickle's BUILD (e.g. <c>_metadata</c>); empty if none.</summary>
    public IReadOnlyDictionary<string, TorchValue> Attributes => _attributes ?? (IReadOnlyDictionary<string, TorchValue>)System.Collections.ObjectModel.ReadOnlyDictionary<string, TorchValue>.Empty;


    /// <inheritdoc/>
    public override string TypeName => IsOrdered ? "OrderedDict" : "dict";

    /// <summary>The value under string key <paramref name="key"/>, if present.</summary>
    public bool TryGetValue(string key, out TorchValue value)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (_index != null && _index.TryGetValue(key, out int i)) { value = _items![i].Value; return true; }
        value = TorchNone.Instance;
        return false;
    }

    /// <summary>The value under string key <paramref name="key"/>; <see cref="KeyNotFoundException"/> if absent.</summary>
    public TorchValue this[string key] => TryGetValue(key, out var v) ? v : throw new KeyNotFoundException($"dict has no key '{key}'");

    /// <summary>Sets <paramref name="key"/> to <paramref name="value"/> (replacing an existing entry in place).</summary>
    public void Set(TorchValue key, TorchValue value)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        var identity = KeyIdentity(key);
        Adopt(key, "setitem");
        Adopt(value, "setitem");
        _items ??= [];
        if (identity != null && _index != null && _index.TryGetValue(identity, out int i)) { _items[i] = new(_items[i].Key, value); return; }
        if (identity != null) (_index ??= [])[identity] = _items.Count;
        _items.Add(new(key, value));
    }

    /// <summary>Sets string key <paramref name="key"/>.</summary>
    public void Set(string key, TorchValue value) => Set(new TorchString(key), value);

    internal void SetAttribute(string name, TorchValue value)
    {
        Adopt(value, "build");
        (_attributes ??= [])[name] = value;
    }

    // Python compares dict keys by value; 1 == 1.0 == True, so numbers share one identity. Tuples are rare as
    // keys and keep reference identity (no merging), which only matters for files that repeat such a key.
    private static object? KeyIdentity(TorchValue key) => key switch
    {
        TorchString s => s.Value,
        TorchInt i => (double)i.Value == i.Value ? (double)i.Value : i.Value,
        TorchBool b => b.Value ? 1.0 : 0.0,
        TorchFloat f => f.Value,
        TorchNone => typeof(TorchNone),
        TorchList { Kind: TorchSequenceKind.Tuple or TorchSequenceKind.FrozenSet } => null,
        TorchGlobal g => g.QualifiedName,
        _ => throw new InvalidDataException($"setitem: a {key.TypeName} cannot be a dict key (unhashable)"),
    };
}
