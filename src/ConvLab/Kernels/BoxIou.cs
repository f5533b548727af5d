using System.Numerics;
using System.Runtime.Intrinsics;

namespace ConvLab.Kernels;

/// <summary>Which pairwise overlap measure <see cref="BoxIou.Pairwise{T}"/> computes (torchvision.ops names).</summary>
internal enum BoxIouKind { Iou, Generalized, Distance, Complete }

/// <summary>
/// Pairwise IoU of two box sets (torchvision's box_iou and its generalized/distance/complete variants), computed in
/// the boxes' own precision with torchvision's operation order so float32 results round as torchvision's do.
/// The plain IoU of one box against a row of boxes is SIMD (Vector256) over a structure-of-arrays copy of the
/// second set; the variants add their penalty terms per row afterwards.
/// </summary>
internal static class BoxIou
{
    /// <summary>Boxes as separate coordinate arrays plus areas, padded to a multiple of the vector width with boxes that overlap nothing.</summary>
    internal sealed class Soa<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public T[] X0, Y0, X1, Y1, Area;
        public int Count;

        public Soa(int capacity)
        {
            int cap = Padded(Math.Max(capacity, 1));
            X0 = Pad(new T[cap], 0, T.PositiveInfinity); Y0 = Pad(new T[cap], 0, T.PositiveInfinity);
            X1 = Pad(new T[cap], 0, T.NegativeInfinity); Y1 = Pad(new T[cap], 0, T.NegativeInfinity);
            Area = Pad(new T[cap], 0, T.NaN);
        }

        // Padding boxes: x0 = +inf, x1 = -inf make every intersection 0 and a NaN area makes the IoU NaN, which exceeds no
        // threshold (not even a negative one).
        private static T[] Pad(T[] a, int from, T value)
        {
            a.AsSpan(from).Fill(value);
            return a;
        }

        private static T[] Grow(T[] a, T value)
        {
            var b = new T[a.Length * 2];
            a.CopyTo(b, 0);
            return Pad(b, a.Length, value);
        }

        public static int Padded(int n) => (n + Vector256<T>.Count - 1) / Vector256<T>.Count * Vector256<T>.Count;

        public void Add(T x0, T y0, T x1, T y1)
        {
            if (Count == X0.Length)
            {
                X0 = Grow(X0, T.PositiveInfinity); Y0 = Grow(Y0, T.PositiveInfinity);
                X1 = Grow(X1, T.NegativeInfinity); Y1 = Grow(Y1, T.NegativeInfinity); Area = Grow(Area, T.NaN);
            }
            int i = Count++;
            X0[i] = x0; Y0[i] = y0; X1[i] = x1; Y1[i] = y1; Area[i] = (x1 - x0) * (y1 - y0);
        }

        public static Soa<T> From(ReadOnlySpan<T> boxes)
        {
            int n = boxes.Length / 4;
            var s = new Soa<T>(n);
            for (int i = 0; i < n; i++) s.Add(boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3]);
            return s;
        }
    }

    /// <summary>IoU of box (x0, y0, x1, y1) with the first <paramref name="count"/> boxes of <paramref name="set"/> into <paramref name="iou"/>.</summary>
    public static void Row<T>(T x0, T y0, T x1, T y1, Soa<T> set, int count, Span<T> iou) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T area = (x1 - x0) * (y1 - y0);
        int j = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var bx0 = Vector256.Create(x0); var by0 = Vector256.Create(y0); var bx1 = Vector256.Create(x1); var by1 = Vector256.Create(y1);
            var ba = Vector256.Create(area);
            for (; j + Vector256<T>.Count <= count; j += Vector256<T>.Count)
            {
                var v = RowVector(bx0, by0, bx1, by1, ba, set, j);
                v.CopyTo(iou[j..]);
            }
        }
        for (; j < count; j++) iou[j] = Scalar(x0, y0, x1, y1, area, set.X0[j], set.Y0[j], set.X1[j], set.Y1[j], set.Area[j]);
    }

    /// <summary>True when box (x0, y0, x1, y1) has IoU &gt; <paramref name="threshold"/> with any of the first <paramref name="count"/> boxes of <paramref name="set"/>.</summary>
    public static bool AnyAbove<T>(T x0, T y0, T x1, T y1, Soa<T> set, int count, T threshold) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T area = (x1 - x0) * (y1 - y0);
        if (Vector256.IsHardwareAccelerated)
        {
            var bx0 = Vector256.Create(x0); var by0 = Vector256.Create(y0); var bx1 = Vector256.Create(x1); var by1 = Vector256.Create(y1);
            var ba = Vector256.Create(area); var thr = Vector256.Create(threshold);
            // The set is padded with non-overlapping boxes, so whole vectors can run past count.
            for (int j = 0; j < count; j += Vector256<T>.Count)
                if (Vector256.GreaterThanAny(RowVector(bx0, by0, bx1, by1, ba, set, j), thr)) return true;
            return false;
        }
        for (int j = 0; j < count; j++)
            if (Scalar(x0, y0, x1, y1, area, set.X0[j], set.Y0[j], set.X1[j], set.Y1[j], set.Area[j]) > threshold) return true;
        return false;
    }

    private static Vector256<T> RowVector<T>(Vector256<T> bx0, Vector256<T> by0, Vector256<T> bx1, Vector256<T> by1, Vector256<T> ba, Soa<T> set, int j)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var w = Vector256.Max(Vector256.Min(bx1, Vector256.Create(set.X1, j)) - Vector256.Max(bx0, Vector256.Create(set.X0, j)), Vector256<T>.Zero);
        var h = Vector256.Max(Vector256.Min(by1, Vector256.Create(set.Y1, j)) - Vector256.Max(by0, Vector256.Create(set.Y0, j)), Vector256<T>.Zero);
        var inter = w * h;
        return inter / (ba + Vector256.Create(set.Area, j) - inter);
    }

    private static T Scalar<T>(T ax0, T ay0, T ax1, T ay1, T aArea, T bx0, T by0, T bx1, T by1, T bArea) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T w = T.Max(T.Min(ax1, bx1) - T.Max(ax0, bx0), T.Zero);
        T h = T.Max(T.Min(ay1, by1) - T.Max(ay0, by0), T.Zero);
        T inter = w * h;
        return inter / (aArea + bArea - inter);
    }

    /// <summary>(N, M) measure of <paramref name="kind"/> between boxes1 (N·4, xyxy) and boxes2 (M·4) into <paramref name="output"/>.</summary>
    public static void Pairwise<T>(ReadOnlySpan<T> boxes1, ReadOnlySpan<T> boxes2, BoxIouKind kind, T eps, Span<T> output)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = boxes1.Length / 4, m = boxes2.Length / 4;
        var set = Soa<T>.From(boxes2);
        T two = T.CreateTruncating(2), fourOverPi2 = T.CreateTruncating(4 / (Math.PI * Math.PI));
        for (int i = 0; i < n; i++)
        {
            T x0 = boxes1[4 * i], y0 = boxes1[4 * i + 1], x1 = boxes1[4 * i + 2], y1 = boxes1[4 * i + 3];
            var row = output.Slice(i * m, m);
            Row(x0, y0, x1, y1, set, m, row);
            if (kind == BoxIouKind.Iou) continue;
            T area = (x1 - x0) * (y1 - y0);
            for (int j = 0; j < m; j++)
            {
                T iou = row[j];
                // Smallest enclosing box.
                T cw = T.Max(T.Max(x1, set.X1[j]) - T.Min(x0, set.X0[j]), T.Zero);
                T ch = T.Max(T.Max(y1, set.Y1[j]) - T.Min(y0, set.Y0[j]), T.Zero);
                if (kind == BoxIouKind.Generalized)
                {
                    T w = T.Max(T.Min(x1, set.X1[j]) - T.Max(x0, set.X0[j]), T.Zero);
                    T h = T.Max(T.Min(y1, set.Y1[j]) - T.Max(y0, set.Y0[j]), T.Zero);
                    T union = area + set.Area[j] - w * h, enclosing = cw * ch;
                    row[j] = iou - (enclosing - union) / enclosing;
                    continue;
                }
                T diag = cw * cw + ch * ch + eps;
                T dx = (x0 + x1) / two - (set.X0[j] + set.X1[j]) / two, dy = (y0 + y1) / two - (set.Y0[j] + set.Y1[j]) / two;
                T diou = iou - (dx * dx + dy * dy) / diag;
                if (kind == BoxIouKind.Distance) { row[j] = diou; continue; }
                T dAtan = T.Atan((x1 - x0) / (y1 - y0)) - T.Atan((set.X1[j] - set.X0[j]) / (set.Y1[j] - set.Y0[j]));
                T v = fourOverPi2 * dAtan * dAtan;
                T alpha = v / (T.One - iou + v + eps);
                row[j] = diou - alpha * v;
            }
        }
    }
}
