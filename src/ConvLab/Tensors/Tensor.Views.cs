using ConvLab.Autograd;

namespace ConvLab;

public sealed partial class Tensor
{
    private Tensor ViewOf(int[] shape, int[] strides, int offset)
    {
        var v = new Tensor(Storage, shape, strides, offset);
        if (IsMeta) Analysis.Tracer.Current?.OnView(this, v);
        return v;
    }

    private int[] InferShape(ReadOnlySpan<int> shape, string op)
    {
        var result = shape.ToArray();
        int infer = -1; long known = 1;
        for (int i = 0; i < result.Length; i++)
        {
            if (result[i] == -1)
            {
                if (infer >= 0) throw new ArgumentException($"{op}: only one dimension can be -1 in {ShapeUtil.Format(shape)}");
                infer = i;
            }
            else if (result[i] < 0) throw new ArgumentException($"{op}: invalid dimension {result[i]} in {ShapeUtil.Format(shape)}");
            else known *= result[i];
        }
        if (infer >= 0)
        {
            if (known == 0 || Numel % known != 0)
                throw new ArgumentException($"{op}: shape {ShapeUtil.Format(shape)} is invalid for input of size {Numel}");
            result[infer] = (int)(Numel / known);
        }
        else if (known != Numel)
            throw new ArgumentException($"{op}: shape {ShapeUtil.Format(shape)} is invalid for input of size {Numel} (shape {ShapeUtil.Format(_shape)})");
        return result;
    }

    /// <summary>A view with a new shape over the same data; needs a contiguous tensor (use <see cref="Reshape"/> otherwise). One entry may be -1.</summary>
    public Tensor View(params int[] shape)
    {
        var s = InferShape(shape, "view");
        if (!IsContiguous)
            throw new InvalidOperationException($"view: tensor of shape {ShapeUtil.Format(_shape)} is not contiguous; use Reshape() or Contiguous().View()");
        var inShape = _shape;
        var v = ViewOf(s, ShapeUtil.ContiguousStrides(s), _offset);
        Analysis.OpRecorder.Record(v, "view", [this], ("shape", s));
        return Engine.Record(v, new FuncNode("ViewBackward", g => [g.Reshape(inShape)]), this);
    }

    /// <summary>A tensor with a new shape: a view when the data is contiguous, otherwise a copy. One entry may be -1.</summary>
    public Tensor Reshape(params int[] shape)
    {
        InferShape(shape, "reshape");
        return IsContiguous ? View(shape) : Contiguous().View(shape);
    }

    /// <summary>This tensor if already contiguous, else a contiguous copy (recorded for autograd).</summary>
    public Tensor Contiguous() => IsContiguous ? this : Clone();

    /// <summary>Reorders dimensions (PyTorch's <c>permute</c>); a view.</summary>
    public Tensor Permute(params int[] dims)
    {
        if (dims.Length != Rank)
            throw new ArgumentException($"permute: number of dims {dims.Length} does not match tensor rank {Rank}");
        var seen = new bool[Rank];
        var nd = new int[Rank];
        for (int i = 0; i < Rank; i++)
        {
            int d = ShapeUtil.NormDim(dims[i], Rank, "permute");
            if (seen[d]) throw new ArgumentException($"permute: dimension {d} repeated in [{string.Join(", ", dims)}]");
            seen[d] = true; nd[i] = d;
        }
        var shape = new int[Rank]; var strides = new int[Rank];
        for (int i = 0; i < Rank; i++) { shape[i] = _shape[nd[i]]; strides[i] = _strides[nd[i]]; }
        var inverse = new int[Rank];
        for (int i = 0; i < Rank; i++) inverse[nd[i]] = i;
        var p = Analysis.OpRecorder.Record(ViewOf(shape, strides, _offset), "permute", [this], ("dims", nd));
        return Engine.Record(p, new FuncNode("PermuteBackward", g => [g.Permute(inverse)]), this);
    }

    /// <summary>Swaps two dimensions; a view.</summary>
    public Tensor Transpose(int dim0, int dim1)
    {
        var p = Enumerable.Range(0, Rank).ToArray();
        int a = ShapeUtil.NormDim(dim0, Rank, "transpose"), b = ShapeUtil.NormDim(dim1, Rank, "transpose");
        if (Rank == 0) return Permute();
        (p[a], p[b]) = (p[b], p[a]);
        return Permute(p);
    }

    /// <summary>Transpose of a 2-D tensor (PyTorch's <c>.T</c> for matrices).</summary>
    public Tensor T => Rank == 2 ? Transpose(0, 1) : throw new InvalidOperationException($"T: expects a 2-D tensor, got rank {Rank}; use Permute");

    /// <summary>Elements start, start+step, ... below end along <paramref name="dim"/> (Python's <c>t[start:end:step]</c>); a view. Negative bounds count from the end and are clamped.</summary>
    public Tensor Slice(int dim, int start, int end, int step = 1)
    {
        if (Rank == 0) throw new ArgumentException("slice: cannot be applied to a 0-dim tensor");
        int d = ShapeUtil.NormDim(dim, Rank, "slice");
        if (step <= 0) throw new ArgumentException($"slice: step must be positive, got {step}");
        int size = _shape[d];
        if (start < 0) start += size;
        if (end < 0) end += size;
        start = Math.Clamp(start, 0, size);
        end = Math.Clamp(end, start, size);
        int len = (end - start + step - 1) / step;
        var shape = (int[])_shape.Clone(); shape[d] = len;
        var strides = (int[])_strides.Clone(); strides[d] *= step;
        var inShape = _shape; var dtype = DType;
        int s0 = start;
        var view = Analysis.OpRecorder.Record(ViewOf(shape, strides, _offset + start * _strides[d]), "slice", [this], ("dim", d), ("start", start), ("end", end), ("step", step));
        return Engine.Record(view, new FuncNode("SliceBackward", g =>
        {
            var full = Zeros(inShape, dtype);
            full.Slice(d, s0, s0 + (len - 1) * step + 1, step).CopyFromDense(g.ContiguousCopy());
            return [full];
        }), this);
    }

    /// <summary><paramref name="length"/> elements from <paramref name="start"/> along a dimension (PyTorch's <c>narrow</c>); a view.</summary>
    public Tensor Narrow(int dim, int start, int length)
    {
        if (Rank == 0) throw new ArgumentException("narrow: cannot be applied to a 0-dim tensor");
        int d = ShapeUtil.NormDim(dim, Rank, "narrow");
        if (start < 0) start += _shape[d];
        if (start < 0 || length < 0 || start + length > _shape[d])
            throw new ArgumentException($"narrow: start {start} + length {length} exceeds dimension {d} of size {_shape[d]}");
        return Slice(d, start, start + length);
    }

    /// <summary>The slice at <paramref name="index"/> along <paramref name="dim"/>, removing that dimension; a view.</summary>
    public Tensor Select(int dim, int index)
    {
        if (Rank == 0) throw new ArgumentException("select: cannot be applied to a 0-dim tensor");
        int d = ShapeUtil.NormDim(dim, Rank, "select");
        if (index < -_shape[d] || index >= _shape[d])
            throw new ArgumentException($"select: index {index} is out of range for dimension {d} of size {_shape[d]}");
        if (index < 0) index += _shape[d];
        return Narrow(d, index, 1).Squeeze(d);
    }

    /// <summary>Removes all dimensions of size 1, or only <paramref name="dim"/> if given and of size 1; a view.</summary>
    public Tensor Squeeze(int? dim = null)
    {
        var keep = new List<int>();
        int target = dim.HasValue ? ShapeUtil.NormDim(dim.Value, Rank, "squeeze") : -1;
        for (int i = 0; i < Rank; i++)
            if (!(_shape[i] == 1 && (target < 0 || target == i))) keep.Add(i);
        var shape = keep.Select(i => _shape[i]).ToArray();
        var strides = keep.Select(i => _strides[i]).ToArray();
        var inShape = _shape;
        // Recorded as the reshape it is, for exporters.
        var view = Analysis.OpRecorder.Record(ViewOf(shape, strides, _offset), "view", [this], ("shape", shape));
        return Engine.Record(view, new FuncNode("SqueezeBackward", g => [g.Reshape(inShape)]), this);
    }

    /// <summary>Inserts a dimension of size 1 at <paramref name="dim"/> (negative counts from the end of the result); a view.</summary>
    public Tensor Unsqueeze(int dim)
    {
        int d = ShapeUtil.NormDim(dim, Rank + 1, "unsqueeze");
        var shape = new List<int>(_shape); var strides = new List<int>(_strides);
        shape.Insert(d, 1);
        strides.Insert(d, d < Rank ? _strides[d] * _shape[d] : 1);
        var inShape = _shape;
        var view = Analysis.OpRecorder.Record(ViewOf(shape.ToArray(), strides.ToArray(), _offset), "view", [this], ("shape", shape.ToArray()));
        return Engine.Record(view, new FuncNode("UnsqueezeBackward", g => [g.Reshape(inShape)]), this);
    }

    /// <summary>Broadcasts to a larger shape without copying (size-1 dims repeat; -1 keeps a size); a view.</summary>
    public Tensor Expand(params int[] shape)
    {
        if (shape.Length < Rank)
            throw new ArgumentException($"expand: target {ShapeUtil.Format(shape)} has fewer dimensions than tensor {ShapeUtil.Format(_shape)}");
        var target = shape.ToArray();
        int lead = target.Length - Rank;
        for (int i = 0; i < target.Length; i++)
        {
            int own = i < lead ? 1 : _shape[i - lead];
            if (target[i] == -1)
            {
                if (i < lead) throw new ArgumentException($"expand: -1 is not allowed for a new leading dimension in {ShapeUtil.Format(shape)}");
                target[i] = own;
            }
            else if (own != 1 && own != target[i])
                throw new ArgumentException($"expand: size {own} of dimension {i - lead} cannot expand to {target[i]} (tensor {ShapeUtil.Format(_shape)}, target {ShapeUtil.Format(shape)})");
        }
        var strides = ShapeUtil.BroadcastStrides(_shape, _strides, target);
        var inShape = _shape;
        return Engine.Record(ViewOf(target, strides, _offset), new FuncNode("ExpandBackward", g => [g.SumToShape(inShape)]), this);
    }

    /// <summary>Flattens dimensions start..end into one (PyTorch's <c>flatten</c>).</summary>
    public Tensor Flatten(int startDim = 0, int endDim = -1)
    {
        if (Rank == 0) return Reshape(1);
        int s = ShapeUtil.NormDim(startDim, Rank, "flatten"), e = ShapeUtil.NormDim(endDim, Rank, "flatten");
        if (s > e) throw new ArgumentException($"flatten: start_dim {startDim} cannot come after end_dim {endDim}");
        var shape = new List<int>();
        for (int i = 0; i < s; i++) shape.Add(_shape[i]);
        int m = 1; for (int i = s; i <= e; i++) m *= _shape[i];
        shape.Add(m);
        for (int i = e + 1; i < Rank; i++) shape.Add(_shape[i]);
        return Reshape(shape.ToArray());
    }

    /// <summary>Sums a broadcast gradient back down to <paramref name="shape"/> (the adjoint of broadcasting).</summary>
    internal Tensor SumToShape(ReadOnlySpan<int> shape)
    {
        if (Shape.SequenceEqual(shape)) return this;
        int lead = Rank - shape.Length;
        var dims = new List<int>();
        for (int i = 0; i < Rank; i++)
            if (i < lead || (shape[i - lead] == 1 && _shape[i] != 1)) dims.Add(i);
        var s = dims.Count > 0 ? Sum(dims.ToArray(), keepdim: true) : this;
        return s.Reshape(shape.ToArray());
    }
}
