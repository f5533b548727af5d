using System.Globalization;
using System.Text;

namespace ConvLab.Analysis;

/// <summary>
/// Small matrices typed on a command line: <c>"[1,4,0]"</c> (a vector) or <c>"[[1,2],[3,4]]"</c> (rows of equal
/// length), parsed into float64 tensors of shape (n) or (rows, cols), and printed back the same way.
/// </summary>
public static class MatrixText
{
    /// <summary>
    /// Parses a vector or a matrix. <paramref name="what"/> names the option in errors
    /// (<c>--input: row 2 has 1 value but row 1 has 2</c>); every error is an <see cref="ArgumentException"/>.
    /// </summary>
    public static Tensor Parse(string text, string what)
    {
        var s = text.Trim();
        if (s.Length == 0) throw new ArgumentException($"{what}: empty matrix; type it as \"[1,2,3]\" or \"[[1,2],[3,4]]\"");
        int pos = 0;
        void Skip() { while (pos < s.Length && char.IsWhiteSpace(s[pos])) pos++; }
        ArgumentException Bad(string why) => new($"{what}: malformed matrix \"{text}\": {why} at column {pos + 1}");
        void Expect(char c)
        {
            Skip();
            if (pos >= s.Length || s[pos] != c) throw Bad($"expected '{c}'");
            pos++;
        }
        List<double> Row()
        {
            Expect('[');
            var row = new List<double>();
            Skip();
            if (pos < s.Length && s[pos] == ']') throw Bad("empty row");
            while (true)
            {
                Skip();
                int start = pos;
                while (pos < s.Length && (char.IsAsciiDigit(s[pos]) || s[pos] is '.' or '-' or '+' or 'e' or 'E')) pos++;
                if (!double.TryParse(s.AsSpan(start, pos - start), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v))
                {
                    pos = start;
                    throw Bad("expected a number");
                }
                row.Add(v);
                Skip();
                if (pos < s.Length && s[pos] == ',') { pos++; continue; }
                Expect(']');
                return row;
            }
        }
        Skip();
        if (pos + 1 < s.Length && s[pos] == '[' && s[(pos + 1)..].TrimStart().StartsWith('['))
        {
            pos++;
            var rows = new List<List<double>>();
            while (true)
            {
                rows.Add(Row());
                if (rows.Count > 1 && rows[^1].Count != rows[0].Count)
                    throw new ArgumentException($"{what}: malformed matrix \"{text}\": row {rows.Count} has {Values(rows[^1].Count)} but row 1 has {rows[0].Count}");
                Skip();
                if (pos < s.Length && s[pos] == ',') { pos++; continue; }
                Expect(']');
                break;
            }
            End();
            return Tensor.FromArray(rows.SelectMany(r => r).ToArray(), rows.Count, rows[0].Count);
        }
        var v1 = Row();
        End();
        return Tensor.FromArray(v1.ToArray(), v1.Count);

        void End()
        {
            Skip();
            if (pos != s.Length) throw Bad("unexpected text after the closing ']'");
        }
    }

    private static string Values(int n) => n == 1 ? "1 value" : $"{n} values";

    /// <summary>
    /// Parses a size given once for every dimension (<c>2</c>) or per dimension (<c>2x1</c>, <c>2,1</c>) into
    /// <paramref name="dims"/> entries; <paramref name="min"/> is the smallest allowed entry.
    /// </summary>
    public static int[] ParseSize(string text, string what, int dims, int min)
    {
        var parts = text.Split(['x', 'X', ','], StringSplitOptions.TrimEntries);
        var v = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out v[i]) || v[i] < min)
                throw new ArgumentException($"{what}: expected an integer >= {min} (or one per dimension, as 2x1), got \"{text}\"");
        if (v.Length == 1) return Enumerable.Repeat(v[0], dims).ToArray();
        if (v.Length != dims) throw new ArgumentException($"{what}: \"{text}\" gives {v.Length} sizes for a {dims}-d operation");
        return v;
    }

    /// <summary>The tensor (rank 1 or 2) as the same bracket notation, numbers as <see cref="Formulas.Num"/> prints them.</summary>
    public static string Format(Tensor t)
    {
        var d = t.ToDoubleArray();
        if (t.Rank == 1) return "[" + string.Join(", ", d.Select(Formulas.Num)) + "]";
        int w = t.Shape[^1];
        var sb = new StringBuilder("[");
        for (int r = 0; r < d.Length / w; r++)
            sb.Append(r == 0 ? "" : ", ").Append('[').Append(string.Join(", ", d.Skip(r * w).Take(w).Select(Formulas.Num))).Append(']');
        return sb.Append(']').ToString();
    }

    /// <summary>Rows of right-aligned numbers, one line per matrix row (a vector is one line).</summary>
    public static IReadOnlyList<string> Grid(Tensor t)
    {
        var d = t.ToDoubleArray().Select(Formulas.Num).ToArray();
        int w = t.Rank == 1 ? d.Length : t.Shape[^1];
        int width = d.Length == 0 ? 1 : d.Max(x => x.Length);
        var lines = new List<string>();
        for (int r = 0; r < d.Length / Math.Max(w, 1); r++)
            lines.Add(string.Join("  ", d.Skip(r * w).Take(w).Select(x => x.PadLeft(width))));
        return lines;
    }

    /// <summary>The tensor (rank 1 or 2) as nested lists for JSON output.</summary>
    public static object Nested(Tensor t)
    {
        var d = t.ToDoubleArray();
        if (t.Rank == 1) return d;
        int w = t.Shape[^1];
        return Enumerable.Range(0, d.Length / w).Select(r => d.Skip(r * w).Take(w).ToArray()).ToArray();
    }
}
