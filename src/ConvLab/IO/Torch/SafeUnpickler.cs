using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace ConvLab.IO.Torch;

/// <summary>
/// A pickle reader that executes nothing. It implements the opcodes of PyTorch's weights-only unpickler (protocols
/// 2-5, binary opcodes only); GLOBAL and STACK_GLOBAL resolve only the names in <see cref="Allowed"/>, and REDUCE,
/// NEWOBJ and BUILD evaluate those few names as data (a tensor view, an OrderedDict, a set, a torch.Size, ...).
/// Everything else is refused. Memory is bounded by the pickle's size: strings and byte strings are checked
/// against the remaining bytes, each opcode adds at most one stack entry, and memo and stack sizes are capped.
/// </summary>
internal sealed class SafeUnpickler
{
    internal const int MaxStack = 1 << 20, MaxMemo = 1 << 20, MaxGlobalName = 256, MaxLongBytes = 64;

    // Names of data-only globals: storage and dtype names (values) and the rebuild functions and containers
    // (callables) that REDUCE evaluates. "__builtin__" is normalised to "builtins" first.
    internal static readonly HashSet<string> Allowed = BuildAllowed();

    private static HashSet<string> BuildAllowed()
    {
        var names = new HashSet<string>(StringComparer.Ordinal)
        {
            "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
            "torch._utils._rebuild_parameter_with_state", "torch._tensor._rebuild_from_type_v2",
            "collections.OrderedDict", "builtins.set", "builtins.frozenset", "builtins.bytearray", "_codecs.encode",
            "torch.Size", "torch.device", "torch.serialization._get_layout", "torch.strided",
            "torch.Tensor", "torch.nn.Parameter", "torch.nn.parameter.Parameter", "torch.UntypedStorage",
        };
        foreach (var dt in Enum.GetValues<TorchDType>())
        {
            names.Add("torch." + dt.StorageName());
            names.Add("torch." + dt.TorchName());
        }
        return names;
    }

    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);
    private static readonly Encoding Latin1 = Encoding.Latin1;

    private readonly string _file;
    private readonly ReadOnlyMemory<byte> _data;
    private readonly Func<TorchList, TorchValue> _persistentLoad;
    private readonly List<TorchValue> _stack = [];
    private readonly List<int> _marks = [];
    private readonly Dictionary<long, TorchValue> _memo = [];
    private int _pos, _opStart;

    /// <param name="file">File name for messages.</param>
    /// <param name="data">The bytes holding one or more consecutive pickles.</param>
    /// <param name="persistentLoad">Maps a BINPERSID tuple to its object (a storage).</param>
    public SafeUnpickler(string file, ReadOnlyMemory<byte> data, Func<TorchList, TorchValue> persistentLoad)
    {
        _file = file;
        _data = data;
        _persistentLoad = persistentLoad;
    }

    /// <summary>Offset of the next unread byte (after <see cref="Load"/>: just past its STOP).</summary>
    public int Position => _pos;

    /// <summary>Reads one pickle from <see cref="Position"/> to its STOP opcode.</summary>
    public TorchValue Load()
    {
        _stack.Clear();
        _marks.Clear();
        _memo.Clear();
        while (true)
        {
            int at = _opStart = _pos;
            byte op = ReadByte("opcode");
            try
            {
                if (op == (byte)'.')
                {
                    if (_stack.Count != 1 || _marks.Count != 0)
                        throw Bad($"STOP with {_stack.Count} stack items and {_marks.Count} open marks (expected one value)");
                    return _stack[0];
                }
                Step(op);
            }
            catch (InvalidDataException e) when (!e.Message.StartsWith(_file + ":", StringComparison.Ordinal))
            {
                throw new InvalidDataException($"{_file}: pickle offset {at}: {e.Message}", e);
            }
        }
    }

    private void Step(byte op)
    {
        switch (op)
        {
            case 0x80: // PROTO
                int proto = ReadByte("protocol");
                if (proto > 5) throw Bad($"pickle protocol {proto} is newer than 5");
                break;
            case 0x95: // FRAME: a length hint only
                Take(8, "frame length");
                break;
            case (byte)'(': // MARK
                if (_marks.Count >= MaxStack) throw Bad($"more than {MaxStack} open marks");
                _marks.Add(_stack.Count);
                break;
            case (byte)'0': Pop("POP"); break;
            case (byte)'1': PopMark("POP_MARK"); break;
            case (byte)'2': Push(Peek("DUP")); break;
            case (byte)'N': Push(TorchNone.Instance); break;
            case 0x88: Push(TorchBool.True); break;
            case 0x89: Push(TorchBool.False); break;
            case (byte)'J': Push(new TorchInt(BinaryPrimitives.ReadInt32LittleEndian(Take(4, "BININT")))); break;
            case (byte)'K': Push(new TorchInt(ReadByte("BININT1"))); break;
            case (byte)'M': Push(new TorchInt(BinaryPrimitives.ReadUInt16LittleEndian(Take(2, "BININT2")))); break;
            case 0x8a: Push(Long(ReadByte("LONG1"))); break;
            case 0x8b: // LONG4
                int n4 = BinaryPrimitives.ReadInt32LittleEndian(Take(4, "LONG4"));
                if (n4 < 0 || n4 > MaxLongBytes) throw Bad($"LONG4 of {n4} bytes (at most {MaxLongBytes} accepted)");
                Push(Long(n4));
                break;
            case (byte)'G': Push(new TorchFloat(BinaryPrimitives.ReadDoubleBigEndian(Take(8, "BINFLOAT")))); break;
            case (byte)'X': Push(new TorchString(Utf8(Take(Length32("BINUNICODE"), "BINUNICODE")))); break;
            case 0x8c: Push(new TorchString(Utf8(Take(ReadByte("SHORT_BINUNICODE"), "SHORT_BINUNICODE")))); break;
            case 0x8d: Push(new TorchString(Utf8(Take(Length64("BINUNICODE8"), "BINUNICODE8")))); break;
            // Python 2 str: PyTorch decodes these with an 8-bit codec, so every byte string is valid.
            case (byte)'U': Push(new TorchString(Latin1.GetString(Take(ReadByte("SHORT_BINSTRING"), "SHORT_BINSTRING")))); break;
            case (byte)'T': Push(new TorchString(Latin1.GetString(Take(Length32("BINSTRING"), "BINSTRING")))); break;
            case (byte)'C': Push(new TorchBytes(Take(ReadByte("SHORT_BINBYTES"), "SHORT_BINBYTES").ToArray())); break;
            case (byte)'B': Push(new TorchBytes(Take(Length32("BINBYTES"), "BINBYTES").ToArray())); break;
            case 0x8e: Push(new TorchBytes(Take(Length64("BINBYTES8"), "BINBYTES8").ToArray())); break;
            case (byte)')': Push(Frozen(new TorchList(TorchSequenceKind.Tuple))); break;
            case (byte)'t': Push(Frozen(new TorchList(TorchSequenceKind.Tuple, PopMark("TUPLE")))); break;
            case 0x85: Push(Frozen(new TorchList(TorchSequenceKind.Tuple, PopN(1, "TUPLE1")))); break;
            case 0x86: Push(Frozen(new TorchList(TorchSequenceKind.Tuple, PopN(2, "TUPLE2")))); break;
            case 0x87: Push(Frozen(new TorchList(TorchSequenceKind.Tuple, PopN(3, "TUPLE3")))); break;
            case (byte)']': Push(new TorchList(TorchSequenceKind.List)); break;
            case (byte)'}': Push(new TorchDict()); break;
            case 0x8f: Push(new TorchList(TorchSequenceKind.Set)); break;
            case (byte)'a': // APPEND
                {
                    var item = Pop("APPEND");
                    AppendTo(Peek("APPEND"), [item], "APPEND", TorchSequenceKind.List);
                    break;
                }
            case (byte)'e': // APPENDS
                {
                    var items = PopMark("APPENDS");
                    AppendTo(Peek("APPENDS"), items, "APPENDS", TorchSequenceKind.List);
                    break;
                }
            case 0x90: // ADDITEMS
                {
                    var items = PopMark("ADDITEMS");
                    AppendTo(Peek("ADDITEMS"), items, "ADDITEMS", TorchSequenceKind.Set);
                    break;
                }
            case 0x91: // FROZENSET
                Push(Frozen(new TorchList(TorchSequenceKind.FrozenSet, PopMark("FROZENSET"))));
                break;
            case (byte)'s': // SETITEM
                {
                    var value = Pop("SETITEM");
                    var key = Pop("SETITEM");
                    DictOf(Peek("SETITEM"), "SETITEM").Set(key, value);
                    break;
                }
            case (byte)'u': // SETITEMS
                {
                    var items = PopMark("SETITEMS");
                    if (items.Count % 2 != 0) throw Bad($"SETITEMS with an odd number ({items.Count}) of keys and values");
                    var dict = DictOf(Peek("SETITEMS"), "SETITEMS");
                    for (int i = 0; i < items.Count; i += 2) dict.Set(items[i], items[i + 1]);
                    break;
                }
            case (byte)'c': // GLOBAL
                {
                    string module = Line("GLOBAL module"), name = Line("GLOBAL name");
                    Push(Global(module, name));
                    break;
                }
            case 0x93: // STACK_GLOBAL
                {
                    var name = Pop("STACK_GLOBAL");
                    var module = Pop("STACK_GLOBAL");
                    if (module is not TorchString m || name is not TorchString n) throw Bad($"STACK_GLOBAL needs two strings, got {module.TypeName} and {name.TypeName}");
                    if (m.Value.Length > MaxGlobalName || n.Value.Length > MaxGlobalName) throw Bad("STACK_GLOBAL name too long");
                    Push(Global(m.Value, n.Value));
                    break;
                }
            case (byte)'R': // REDUCE
                {
                    var args = Pop("REDUCE");
                    var callable = Pop("REDUCE");
                    Push(Call(callable, args, "REDUCE"));
                    break;
                }
            case 0x81: // NEWOBJ: cls.__new__(cls, *args), allowed for the container classes only
                {
                    var args = Pop("NEWOBJ");
                    var cls = Pop("NEWOBJ");
                    if (cls is not TorchGlobal { QualifiedName: "collections.OrderedDict" or "builtins.set" or "builtins.frozenset" })
                        throw Bad($"NEWOBJ of {Describe(cls)} is not allowed (only OrderedDict, set, frozenset)");
                    Push(Call(cls, args, "NEWOBJ"));
                    break;
                }
            case (byte)'b': // BUILD
                {
                    var state = Pop("BUILD");
                    Build(Peek("BUILD"), state);
                    break;
                }
            case (byte)'Q': // BINPERSID
                {
                    var pid = Pop("BINPERSID");
                    if (pid is not TorchList { Kind: TorchSequenceKind.Tuple } tuple) throw Bad($"BINPERSID expects a tuple, got {pid.TypeName}");
                    Push(_persistentLoad(tuple));
                    break;
                }
            case (byte)'h': Push(Get(ReadByte("BINGET"))); break;
            case (byte)'j': Push(Get(BinaryPrimitives.ReadUInt32LittleEndian(Take(4, "LONG_BINGET")))); break;
            case (byte)'q': Put(ReadByte("BINPUT")); break;
            case (byte)'r': Put(BinaryPrimitives.ReadUInt32LittleEndian(Take(4, "LONG_BINPUT"))); break;
            case 0x94: Put(_memo.Count); break; // MEMOIZE
            default:
                throw Bad(op >= 0x20 && op < 0x7f
                    ? $"opcode '{(char)op}' (0x{op:x2}) is not accepted (text-protocol, INST/OBJ, PERSID and extension opcodes are refused)"
                    : $"unknown or refused opcode 0x{op:x2}");
        }
    }

    private TorchValue Global(string module, string name)
    {
        if (module == "__builtin__") module = "builtins";
        string qualified = module + "." + name;
        if (Allowed.Contains(qualified)) return new TorchGlobal(qualified);
        if (module == "__main__" || module.StartsWith("torch.nn.modules", StringComparison.Ordinal) || module.StartsWith("torchvision.", StringComparison.Ordinal))
            throw Bad($"refused global {qualified}: the file pickles a module or class instance (torch.save(model)); save model.state_dict() instead");
        throw Bad($"refused global {qualified}: not one of the data-only globals a weights-only load accepts (nothing was run)");
    }

    private TorchValue Call(TorchValue callable, TorchValue argsValue, string op)
    {
        if (callable is not TorchGlobal g) throw Bad($"{op} calls a {callable.TypeName}, not an allowlisted function");
        if (argsValue is not TorchList { Kind: TorchSequenceKind.Tuple } args) throw Bad($"{op} of {g.QualifiedName} expects an argument tuple, got {argsValue.TypeName}");
        var a = args.Items;
        switch (g.QualifiedName)
        {
            case "torch._utils._rebuild_tensor_v2" when a.Count is 6 or 7:
            case "torch._utils._rebuild_tensor" when a.Count == 4:
                {
                    if (a[0] is not TorchStorage storage) throw Bad($"{g.QualifiedName}: argument 1 must be a storage, got {a[0].TypeName}");
                    long offset = Int(a[1], g.QualifiedName, "storage_offset");
                    var shape = Ints(a[2], g.QualifiedName, "size");
                    var stride = Ints(a[3], g.QualifiedName, "stride");
                    bool requiresGrad = a.Count > 4 && a[4] is TorchBool { Value: true };
                    var dims = new int[shape.Length];
                    for (int i = 0; i < shape.Length; i++)
                        dims[i] = shape[i] is >= 0 and <= int.MaxValue ? (int)shape[i] : throw Bad($"{g.QualifiedName}: size entry {shape[i]} out of range");
                    var error = TorchTensor.CheckView(storage.Numel, offset, dims, stride);
                    if (error != null) throw Bad($"tensor on storage '{storage.Key}': {error}");
                    return new TorchTensor(storage, offset, dims, stride, requiresGrad);
                }
            case "torch._utils._rebuild_parameter" when a.Count == 3:
            case "torch._utils._rebuild_parameter_with_state" when a.Count == 4:
                {
                    if (a[0] is not TorchTensor t) throw Bad($"{g.QualifiedName}: argument 1 must be a tensor, got {a[0].TypeName}");
                    t.IsParameter = true;
                    return t;
                }
            case "torch._tensor._rebuild_from_type_v2" when a.Count == 4:
                {
                    if (a[1] is not TorchGlobal { QualifiedName: "torch.Tensor" or "torch.nn.Parameter" or "torch.nn.parameter.Parameter" })
                        throw Bad($"{g.QualifiedName}: tensor subclass {Describe(a[1])} is not allowed");
                    if (a[0] is not TorchGlobal { QualifiedName: "torch._utils._rebuild_tensor_v2" or "torch._utils._rebuild_tensor" or "torch._utils._rebuild_parameter" } inner)
                        throw Bad($"{g.QualifiedName}: rebuild function {Describe(a[0])} is not allowed");
                    return Call(inner, a[2], op);
                }
            case "collections.OrderedDict" when a.Count == 0:
                return new TorchDict(ordered: true);
            case "builtins.set" or "builtins.frozenset" when a.Count <= 1:
                {
                    var kind = g.QualifiedName == "builtins.set" ? TorchSequenceKind.Set : TorchSequenceKind.FrozenSet;
                    if (a.Count == 0) return new TorchList(kind);
                    if (a[0] is not TorchList src) throw Bad($"{g.QualifiedName}: argument must be a list or tuple, got {a[0].TypeName}");
                    return new TorchList(kind, src.Items);
                }
            case "torch.Size" when a.Count == 1:
                {
                    if (a[0] is not TorchList src) throw Bad($"torch.Size: argument must be a tuple, got {a[0].TypeName}");
                    return Frozen(new TorchList(TorchSequenceKind.Tuple, src.Items));
                }
            case "_codecs.encode" when a.Count is 1 or 2:
                {
                    if (a[0] is not TorchString s) throw Bad($"_codecs.encode: argument 1 must be a str, got {a[0].TypeName}");
                    string enc = a.Count == 2 && a[1] is TorchString e ? e.Value.ToLowerInvariant() : "utf-8";
                    return enc switch
                    {
                        "latin1" or "latin-1" or "iso-8859-1" => new TorchBytes(Latin1.GetBytes(s.Value)),
                        "utf-8" or "utf8" => new TorchBytes(Encoding.UTF8.GetBytes(s.Value)),
                        _ => throw Bad($"_codecs.encode: encoding '{enc}' is not supported"),
                    };
                }
            case "builtins.bytearray" when a.Count <= 1:
                return a.Count == 0 ? new TorchBytes([]) : a[0] is TorchBytes b ? new TorchBytes(b.Value.ToArray())
                    : throw Bad($"bytearray: argument must be bytes, got {a[0].TypeName}");
            case "torch.device" when a.Count is 1 or 2:
                {
                    if (a[0] is not TorchString dev) throw Bad($"torch.device: argument 1 must be a str, got {a[0].TypeName}");
                    return new TorchString(a.Count == 2 && a[1] is TorchInt idx ? $"{dev.Value}:{idx.Value}" : dev.Value);
                }
            case "torch.serialization._get_layout" when a.Count == 1:
                return a[0] is TorchString { Value: "torch.strided" } ? new TorchGlobal("torch.strided")
                    : throw Bad($"_get_layout: only torch.strided tensors are supported, got {Describe(a[0])}");
        }
        throw Bad($"{op} of {g.QualifiedName} with {a.Count} arguments is not allowed");
    }

    private void Build(TorchValue target, TorchValue state)
    {
        switch (target)
        {
            case TorchDict { IsOrdered: true } dict:
                // OrderedDict's state is its __dict__ (PyTorch: _metadata), possibly as (dict, slots).
                if (state is TorchList { Kind: TorchSequenceKind.Tuple, Count: 2 } pair) state = pair[0];
                if (state is TorchNone) return;
                if (state is not TorchDict attrs) throw Bad($"BUILD of an OrderedDict with a {state.TypeName} state");
                foreach (var (k, v) in attrs.Items)
                    dict.SetAttribute(k is TorchString s ? s.Value : throw Bad($"BUILD attribute name is a {k.TypeName}"), v);
                return;
            case TorchTensor:
                // Python attributes of a tensor (rare: set on a Parameter); the data is already complete.
                if (state is TorchContainer c) c.Freeze();
                return;
            default:
                throw Bad($"BUILD of {Describe(target)} is not allowed (only OrderedDict and tensors)");
        }
    }

    private void AppendTo(TorchValue target, List<TorchValue> items, string op, TorchSequenceKind kind)
    {
        if (target is not TorchList list || list.Kind != kind) throw Bad($"{op} to a {target.TypeName} (expects a {(kind == TorchSequenceKind.List ? "list" : "set")})");
        foreach (var item in items) list.Add(item);
    }

    private TorchDict DictOf(TorchValue target, string op) => target as TorchDict ?? throw Bad($"{op} on a {target.TypeName} (expects a dict)");

    private static TorchList Frozen(TorchList list)
    {
        list.Freeze();
        return list;
    }

    private long Int(TorchValue v, string fn, string arg) => v is TorchInt i ? i.Value : throw Bad($"{fn}: {arg} must be an int, got {v.TypeName}");

    private long[] Ints(TorchValue v, string fn, string arg)
    {
        if (v is not TorchList { Kind: TorchSequenceKind.Tuple or TorchSequenceKind.List } list) throw Bad($"{fn}: {arg} must be a tuple of ints, got {v.TypeName}");
        if (list.Count > TorchTensor.MaxRank) throw Bad($"{fn}: {arg} has {list.Count} entries (at most {TorchTensor.MaxRank})");
        var r = new long[list.Count];
        for (int i = 0; i < r.Length; i++) r[i] = Int(list[i], fn, arg);
        return r;
    }

    private static string Describe(TorchValue v) => v is TorchGlobal g ? g.QualifiedName : "a " + v.TypeName;

    private TorchValue Long(int n)
    {
        var bytes = Take(n, "LONG");
        if (n <= 8)
        {
            long v = 0;
            for (int i = n - 1; i >= 0; i--) v = (v << 8) | bytes[i];
            if (n > 0 && n < 8 && (bytes[n - 1] & 0x80) != 0) v -= 1L << (8 * n);
            return new TorchInt(v);
        }
        return new TorchBigInt(new BigInteger(bytes, isUnsigned: false, isBigEndian: false));
    }

    private string Utf8(ReadOnlySpan<byte> bytes)
    {
        try { return StrictUtf8.GetString(bytes); }
        catch (DecoderFallbackException) { throw Bad("string is not valid UTF-8"); }
    }

    private string Line(string what)
    {
        var rest = _data.Span[_pos..];
        int nl = rest.IndexOf((byte)'\n');
        if (nl < 0) throw Bad($"{what}: no end of line before the end of the pickle");
        if (nl > MaxGlobalName) throw Bad($"{what}: longer than {MaxGlobalName} bytes");
        var text = Latin1.GetString(rest[..nl]);
        _pos += nl + 1;
        return text;
    }

    private int Length32(string what)
    {
        long n = BinaryPrimitives.ReadUInt32LittleEndian(Take(4, what));
        return CheckLength(n, what);
    }

    private int Length64(string what)
    {
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(Take(8, what));
        return CheckLength(n > long.MaxValue ? long.MaxValue : (long)n, what);
    }

    private int CheckLength(long n, string what)
    {
        long remaining = _data.Length - _pos;
        if (n > remaining) throw Bad($"{what} of {n} bytes but only {remaining} remain (truncated or corrupt)");
        return (int)n;
    }

    private byte ReadByte(string what)
    {
        if (_pos >= _data.Length) throw Bad($"{what}: the pickle ends before its STOP opcode (truncated)");
        return _data.Span[_pos++];
    }

    private ReadOnlySpan<byte> Take(int n, string what)
    {
        if (n > _data.Length - _pos) throw Bad($"{what}: needs {n} bytes but only {_data.Length - _pos} remain (truncated)");
        var s = _data.Span.Slice(_pos, n);
        _pos += n;
        return s;
    }

    private void Push(TorchValue v)
    {
        if (_stack.Count >= MaxStack) throw Bad($"stack deeper than {MaxStack} entries");
        _stack.Add(v);
    }

    private int Floor => _marks.Count > 0 ? _marks[^1] : 0;

    private TorchValue Peek(string op) => _stack.Count > Floor ? _stack[^1] : throw Bad($"{op} on an empty stack");

    private TorchValue Pop(string op)
    {
        if (_stack.Count <= Floor) throw Bad($"{op} on an empty stack");
        var v = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return v;
    }

    private List<TorchValue> PopN(int n, string op)
    {
        if (_stack.Count - Floor < n) throw Bad($"{op} needs {n} stack items");
        var items = _stack.GetRange(_stack.Count - n, n);
        _stack.RemoveRange(_stack.Count - n, n);
        return items;
    }

    private List<TorchValue> PopMark(string op)
    {
        if (_marks.Count == 0) throw Bad($"{op} without a MARK");
        int start = _marks[^1];
        _marks.RemoveAt(_marks.Count - 1);
        var items = _stack.GetRange(start, _stack.Count - start);
        _stack.RemoveRange(start, _stack.Count - start);
        return items;
    }

    private TorchValue Get(long index) => _memo.TryGetValue(index, out var v) ? v : throw Bad($"memo entry {index} is read before it is written");

    private void Put(long index)
    {
        var top = Peek("PUT");
        if (!_memo.ContainsKey(index) && _memo.Count >= MaxMemo) throw Bad($"more than {MaxMemo} memo entries");
        _memo[index] = top;
    }

    private InvalidDataException Bad(string message) => new($"{_file}: pickle offset {_opStart}: {message}");
}
