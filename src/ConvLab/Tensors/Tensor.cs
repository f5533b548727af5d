using System.Numerics;
using ConvLab.Autograd;

namespace ConvLab;

/// <summary>Element type of a <see cref="Tensor"/>.</summary>
public enum DType
{
    /// <summary>32-bit IEEE float: the default for data, parameters and activations.</summary>
    Float32,
    /// <summary>64-bit IEEE float: used for numeric gradient checks and exact reference arithmetic.</summary>
    Float64,
    /// <summary>64-bit integer: class targets, pooling indices, argmax results. Not differentiable.</summary>
    Int64,
}

/// <summary>
/// An n-dimensional array with shape and strides over a shared managed buffer, and the entry point of
/// reverse-mode autograd. Views (reshape, permute, slice, expand, ...) share the buffer of their base.
/// Memory is managed by the GC: there is nothing to dispose.
/// </summary>
public sealed partial class Tensor
{
    internal readonly Array Storage;
    internal readonly int[] _shape;
    internal readonly int[] _strides;
    internal readonly int _offset;
    private bool _requiresGrad;

    internal Tensor(Array storage, int[] shape, int[] strides, int offset)
    {
        Storage = storage;
        _shape = shape;
        _strides = strides;
        _offset = offset;
        DType = storage switch
        {
            float[] => DType.Float32,
            double[] => DType.Float64,
            long[] => DType.Int64,
            _ => throw new ArgumentException($"tensor: unsupported storage type {storage.GetType().Name}"),
        };
        Numel = ShapeUtil.Numel(shape);
    }

    internal Tensor(Array storage, int[] shape) : this(storage, shape, ShapeUtil.ContiguousStrides(shape), 0) { }

    /// <summary>Element type.</summary>
    public DType DType { get; }

    /// <summary>Sizes of each dimension (PyTorch's <c>shape</c>).</summary>
    public ReadOnlySpan<int> Shape => _shape;

    /// <summary>Element step of each dimension in the underlying buffer.</summary>
    public ReadOnlySpan<int> Strides => _strides;

    /// <summary>Offset of element [0,...,0] in the underlying buffer.</summary>
    public int StorageOffset => _offset;

    /// <summary>Number of dimensions.</summary>
    public int Rank => _shape.Length;

    /// <summary>Number of elements.</summary>
    public int Numel { get; }

    /// <summary>The size of dimension <paramref name="dim"/> (negative counts from the end).</summary>
    public int Size(int dim) => _shape[ShapeUtil.NormDim(dim, Rank, "size")];

    /// <summary>True when the elements are laid out densely in row-major order.</summary>
    public bool IsContiguous => ShapeUtil.IsContiguous(_shape, _strides);

    /// <summary>
    /// A meta tensor: shape, dtype and strides but no data (PyTorch's <c>device="meta"</c>). Operations on it
    /// validate their arguments and return meta results without touching a kernel, so a model's forward runs at
    /// full input size in microseconds; the architecture calculator (<c>ConvLab.Analysis</c>) uses this for shape
    /// inference. Reading elements of a meta tensor is an error.
    /// </summary>
    public static Tensor Meta(ReadOnlySpan<int> shape, DType dtype = DType.Float32)
    {
        foreach (var s in shape)
            if (s < 0) throw new ArgumentException($"meta: negative dimension in shape {ShapeUtil.Format(shape)}");
        return new(NewStorage(dtype, 0), shape.ToArray());
    }

    /// <summary>A data-less stand-in with this tensor's shape, dtype and producer, for a released autograd graph.</summary>
    internal Tensor GraphStub() => new(NewStorage(DType, 0), _shape) { GradFn = GradFn, _requiresGrad = _requiresGrad };

    /// <summary>True for a data-less <see cref="Meta"/> tensor (and its views).</summary>
    public bool IsMeta => Storage.Length == 0 && Numel > 0;

    /// <summary>True for float32 and float64 tensors.</summary>
    public bool IsFloatingPoint => DType != DType.Int64;

    // ---------------------------------------------------------------- autograd state

    /// <summary>
    /// Whether operations on this tensor are recorded for <see cref="Backward"/>. Only floating-point
    /// tensors can require gradients. Setting it on a non-leaf is refused, as in PyTorch.
    /// </summary>
    public bool RequiresGrad
    {
        get => _requiresGrad;
        set
        {
            if (value && !IsFloatingPoint)
                throw new InvalidOperationException("requires_grad: only floating-point tensors can require gradients (this one is int64)");
            if (GradFn != null && !value)
                throw new InvalidOperationException("requires_grad: cannot clear requires_grad on a non-leaf tensor; use Detach()");
            _requiresGrad = value;
        }
    }

    /// <summary>Accumulated gradient after <see cref="Backward"/> (leaf tensors only, as in PyTorch).</summary>
    public Tensor? Grad { get; set; }

    /// <summary>The autograd node that produced this tensor, or null for a leaf.</summary>
    public Node? GradFn { get; internal set; }

    /// <summary>True when this tensor was not produced by a recorded operation.</summary>
    public bool IsLeaf => GradFn == null;

    /// <summary>Sets <see cref="RequiresGrad"/> and returns this tensor (PyTorch's <c>requires_grad_()</c>).</summary>
    public Tensor RequiresGrad_(bool requiresGrad = true)
    {
        RequiresGrad = requiresGrad;
        return this;
    }

    /// <summary>
    /// Computes the gradient of this tensor with respect to every leaf that requires it and adds it to
    /// their <see cref="Grad"/>. A scalar needs no <paramref name="gradient"/>; otherwise pass the upstream
    /// gradient of the same shape. The graph's saved tensors are freed afterwards unless
    /// <paramref name="retainGraph"/> is true; a second backward through a freed graph throws.
    /// </summary>
    public void Backward(Tensor? gradient = null, bool retainGraph = false) => Engine.Backward(this, gradient, retainGraph);

    /// <summary>A tensor sharing this one's data but cut from the graph (never requires grad).</summary>
    public Tensor Detach()
    {
        var d = new Tensor(Storage, _shape, _strides, _offset);
        if (IsMeta) Analysis.Tracer.Current?.OnView(this, d);
        return d;
    }

    // ---------------------------------------------------------------- raw access

    /// <summary>The whole underlying buffer (not only this view's elements).</summary>
    internal T[] Buffer<T>() => Storage as T[]
        ?? throw new InvalidOperationException($"tensor: expected dtype {typeof(T).Name} but tensor is {DType}");

    /// <summary>This tensor's elements as a span; only valid for contiguous tensors.</summary>
    internal Span<T> Span<T>()
    {
        if (!IsContiguous) throw new InvalidOperationException("tensor: Span requires a contiguous tensor; call Contiguous() first");
        return Buffer<T>().AsSpan(_offset, Numel);
    }

    /// <summary>This tensor's elements in row-major order: the buffer itself when contiguous, else a copy.</summary>
    internal ReadOnlySpan<T> Read<T>() => IsMeta ? throw new InvalidOperationException("tensor: a meta tensor has no data to read") : IsContiguous ? Buffer<T>().AsSpan(_offset, Numel) : ContiguousCopy().Buffer<T>();

    /// <summary>The elements in row-major order as a new float array.</summary>
    public float[] ToArray()
    {
        var result = new float[Numel];
        switch (DType)
        {
            case DType.Float32: Read<float>().CopyTo(result); break;
            case DType.Float64: { var s = Read<double>(); for (int i = 0; i < s.Length; i++) result[i] = (float)s[i]; break; }
            default: { var s = Read<long>(); for (int i = 0; i < s.Length; i++) result[i] = s[i]; break; }
        }
        return result;
    }

    /// <summary>The elements in row-major order as a new double array.</summary>
    public double[] ToDoubleArray()
    {
        var result = new double[Numel];
        switch (DType)
        {
            case DType.Float32: { var s = Read<float>(); for (int i = 0; i < s.Length; i++) result[i] = s[i]; break; }
            case DType.Float64: Read<double>().CopyTo(result); break;
            default: { var s = Read<long>(); for (int i = 0; i < s.Length; i++) result[i] = s[i]; break; }
        }
        return result;
    }

    /// <summary>The elements in row-major order as a new long array (values truncated for float tensors).</summary>
    public long[] ToInt64Array()
    {
        if (DType == DType.Int64) return Read<long>().ToArray();
        var d = ToDoubleArray();
        var result = new long[d.Length];
        for (int i = 0; i < d.Length; i++) result[i] = (long)d[i];
        return result;
    }

    /// <summary>The value of a one-element tensor.</summary>
    public double Item()
    {
        if (Numel != 1) throw new InvalidOperationException($"item: tensor has {Numel} elements, expected exactly 1");
        return ToDoubleArray()[0];
    }

    /// <summary>Reads one element by its multi-index (negative indices count from the end).</summary>
    [System.Runtime.CompilerServices.IndexerName("At")]
    public double this[params int[] index]
    {
        get
        {
            int off = ElementOffset(index);
            return DType switch
            {
                DType.Float32 => ((float[])Storage)[off],
                DType.Float64 => ((double[])Storage)[off],
                _ => ((long[])Storage)[off],
            };
        }
        set
        {
            if (RequiresGrad && GradMode.IsEnabled)
                throw new InvalidOperationException("index assignment: a tensor that requires grad cannot be modified in place; use NoGrad or Detach()");
            int off = ElementOffset(index);
            switch (DType)
            {
                case DType.Float32: ((float[])Storage)[off] = (float)value; break;
                case DType.Float64: ((double[])Storage)[off] = value; break;
                default: ((long[])Storage)[off] = (long)value; break;
            }
        }
    }

    private int ElementOffset(int[] index)
    {
        if (IsMeta) throw new InvalidOperationException("index: a meta tensor has no data");
        if (index.Length != Rank)
            throw new ArgumentException($"index: tensor has {Rank} dimensions but {index.Length} indices were given");
        int off = _offset;
        for (int d = 0; d < Rank; d++)
        {
            int i = index[d];
            if (i < -_shape[d] || i >= _shape[d])
                throw new ArgumentOutOfRangeException(nameof(index), $"index: index {i} is out of range for dimension {d} of size {_shape[d]}");
            if (i < 0) i += _shape[d];
            off += i * _strides[d];
        }
        return off;
    }

    /// <summary>A dense row-major copy of this view's elements (no autograd).</summary>
    internal Tensor ContiguousCopy()
    {
        if (IsMeta) return Analysis.MetaOps.Output("contiguous", _shape, DType, this);
        Array dst = NewStorage(DType, Numel, clear: false);
        switch (DType)
        {
            case DType.Float32: Kernels.Copy.Strided((float[])Storage, _offset, _shape, _strides, (float[])dst); break;
            case DType.Float64: Kernels.Copy.Strided((double[])Storage, _offset, _shape, _strides, (double[])dst); break;
            default: Kernels.Copy.Strided((long[])Storage, _offset, _shape, _strides, (long[])dst); break;
        }
        return new Tensor(dst, (int[])_shape.Clone());
    }

    /// <summary>New storage, zeroed unless <paramref name="clear"/> is false (the caller then writes every element).</summary>
    internal static Array NewStorage(DType dtype, int n, bool clear = true) => dtype switch
    {
        DType.Float32 => StorageRecycler.Take<float>(n, clear),
        DType.Float64 => StorageRecycler.Take<double>(n, clear),
        _ => StorageRecycler.Take<long>(n, clear),
    };

    /// <summary>A tensor whose contents are undefined: for kernels that overwrite every element (saves a zeroing pass).</summary>
    internal static Tensor Uninitialized(int[] shape, DType dtype) => new(NewStorage(dtype, ShapeUtil.Numel(shape), clear: false), shape);

    /// <summary>
    /// Set on a gradient a node allocated for this backward alone and hands to no one else: the engine may then make it
    /// a leaf's <see cref="Grad"/> instead of copying it (PyTorch steals such a gradient when nothing else refers to it).
    /// </summary>
    internal bool FreshGradient { get; set; }

    /// <inheritdoc/>
    public override string ToString() => IsMeta ? $"tensor(..., size={ShapeUtil.Format(_shape)}, device='meta')" : TensorFormatter.Format(this);
}

