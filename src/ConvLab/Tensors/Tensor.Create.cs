namespace ConvLab;

public sealed partial class Tensor
{
    /// <summary>A tensor of zeros.</summary>
    public static Tensor Zeros(ReadOnlySpan<int> shape, DType dtype = DType.Float32)
    {
        var s = shape.ToArray();
        return new Tensor(NewStorage(dtype, ShapeUtil.Numel(s)), s);
    }

    /// <summary>A tensor of zeros (params form: <c>Tensor.Zeros(2, 3)</c>).</summary>
    public static Tensor Zeros(params int[] shape) => Zeros((ReadOnlySpan<int>)shape);

    /// <summary>A tensor of ones.</summary>
    public static Tensor Ones(ReadOnlySpan<int> shape, DType dtype = DType.Float32) => Full(shape, 1.0, dtype);

    /// <summary>A tensor of ones (params form).</summary>
    public static Tensor Ones(params int[] shape) => Ones((ReadOnlySpan<int>)shape);

    /// <summary>A tensor filled with <paramref name="value"/>.</summary>
    public static Tensor Full(ReadOnlySpan<int> shape, double value, DType dtype = DType.Float32)
    {
        var t = Zeros(shape, dtype);
        switch (dtype)
        {
            case DType.Float32: ((float[])t.Storage).AsSpan().Fill((float)value); break;
            case DType.Float64: ((double[])t.Storage).AsSpan().Fill(value); break;
            default: ((long[])t.Storage).AsSpan().Fill((long)value); break;
        }
        return t;
    }

    /// <summary>A zero-dimensional tensor holding one value.</summary>
    public static Tensor Scalar(double value, DType dtype = DType.Float32) => Full([], value, dtype);

    /// <summary>A float32 tensor over a copy of <paramref name="data"/> with the given shape.</summary>
    public static Tensor FromArray(float[] data, params int[] shape) => FromStorage(data.ToArray(), shape, "from_array");

    /// <summary>A float64 tensor over a copy of <paramref name="data"/> with the given shape.</summary>
    public static Tensor FromArray(double[] data, params int[] shape) => FromStorage(data.ToArray(), shape, "from_array");

    /// <summary>An int64 tensor over a copy of <paramref name="data"/> with the given shape.</summary>
    public static Tensor FromArray(long[] data, params int[] shape) => FromStorage(data.ToArray(), shape, "from_array");

    /// <summary>A 1-D float32 tensor of the given values (PyTorch's <c>torch.tensor([...])</c>).</summary>
    public static Tensor Of(params float[] values) => FromArray(values, values.Length);

    private static Tensor FromStorage(Array data, int[] shape, string op)
    {
        int n = ShapeUtil.Numel(shape);
        if (n != data.Length)
            throw new ArgumentException($"{op}: shape {ShapeUtil.Format(shape)} needs {n} elements but {data.Length} were given");
        return new Tensor(data, (int[])shape.Clone());
    }

    /// <summary>Values start, start+step, ... below end (PyTorch's <c>torch.arange</c>).</summary>
    public static Tensor Arange(double start, double end, double step = 1, DType dtype = DType.Float32)
    {
        if (step == 0) throw new ArgumentException("arange: step must be non-zero");
        int n = Math.Max(0, (int)Math.Ceiling((end - start) / step));
        var t = Zeros([n], dtype);
        for (int i = 0; i < n; i++) t.SetFlat(i, start + i * step);
        return t;
    }

    /// <summary><paramref name="steps"/> values evenly spaced from start to end inclusive.</summary>
    public static Tensor Linspace(double start, double end, int steps, DType dtype = DType.Float32)
    {
        if (steps < 0) throw new ArgumentException($"linspace: steps must be non-negative, got {steps}");
        var t = Zeros([steps], dtype);
        double step = steps > 1 ? (end - start) / (steps - 1) : 0;
        // Symmetric evaluation as PyTorch does, so that linspace(-1, 1, n) is exactly antisymmetric.
        int half = steps / 2;
        for (int i = 0; i < steps; i++) t.SetFlat(i, i < half || steps == 1 ? start + step * i : end - step * (steps - 1 - i));
        return t;
    }

    /// <summary>A zero tensor with this tensor's shape and dtype.</summary>
    public Tensor ZerosLike() => Zeros(_shape, DType);

    /// <summary>A one tensor with this tensor's shape and dtype.</summary>
    public Tensor OnesLike() => Ones(_shape, DType);

    internal void SetFlat(int i, double v)
    {
        switch (DType)
        {
            case DType.Float32: ((float[])Storage)[_offset + i] = (float)v; break;
            case DType.Float64: ((double[])Storage)[_offset + i] = v; break;
            default: ((long[])Storage)[_offset + i] = (long)v; break;
        }
    }

    /// <summary>Converts to another dtype; differentiable between float types.</summary>
    public Tensor To(DType dtype)
    {
        if (dtype == DType) return this;
        var dst = Zeros(_shape, dtype);
        var src = ToDoubleArray();
        switch (dtype)
        {
            case DType.Float32: { var d = (float[])dst.Storage; for (int i = 0; i < src.Length; i++) d[i] = (float)src[i]; break; }
            case DType.Float64: src.CopyTo((double[])dst.Storage, 0); break;
            default: { var d = (long[])dst.Storage; for (int i = 0; i < src.Length; i++) d[i] = (long)src[i]; break; }
        }
        if (dtype == DType.Int64 || !IsFloatingPoint) return dst;
        var from = DType;
        return Autograd.Engine.Record(dst, new Autograd.FuncNode("ToBackward", g => [g.To(from)]), this);
    }

    /// <summary>Copies to float64 (PyTorch's <c>.double()</c>).</summary>
    public Tensor Double() => To(DType.Float64);

    /// <summary>Copies to float32 (PyTorch's <c>.float()</c>).</summary>
    public Tensor Float() => To(DType.Float32);

    /// <summary>A new tensor with a copy of the data, recorded for autograd.</summary>
    public Tensor Clone()
    {
        var c = ContiguousCopy();
        Analysis.OpRecorder.Record(c, "clone", [this]);
        return Autograd.Engine.Record(c, new Autograd.FuncNode("CloneBackward", g => [g]), this);
    }

    /// <summary>True when shapes are equal and every element satisfies |a-b| &lt;= atol + rtol*|b| (PyTorch's allclose).</summary>
    public bool AllClose(Tensor other, double rtol = 1e-5, double atol = 1e-8)
    {
        if (!Shape.SequenceEqual(other.Shape)) return false;
        var a = ToDoubleArray(); var b = other.ToDoubleArray();
        for (int i = 0; i < a.Length; i++)
        {
            if (double.IsNaN(a[i]) || double.IsNaN(b[i])) { if (!(double.IsNaN(a[i]) && double.IsNaN(b[i]))) return false; continue; }
            if (Math.Abs(a[i] - b[i]) > atol + rtol * Math.Abs(b[i])) return false;
        }
        return true;
    }

    /// <summary>In-place fill (no autograd). Refused on a tensor that requires grad while recording.</summary>
    public Tensor Fill_(double value)
    {
        CheckInPlace("fill_");
        var dense = Zeros(_shape, DType);
        if (value != 0) dense = Full(_shape, value, DType);
        CopyFromDense(dense);
        return this;
    }

    /// <summary>In-place copy of <paramref name="src"/>'s values (broadcast to this shape) into this tensor (no autograd).</summary>
    public Tensor Copy_(Tensor src)
    {
        CheckInPlace("copy_");
        var b = src.Detach().To(DType);
        if (!b.Shape.SequenceEqual(Shape)) b = b.Expand(_shape);
        else if (IsContiguous && b.IsContiguous)
        {
            // The common case (loading weights, initialisers): one block copy, no temporary.
            Array.Copy(b.Storage, b._offset, Storage, _offset, Numel);
            return this;
        }
        CopyFromDense(b.ContiguousCopy());
        return this;
    }

    /// <summary>Adds <paramref name="other"/> (same shape and dtype) into this contiguous tensor, no autograd.</summary>
    internal void AddDense_(Tensor other)
    {
        var src = other.IsContiguous ? other : other.ContiguousCopy();
        switch (DType)
        {
            case DType.Float32:
                System.Numerics.Tensors.TensorPrimitives.Add<float>(Span<float>(), src.Span<float>(), Span<float>()); break;
            case DType.Float64:
                System.Numerics.Tensors.TensorPrimitives.Add<double>(Span<double>(), src.Span<double>(), Span<double>()); break;
            default: throw new InvalidOperationException($"add_: {DType} tensors are not accumulated");
        }
    }

    internal void CheckInPlace(string op)
    {
        if (RequiresGrad && Autograd.GradMode.IsEnabled)
            throw new InvalidOperationException($"{op}: a tensor that requires grad cannot be modified in place while gradients are recorded; use NoGrad");
    }

    internal void CopyFromDense(Tensor dense)
    {
        switch (DType)
        {
            case DType.Float32: Kernels.Copy.ToStrided<float>(dense.Buffer<float>(), (float[])Storage, _offset, _shape, _strides); break;
            case DType.Float64: Kernels.Copy.ToStrided<double>(dense.Buffer<double>(), (double[])Storage, _offset, _shape, _strides); break;
            default: Kernels.Copy.ToStrided<long>(dense.Buffer<long>(), (long[])Storage, _offset, _shape, _strides); break;
        }
    }
}
