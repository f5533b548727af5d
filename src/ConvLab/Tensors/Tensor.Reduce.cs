using ConvLab.Autograd;

namespace ConvLab;

public sealed partial class Tensor
{
    private int[] NormDims(int[]? dims, string op)
    {
        if (dims == null || dims.Length == 0) return Enumerable.Range(0, Rank).ToArray();
        var set = new SortedSet<int>();
        if (Rank == 0)
        {
            // A scalar has one implicit dimension (0 or -1), reducing over which is the identity.
            foreach (var d in dims) ShapeUtil.NormDim(d, 0, op);
            return [];
        }
        foreach (var d in dims)
            if (!set.Add(ShapeUtil.NormDim(d, Rank, op)))
                throw new ArgumentException($"{op}: dimension {d} appears more than once in [{string.Join(", ", dims)}]");
        return set.ToArray();
    }

    /// <summary>Sum over <paramref name="dims"/> (all dimensions when null or empty).</summary>
    public Tensor Sum(int[]? dims = null, bool keepdim = false)
    {
        RequireFloat("sum");
        var rd = NormDims(dims, "sum");
        var keptShape = new List<int>(); var keepdimShape = (int[])_shape.Clone();
        var perm = new List<int>();
        for (int d = 0; d < Rank; d++) if (!rd.Contains(d)) { perm.Add(d); keptShape.Add(_shape[d]); }
        int reduce = 1;
        foreach (var d in rd) { perm.Add(d); reduce *= _shape[d]; keepdimShape[d] = 1; }
        Tensor src;
        using (new NoGrad()) src = Permute(perm.ToArray()).ContiguousCopy();
        int outer = reduce == 0 ? ShapeUtil.Numel(keptShape.ToArray()) : src.Numel / Math.Max(reduce, 1);
        var outShape = keepdim ? keepdimShape : keptShape.ToArray();
        var y = IsMeta ? Analysis.MetaOps.Reduce("sum", outShape, DType, this) : Zeros(outShape, DType);
        if (reduce > 0 && !IsMeta)
        {
            if (DType == DType.Float32) Kernels.Reduce.Sum<float>(src.Span<float>(), outer, reduce, 1, y.Span<float>());
            else Kernels.Reduce.Sum<double>(src.Span<double>(), outer, reduce, 1, y.Span<double>());
        }
        var inShape = _shape;
        return Engine.Record(y, new FuncNode("SumBackward", g => [g.Reshape(keepdimShape).Expand(inShape)]), this);
    }

    /// <summary>Sum over one dimension.</summary>
    public Tensor Sum(int dim, bool keepdim = false) => Sum([dim], keepdim);

    /// <summary>Mean over <paramref name="dims"/> (all dimensions when null or empty).</summary>
    public Tensor Mean(int[]? dims = null, bool keepdim = false)
    {
        var rd = NormDims(dims, "mean");
        int count = 1;
        foreach (var d in rd) count *= _shape[d];
        return Sum(rd, keepdim).MulScalar(1.0 / count);
    }

    /// <summary>Mean over one dimension.</summary>
    public Tensor Mean(int dim, bool keepdim = false) => Mean([dim], keepdim);

    /// <summary>Maximum along <paramref name="dim"/>: values and int64 indices (PyTorch's <c>max(dim)</c>).</summary>
    public (Tensor Values, Tensor Indices) Max(int dim, bool keepdim = false) => Extreme(dim, keepdim, true, "max");

    /// <summary>Minimum along <paramref name="dim"/>: values and int64 indices.</summary>
    public (Tensor Values, Tensor Indices) Min(int dim, bool keepdim = false) => Extreme(dim, keepdim, false, "min");

    /// <summary>Maximum of all elements (a scalar tensor).</summary>
    public Tensor Max() => Numel == 0 ? throw new ArgumentException("max: empty tensor has no maximum") : Reshape(-1).Max(0).Values;

    /// <summary>Minimum of all elements (a scalar tensor).</summary>
    public Tensor Min() => Numel == 0 ? throw new ArgumentException("min: empty tensor has no minimum") : Reshape(-1).Min(0).Values;

    /// <summary>Index of the maximum along <paramref name="dim"/>, or of the flattened tensor when null.</summary>
    public Tensor ArgMax(int? dim = null, bool keepdim = false)
    {
        using var _ = new NoGrad();
        return dim == null ? Reshape(-1).Max(0).Indices : Max(dim.Value, keepdim).Indices;
    }

    private (Tensor, Tensor) Extreme(int dim, bool keepdim, bool max, string op)
    {
        RequireFloat(op);
        int d = ShapeUtil.NormDim(dim, Rank, op);
        int reduce = Rank == 0 ? 1 : _shape[d];
        if (reduce == 0) throw new ArgumentException($"{op}: cannot reduce over dimension {d} of size 0");
        int outer = 1, inner = 1;
        for (int i = 0; i < d; i++) outer *= _shape[i];
        for (int i = d + 1; i < Rank; i++) inner *= _shape[i];
        var keepShape = (int[])_shape.Clone();
        if (Rank > 0) keepShape[d] = 1;
        var outShape = keepdim || Rank == 0 ? keepShape : _shape.Where((_, i) => i != d).ToArray();
        var values = Zeros(outShape, DType);
        var indices = Zeros(outShape, DType.Int64);
        if (DType == DType.Float32) Kernels.Reduce.ArgExtreme<float>(Read<float>(), outer, reduce, inner, values.Span<float>(), indices.Span<long>(), max);
        else Kernels.Reduce.ArgExtreme<double>(Read<double>(), outer, reduce, inner, values.Span<double>(), indices.Span<long>(), max);
        var inShape = _shape; var dtype = DType;
        values = Engine.Record(values, new FuncNode(max ? "MaxBackward" : "MinBackward", g =>
        {
            var gi = Zeros(inShape, dtype);
            var idx = indices.Read<long>();
            var gd = g.ToDoubleArray();
            for (int o = 0; o < outer; o++)
                for (int i = 0; i < inner; i++)
                {
                    int k = o * inner + i;
                    gi.SetFlat((o * reduce + (int)idx[k]) * inner + i, gd[k]);
                }
            return [gi];
        }), this);
        return (values, indices);
    }
}
