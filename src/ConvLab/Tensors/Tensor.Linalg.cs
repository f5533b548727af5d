using ConvLab.Autograd;

namespace ConvLab;

public sealed partial class Tensor
{
    /// <summary>Batched matrix product of (B, n, m) and (B, m, p) tensors (PyTorch's <c>bmm</c>).</summary>
    public Tensor Bmm(Tensor other)
    {
        if (Rank != 3 || other.Rank != 3)
            throw new ArgumentException($"bmm: expected two 3-D tensors, got shapes {ShapeUtil.Format(_shape)} and {ShapeUtil.Format(other._shape)}");
        if (_shape[0] != other._shape[0] || _shape[2] != other._shape[1])
            throw new ArgumentException($"bmm: shapes {ShapeUtil.Format(_shape)} and {ShapeUtil.Format(other._shape)} cannot be multiplied (expected (B,n,m) and (B,m,p))");
        var (a, b) = Promote(this, other, "bmm");
        var ac = a.Detach().Contiguous(); var bc = b.Detach().Contiguous();
        var y = BmmCore(ac, false, bc, false);
        if (!Engine.WillRecord(a, b)) return y;
        return Engine.Record(y, new FuncNode("BmmBackward", g =>
        {
            var gc = g.Contiguous();
            return [BmmCore(gc, false, bc, true), BmmCore(ac, true, gc, false)];
        }), a, b);
    }

    /// <summary>op(a)·op(b) per batch for contiguous 3-D tensors; transposition is folded into the GEMM.</summary>
    internal static Tensor BmmCore(Tensor a, bool transA, Tensor b, bool transB)
    {
        int batch = a._shape[0];
        int n = transA ? a._shape[2] : a._shape[1];
        int k = transA ? a._shape[1] : a._shape[2];
        int p = transB ? b._shape[1] : b._shape[2];
        var y = Zeros([batch, n, p], a.DType);
        int lda = a._shape[2], ldb = b._shape[2];
        for (int i = 0; i < batch; i++)
            Gemm(transA, transB, n, p, k, a, a._offset + i * a._shape[1] * a._shape[2], lda,
                b, b._offset + i * b._shape[1] * b._shape[2], ldb, y, i * n * p, p);
        return y;
    }

    /// <summary>C = op(A)·op(B) on the buffers of same-dtype float tensors (row-major, offsets into the buffers); C is overwritten.</summary>
    internal static void Gemm(bool transA, bool transB, int m, int n, int k, Tensor a, int aOff, int lda, Tensor b, int bOff, int ldb, Tensor c, int cOff, int ldc)
    {
        if (a.DType == DType.Float32)
            Kernels.Gemm.Run(transA, transB, m, n, k, (float[])a.Storage, aOff, lda, (float[])b.Storage, bOff, ldb, (float[])c.Storage, cOff, ldc, false);
        else
            Kernels.Gemm.Run(transA, transB, m, n, k, (double[])a.Storage, aOff, lda, (double[])b.Storage, bOff, ldb, (double[])c.Storage, cOff, ldc, false);
    }

    /// <summary>Matrix product with PyTorch's <c>matmul</c> rules: vectors are promoted and squeezed back, batch dimensions broadcast.</summary>
    public Tensor Matmul(Tensor other)
    {
        if (Rank == 0 || other.Rank == 0)
            throw new ArgumentException($"matmul: both arguments need at least one dimension, got shapes {ShapeUtil.Format(_shape)} and {ShapeUtil.Format(other._shape)}");
        var a = Rank == 1 ? Unsqueeze(0) : this;
        var b = other.Rank == 1 ? other.Unsqueeze(1) : other;
        int n = a._shape[^2], m = a._shape[^1], m2 = b._shape[^2], p = b._shape[^1];
        if (m != m2)
            throw new ArgumentException($"matmul: shapes {ShapeUtil.Format(_shape)} and {ShapeUtil.Format(other._shape)} cannot be multiplied ({m} vs {m2})");
        var batch = ShapeUtil.Broadcast(a._shape.AsSpan(0, a.Rank - 2), b._shape.AsSpan(0, b.Rank - 2), "matmul");
        int bn = ShapeUtil.Numel(batch);
        var a3 = a.Expand([.. batch, n, m]).Reshape(bn, n, m);
        var b3 = b.Expand([.. batch, m, p]).Reshape(bn, m, p);
        var y = a3.Bmm(b3).Reshape([.. batch, n, p]);
        if (Rank == 1) y = y.Squeeze(-2);
        if (other.Rank == 1) y = y.Squeeze(-1);
        return y;
    }

    /// <summary>Concatenates tensors along an existing dimension (PyTorch's <c>cat</c>).</summary>
    public static Tensor Cat(IReadOnlyList<Tensor> tensors, int dim = 0)
    {
        if (tensors.Count == 0) throw new ArgumentException("cat: expected a non-empty list of tensors");
        var first = tensors[0];
        int d = ShapeUtil.NormDim(dim, first.Rank, "cat");
        var dtype = first.DType;
        foreach (var t in tensors) if (t.DType == DType.Float64) dtype = DType.Float64;
        int total = 0;
        for (int i = 0; i < tensors.Count; i++)
        {
            var t = tensors[i];
            if (t.Rank != first.Rank)
                throw new ArgumentException($"cat: tensor {i} has rank {t.Rank} but tensor 0 has rank {first.Rank}");
            for (int k = 0; k < first.Rank; k++)
                if (k != d && t._shape[k] != first._shape[k])
                    throw new ArgumentException($"cat: sizes must match except in dimension {d}; tensor {i} has shape {ShapeUtil.Format(t._shape)} but tensor 0 has {ShapeUtil.Format(first._shape)}");
            if (t.DType == DType.Int64 && dtype != DType.Int64)
                throw new ArgumentException("cat: cannot mix int64 and floating-point tensors");
            total += t._shape[d];
        }
        var shape = (int[])first._shape.Clone(); shape[d] = total;
        bool meta = tensors.Any(t => t.IsMeta);
        var y = meta ? Analysis.MetaOps.Cat(shape, dtype, tensors) : Zeros(shape, dtype);
        int at = 0;
        var sizes = new int[tensors.Count];
        for (int i = 0; i < tensors.Count; i++)
        {
            sizes[i] = tensors[i]._shape[d];
            if (!meta) y.Slice(d, at, at + sizes[i]).CopyFromDense(tensors[i].Detach().To(dtype).ContiguousCopy());
            at += sizes[i];
        }
        var inputs = tensors.ToArray();
        Analysis.OpRecorder.Record(y, "cat", inputs, ("dim", d));
        return Autograd.Engine.Record(y, new FuncNode("CatBackward", g =>
        {
            var grads = new Tensor?[sizes.Length];
            int o = 0;
            for (int i = 0; i < sizes.Length; i++) { grads[i] = g.Slice(d, o, o + sizes[i]).To(inputs[i].DType); o += sizes[i]; }
            return grads;
        }), inputs);
    }

    /// <summary>Stacks same-shaped tensors along a new dimension (PyTorch's <c>stack</c>).</summary>
    public static Tensor Stack(IReadOnlyList<Tensor> tensors, int dim = 0)
    {
        if (tensors.Count == 0) throw new ArgumentException("stack: expected a non-empty list of tensors");
        for (int i = 1; i < tensors.Count; i++)
            if (!tensors[i].Shape.SequenceEqual(tensors[0].Shape))
                throw new ArgumentException($"stack: expects each tensor to be equal size, but tensor 0 has shape {ShapeUtil.Format(tensors[0]._shape)} and tensor {i} has {ShapeUtil.Format(tensors[i]._shape)}");
        int d = ShapeUtil.NormDim(dim, tensors[0].Rank + 1, "stack");
        return Cat(tensors.Select(t => t.Unsqueeze(d)).ToList(), d);
    }

    /// <summary>Splits into chunks of <paramref name="splitSize"/> along <paramref name="dim"/> (the last may be smaller); views.</summary>
    public Tensor[] Split(int splitSize, int dim = 0)
    {
        if (splitSize <= 0) throw new ArgumentException($"split: split_size must be positive, got {splitSize}");
        int d = ShapeUtil.NormDim(dim, Rank, "split");
        var parts = new List<Tensor>();
        for (int s = 0; s < _shape[d]; s += splitSize) parts.Add(Narrow(d, s, Math.Min(splitSize, _shape[d] - s)));
        return parts.ToArray();
    }

    /// <summary>Splits into pieces of the given sizes along <paramref name="dim"/>; views.</summary>
    public Tensor[] Split(int[] sizes, int dim = 0)
    {
        int d = ShapeUtil.NormDim(dim, Rank, "split");
        if (sizes.Any(s => s < 0) || sizes.Sum() != _shape[d])
            throw new ArgumentException($"split: sizes [{string.Join(", ", sizes)}] must be non-negative and sum to {_shape[d]} (dimension {d})");
        var parts = new Tensor[sizes.Length];
        int at = 0;
        for (int i = 0; i < sizes.Length; i++) { parts[i] = Narrow(d, at, sizes[i]); at += sizes[i]; }
        return parts;
    }

    /// <summary>Splits into <paramref name="chunks"/> nearly equal pieces (PyTorch's <c>chunk</c>).</summary>
    public Tensor[] Chunk(int chunks, int dim = 0)
    {
        if (chunks <= 0) throw new ArgumentException($"chunk: chunks must be positive, got {chunks}");
        int d = ShapeUtil.NormDim(dim, Rank, "chunk");
        return Split(Math.Max(1, (_shape[d] + chunks - 1) / chunks), d);
    }
}
