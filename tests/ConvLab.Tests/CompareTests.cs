using System.Globalization;
using System.Text.Json;
using CsCheck;
using ConvLab.Analysis;
using Xunit;

namespace ConvLab.Tests;

/// <summary>`compare`: every explained quantity re-evaluates to its value, the closed-form ratios hold for any setting, bad settings are ArgumentExceptions, and the CLI renders all three formats.</summary>
public class CompareTests
{
    /// <summary>Evaluates a substituted expression (numbers, + - * / ^, parentheses, floor, ceil) so the worked line can be checked against the value.</summary>
    private static double Eval(string text)
    {
        string s = text.Replace(" ", "", StringComparison.Ordinal);
        int i = 0;
        double Expr()
        {
            double v = Term();
            while (i < s.Length && (s[i] == '+' || s[i] == '-'))
            {
                char op = s[i++];
                double t = Term();
                v = op == '+' ? v + t : v - t;
            }
            return v;
        }
        double Term()
        {
            double v = Power();
            while (i < s.Length && (s[i] == '*' || s[i] == '/'))
            {
                char op = s[i++];
                double t = Power();
                v = op == '*' ? v * t : v / t;
            }
            return v;
        }
        double Power()
        {
            double v = Atom();
            if (i < s.Length && s[i] == '^') { i++; v = Math.Pow(v, Atom()); }
            return v;
        }
        double Atom()
        {
            if (s[i] == '-') { i++; return -Atom(); }
            foreach (var (name, f) in new (string, Func<double, double>)[] { ("floor", Math.Floor), ("ceil", Math.Ceiling) })
                if (string.CompareOrdinal(s, i, name, 0, name.Length) == 0) { i += name.Length; return f(Atom()); }
            if (s[i] == '(')
            {
                i++;
                double v = Expr();
                Assert.Equal(')', s[i++]);
                return v;
            }
            int start = i;
            while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.' || s[i] == 'E' || s[i] == 'e')) i++;
            return double.Parse(s[start..i], CultureInfo.InvariantCulture);
        }
        double r = Expr();
        Assert.Equal(s.Length, i);
        return r;
    }

    private static IEnumerable<ComparisonStep> AllSteps(Comparison c) => c.A.Steps.Concat(c.B.Steps).Concat(c.Verdict);

    private static readonly Gen<(ComparisonInfo Info, Dictionary<string, int> Settings, bool Bias)> RandomComparison =
        Gen.Int[0, Comparisons.All.Count - 1].SelectMany(ci =>
        {
            var info = Comparisons.All[ci];
            return Gen.Select(Gen.Int[1, 40].Array[info.Settings.Count], Gen.Bool).Select((vals, bias) =>
                (info, info.Settings.Select((s, j) => (s.Key, Value: s.Key switch { "size" => vals[j] + 12, "kernel" => 1 + 2 * (vals[j] % 4), "padding" => vals[j] % 3, _ => vals[j] }))
                    .ToDictionary(kv => kv.Key, kv => kv.Value), bias));
        });

    [Fact]
    public void EveryExplainedQuantityEvaluatesToItsValue()
    {
        foreach (var info in Comparisons.All)
            foreach (var step in AllSteps(Comparisons.Run(info.Name)))
                Assert.Equal(step.Quantity.Value, Eval(step.Quantity.Substituted), 9);
        RandomComparison.Sample(t =>
        {
            Comparison c;
            try { c = Comparisons.Run(t.Info.Name, t.Settings, t.Bias); }
            catch (ArgumentException e) { Assert.StartsWith($"compare {t.Info.Name}:", e.Message); return; }
            foreach (var step in AllSteps(c))
            {
                double v = Eval(step.Quantity.Substituted);
                Assert.True(Math.Abs(v - step.Quantity.Value) <= 1e-9 * Math.Max(1, Math.Abs(v)), $"{c.Name}: {step.Label}: {step.Quantity.Substituted} = {v} but value {step.Quantity.Value}");
            }
        }, iter: 300);
    }

    [Fact]
    public void SeparableCostRatioIsOneOverNPlusOneOverKSquared()
    {
        Gen.Select(Gen.Int[4, 40], Gen.Int[1, 16], Gen.Int[1, 64], Gen.Int[0, 3], Gen.Int[1, 2]).Sample((size, m, n, kh, s) =>
        {
            int k = 2 * kh + 1;
            var c = Comparisons.Run("separable", new Dictionary<string, int> { ["size"] = size, ["in-channels"] = m, ["out-channels"] = n, ["kernel"] = k, ["stride"] = s });
            var macs = c.Rows.Single(r => r.Label == "MACs");
            Assert.Equal(1.0 / n + 1.0 / (k * k), macs.B.Value / macs.A.Value, 12);
        }, iter: 100);
    }

    [Fact]
    public void StackedThreeByThreeSavesOneMinusStackedOverBigSquared()
    {
        foreach (var (name, big, count) in new[] { ("7x7-vs-3x3", 7, 3), ("5x5-vs-3x3", 5, 2) })
            Gen.Int[1, 256].Sample(ch =>
            {
                var c = Comparisons.Run(name, new Dictionary<string, int> { ["channels"] = ch });
                Assert.Equal(-(1 - count * 9.0 / (big * big)) * 100, c.Verdict[0].Quantity.Value, 9);
                Assert.Equal(c.Rows.Single(r => r.Label == "receptive field").A.Value, c.Rows.Single(r => r.Label == "receptive field").B.Value);
            }, iter: 20);
    }

    [Fact]
    public void BadSettingsAreArgumentExceptionsNamingTheComparison()
    {
        Assert.Contains("unknown comparison 'nope'", Assert.Throws<ArgumentException>(() => Comparisons.Run("nope")).Message);
        Assert.Contains("--hidden does not apply", Assert.Throws<ArgumentException>(() => Comparisons.Run("separable", new Dictionary<string, int> { ["hidden"] = 3 })).Message);
        Assert.Contains("must be from 1", Assert.Throws<ArgumentException>(() => Comparisons.Run("separable", new Dictionary<string, int> { ["size"] = 0 })).Message);
        Assert.Contains("does not fit input 5", Assert.Throws<ArgumentException>(() => Comparisons.Run("stride", new Dictionary<string, int> { ["size"] = 5 })).Message);
    }

    [Fact]
    public void BiasSwitchAddsTheBiasesToParameterCounts()
    {
        var without = Comparisons.Run("7x7-vs-3x3");
        var with = Comparisons.Run("7x7-vs-3x3", bias: true);
        Assert.Equal(without.Rows[0].A.Value + 64, with.Rows[0].A.Value);
        Assert.Equal(without.Rows[0].B.Value + 3 * 64, with.Rows[0].B.Value);
    }

    [Fact]
    public void CliListsRendersJsonAndMarkdownAndRejectsBadSettings()
    {
        var (code, text) = CliTests.Convlab("compare");
        Assert.Equal(0, code);
        foreach (var info in Comparisons.All) Assert.Contains(info.Name, text);

        (code, text) = CliTests.Convlab("compare", "deformable", "--format", "json", "--explain");
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(text);
        Assert.Equal("deformable", doc.RootElement.GetProperty("comparison").GetString());
        Assert.Equal(64, doc.RootElement.GetProperty("settings").GetProperty("in-channels").GetInt32());
        Assert.Equal(36864, doc.RootElement.GetProperty("rows")[0].GetProperty("a").GetInt64());
        Assert.Contains(doc.RootElement.GetProperty("b_steps").EnumerateArray(), s => s.GetProperty("symbol").GetString() == "MACs_bil");

        (code, text) = CliTests.Convlab("compare", "fc-vs-gap", "--format", "markdown", "--channels", "256", "--size", "6");
        Assert.Equal(0, code);
        Assert.Contains("| parameters | 9,216,000 | 256,000 | 0.028x |", text);

        (code, text) = CliTests.Convlab("compare", "separable", "--hidden", "3");
        Assert.Equal(1, code);
        Assert.Contains("--hidden does not apply", text);
    }
}
