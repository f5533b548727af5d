using System.Reflection;

namespace ConvLab.Conformance;

/// <summary>Result of one case.</summary>
/// <param name="Name">Case name (or file name when unreadable).</param>
/// <param name="Family">Family folder.</param>
/// <param name="Op">Operator.</param>
/// <param name="Passed">True when every output and gradient matched.</param>
/// <param name="Reason">Why it failed, or empty.</param>
/// <param name="MaxError">Largest |got - want| over everything compared.</param>
public sealed record CaseResult(string Name, string Family, string Op, bool Passed, string Reason, double MaxError);

/// <summary>Runs reference cases: forward, then backward of sum(output·upstream), compared with the case's tolerance.</summary>
public static class ReferenceRunner
{
    private static readonly Lazy<Dictionary<string, Func<OpArgs, IReadOnlyDictionary<string, Tensor>>>> Handlers = new(Discover);

    /// <summary>Operator names that have a handler.</summary>
    public static IReadOnlyCollection<string> SupportedOps => Handlers.Value.Keys;

    private static Dictionary<string, Func<OpArgs, IReadOnlyDictionary<string, Tensor>>> Discover()
    {
        var map = new Dictionary<string, Func<OpArgs, IReadOnlyDictionary<string, Tensor>>>();
        foreach (var type in typeof(ReferenceRunner).Assembly.GetTypes())
            foreach (var m in type.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic))
            {
                var attr = m.GetCustomAttribute<ReferenceOpAttribute>();
                if (attr == null) continue;
                var f = m.CreateDelegate<Func<OpArgs, IReadOnlyDictionary<string, Tensor>>>();
                foreach (var op in attr.Ops)
                    if (!map.TryAdd(op, f)) throw new InvalidOperationException($"conformance: op '{op}' has two handlers");
            }
        return map;
    }

    /// <summary>Every <c>*.json</c> case under <paramref name="dir"/> (recursively, excluding manifest.json), sorted.</summary>
    public static IReadOnlyList<string> FindCases(string dir)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"check-reference: directory '{dir}' does not exist");
        return Directory.EnumerateFiles(dir, "*.json", SearchOption.AllDirectories)
            .Where(f => !Path.GetFileName(f).Equals("manifest.json", StringComparison.OrdinalIgnoreCase))
            .OrderBy(f => f, StringComparer.Ordinal).ToList();
    }

    /// <summary>Loads and runs one case file; never throws.</summary>
    public static CaseResult RunFile(string path, string? root = null)
    {
        string rel = root != null ? Path.GetRelativePath(root, path) : Path.GetFileName(path);
        string family = Path.GetFileName(Path.GetDirectoryName(path)) ?? "";
        ReferenceCase c;
        try { c = ReferenceCase.Load(path); }
        catch (CaseFormatException e) { return new(rel, family, "?", false, "malformed: " + e.Message, double.NaN); }
        catch (Exception e) { return new(rel, family, "?", false, $"malformed: {rel}: {e.Message}", double.NaN); }
        return Run(c);
    }

    /// <summary>Runs one case; never throws.</summary>
    public static CaseResult Run(ReferenceCase c)
    {
        CaseResult Fail(string reason, double err = double.NaN) => new(c.Name, c.Family, c.Op, false, reason, err);
        if (!Handlers.Value.TryGetValue(c.Op, out var handler)) return Fail($"unknown op '{c.Op}'");
        try
        {
            var inputs = new Dictionary<string, Tensor?>();
            foreach (var (name, t) in c.Inputs)
            {
                if (t == null) { inputs[name] = null; continue; }
                var copy = t.ContiguousCopy();
                if (copy.IsFloatingPoint && c.Grads.ContainsKey(name)) copy.RequiresGrad = true;
                inputs[name] = copy;
            }
            foreach (var g in c.Grads.Keys)
                if (!inputs.TryGetValue(g, out var gi) || gi == null) return Fail($"grads lists '{g}' but there is no such float input");

            var outputs = handler(new OpArgs(c, inputs));
            double maxErr = 0;
            foreach (var (name, want) in c.Outputs)
            {
                if (!outputs.TryGetValue(name, out var got)) return Fail($"op produced no output '{name}'");
                var cmp = Compare(got, want, c.Rtol, c.Atol, $"output '{name}'");
                maxErr = Math.Max(maxErr, cmp.err);
                if (cmp.reason != null) return Fail(cmp.reason, maxErr);
            }
            if (c.Grads.Count > 0)
            {
                Tensor? loss = null;
                foreach (var (name, up) in c.Upstream)
                {
                    if (!outputs.TryGetValue(name, out var got)) return Fail($"upstream names output '{name}' that the op did not produce");
                    if (!got.Shape.SequenceEqual(up.Shape)) return Fail($"upstream '{name}' has shape {ShapeUtil.Format(up.Shape)} but output has {ShapeUtil.Format(got.Shape)}");
                    var term = got.Mul(up.To(got.DType)).Sum();
                    loss = loss == null ? term : loss.Add(term);
                }
                if (loss == null) return Fail("case lists grads but no upstream");
                if (!loss.RequiresGrad) return Fail("output is not differentiable (no autograd graph was recorded)");
                loss.Backward();
                foreach (var (name, want) in c.Grads)
                {
                    var got = inputs[name]!.Grad ?? Tensor.Zeros(inputs[name]!.Shape, inputs[name]!.DType);
                    var cmp = Compare(got, want, c.Rtol, c.Atol, $"grad '{name}'");
                    maxErr = Math.Max(maxErr, cmp.err);
                    if (cmp.reason != null) return Fail(cmp.reason, maxErr);
                }
            }
            return new(c.Name, c.Family, c.Op, true, "", maxErr);
        }
        catch (CaseFormatException e) { return Fail("malformed: " + e.Message); }
        catch (ArgumentException e) { return Fail("rejected: " + e.Message); }
        catch (Exception e) { return Fail($"{e.GetType().Name}: {e.Message}"); }
    }

    private static (string? reason, double err) Compare(Tensor got, Tensor want, double rtol, double atol, string what)
    {
        if (!got.Shape.SequenceEqual(want.Shape))
            return ($"{what}: shape {ShapeUtil.Format(got.Shape)}, expected {ShapeUtil.Format(want.Shape)}", double.NaN);
        if (want.DType == DType.Int64)
        {
            var g = got.ToInt64Array(); var w = want.ToInt64Array();
            for (int i = 0; i < w.Length; i++)
                if (g[i] != w[i]) return ($"{what}: element {i} is {g[i]}, expected {w[i]}", double.NaN);
            return (null, 0);
        }
        var gd = got.ToDoubleArray(); var wd = want.ToDoubleArray();
        double maxErr = 0;
        for (int i = 0; i < wd.Length; i++)
        {
            double e = Math.Abs(gd[i] - wd[i]);
            if (double.IsNaN(wd[i]) && double.IsNaN(gd[i])) continue;
            if (double.IsNaN(e) || e > atol + rtol * Math.Abs(wd[i]))
                return ($"{what}: element {i} is {gd[i]:G7}, expected {wd[i]:G7} (|diff| {e:G3} > atol {atol:G2} + rtol {rtol:G2}·|want|)", double.IsNaN(e) ? double.NaN : Math.Max(maxErr, e));
            maxErr = Math.Max(maxErr, e);
        }
        return (null, maxErr);
    }
}
