using System.Globalization;
using System.Text;

namespace ConvLab;

/// <summary>PyTorch-style printing: <c>tensor([[ 1.0000, -2.5000], ...])</c>, summarised past 1000 elements.</summary>
internal static class TensorFormatter
{
    private const int Threshold = 1000, EdgeItems = 3;

    public static string Format(Tensor t)
    {
        var data = t.ToDoubleArray();
        bool summarize = t.Numel > Threshold;
        bool isInt = t.DType == DType.Int64;
        bool allInts = isInt || data.All(v => !double.IsFinite(v) || v == Math.Floor(v));
        double maxAbs = data.Where(double.IsFinite).Select(Math.Abs).DefaultIfEmpty(0).Max();
        double minAbs = data.Where(v => double.IsFinite(v) && v != 0).Select(Math.Abs).DefaultIfEmpty(1).Min();
        bool sci = !isInt && (maxAbs >= 1e8 || minAbs < 1e-4 || (maxAbs > 0 && maxAbs / minAbs > 1e3 && maxAbs >= 1e3));
        string Fmt(double v) =>
            isInt ? ((long)v).ToString(CultureInfo.InvariantCulture)
            : double.IsNaN(v) ? "nan" : double.IsPositiveInfinity(v) ? "inf" : double.IsNegativeInfinity(v) ? "-inf"
            : sci ? v.ToString("0.0000e+00", CultureInfo.InvariantCulture)
            : allInts ? v.ToString("0", CultureInfo.InvariantCulture) + "."
            : v.ToString("0.0000", CultureInfo.InvariantCulture);
        int width = data.Length == 0 ? 0 : data.Select(Fmt).Max(s => s.Length);
        var sb = new StringBuilder("tensor(");
        var strides = ShapeUtil.ContiguousStrides(t.Shape);
        Write(sb, data, t.Shape.ToArray(), strides, 0, 0, summarize, width, Fmt, 7);
        if (t.DType == DType.Float64) sb.Append(", dtype=float64");
        if (t.DType == DType.Int64) sb.Append(", dtype=int64");
        if (t.GradFn != null) sb.Append(", grad_fn=<").Append(t.GradFn.Name).Append('>');
        else if (t.RequiresGrad) sb.Append(", requires_grad=True");
        if (t.Numel == 0 && t.Rank != 1) sb.Append(", size=").Append(ShapeUtil.Format(t.Shape));
        return sb.Append(')').ToString();
    }

    private static void Write(StringBuilder sb, double[] data, int[] shape, int[] strides, int dim, int offset, bool summarize,
        int width, Func<double, string> fmt, int indent)
    {
        if (shape.Length == 0) { sb.Append(fmt(data[0])); return; }
        int n = shape[dim];
        sb.Append('[');
        bool last = dim == shape.Length - 1;
        for (int i = 0; i < n; i++)
        {
            if (summarize && n > 2 * EdgeItems && i == EdgeItems)
            {
                sb.Append(last ? "..., " : "...,\n" + new string(' ', indent + dim + 1));
                i = n - EdgeItems;
            }
            if (last) sb.Append(fmt(data[offset + i * strides[dim]]).PadLeft(width));
            else Write(sb, data, shape, strides, dim + 1, offset + i * strides[dim], summarize, width, fmt, indent);
            if (i < n - 1)
                sb.Append(last ? ", " : "," + new string('\n', shape.Length - dim - 1) + new string(' ', indent + dim + 1));
        }
        sb.Append(']');
    }
}
