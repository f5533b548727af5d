using System.Globalization;

namespace ConvLab.Analysis;

/// <summary>A setting of a comparison (a channel count, a size...) with its default; the CLI exposes it as <c>--{Key}</c>.</summary>
/// <param name="Key">Option name (<c>size</c>, <c>in-channels</c>, ...).</param>
/// <param name="Description">What the setting means.</param>
/// <param name="Default">Value used when none is given.</param>
public sealed record ComparisonSetting(string Key, string Description, int Default);

/// <summary>One named step of one side of a comparison: a label and the explained quantity.</summary>
/// <param name="Label">What the step computes ("output size", "depthwise parameters").</param>
/// <param name="Quantity">The value with its formula and substituted numbers.</param>
/// <param name="Unit">How the value reads: "" for counts, "x" for a factor, "%" for a percentage.</param>
public sealed record ComparisonStep(string Label, Quantity Quantity, string Unit = "");

/// <summary>One design of a comparison and every quantity computed for it, in order.</summary>
/// <param name="Name">The design ("standard 3x3 conv").</param>
/// <param name="Steps">Every quantity computed for it, each explainable.</param>
public sealed record ComparisonSide(string Name, IReadOnlyList<ComparisonStep> Steps);

/// <summary>A row of the comparison table: the same quantity for both designs.</summary>
/// <param name="Label">Row name ("parameters", "MACs").</param>
/// <param name="A">Value for design A.</param>
/// <param name="B">Value for design B.</param>
public sealed record ComparisonRow(string Label, Quantity A, Quantity B);

/// <summary>The result of one classic trade-off: both designs, the table rows, the verdict quantities (ratios, savings) and a one-line summary.</summary>
public sealed class Comparison
{
    internal Comparison(string name, string title, bool bias, ComparisonSide a, ComparisonSide b,
        IReadOnlyList<ComparisonRow> rows, IReadOnlyList<ComparisonStep> verdict, string summary)
    {
        Name = name; Title = title; Bias = bias; A = a; B = b; Rows = rows; Verdict = verdict; Summary = summary;
    }

    /// <summary>Comparison name (<c>separable</c>, <c>7x7-vs-3x3</c>, ...).</summary>
    public string Name { get; }
    /// <summary>Human title.</summary>
    public string Title { get; }
    /// <summary>Every setting with the value used.</summary>
    public IReadOnlyDictionary<string, int> Settings { get; internal set; } = new Dictionary<string, int>();
    /// <summary>Whether parameter counts include biases.</summary>
    public bool Bias { get; }
    /// <summary>Design A (the baseline).</summary>
    public ComparisonSide A { get; }
    /// <summary>Design B (the alternative).</summary>
    public ComparisonSide B { get; }
    /// <summary>Table rows: the same quantity for A and B.</summary>
    public IReadOnlyList<ComparisonRow> Rows { get; }
    /// <summary>Ratios and savings of B against A, explained.</summary>
    public IReadOnlyList<ComparisonStep> Verdict { get; }
    /// <summary>One sentence with the headline numbers.</summary>
    public string Summary { get; }
}

/// <summary>A registered comparison: its name, title, settings and what it computes.</summary>
public sealed record ComparisonInfo(string Name, string Title, IReadOnlyList<ComparisonSetting> Settings);

/// <summary>
/// The classic CNN design trade-offs, computed from the shared <see cref="Formulas"/> so that every number can be
/// explained as formula → substituted numbers → result. Convolutions that should keep the size use padding
/// floor(D·(K−1)/2). Parameter counts are weights only unless <c>bias</c> is on (the textbook ratios such as
/// 27C² vs 49C² ignore biases); MACs never include biases (one MAC = one multiply-add).
/// </summary>
public static class Comparisons
{
    private delegate Comparison Builder(string name, Func<string, int> v, bool bias);

    private static readonly (ComparisonInfo Info, Builder Build)[] Registry =
    [
        (new("separable", "standard vs depthwise-separable convolution (MobileNet)",
            [S("size", "input height = width", 112), S("in-channels", "input channels M", 32), S("out-channels", "output channels N", 64), S("kernel", "kernel size K", 3), S("stride", "stride", 1)]), Separable),
        (new("7x7-vs-3x3", "one 7x7 convolution vs a stack of three 3x3 (VGG)",
            [S("channels", "channels C (in = out)", 64), S("size", "feature map height = width", 56)]), (n, v, b) => Stack(n, v, b, 7)),
        (new("5x5-vs-3x3", "one 5x5 convolution vs a stack of two 3x3 (Inception v3)",
            [S("channels", "channels C (in = out)", 64), S("size", "feature map height = width", 56)]), (n, v, b) => Stack(n, v, b, 5)),
        (new("fc-vs-gap", "fully connected head vs global-average-pooling head",
            [S("channels", "channels C of the last feature map", 512), S("size", "its height = width", 7), S("classes", "classes", 1000), S("hidden", "hidden FC units (0 = one FC layer)", 0)]), FcVsGap),
        (new("dilated", "dilated kernel vs a dense kernel of the same span",
            [S("kernel", "dilated kernel size K", 3), S("dilation", "dilation D", 2), S("channels", "channels C (in = out)", 64), S("size", "feature map height = width", 56)]), Dilated),
        (new("stride", "first layer at stride 1 vs a larger stride (activation memory)",
            [S("size", "input height = width", 227), S("in-channels", "input channels", 3), S("out-channels", "filters", 96), S("kernel", "kernel size", 11),
             S("padding", "padding", 0), S("stride", "the larger stride", 4), S("batch", "batch size", 1)]), Stride),
        (new("coordconv", "CoordConv overhead over a plain convolution",
            [S("in-channels", "input channels", 64), S("out-channels", "output channels", 64), S("kernel", "kernel size", 3), S("size", "feature map height = width", 56)]), CoordConv),
        (new("deformable", "deformable convolution (DCN v1) overhead over a plain convolution",
            [S("in-channels", "input channels", 64), S("out-channels", "output channels", 64), S("kernel", "kernel size", 3), S("size", "feature map height = width", 56)]), Deformable),
        (new("mlp-vs-cnn", "first layer of an MLP vs first layer of a CNN on an image",
            [S("size", "image height = width", 32), S("in-channels", "image channels", 3), S("hidden", "MLP hidden units", 512), S("out-channels", "CNN filters", 64), S("kernel", "CNN kernel size", 3)]), MlpVsCnn),
    ];

    private static ComparisonSetting S(string key, string description, int value) => new(key, description, value);

    /// <summary>Every comparison, in a fixed order.</summary>
    public static IReadOnlyList<ComparisonInfo> All { get; } = [.. Registry.Select(r => r.Info)];

    /// <summary>
    /// Runs comparison <paramref name="name"/> with the given settings (others take their defaults). Unknown names,
    /// settings the comparison does not take and non-positive values are <see cref="ArgumentException"/>s.
    /// </summary>
    public static Comparison Run(string name, IReadOnlyDictionary<string, int>? settings = null, bool bias = false)
    {
        ArgumentNullException.ThrowIfNull(name);
        var entry = Registry.FirstOrDefault(r => r.Info.Name.Equals(name, StringComparison.OrdinalIgnoreCase));
        if (entry.Info == null)
            throw new ArgumentException($"compare: unknown comparison '{name}'; known: {string.Join(", ", All.Select(i => i.Name))}");
        var values = entry.Info.Settings.ToDictionary(s => s.Key, s => s.Default);
        foreach (var (key, value) in settings ?? new Dictionary<string, int>())
        {
            if (!values.ContainsKey(key))
                throw new ArgumentException($"compare {entry.Info.Name}: --{key} does not apply; it takes {string.Join(", ", entry.Info.Settings.Select(s => "--" + s.Key))}");
            bool zeroOk = key is "padding" or "hidden";
            if (value < (zeroOk ? 0 : 1) || value > 1 << 20)
                throw new ArgumentException($"compare {entry.Info.Name}: --{key} must be {(zeroOk ? "from 0" : "from 1")} to {1 << 20}, got {value}");
            values[key] = value;
        }
        try
        {
            var result = entry.Build(entry.Info.Name, k => values[k], bias);
            result.Settings = values;
            return result;
        }
        catch (Exception e) when (e is ArgumentException or OverflowException or InvalidOperationException)
        {
            throw new ArgumentException($"compare {entry.Info.Name}: these settings do not give a valid layer ({string.Join(", ", values.Select(kv => $"--{kv.Key} {kv.Value}"))}): {e.Message}", e);
        }
    }

    // ---- the comparisons --------------------------------------------------------------------------

    private sealed class Side(string name)
    {
        public readonly List<ComparisonStep> Steps = [];
        public string Name { get; } = name;

        public Quantity Add(string label, string symbol, Quantity q)
        {
            var r = q with { Symbol = symbol };
            Steps.Add(new(label, r));
            return r;
        }

        public ComparisonSide Done() => new(Name, Steps);
    }

    private static string Count(double v) => v == Math.Floor(v) && Math.Abs(v) < 1e18 ? v.ToString("N0", CultureInfo.InvariantCulture) : v.ToString("G4", CultureInfo.InvariantCulture);
    private static string Pct(double v) => v.ToString("0.0", CultureInfo.InvariantCulture) + " %";
    private static string X(double v) => v.ToString("0.0", CultureInfo.InvariantCulture) + "x";

    /// <summary>The sum of named parts: "P_dw + P_pw = 288 + 2048 = 2336".</summary>
    private static Quantity Sum(string symbol, params Quantity[] parts) =>
        new(symbol, string.Join(" + ", parts.Select(p => p.Symbol)), string.Join(" + ", parts.Select(p => Formulas.Num(p.Value))), parts.Sum(p => p.Value));

    /// <summary>A count times a quantity: "3*P_3x3".</summary>
    private static Quantity Times(string symbol, int count, Quantity q) =>
        new(symbol, $"{count}*{q.Symbol}", $"{count}*{Formulas.Num(q.Value)}", count * q.Value);

    /// <summary>Relative change of B against A in percent: (B/A − 1)·100 (negative = B is smaller).</summary>
    private static Quantity Change(string symbol, Quantity a, Quantity b) =>
        new(symbol, $"({b.Symbol}_B/{a.Symbol}_A - 1)*100", $"({Formulas.Num(b.Value)}/{Formulas.Num(a.Value)} - 1)*100", (b.Value / a.Value - 1) * 100);

    private static Quantity Same(int size, int kernel, int stride = 1, int dilation = 1) =>
        Formulas.ConvOutput(size, kernel, stride, dilation * (kernel - 1) / 2, dilation);

    private static Comparison Separable(string name, Func<string, int> v, bool bias)
    {
        int size = v("size"), m = v("in-channels"), n = v("out-channels"), k = v("kernel"), s = v("stride");
        var a = new Side($"standard {k}x{k} conv");
        var o = a.Add("output size (padding keeps the size at stride 1)", "O", Same(size, k, s));
        int oi = (int)o.Int;
        var pa = a.Add("parameters", "P", Formulas.ConvParams(m, n, k, k, 1, bias));
        var ma = a.Add("MACs", "MACs", Formulas.ConvMacs([oi, oi], n, m, 1, [k, k]));
        var b = new Side($"depthwise {k}x{k} + pointwise 1x1");
        b.Add("output size", "O", Same(size, k, s));
        var pdw = b.Add("depthwise parameters", "P_dw", Formulas.ConvParams(m, m, k, k, m, bias));
        var ppw = b.Add("pointwise parameters", "P_pw", Formulas.ConvParams(m, n, 1, 1, 1, bias));
        var pb = b.Add("parameters", "P", Sum("P", pdw, ppw));
        var mdw = b.Add("depthwise MACs", "MACs_dw", Formulas.ConvMacs([oi, oi], m, m, m, [k, k]));
        var mpw = b.Add("pointwise MACs", "MACs_pw", Formulas.ConvMacs([oi, oi], n, m, 1, [1, 1]));
        var mb = b.Add("MACs", "MACs", Sum("MACs", mdw, mpw));
        var macRatio = Formulas.Ratio("MACs_std/MACs_sep", ma, mb) with { Formula = "MACs_std / MACs_sep" };
        var paramRatio = Formulas.Ratio("P_std/P_sep", pa, pb) with { Formula = "P_std / P_sep" };
        var closed = new Quantity("MACs_sep/MACs_std", "1/N + 1/K^2", $"1/{n} + 1/{k}^2", 1.0 / n + 1.0 / (k * k));
        return new(name, "standard vs depthwise-separable convolution", bias,
            a.Done(), b.Done(), [new("output size", o, o), new("parameters", pa, pb), new("MACs", ma, mb)],
            [new("MAC reduction (standard/separable)", macRatio, "x"), new("parameter reduction (standard/separable)", paramRatio, "x"), new("textbook cost ratio separable/standard (MobileNet eq. 5)", closed)],
            $"depthwise-separable needs {X(macRatio.Value)} fewer MACs ({Count(mb.Value)} vs {Count(ma.Value)}) and {X(paramRatio.Value)} fewer parameters; 1/N + 1/K^2 = {closed.Value.ToString("0.0000", CultureInfo.InvariantCulture)}");
    }

    private static Comparison Stack(string name, Func<string, int> v, bool bias, int big)
    {
        int c = v("channels"), size = v("size"), count = (big - 1) / 2;
        var a = new Side($"one {big}x{big} conv");
        var o = a.Add("output size", "O", Same(size, big));
        int oi = (int)o.Int;
        var pa = a.Add("parameters", "P", Formulas.ConvParams(c, c, big, big, 1, bias));
        var ma = a.Add("MACs", "MACs", Formulas.ConvMacs([oi, oi], c, c, 1, [big, big]));
        var ra = a.Add("receptive field", "RF", Formulas.ReceptiveField(1, 1, big));
        var b = new Side($"{count} stacked 3x3 convs");
        b.Add("output size (each layer)", "O", Same(size, 3));
        var p1 = b.Add("parameters of one 3x3", "P_3x3", Formulas.ConvParams(c, c, 3, 3, 1, bias));
        var pb = b.Add("parameters", "P", Times("P", count, p1));
        var m1 = b.Add("MACs of one 3x3", "MACs_3x3", Formulas.ConvMacs([oi, oi], c, c, 1, [3, 3]));
        var mb = b.Add("MACs", "MACs", Times("MACs", count, m1));
        Quantity rb = new("RF", "1", "1", 1);
        for (int i = 1; i <= count; i++) rb = b.Add($"receptive field after layer {i}", $"RF_{i}", Formulas.ReceptiveField(rb.Value, 1, 3));
        rb = rb with { Symbol = "RF" };
        var nl = new Quantity("ReLUs", "layers", "1", 1);
        var nlb = new Quantity("ReLUs", "layers", count.ToString(CultureInfo.InvariantCulture), count);
        var saving = Change("dP", pa, pb);
        var macSaving = Change("dMACs", ma, mb);
        return new(name, $"one {big}x{big} vs {count} stacked 3x3 convolutions", bias, a.Done(), b.Done(),
            [new("parameters", pa, pb), new("MACs", ma, mb), new("receptive field", ra, rb), new("nonlinearities", nl, nlb)],
            [new("parameter change B vs A", saving, "%"), new("MAC change B vs A", macSaving, "%")],
            $"{count} stacked 3x3 convs have {Pct(-saving.Value)} fewer parameters ({Count(pb.Value)} vs {Count(pa.Value)}) and the same {Count(ra.Value)}x{Count(ra.Value)} receptive field, with {count} nonlinearities instead of 1");
    }

    private static Comparison FcVsGap(string name, Func<string, int> v, bool bias)
    {
        int c = v("channels"), size = v("size"), classes = v("classes"), hidden = v("hidden");
        int flat = checked(c * size * size);
        var a = new Side(hidden > 0 ? $"flatten + FC {hidden} + FC {classes}" : $"flatten + FC {classes}");
        Quantity pa, ma;
        if (hidden > 0)
        {
            var p1 = a.Add("first FC parameters", "P_fc1", Formulas.LinearParams(flat, hidden, bias));
            var p2 = a.Add("second FC parameters", "P_fc2", Formulas.LinearParams(hidden, classes, bias));
            pa = a.Add("parameters", "P", Sum("P", p1, p2));
            var m1 = a.Add("first FC MACs", "MACs_fc1", Formulas.LinearMacs(flat, hidden));
            var m2 = a.Add("second FC MACs", "MACs_fc2", Formulas.LinearMacs(hidden, classes));
            ma = a.Add("MACs", "MACs", Sum("MACs", m1, m2));
        }
        else
        {
            pa = a.Add("parameters", "P", Formulas.LinearParams(flat, classes, bias));
            ma = a.Add("MACs", "MACs", Formulas.LinearMacs(flat, classes));
        }
        var b = new Side($"global average pool + FC {classes}");
        var pb = b.Add("parameters", "P", Formulas.LinearParams(c, classes, bias));
        var mb = b.Add("MACs", "MACs", Formulas.LinearMacs(c, classes));
        var fa = a.Add("FLOPs (2*MACs)", "FLOPs", Formulas.ConvFlops((long)ma.Value, 0));
        var gapOps = b.Add("pooling ops", "FLOPs_gap", Formulas.AvgPoolFlops(flat));
        var fb = b.Add("FLOPs", "FLOPs", Sum("FLOPs", Formulas.ConvFlops((long)mb.Value, 0) with { Symbol = "FLOPs_fc" }, gapOps));
        var ratio = Formulas.Ratio("P_fc/P_gap", pa, pb) with { Formula = "P_fc / P_gap" };
        return new(name, "FC head vs GAP head", bias, a.Done(), b.Done(),
            [new("parameters", pa, pb), new("MACs", ma, mb), new("FLOPs", fa, fb)],
            [new("parameter reduction (FC/GAP)", ratio, "x"), new("parameter change B vs A", Change("dP", pa, pb), "%")],
            $"the GAP head has {X(ratio.Value)} fewer parameters ({Count(pb.Value)} vs {Count(pa.Value)}) and accepts any input size");
    }

    private static Comparison Dilated(string name, Func<string, int> v, bool bias)
    {
        int k = v("kernel"), d = v("dilation"), c = v("channels"), size = v("size");
        var a = new Side($"{k}x{k} conv, dilation {d}");
        var span = a.Add("kernel span", "K_eff", new Quantity("K_eff", "D*(K - 1) + 1", $"{d}*({k} - 1) + 1", d * (k - 1) + 1));
        int ke = (int)span.Int;
        var o = a.Add("output size", "O", Same(size, k, 1, d));
        int oi = (int)o.Int;
        var pa = a.Add("parameters", "P", Formulas.ConvParams(c, c, k, k, 1, bias));
        var ma = a.Add("MACs", "MACs", Formulas.ConvMacs([oi, oi], c, c, 1, [k, k]));
        var ra = a.Add("receptive field", "RF", Formulas.ReceptiveField(1, 1, k, d));
        var b = new Side($"dense {ke}x{ke} conv");
        b.Add("output size", "O", Same(size, ke));
        var pb = b.Add("parameters", "P", Formulas.ConvParams(c, c, ke, ke, 1, bias));
        var mb = b.Add("MACs", "MACs", Formulas.ConvMacs([oi, oi], c, c, 1, [ke, ke]));
        var rb = b.Add("receptive field", "RF", Formulas.ReceptiveField(1, 1, ke));
        var ratio = Formulas.Ratio("P_dense/P_dilated", pb, pa) with { Formula = "P_dense / P_dilated" };
        return new(name, "dilated vs dense kernel of the same span", bias, a.Done(), b.Done(),
            [new("parameters", pa, pb), new("MACs", ma, mb), new("receptive field", ra, rb)],
            [new("parameter ratio (dense/dilated)", ratio, "x"), new("MAC change B vs A", Change("dMACs", ma, mb), "%")],
            $"the dilated {k}x{k} covers the same {ke}x{ke} receptive field with {X(ratio.Value)} fewer parameters and MACs (it samples {k * k} of {ke * ke} positions)");
    }

    private static Comparison Stride(string name, Func<string, int> v, bool bias)
    {
        int size = v("size"), cin = v("in-channels"), cout = v("out-channels"), k = v("kernel"), p = v("padding"), s = v("stride"), batch = v("batch");
        var (a, ma, act1, o1) = StrideSide(size, cin, cout, k, p, 1, batch, bias);
        var (b, mb, act2, o2) = StrideSide(size, cin, cout, k, p, s, batch, bias);
        var ratio = Formulas.Ratio("A_1/A_s", act1, act2) with { Formula = "A_1 / A_s" };
        var macRatio = Formulas.Ratio("MACs_1/MACs_s", ma, mb) with { Formula = "MACs_1 / MACs_s" };
        var pa = a.Steps.First(st => st.Quantity.Symbol == "P").Quantity;
        var pb = b.Steps.First(st => st.Quantity.Symbol == "P").Quantity;
        return new(name, $"first layer at stride 1 vs stride {s}", bias,
            a.Done(), b.Done(), [new("output size", o1, o2), new("parameters", pa, pb), new("MACs (per sample)", ma, mb), new("activation bytes (batch)", act1, act2)],
            [new("activation memory reduction (stride 1/stride s)", ratio, "x"), new("MAC reduction (stride 1/stride s)", macRatio, "x")],
            $"stride {s} shrinks the first activation {X(ratio.Value)} ({Count(o2.Value)}x{Count(o2.Value)} vs {Count(o1.Value)}x{Count(o1.Value)}, {Count(act2.Value)} vs {Count(act1.Value)} bytes at batch {batch}) with the same parameters");
    }

    private static (Side Side, Quantity Macs, Quantity Act, Quantity O) StrideSide(int size, int cin, int cout, int k, int p, int s, int batch, bool bias)
    {
        var side = new Side($"{k}x{k}/{s} conv, {cout} filters");
        var o = side.Add("output size", "O", Formulas.ConvOutput(size, k, s, p));
        int oi = (int)o.Int;
        side.Add("parameters", "P", Formulas.ConvParams(cin, cout, k, k, 1, bias));
        var m = side.Add("MACs", "MACs", Formulas.ConvMacs([oi, oi], cout, cin, 1, [k, k]));
        var n = side.Add("activation elements", "N", new Quantity("N", "B*O*O*C_out", $"{batch}*{oi}*{oi}*{cout}", (double)batch * oi * oi * cout));
        var act = side.Add("activation bytes (float32)", s == 1 ? "A_1" : "A_s", Formulas.Bytes((long)n.Value));
        return (side, m, act, o);
    }

    /// <summary>Side A of the CoordConv and deformable comparisons: a plain k×k "same" convolution.</summary>
    private static (Side Side, int Out, Quantity Params, Quantity Macs) PlainConv(int cin, int cout, int k, int size, bool bias)
    {
        var a = new Side($"{k}x{k} conv");
        int oi = (int)a.Add("output size", "O", Same(size, k)).Int;
        var pa = a.Add("parameters", "P", Formulas.ConvParams(cin, cout, k, k, 1, bias));
        var ma = a.Add("MACs", "MACs", Formulas.ConvMacs([oi, oi], cout, cin, 1, [k, k]));
        return (a, oi, pa, ma);
    }

    private static Comparison CoordConv(string name, Func<string, int> v, bool bias)
    {
        int cin = v("in-channels"), cout = v("out-channels"), k = v("kernel"), size = v("size");
        var (a, oi, pa, ma) = PlainConv(cin, cout, k, size, bias);
        var b = new Side($"{k}x{k} CoordConv (+ y, x channels)");
        b.Add("output size", "O", Same(size, k));
        var pb = b.Add("parameters (C_in + 2 inputs)", "P", Formulas.ConvParams(cin + 2, cout, k, k, 1, bias));
        var mb = b.Add("MACs (C_in + 2 inputs)", "MACs", Formulas.ConvMacs([oi, oi], cout, cin + 2, 1, [k, k]));
        var dp = Change("dP", pa, pb);
        return new(name, "CoordConv overhead", bias, a.Done(), b.Done(),
            [new("parameters", pa, pb), new("MACs", ma, mb)], [new("parameter overhead B vs A", dp, "%"), new("MAC overhead B vs A", Change("dMACs", ma, mb), "%")],
            $"CoordConv adds two coordinate channels: +{Pct(dp.Value)} parameters and MACs (2/C_in)");
    }

    private static Comparison Deformable(string name, Func<string, int> v, bool bias)
    {
        int cin = v("in-channels"), cout = v("out-channels"), k = v("kernel"), size = v("size");
        var (a, oi, pa, ma) = PlainConv(cin, cout, k, size, bias);
        var b = new Side($"{k}x{k} deformable conv");
        b.Add("output size", "O", Same(size, k));
        var pm = b.Add("main kernel parameters", "P_main", Formulas.ConvParams(cin, cout, k, k, 1, bias));
        // The offset branch always has a bias (torchvision/ConvLab DeformConv2d), so it is counted whatever --bias says.
        var po = b.Add("offset conv parameters (2*K*K outputs)", "P_off", Formulas.ConvParams(cin, 2 * k * k, k, k, 1, true));
        var pb = b.Add("parameters", "P", Sum("P", pm, po));
        var mm = b.Add("main MACs", "MACs_main", Formulas.ConvMacs([oi, oi], cout, cin, 1, [k, k]));
        var mo = b.Add("offset conv MACs", "MACs_off", Formulas.ConvMacs([oi, oi], 2 * k * k, cin, 1, [k, k]));
        var ms = b.Add("bilinear sampling MACs (4 taps per sample)", "MACs_bil", DeformSamplingMacs(oi, oi, cin, k));
        var mb = b.Add("MACs", "MACs", Sum("MACs", mm, mo, ms));
        var dp = Change("dP", pa, pb);
        var dm = Change("dMACs", ma, mb);
        return new(name, "deformable-conv overhead", bias, a.Done(), b.Done(),
            [new("parameters", pa, pb), new("MACs", ma, mb)], [new("parameter overhead B vs A", dp, "%"), new("MAC overhead B vs A", dm, "%")],
            $"the deformable conv costs +{Pct(dp.Value)} parameters (offset branch) and +{Pct(dm.Value)} MACs (offset conv + bilinear sampling)");
    }

    /// <summary>
    /// Bilinear sampling cost of a deformable convolution: every output position samples C_in·K² input values, each a
    /// weighted sum of 4 neighbours (4 MACs); the coordinate arithmetic is not counted.
    /// </summary>
    public static Quantity DeformSamplingMacs(int outH, int outW, int inChannels, int kernel) =>
        new("MACs", "H_out*W_out*C_in*K*K*4", $"{outH}*{outW}*{inChannels}*{kernel}*{kernel}*4", 4.0 * outH * outW * inChannels * kernel * kernel);

    private static Comparison MlpVsCnn(string name, Func<string, int> v, bool bias)
    {
        int size = v("size"), c = v("in-channels"), hidden = v("hidden"), filters = v("out-channels"), k = v("kernel");
        var a = new Side($"MLP: flatten + FC {hidden}");
        var inputs = a.Add("inputs per sample", "I", new Quantity("I", "H*W*C", $"{size}*{size}*{c}", (double)size * size * c));
        int flat = checked((int)inputs.Int);
        var pa = a.Add("parameters", "P", Formulas.LinearParams(flat, hidden, bias));
        var ma = a.Add("MACs", "MACs", Formulas.LinearMacs(flat, hidden));
        var wa = a.Add("weights per output unit", "W_unit", new Quantity("W_unit", "H*W*C", $"{size}*{size}*{c}", flat));
        var b = new Side($"CNN: {k}x{k} conv, {filters} filters");
        var o = b.Add("output size", "O", Same(size, k));
        int oi = (int)o.Int;
        var pb = b.Add("parameters", "P", Formulas.ConvParams(c, filters, k, k, 1, bias));
        var mb = b.Add("MACs", "MACs", Formulas.ConvMacs([oi, oi], filters, c, 1, [k, k]));
        var wb = b.Add("weights per output unit", "W_unit", new Quantity("W_unit", "K*K*C", $"{k}*{k}*{c}", k * k * c));
        var ratio = Formulas.Ratio("P_mlp/P_cnn", pa, pb) with { Formula = "P_mlp / P_cnn" };
        return new(name, "MLP vs CNN first layer on an image", bias, a.Done(), b.Done(),
            [new("parameters", pa, pb), new("MACs", ma, mb), new("weights per output unit", wa, wb)],
            [new("parameter reduction (MLP/CNN)", ratio, "x"), new("MAC change B vs A", Change("dMACs", ma, mb), "%")],
            $"the conv layer has {X(ratio.Value)} fewer parameters ({Count(pb.Value)} vs {Count(pa.Value)}) because each unit sees a {k}x{k} window with weights shared over all {oi * oi} positions");
    }

}
