using ConvLab.Autograd;
using ConvLab.Autograd.Nodes;
using ConvLab.Kernels;

namespace ConvLab.NN.Functional;

public static partial class F
{
    /// <summary>
    /// Pads the trailing dimensions of <paramref name="input"/> (PyTorch's <c>F.pad</c>).
    /// <paramref name="pad"/> lists (before, after) pairs starting from the LAST dimension; its length
    /// is even and at most twice the rank. Modes: "constant" (fill with <paramref name="value"/>; negative
    /// pads crop), "reflect" (mirror without repeating the edge; pad &lt; size), "replicate" (repeat the
    /// edge) and "circular" (wrap around; pad &lt;= size).
    /// </summary>
    public static Tensor Pad(Tensor input, int[] pad, string mode = "constant", double value = 0)
    {
        input.RequireFloat("pad");
        var pm = CheckPad("pad", input.Shape, pad, mode);
        int m = pad.Length / 2;
        if (m == 0) return input.Clone();
        int lead = input.Rank - m;
        var inSize = input.Shape[lead..].ToArray();
        var maps = new int[m][];
        var outShape = input.Shape.ToArray();
        for (int j = 0; j < m; j++)
        {
            int dim = lead + j, p = 2 * (input.Rank - 1 - dim);
            maps[j] = Kernels.Pad.IndexMap(inSize[j], pad[p], pad[p + 1], pm);
            outShape[dim] = maps[j].Length;
        }
        if (input.IsMeta) return Analysis.MetaOps.Pad(input, outShape, pad);
        int outer = ShapeUtil.Numel(input.Shape[..lead]);
        var x = input.Detach().Contiguous();
        var y = Tensor.Zeros(outShape, input.DType);
        if (x.DType == DType.Float32)
            Kernels.Pad.Transfer(false, x.Buffer<float>(), x.StorageOffset, y.Buffer<float>(), 0, outer, inSize, maps, (float)value);
        else
            Kernels.Pad.Transfer(false, x.Buffer<double>(), x.StorageOffset, y.Buffer<double>(), 0, outer, inSize, maps, value);
        Analysis.OpRecorder.Record(y, "pad", [input], ("pad", pad), ("mode", mode), ("value", value));
        if (!Engine.WillRecord(input)) return y;
        return Engine.Record(y, new PadBackward(input.Shape.ToArray(), outer, inSize, maps), input);
    }

    /// <summary>Validates F.pad's arguments for <paramref name="op"/> (also used by convolutions with a padding mode).</summary>
    internal static PadMode CheckPad(string op, ReadOnlySpan<int> shape, int[] pad, string mode)
    {
        var pm = mode switch
        {
            "constant" => PadMode.Constant,
            "reflect" => PadMode.Reflect,
            "replicate" => PadMode.Replicate,
            "circular" => PadMode.Circular,
            _ => throw new ArgumentException($"{op}: padding mode must be 'constant', 'reflect', 'replicate' or 'circular', got '{mode}'"),
        };
        if (pad == null || pad.Length % 2 != 0)
            throw new ArgumentException($"{op}: padding length must be divisible by 2, got {pad?.Length ?? 0}");
        if (pad.Length / 2 > shape.Length)
            throw new ArgumentException($"{op}: padding length {pad.Length} is too large for an input of rank {shape.Length} (at most {2 * shape.Length})");
        for (int p = 0; p < pad.Length; p += 2)
        {
            int dim = shape.Length - 1 - p / 2, size = shape[dim], l = pad[p], r = pad[p + 1];
            string where = $"padding ({l}, {r}) of dimension {dim} of input {ShapeUtil.Format(shape)}";
            if (pm != PadMode.Constant && (l < 0 || r < 0))
                throw new ArgumentException($"{op}: negative padding is only supported in constant mode, got {where}");
            if (pm == PadMode.Constant && (long)size + l + r < 0)
                throw new ArgumentException($"{op}: {where} gives a negative output size {(long)size + l + r}");
            if (pm == PadMode.Reflect && (l >= size || r >= size) && (l > 0 || r > 0))
                throw new ArgumentException($"{op}: reflect padding must be smaller than the input size, got {where}");
            if (pm == PadMode.Circular && (l > size || r > size || (size == 0 && l + r > 0)))
                throw new ArgumentException($"{op}: circular padding must be at most the input size, got {where}");
            if (pm == PadMode.Replicate && size == 0 && l + r > 0)
                throw new ArgumentException($"{op}: replicate padding needs a non-empty dimension, got {where}");
        }
        return pm;
    }
}
