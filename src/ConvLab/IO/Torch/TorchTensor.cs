using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace ConvLab.IO.Torch;

/// <summary>Element types of PyTorch storages this reader understands (named as <c>torch.dtype</c>).</summary>
public enum TorchDType
{
    /// <summary><c>torch.float32</c> (<c>FloatStorage</c>)</summary>
    Float32,
    /// <summary><c>torch.float64</c> (<c>DoubleStorage</c>)</summary>
    Float64,
    /// <summary><c>torch.float16</c> (<c>HalfStorage</c>)</summary>
    Float16,
    /// <summary><c>torch.bfloat16</c> (<c>BFloat16Storage</c>)</summary>
    BFloat16,
    /// <summary><c>torch.int64</c> (<c>LongStorage</c>)</summary>
    Int64,
    /// <summary><c>torch.int32</c> (<c>IntStorage</c>)</summary>
    Int32,
    /// <summary><c>torch.int16</c> (<c>ShortStorage</c>)</summary>
    Int16,
    /// <summary><c>torch.int8</c> (<c>CharStorage</c>)</summary>
    Int8,
    /// <summary><c>torch.uint8</c> (<c>ByteStorage</c>)</summary>
    UInt8,
    /// <summary><c>torch.bool</c> (<c>BoolStorage</c>)</summary>
    Bool,
}

/// <summary>Sizes and pickle names of <see cref="TorchDType"/>.</summary>
public static class TorchDTypes
{
    private static readonly (TorchDType DType, string Storage, string Name, int Size)[] Table =
    [
        (TorchDType.Float32, "FloatStorage", "float32", 4),
        (TorchDType.Float64, "DoubleStorage", "float64", 8),
        (TorchDType.Float16, "HalfStorage", "float16", 2),
        (TorchDType.BFloat16, "BFloat16Storage", "bfloat16", 2),
        (TorchDType.Int64, "LongStorage", "int64", 8),
        (TorchDType.Int32, "IntStorage", "int32", 4),
        (TorchDType.Int16, "ShortStorage", "int16", 2),
        (TorchDType.Int8, "CharStorage", "int8", 1),
        (TorchDType.UInt8, "ByteStorage", "uint8", 1),
        (TorchDType.Bool, "BoolStorage", "bool", 1),
    ];

    /// <summary>Bytes per element.</summary>
    public static int ElementSize(this TorchDType dtype) => Table[(int)dtype].Size;

    /// <summary>PyTorch's name without the <c>torch.</c> prefix (<c>float32</c>, <c>bfloat16</c>, ...).</summary>
    public static string TorchName(this TorchDType dtype) => Table[(int)dtype].Name;

    /// <summary>The legacy typed-storage class name in <c>torch</c> (<c>FloatStorage</c>, ...).</summary>
    public static string StorageName(this TorchDType dtype) => Table[(int)dtype].Storage;

    /// <summary>True for the floating-point types.</summary>
    public static bool IsFloatingPoint(this TorchDType dtype) => dtype is TorchDType.Float32 or TorchDType.Float64 or TorchDType.Float16 or TorchDType.BFloat16;

    internal static bool TryFromStorageName(string name, out TorchDType dtype)
    {
        foreach (var row in Table)
            if (row.Storage == name) { dtype = row.DType; return true; }
        dtype = default;
        return false;
    }

    internal static bool TryFromName(string name, out TorchDType dtype)
    {
        foreach (var row in Table)
            if (row.Name == name) { dtype = row.DType; return true; }
        dtype = default;
        return false;
    }
}

/// <summary>
/// One storage of a PyTorch file: <see cref="Numel"/> elements of <see cref="DType"/>, stored under <see cref="Key"/>
/// (a zip entry <c>data/KEY</c> or a record of the legacy format). Tensors are views into it, so several tensors can
/// share one storage.
/// </summary>
public sealed class TorchStorage : TorchValue
{
    private ReadOnlyMemory<byte> _data;
    // Float32 storages read from a file live in a float[] so a tensor covering all of it can take the array as is.
    private float[]? _floats;
    private bool _bound, _floatsTaken;

    internal TorchStorage(TorchDType dtype, string key, long numel)
    {
        DType = dtype;
        Key = key;
        Numel = numel;
    }

    /// <summary>A new storage over <paramref name="data"/> (little-endian bytes; its length sets the element count).</summary>
    public TorchStorage(TorchDType dtype, byte[] data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Length % dtype.ElementSize() != 0)
            throw new ArgumentException($"TorchStorage: {data.Length} bytes is not a whole number of {dtype.TorchName()} elements");
        DType = dtype;
        Key = "";
        Numel = data.Length / dtype.ElementSize();
        Bind(data, bigEndian: false);
    }

    /// <summary>Element type.</summary>
    public TorchDType DType { get; }

    /// <summary>The storage's key in the file it was read from (empty for storages made in memory).</summary>
    public string Key { get; }

    /// <summary>Number of elements.</summary>
    public long Numel { get; }

    /// <summary>The raw bytes in the file's byte order (see <see cref="BigEndian"/>).</summary>
    public ReadOnlySpan<byte> Data
    {
        get
        {
            if (!_bound) throw new InvalidOperationException($"storage '{Key}': data not read yet");
            return _floats != null ? MemoryMarshal.AsBytes(_floats.AsSpan()) : _data.Span;
        }
    }

    /// <summary>True when the file was written on a big-endian machine (zip <c>byteorder</c> or legacy sys info).</summary>
    public bool BigEndian { get; private set; }

    /// <inheritdoc/>
    public override string TypeName => $"torch.{DType.StorageName()}";

    internal bool IsBound => _bound;

    internal void Bind(float[] data, bool bigEndian)
    {
        _floats = data;
        BigEndian = bigEndian;
        _bound = true;
    }

    /// <summary>The float32 array itself, once, for a caller that owns the storage from now on (else null).</summary>
    internal float[]? TakeFloats()
    {
        if (_floats == null || _floatsTaken || BigEndian) return null;
        _floatsTaken = true;
        return _floats;
    }

    internal void Bind(ReadOnlyMemory<byte> data, bool bigEndian)
    {
        _data = data;
        BigEndian = bigEndian;
        _bound = true;
    }
}

/// <summary>
/// A tensor as PyTorch stored it: a strided view (<see cref="StorageOffset"/>, <see cref="Shape"/>,
/// <see cref="Strides"/>, in elements) into a <see cref="TorchStorage"/>. Construction checks that every element
/// the view addresses lies inside the storage. <see cref="ToTensor(bool)"/> copies it into a ConvLab tensor.
/// </summary>
public sealed class TorchTensor : TorchValue
{
    /// <summary>Maximum number of dimensions accepted.</summary>
    public const int MaxRank = 64;

    private readonly int[] _shape;
    private readonly long[] _strides;

    /// <summary>A view into <paramref name="storage"/>; every addressed element must lie inside it.</summary>
    public TorchTensor(TorchStorage storage, long storageOffset, int[] shape, long[] strides, bool requiresGrad = false)
    {
        ArgumentNullException.ThrowIfNull(storage);
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(strides);
        var error = CheckView(storage.Numel, storageOffset, shape, strides);
        if (error != null) throw new ArgumentException($"TorchTensor: {error}");
        Storage = storage;
        StorageOffset = storageOffset;
        _shape = (int[])shape.Clone();
        _strides = (long[])strides.Clone();
        RequiresGrad = requiresGrad;
        Numel = ShapeUtil.Numel(_shape);
    }

    /// <summary>The storage this tensor views.</summary>
    public TorchStorage Storage { get; }

    /// <summary>Element type (the storage's).</summary>
    public TorchDType DType => Storage.DType;

    /// <summary>Offset of element [0, ..., 0] in the storage, in elements.</summary>
    public long StorageOffset { get; }

    /// <summary>Sizes.</summary>
    public IReadOnlyList<int> Shape => _shape;

    /// <summary>Steps in elements.</summary>
    public IReadOnlyList<long> Strides => _strides;

    /// <summary>Number of elements.</summary>
    public int Numel { get; }

    /// <summary>The pickled <c>requires_grad</c> flag.</summary>
    public bool RequiresGrad { get; }

    /// <summary>True when the file stored an <c>nn.Parameter</c> (<c>_rebuild_parameter</c>).</summary>
    public bool IsParameter { get; internal set; }

    /// <inheritdoc/>
    public override string TypeName => $"tensor({DType.TorchName()}, [{string.Join(", ", _shape)}])";

    /// <summary>A contiguous little-endian copy of <paramref name="tensor"/> in its own storage (float32, float64 or int64).</summary>
    public static TorchTensor FromTensor(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        byte[] bytes;
        TorchDType dtype;
        switch (tensor.DType)
        {
            case ConvLab.DType.Float32: dtype = TorchDType.Float32; bytes = LittleEndianBytes(tensor.Read<float>()); break;
            case ConvLab.DType.Float64: dtype = TorchDType.Float64; bytes = LittleEndianBytes(tensor.Read<double>()); break;
            default: dtype = TorchDType.Int64; bytes = LittleEndianBytes(tensor.Read<long>()); break;
        }
        var shape = tensor.Shape.ToArray();
        return new TorchTensor(new TorchStorage(dtype, bytes), 0, shape, ContiguousStrides(shape));
    }

    /// <summary>
    /// Copies the view into a new contiguous ConvLab tensor: floating-point types become float32 (float64 stays float64
    /// unless <paramref name="floatAsFloat32"/>), integer and bool types become int64.
    /// </summary>
    public Tensor ToTensor(bool floatAsFloat32 = false) => ToTensor(floatAsFloat32, adopt: false);

    /// <summary>
    /// With <paramref name="adopt"/>, a float32 tensor that covers its whole storage takes the storage's array instead
    /// of a copy (the caller drops the file's object tree afterwards, so nothing else sees the sharing).
    /// </summary>
    internal Tensor ToTensor(bool floatAsFloat32, bool adopt)
    {
        var shape = (int[])_shape.Clone();
        if (adopt && DType == TorchDType.Float32 && StorageOffset == 0 && Numel == Storage.Numel && IsDense() && Storage.TakeFloats() is { } own)
            return new Tensor(own, shape);
        var src = Storage.Data;
        int size = DType.ElementSize();
        bool swap = Storage.BigEndian && size > 1;
        if (DType == TorchDType.Float64 && !floatAsFloat32)
        {
            var d = new double[Numel];
            Gather(src, size, d, swap, static (b, s) => BitConverter.Int64BitsToDouble(Read64(b, s)));
            return new Tensor(d, shape);
        }
        if (DType.IsFloatingPoint())
        {
            var f = new float[Numel];
            switch (DType)
            {
                case TorchDType.Float32:
                    if (!swap && IsDense()) MemoryMarshal.Cast<byte, float>(src.Slice((int)(StorageOffset * 4), Numel * 4)).CopyTo(f);
                    else Gather(src, size, f, swap, static (b, s) => BitConverter.Int32BitsToSingle((int)Read32(b, s)));
                    break;
                case TorchDType.Float64: Gather(src, size, f, swap, static (b, s) => (float)BitConverter.Int64BitsToDouble(Read64(b, s))); break;
                case TorchDType.Float16: Gather(src, size, f, swap, static (b, s) => (float)BitConverter.UInt16BitsToHalf(Read16(b, s))); break;
                default: Gather(src, size, f, swap, static (b, s) => BitConverter.Int32BitsToSingle(Read16(b, s) << 16)); break;
            }
            return new Tensor(f, shape);
        }
        var l = new long[Numel];
        switch (DType)
        {
            case TorchDType.Int64: Gather(src, size, l, swap, static (b, s) => Read64(b, s)); break;
            case TorchDType.Int32: Gather(src, size, l, swap, static (b, s) => (int)Read32(b, s)); break;
            case TorchDType.Int16: Gather(src, size, l, swap, static (b, s) => (short)Read16(b, s)); break;
            case TorchDType.Int8: Gather(src, size, l, swap, static (b, _) => (sbyte)b[0]); break;
            case TorchDType.Bool: Gather(src, size, l, swap, static (b, _) => b[0] != 0 ? 1 : 0); break;
            default: Gather(src, size, l, swap, static (b, _) => b[0]); break;
        }
        return new Tensor(l, shape);
    }

    /// <summary>The values as float64 in row-major order (for inspection and tests).</summary>
    public double[] ToDoubleArray()
    {
        var t = ToTensor();
        return t.DType switch
        {
            ConvLab.DType.Float32 => Array.ConvertAll(t.Read<float>().ToArray(), v => (double)v),
            ConvLab.DType.Float64 => t.Read<double>().ToArray(),
            _ => Array.ConvertAll(t.Read<long>().ToArray(), v => (double)v),
        };
    }

    private delegate T Decode<T>(ReadOnlySpan<byte> element, bool swap);

    private static ushort Read16(ReadOnlySpan<byte> b, bool swap) => swap ? BinaryPrimitives.ReadUInt16BigEndian(b) : BinaryPrimitives.ReadUInt16LittleEndian(b);
    private static uint Read32(ReadOnlySpan<byte> b, bool swap) => swap ? BinaryPrimitives.ReadUInt32BigEndian(b) : BinaryPrimitives.ReadUInt32LittleEndian(b);
    private static long Read64(ReadOnlySpan<byte> b, bool swap) => swap ? BinaryPrimitives.ReadInt64BigEndian(b) : BinaryPrimitives.ReadInt64LittleEndian(b);

    private bool IsDense()
    {
        long expected = 1;
        for (int d = _shape.Length - 1; d >= 0; d--)
        {
            if (_shape[d] != 1 && _strides[d] != expected) return false;
            expected *= _shape[d];
        }
        return true;
    }

    // Walks the view in row-major order with an odometer over the dimensions (no recursion, any rank).
    private void Gather<T>(ReadOnlySpan<byte> src, int size, T[] dst, bool swap, Decode<T> decode)
    {
        if (dst.Length == 0) return;
        int rank = _shape.Length;
        var index = new int[rank];
        long pos = StorageOffset;
        for (int i = 0; i < dst.Length; i++)
        {
            dst[i] = decode(src.Slice((int)(pos * size), size), swap);
            for (int d = rank - 1; d >= 0; d--)
            {
                pos += _strides[d];
                if (++index[d] < _shape[d]) break;
                pos -= _strides[d] * _shape[d];
                index[d] = 0;
            }
        }
    }

    internal static long[] ContiguousStrides(int[] shape)
    {
        var strides = new long[shape.Length];
        long s = 1;
        for (int d = shape.Length - 1; d >= 0; d--) { strides[d] = s; s *= Math.Max(shape[d], 1); }
        return strides;
    }

    /// <summary>Null when the view lies inside a storage of <paramref name="storageNumel"/> elements, else the reason.</summary>
    internal static string? CheckView(long storageNumel, long offset, int[] shape, long[] strides)
    {
        if (shape.Length != strides.Length) return $"size has {shape.Length} dimensions but stride has {strides.Length}";
        if (shape.Length > MaxRank) return $"{shape.Length} dimensions exceed the limit of {MaxRank}";
        if (offset < 0) return $"storage offset {offset} is negative";
        long numel = 1, last = offset;
        bool empty = false;
        for (int d = 0; d < shape.Length; d++)
        {
            if (shape[d] < 0) return $"size [{string.Join(", ", shape)}] has a negative entry";
            if (strides[d] < 0) return $"stride [{string.Join(", ", strides)}] has a negative entry";
            if (shape[d] == 0) empty = true;
        }
        if (empty) return offset <= storageNumel ? null : $"storage offset {offset} is past the storage's {storageNumel} elements";
        for (int d = 0; d < shape.Length; d++)
        {
            numel *= shape[d];
            if (numel > int.MaxValue) return $"size [{string.Join(", ", shape)}] has more than {int.MaxValue} elements";
            if (strides[d] > int.MaxValue) return $"stride {strides[d]} is larger than any storage this reader loads";
        }
        // Terms are below 2^62 and the running sum stays below the storage size until it fails, so nothing overflows.
        for (int d = 0; d < shape.Length && last < storageNumel; d++) last += (shape[d] - 1) * strides[d];
        if (last >= storageNumel)
            return $"view (offset {offset}, size [{string.Join(", ", shape)}], stride [{string.Join(", ", strides)}]) reaches past the storage's {storageNumel} elements";
        return null;
    }

    private static byte[] LittleEndianBytes<T>(ReadOnlySpan<T> data) where T : unmanaged
    {
        var bytes = MemoryMarshal.AsBytes(data).ToArray();
        int size = System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        if (!BitConverter.IsLittleEndian)
            for (int i = 0; i + size <= bytes.Length; i += size) bytes.AsSpan(i, size).Reverse();
        return bytes;
    }
}
