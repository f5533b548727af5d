using System.Numerics;

namespace ConvLab.Kernels;

/// <summary>A binary element-wise operation with a scalar and a SIMD form.</summary>
internal interface IBinaryOp<T> where T : unmanaged, INumber<T>
{
    static abstract T Apply(T a, T b);
    static abstract Vector<T> Apply(Vector<T> a, Vector<T> b);
}

internal struct AddOp<T> : IBinaryOp<T> where T : unmanaged, INumber<T>
{
    public static T Apply(T a, T b) => a + b;
    public static Vector<T> Apply(Vector<T> a, Vector<T> b) => a + b;
}
internal struct SubOp<T> : IBinaryOp<T> where T : unmanaged, INumber<T>
{
    public static T Apply(T a, T b) => a - b;
    public static Vector<T> Apply(Vector<T> a, Vector<T> b) => a - b;
}
internal struct MulOp<T> : IBinaryOp<T> where T : unmanaged, INumber<T>
{
    public static T Apply(T a, T b) => a * b;
    public static Vector<T> Apply(Vector<T> a, Vector<T> b) => a * b;
}
internal struct DivOp<T> : IBinaryOp<T> where T : unmanaged, INumber<T>
{
    public static T Apply(T a, T b) => a / b;
    public static Vector<T> Apply(Vector<T> a, Vector<T> b) => a / b;
}
internal struct MaxOp<T> : IBinaryOp<T> where T : unmanaged, INumber<T>
{
    public static T Apply(T a, T b) => T.IsNaN(a) || a > b ? a : b;
    public static Vector<T> Apply(Vector<T> a, Vector<T> b) => Vector.ConditionalSelect(Vector.GreaterThan(a, b) | ~Vector.Equals(a, a), a, b);
}
internal struct MinOp<T> : IBinaryOp<T> where T : unmanaged, INumber<T>
{
    public static T Apply(T a, T b) => T.IsNaN(a) || a < b ? a : b;
    public static Vector<T> Apply(Vector<T> a, Vector<T> b) => Vector.ConditionalSelect(Vector.LessThan(a, b) | ~Vector.Equals(a, a), a, b);
}

/// <summary>Broadcasting element-wise loops over strided operands.</summary>
internal static class Elementwise
{
    /// <summary>dst[i] = op(a[i], b[i]) where a and b are read through broadcast strides of the output shape.</summary>
    public static void Binary<T, TOp>(T[] a, int aOff, ReadOnlySpan<int> aStrides, T[] b, int bOff, ReadOnlySpan<int> bStrides,
        ReadOnlySpan<int> shape, Span<T> dst)
        where T : unmanaged, INumber<T> where TOp : IBinaryOp<T>
    {
        int n = dst.Length;
        if (n == 0) return;
        var contiguous = ShapeUtil.ContiguousStrides(shape);
        bool aDense = Dense(aStrides, contiguous, shape), bDense = Dense(bStrides, contiguous, shape);
        if (aDense && bDense) { Dense<T, TOp>(a.AsSpan(aOff, n), b.AsSpan(bOff, n), dst); return; }

        int rank = shape.Length;
        int inner = shape[rank - 1];
        int sa = aStrides[rank - 1], sb = bStrides[rank - 1];
        Span<int> idx = stackalloc int[rank];
        int o = 0;
        while (o < n)
        {
            int ao = aOff, bo = bOff;
            for (int d = 0; d < rank - 1; d++) { ao += idx[d] * aStrides[d]; bo += idx[d] * bStrides[d]; }
            var row = dst.Slice(o, inner);
            if (sa == 1 && sb == 1) Dense<T, TOp>(a.AsSpan(ao, inner), b.AsSpan(bo, inner), row);
            else if (sa == 1 && sb == 0) ScalarRight<T, TOp>(a.AsSpan(ao, inner), b[bo], row);
            else if (sa == 0 && sb == 1) ScalarLeft<T, TOp>(a[ao], b.AsSpan(bo, inner), row);
            else for (int i = 0; i < inner; i++) row[i] = TOp.Apply(a[ao + i * sa], b[bo + i * sb]);
            o += inner;
            for (int d = rank - 2; d >= 0; d--)
            {
                if (++idx[d] < shape[d]) break;
                idx[d] = 0;
            }
        }
    }

    private static bool Dense(ReadOnlySpan<int> strides, ReadOnlySpan<int> contiguous, ReadOnlySpan<int> shape)
    {
        for (int d = 0; d < shape.Length; d++)
            if (shape[d] != 1 && strides[d] != contiguous[d]) return false;
        return true;
    }

    public static void Dense<T, TOp>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> dst)
        where T : unmanaged, INumber<T> where TOp : IBinaryOp<T>
    {
        int i = 0, n = dst.Length, vc = Vector<T>.Count;
        if (Vector.IsHardwareAccelerated)
            for (; i + vc <= n; i += vc)
                TOp.Apply(new Vector<T>(a.Slice(i)), new Vector<T>(b.Slice(i))).CopyTo(dst.Slice(i));
        for (; i < n; i++) dst[i] = TOp.Apply(a[i], b[i]);
    }

    public static void ScalarRight<T, TOp>(ReadOnlySpan<T> a, T b, Span<T> dst)
        where T : unmanaged, INumber<T> where TOp : IBinaryOp<T>
    {
        int i = 0, n = dst.Length, vc = Vector<T>.Count;
        if (Vector.IsHardwareAccelerated)
        {
            var vb = new Vector<T>(b);
            for (; i + vc <= n; i += vc) TOp.Apply(new Vector<T>(a.Slice(i)), vb).CopyTo(dst.Slice(i));
        }
        for (; i < n; i++) dst[i] = TOp.Apply(a[i], b);
    }

    public static void ScalarLeft<T, TOp>(T a, ReadOnlySpan<T> b, Span<T> dst)
        where T : unmanaged, INumber<T> where TOp : IBinaryOp<T>
    {
        int i = 0, n = dst.Length, vc = Vector<T>.Count;
        if (Vector.IsHardwareAccelerated)
        {
            var va = new Vector<T>(a);
            for (; i + vc <= n; i += vc) TOp.Apply(va, new Vector<T>(b.Slice(i))).CopyTo(dst.Slice(i));
        }
        for (; i < n; i++) dst[i] = TOp.Apply(a, b[i]);
    }
}
