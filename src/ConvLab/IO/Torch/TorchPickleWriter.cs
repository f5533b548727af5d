using System.Buffers.Binary;
using System.Text;

namespace ConvLab.IO.Torch;

/// <summary>
/// Pickles a <see cref="TorchValue"/> with protocol 2 the way <c>torch.save</c> does: tensors as
/// <c>torch._utils._rebuild_tensor_v2</c> calls over persistent storage ids <c>('storage', torch.XStorage, key,
/// 'cpu', numel)</c>, OrderedDicts as <c>collections.OrderedDict()</c> plus SETITEMS. Only names the weights-only
/// unpickler accepts are written. Globals are memoised so each is spelled out once.
/// </summary>
internal sealed class TorchPickleWriter
{
    private readonly MemoryStream _out = new();
    private readonly Dictionary<string, int> _globals = new(StringComparer.Ordinal);
    private readonly Dictionary<TorchStorage, int> _storageKeys = new(ReferenceEqualityComparer.Instance);
    private readonly List<TorchStorage> _storages = [];
    private int _memo;

    /// <summary>The pickle bytes and the storages in key order ("0", "1", ...).</summary>
    public static (byte[] Pickle, List<TorchStorage> Storages) Write(TorchValue value)
    {
        var w = new TorchPickleWriter();
        w.Op(0x80); w.Op(2); // PROTO 2
        w.Value(value, 0);
        w.Op((byte)'.');
        return (w._out.ToArray(), w._storages);
    }

    /// <summary>The storage's bytes in little-endian order (a copy only when the source file was big-endian).</summary>
    public static void WriteLittleEndian(Stream output, TorchStorage s)
    {
        int size = s.DType.ElementSize();
        if (!s.BigEndian || size == 1) { output.Write(s.Data); return; }
        var copy = s.Data.ToArray();
        for (int i = 0; i + size <= copy.Length; i += size) copy.AsSpan(i, size).Reverse();
        output.Write(copy);
    }

    private void Value(TorchValue v, int depth)
    {
        if (depth > TorchFile.MaxDepth) throw new ArgumentException($"torch_save: nesting deeper than {TorchFile.MaxDepth} levels");
        switch (v)
        {
            case TorchNone: Op((byte)'N'); break;
            case TorchBool b: Op(b.Value ? (byte)0x88 : (byte)0x89); break;
            case TorchInt i: Int(i.Value); break;
            case TorchBigInt bi:
                {
                    var bytes = bi.Value.ToByteArray(isUnsigned: false, isBigEndian: false);
                    if (bytes.Length < 256) { Op(0x8a); Op((byte)bytes.Length); }
                    else { Op(0x8b); U32((uint)bytes.Length); }
                    _out.Write(bytes);
                    break;
                }
            case TorchFloat f:
                {
                    Op((byte)'G');
                    Span<byte> b = stackalloc byte[8];
                    BinaryPrimitives.WriteDoubleBigEndian(b, f.Value);
                    _out.Write(b);
                    break;
                }
            case TorchString s: Str(s.Value); break;
            case TorchBytes bytes:
                // Protocol 2 has no bytes opcode; Python writes _codecs.encode(latin-1 text, 'latin1').
                Global("_codecs", "encode");
                Str(Encoding.Latin1.GetString(bytes.Value.Span));
                Str("latin1");
                Op(0x86); // TUPLE2
                Op((byte)'R');
                break;
            case TorchGlobal g:
                {
                    int dot = g.QualifiedName.LastIndexOf('.');
                    Global(g.QualifiedName[..dot], g.QualifiedName[(dot + 1)..]);
                    break;
                }
            case TorchStorage st: PersistentId(st); break;
            case TorchTensor t: Tensor(t); break;
            case TorchList list: Sequence(list, depth); break;
            case TorchDict dict: Dict(dict, depth); break;
            default: throw new ArgumentException($"torch_save: cannot pickle a {v.TypeName}");
        }
    }

    private void Sequence(TorchList list, int depth)
    {
        switch (list.Kind)
        {
            case TorchSequenceKind.List:
                Op((byte)']');
                if (list.Count == 0) return;
                Op((byte)'(');
                foreach (var item in list.Items) Value(item, depth + 1);
                Op((byte)'e');
                return;
            case TorchSequenceKind.Tuple:
                if (list.Count == 0) { Op((byte)')'); return; }
                if (list.Count > 3) Op((byte)'(');
                foreach (var item in list.Items) Value(item, depth + 1);
                Op(list.Count switch { 1 => 0x85, 2 => 0x86, 3 => 0x87, _ => (byte)'t' });
                return;
            default:
                // set(list) / frozenset(list) through REDUCE: protocol 2 has no set opcodes.
                Global("builtins", list.Kind == TorchSequenceKind.Set ? "set" : "frozenset");
                Op((byte)']');
                if (list.Count > 0)
                {
                    Op((byte)'(');
                    foreach (var item in list.Items) Value(item, depth + 1);
                    Op((byte)'e');
                }
                Op(0x85);
                Op((byte)'R');
                return;
        }
    }

    private void Dict(TorchDict dict, int depth)
    {
        if (dict.IsOrdered)
        {
            Global("collections", "OrderedDict");
            Op((byte)')');
            Op((byte)'R');
        }
        else Op((byte)'}');
        if (dict.Count > 0)
        {
            Op((byte)'(');
            foreach (var (k, v) in dict.Items) { Value(k, depth + 1); Value(v, depth + 1); }
            Op((byte)'u');
        }
        if (dict.IsOrdered && dict.Attributes.Count > 0)
        {
            Op((byte)'}');
            Op((byte)'(');
            foreach (var (k, v) in dict.Attributes) { Str(k); Value(v, depth + 1); }
            Op((byte)'u');
            Op((byte)'b');
        }
    }

    private void Tensor(TorchTensor t)
    {
        if (t.IsParameter) Global("torch._utils", "_rebuild_parameter");
        Global("torch._utils", "_rebuild_tensor_v2");
        Op((byte)'(');
        PersistentId(t.Storage);
        Int(t.StorageOffset);
        IntTuple(t.Shape.Select(d => (long)d).ToList());
        IntTuple(t.Strides.ToList());
        Op(t.RequiresGrad ? (byte)0x88 : (byte)0x89);
        Global("collections", "OrderedDict");
        Op((byte)')');
        Op((byte)'R');
        Op((byte)'t');
        Op((byte)'R');
        if (t.IsParameter)
        {
            Op(t.RequiresGrad ? (byte)0x88 : (byte)0x89);
            Global("collections", "OrderedDict");
            Op((byte)')');
            Op((byte)'R');
            Op(0x87);
            Op((byte)'R');
        }
    }

    private void PersistentId(TorchStorage s)
    {
        if (!_storageKeys.TryGetValue(s, out int key))
        {
            key = _storages.Count;
            _storageKeys.Add(s, key);
            _storages.Add(s);
        }
        Op((byte)'(');
        Str("storage");
        Global("torch", s.DType.StorageName());
        Str(key.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Str("cpu");
        Int(s.Numel);
        Op((byte)'t');
        Op((byte)'Q');
    }

    private void IntTuple(List<long> values)
    {
        if (values.Count == 0) { Op((byte)')'); return; }
        if (values.Count > 3) Op((byte)'(');
        foreach (var v in values) Int(v);
        Op(values.Count switch { 1 => 0x85, 2 => 0x86, 3 => 0x87, _ => (byte)'t' });
    }

    private void Global(string module, string name)
    {
        string qualified = module + "." + name;
        if (_globals.TryGetValue(qualified, out int slot))
        {
            if (slot < 256) { Op((byte)'h'); Op((byte)slot); }
            else { Op((byte)'j'); U32((uint)slot); }
            return;
        }
        Op((byte)'c');
        _out.Write(Encoding.ASCII.GetBytes(module + "\n" + name + "\n"));
        slot = _memo++;
        _globals[qualified] = slot;
        if (slot < 256) { Op((byte)'q'); Op((byte)slot); }
        else { Op((byte)'r'); U32((uint)slot); }
    }

    private void Int(long v)
    {
        if (v >= 0 && v < 256) { Op((byte)'K'); Op((byte)v); }
        else if (v >= 0 && v < 65536) { Op((byte)'M'); Span<byte> b = stackalloc byte[2]; BinaryPrimitives.WriteUInt16LittleEndian(b, (ushort)v); _out.Write(b); }
        else if (v >= int.MinValue && v <= int.MaxValue) { Op((byte)'J'); Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteInt32LittleEndian(b, (int)v); _out.Write(b); }
        else
        {
            var bytes = new System.Numerics.BigInteger(v).ToByteArray();
            Op(0x8a);
            Op((byte)bytes.Length);
            _out.Write(bytes);
        }
    }

    private void Str(string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        Op((byte)'X');
        U32((uint)bytes.Length);
        _out.Write(bytes);
    }

    private void U32(uint v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        _out.Write(b);
    }

    private void Op(byte b) => _out.WriteByte(b);
}
