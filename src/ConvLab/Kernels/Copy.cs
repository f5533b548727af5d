namespace ConvLab.Kernels;

/// <summary>Gathers strided elements into dense row-major order.</summary>
internal static class Copy
{
    public static void Strided<T>(T[] src, int offset, ReadOnlySpan<int> shape, ReadOnlySpan<int> strides, Span<T> dst)
    {
        int rank = shape.Length;
        int n = dst.Length;
        if (n == 0) return;
        if (rank == 0) { dst[0] = src[offset]; return; }
        int inner = shape[rank - 1];
        int innerStride = strides[rank - 1];
        Span<int> idx = stackalloc int[rank];
        int o = 0;
        while (o < n)
        {
            int baseOff = offset;
            for (int d = 0; d < rank - 1; d++) baseOff += idx[d] * strides[d];
            if (innerStride == 1) src.AsSpan(baseOff, inner).CopyTo(dst.Slice(o, inner));
            else for (int i = 0; i < inner; i++) dst[o + i] = src[baseOff + i * innerStride];
            o += inner;
            for (int d = rank - 2; d >= 0; d--)
            {
                if (++idx[d] < shape[d]) break;
                idx[d] = 0;
            }
        }
    }

    /// <summary>Scatters dense row-major <paramref name="src"/> into a strided destination view.</summary>
    public static void ToStrided<T>(ReadOnlySpan<T> src, T[] dst, int offset, ReadOnlySpan<int> shape, ReadOnlySpan<int> strides)
    {
        int rank = shape.Length;
        int n = src.Length;
        if (n == 0) return;
        if (rank == 0) { dst[offset] = src[0]; return; }
        int inner = shape[rank - 1];
        int innerStride = strides[rank - 1];
        Span<int> idx = stackalloc int[rank];
        int o = 0;
        while (o < n)
        {
            int baseOff = offset;
            for (int d = 0; d < rank - 1; d++) baseOff += idx[d] * strides[d];
            if (innerStride == 1) src.Slice(o, inner).CopyTo(dst.AsSpan(baseOff, inner));
            else for (int i = 0; i < inner; i++) dst[baseOff + i * innerStride] = src[o + i];
            o += inner;
            for (int d = rank - 2; d >= 0; d--)
            {
                if (++idx[d] < shape[d]) break;
                idx[d] = 0;
            }
        }
    }
}
