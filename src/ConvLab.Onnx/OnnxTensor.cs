using System.Buffers.Binary;
using ConvLab.Onnx.Proto;
using DataType = ConvLab.Onnx.Proto.TensorProto.Types.DataType;

namespace ConvLab.Onnx;

/// <summary>
/// Converts between ONNX <c>TensorProto</c> and ConvLab tensors. Floating-point types (float, double, float16,
/// bfloat16) become float32/float64 tensors; integer and bool types become int64 tensors (values kept). Sizes are
/// validated against the data present before anything is allocated.
/// </summary>
internal static class OnnxTensor
{
    /// <summary>Bytes per element of an ONNX data type as stored in <c>raw_data</c> (0 when ConvLab does not read it).</summary>
    internal static int ElementSize(int type) => (DataType)type switch
    {
        DataType.Float or DataType.Int32 or DataType.Uint32 => 4,
        DataType.Double or DataType.Int64 or DataType.Uint64 => 8,
        DataType.Float16 or DataType.Bfloat16 or DataType.Int16 or DataType.Uint16 => 2,
        DataType.Int8 or DataType.Uint8 or DataType.Bool => 1,
        _ => 0,
    };

    internal static bool IsFloat(int type) => (DataType)type is DataType.Float or DataType.Double or DataType.Float16 or DataType.Bfloat16;

    /// <summary>The shape of <paramref name="t"/> with each dimension checked (non-negative, product within int range).</summary>
    internal static int[] Shape(TensorProto t, string where)
    {
        var shape = new int[t.Dims.Count];
        long n = 1;
        for (int i = 0; i < shape.Length; i++)
        {
            long d = t.Dims[i];
            if (d < 0 || d > int.MaxValue) throw new InvalidDataException($"{where}: tensor '{t.Name}' has invalid dimension {d}");
            n *= d;
            if (n > int.MaxValue) throw new InvalidDataException($"{where}: tensor '{t.Name}' has too many elements ({string.Join("x", t.Dims)})");
            shape[i] = (int)d;
        }
        return shape;
    }

    /// <summary>Reads a tensor; <paramref name="where"/> (file and node) starts every error message.</summary>
    internal static Tensor ToTensor(TensorProto t, string where)
    {
        if (t.DataLocation == TensorProto.Types.DataLocation.External || t.ExternalData.Count > 0)
            throw new InvalidDataException($"{where}: tensor '{t.Name}' keeps its data in an external file, which ConvLab does not read");
        int type = t.DataType;
        int size = ElementSize(type);
        if (size == 0) throw new InvalidDataException($"{where}: tensor '{t.Name}' has unsupported data type {(DataType)type}");
        var shape = Shape(t, where);
        int n = shape.Aggregate(1, (a, b) => a * b);
        var raw = t.RawData.Span;
        if (!t.RawData.IsEmpty || n == 0)
        {
            if (raw.Length != (long)n * size)
                throw new InvalidDataException($"{where}: tensor '{t.Name}' of shape [{string.Join(", ", shape)}] ({(DataType)type}) needs {(long)n * size} bytes of raw data, found {raw.Length}");
            return FromRaw(raw, type, n, shape);
        }
        int count = (DataType)type switch
        {
            DataType.Float => t.FloatData.Count,
            DataType.Double => t.DoubleData.Count,
            DataType.Int64 => t.Int64Data.Count,
            DataType.Uint32 or DataType.Uint64 => t.Uint64Data.Count,
            _ => t.Int32Data.Count,
        };
        if (count != n)
            throw new InvalidDataException($"{where}: tensor '{t.Name}' of shape [{string.Join(", ", shape)}] needs {n} values, found {count}");
        switch ((DataType)type)
        {
            case DataType.Float: return Tensor.FromArray(t.FloatData.ToArray(), shape);
            case DataType.Double: return Tensor.FromArray(t.DoubleData.ToArray(), shape);
            case DataType.Int64: return Tensor.FromArray(t.Int64Data.ToArray(), shape);
            case DataType.Uint32 or DataType.Uint64: return Tensor.FromArray(t.Uint64Data.Select(v => (long)v).ToArray(), shape);
            case DataType.Float16: return Tensor.FromArray(t.Int32Data.Select(v => (float)BitConverter.UInt16BitsToHalf((ushort)v)).ToArray(), shape);
            case DataType.Bfloat16: return Tensor.FromArray(t.Int32Data.Select(v => BitConverter.Int32BitsToSingle(v << 16)).ToArray(), shape);
            default: return Tensor.FromArray(t.Int32Data.Select(v => (long)v).ToArray(), shape);
        }
    }

    private static Tensor FromRaw(ReadOnlySpan<byte> raw, int type, int n, int[] shape)
    {
        switch ((DataType)type)
        {
            case DataType.Float:
            {
                var a = new float[n];
                for (int i = 0; i < n; i++) a[i] = BinaryPrimitives.ReadSingleLittleEndian(raw[(4 * i)..]);
                return Tensor.FromArray(a, shape);
            }
            case DataType.Double:
            {
                var a = new double[n];
                for (int i = 0; i < n; i++) a[i] = BinaryPrimitives.ReadDoubleLittleEndian(raw[(8 * i)..]);
                return Tensor.FromArray(a, shape);
            }
            case DataType.Float16 or DataType.Bfloat16:
            {
                var a = new float[n];
                bool half = (DataType)type == DataType.Float16;
                for (int i = 0; i < n; i++)
                {
                    ushort bits = BinaryPrimitives.ReadUInt16LittleEndian(raw[(2 * i)..]);
                    a[i] = half ? (float)BitConverter.UInt16BitsToHalf(bits) : BitConverter.Int32BitsToSingle(bits << 16);
                }
                return Tensor.FromArray(a, shape);
            }
            default:
            {
                var a = new long[n];
                for (int i = 0; i < n; i++)
                    a[i] = (DataType)type switch
                    {
                        DataType.Int64 or DataType.Uint64 => BinaryPrimitives.ReadInt64LittleEndian(raw[(8 * i)..]),
                        DataType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(raw[(4 * i)..]),
                        DataType.Uint32 => BinaryPrimitives.ReadUInt32LittleEndian(raw[(4 * i)..]),
                        DataType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(raw[(2 * i)..]),
                        DataType.Uint16 => BinaryPrimitives.ReadUInt16LittleEndian(raw[(2 * i)..]),
                        DataType.Int8 => (sbyte)raw[i],
                        _ => raw[i],
                    };
                return Tensor.FromArray(a, shape);
            }
        }
    }

    /// <summary>A tensor as an ONNX initializer / test-data tensor with little-endian raw data (float32, float64 or int64).</summary>
    internal static TensorProto FromTensor(Tensor t, string name)
    {
        var p = new TensorProto { Name = name };
        foreach (var d in t.Shape) p.Dims.Add(d);
        byte[] raw;
        switch (t.DType)
        {
            case DType.Float32:
            {
                var a = t.ToArray();
                raw = new byte[a.Length * 4];
                for (int i = 0; i < a.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(raw.AsSpan(4 * i), a[i]);
                p.DataType = (int)DataType.Float;
                break;
            }
            case DType.Float64:
            {
                var a = t.ToDoubleArray();
                raw = new byte[a.Length * 8];
                for (int i = 0; i < a.Length; i++) BinaryPrimitives.WriteDoubleLittleEndian(raw.AsSpan(8 * i), a[i]);
                p.DataType = (int)DataType.Double;
                break;
            }
            default:
            {
                var a = t.ToInt64Array();
                raw = new byte[a.Length * 8];
                for (int i = 0; i < a.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(raw.AsSpan(8 * i), a[i]);
                p.DataType = (int)DataType.Int64;
                break;
            }
        }
        p.RawData = Google.Protobuf.ByteString.CopyFrom(raw);
        return p;
    }
}
