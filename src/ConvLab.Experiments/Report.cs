using System.Globalization;
using System.Text;

namespace ConvLab.Experiments;

/// <summary>A Markdown report built while the experiment runs; numbers go in through <see cref="Num"/>, so they are formatted one way.</summary>
public sealed class Report
{
    private readonly StringBuilder _text = new();

    /// <summary>A heading of <paramref name="level"/> (1 = title).</summary>
    public Report Heading(string text, int level = 2)
    {
        if (level is < 1 or > 6) throw new ArgumentOutOfRangeException(nameof(level), level, "report: heading level must be 1 to 6");
        Separate();
        _text.Append('#', level).Append(' ').AppendLine(text);
        return this;
    }

    /// <summary>A paragraph.</summary>
    public Report Paragraph(string text)
    {
        Separate();
        _text.AppendLine(text);
        return this;
    }

    /// <summary>A bullet list.</summary>
    public Report Bullets(IEnumerable<string> items)
    {
        Separate();
        foreach (var item in items) _text.Append("- ").AppendLine(item);
        return this;
    }

    /// <summary>A table; every row must have as many cells as <paramref name="header"/>.</summary>
    public Report Table(IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows)
    {
        ArgumentNullException.ThrowIfNull(header);
        if (header.Count == 0) throw new ArgumentException("report: a table needs at least one column");
        Separate();
        _text.Append("| ").AppendJoin(" | ", header).AppendLine(" |");
        _text.Append('|').Append(string.Concat(Enumerable.Repeat("---|", header.Count))).AppendLine();
        int r = 0;
        foreach (var row in rows)
        {
            if (row.Count != header.Count) throw new ArgumentException($"report: table row {r} has {row.Count} cells, the header {header.Count}");
            _text.Append("| ").AppendJoin(" | ", row.Select(c => c.Replace("|", "\\|", StringComparison.Ordinal))).AppendLine(" |");
            r++;
        }
        return this;
    }

    /// <summary>An image of the run folder with its caption.</summary>
    public Report Figure(string fileName, string caption)
    {
        Separate();
        _text.Append("![").Append(caption).Append("](").Append(fileName).AppendLine(")");
        return this;
    }

    /// <summary>A number as the report prints it: <paramref name="digits"/> significant digits, invariant culture ("n/a" for NaN).</summary>
    public static string Num(double value, int digits = 4) =>
        double.IsNaN(value) ? "n/a" : double.IsInfinity(value) ? (value > 0 ? "∞" : "−∞")
        : value.ToString("G" + digits.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    /// <summary>A fraction in [0, 1] as a percentage with <paramref name="decimals"/> decimals.</summary>
    public static string Percent(double fraction, int decimals = 1) =>
        double.IsNaN(fraction) ? "n/a" : (100 * fraction).ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture) + " %";

    /// <summary>The Markdown so far.</summary>
    public override string ToString() => _text.ToString();

    private void Separate()
    {
        if (_text.Length > 0) _text.AppendLine();
    }
}
