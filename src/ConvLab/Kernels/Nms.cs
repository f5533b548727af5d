using System.Numerics;

namespace ConvLab.Kernels;

/// <summary>
/// Greedy non-maximum suppression (torchvision's nms): boxes are visited once in decreasing score order and a box is
/// kept unless its IoU with an already kept box exceeds the threshold. Each candidate is tested against the kept set
/// with the SIMD row of <see cref="BoxIou"/> (structure of arrays, stops at the first overlap), which is the same
/// decision as torchvision's suppress-the-rest loop: a box is suppressed exactly when some earlier kept box overlaps it.
/// With a non-negative threshold only boxes that intersect can suppress, so the kept set is split into buckets by x0
/// (bucket width = the widest box): a candidate [x0, x1] can only meet kept boxes whose x0 lies in (x0 − width, x1), i.e.
/// a few neighbouring buckets. This matters for batched NMS, whose coordinate offsets spread the categories far apart.
/// </summary>
internal static class Nms
{
    /// <summary>
    /// Indices of the kept boxes of <paramref name="boxes"/> (K·4, xyxy) in decreasing score order. Ties in score keep
    /// the original order. <paramref name="offsets"/>, when given, is added to every coordinate of box i before the
    /// test (batched NMS's coordinate trick).
    /// </summary>
    public static int[] Run<T>(ReadOnlySpan<T> boxes, ReadOnlySpan<T> scores, T iouThreshold, ReadOnlySpan<T> offsets = default)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = scores.Length;
        if (n == 0) return [];
        var order = SortDescending(scores);
        var shifted = new T[4 * n];
        for (int i = 0; i < n; i++)
        {
            T o = offsets.IsEmpty ? T.Zero : offsets[i];
            for (int q = 0; q < 4; q++) shifted[4 * i + q] = boxes[4 * i + q] + o;
        }
        var (origin, width, buckets) = Buckets(shifted, iouThreshold);
        int Bucket(T x) => buckets == 1 ? 0 : Math.Clamp(int.CreateSaturating(T.Floor((x - origin) / width)), 0, buckets - 1);
        var kept = new BoxIou.Soa<T>[buckets];
        var keep = new List<int>();
        foreach (int i in order)
        {
            T x0 = shifted[4 * i], y0 = shifted[4 * i + 1], x1 = shifted[4 * i + 2], y1 = shifted[4 * i + 3];
            bool suppressed = false;
            for (int b = buckets == 1 ? 0 : Bucket(x0 - width), last = Bucket(x1); b <= last && !suppressed; b++)
                suppressed = kept[b] is { Count: > 0 } set && BoxIou.AnyAbove(x0, y0, x1, y1, set, set.Count, iouThreshold);
            if (suppressed) continue;
            (kept[Bucket(x0)] ??= new BoxIou.Soa<T>(buckets == 1 ? n : 16)).Add(x0, y0, x1, y1);
            keep.Add(i);
        }
        return [.. keep];
    }

    /// <summary>
    /// Bucket origin, width and count over the boxes' x0. One bucket when a negative threshold lets disjoint boxes suppress,
    /// when coordinates are not finite or when there are too few boxes to gain.
    /// </summary>
    private static (T Origin, T Width, int Count) Buckets<T>(T[] boxes, T threshold) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = boxes.Length / 4;
        if (n < 256 || !(threshold >= T.Zero)) return (T.Zero, T.One, 1);
        T lo = T.PositiveInfinity, hi = T.NegativeInfinity, width = T.Zero;
        for (int i = 0; i < n; i++)
        {
            lo = T.Min(lo, boxes[4 * i]); hi = T.Max(hi, boxes[4 * i]);
            width = T.Max(width, boxes[4 * i + 2] - boxes[4 * i]);
        }
        if (!T.IsFinite(hi - lo) || !T.IsFinite(width) || !(width > T.Zero)) return (T.Zero, T.One, 1);
        // At most 4096 buckets: wider buckets stay correct (the scan range grows with them).
        width = T.Max(width, (hi - lo) / T.CreateTruncating(4096));
        int count = int.CreateSaturating(T.Floor((hi - lo) / width)) + 1;
        return count < 3 ? (T.Zero, T.One, 1) : (lo, width, count);
    }

    /// <summary>Indices sorted by decreasing score, equal scores by increasing index (one sort of 64-bit keys).</summary>
    public static int[] SortDescending<T>(ReadOnlySpan<T> scores) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = scores.Length;
        if (typeof(T) != typeof(float))
        {
            var idx = new int[n];
            for (int i = 0; i < n; i++) idx[i] = i;
            var s = scores.ToArray();
            Array.Sort(idx, (a, b) => s[a] > s[b] ? -1 : s[a] < s[b] ? 1 : a.CompareTo(b));
            return idx;
        }
        var keys = new ulong[n];
        for (int i = 0; i < n; i++)
        {
            // Order-preserving map of the float onto unsigned bits (+0 and -0 compare equal), inverted for descending order.
            float f = float.CreateTruncating(scores[i]);
            if (f == 0) f = 0;
            uint bits = BitConverter.SingleToUInt32Bits(f);
            uint ordered = (bits & 0x8000_0000u) != 0 ? ~bits : bits | 0x8000_0000u;
            keys[i] = ((ulong)~ordered << 32) | (uint)i;
        }
        Array.Sort(keys);
        var order = new int[n];
        for (int i = 0; i < n; i++) order[i] = (int)(uint)keys[i];
        return order;
    }
}
