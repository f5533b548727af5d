using System.Numerics;

namespace ConvLab.Kernels;

/// <summary>
/// Greedy non-maximum suppression (torchvision's nms): boxes are visited once in decreasing score order and a box is
/// kept unless its IoU with an already kept box exceeds the threshold. Each candidate is tested against the kept set
/// with the SIMD row of <see cref="BoxIou"/> (structure of arrays, stops at the first overlap), which is the same
/// decision as torchvision's suppress-the-rest loop: a box is suppressed exactly when some earlier kept box overlaps it.
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
        var kept = new BoxIou.Soa<T>(n);
        var keep = new List<int>();
        foreach (int i in order)
        {
            T o = offsets.IsEmpty ? T.Zero : offsets[i];
            T x0 = boxes[4 * i] + o, y0 = boxes[4 * i + 1] + o, x1 = boxes[4 * i + 2] + o, y1 = boxes[4 * i + 3] + o;
            if (kept.Count > 0 && BoxIou.AnyAbove(x0, y0, x1, y1, kept, kept.Count, iouThreshold)) continue;
            kept.Add(x0, y0, x1, y1);
            keep.Add(i);
        }
        return [.. keep];
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
