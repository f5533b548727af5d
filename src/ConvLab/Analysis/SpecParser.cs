using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using ConvLab.NN;

namespace ConvLab.Analysis;

/// <summary>
/// A spec that does not parse or does not fit together: the message names the line and column, shows the
/// offending line with a caret under the token and says what was expected.
/// </summary>
public sealed class SpecSyntaxException : ArgumentException
{
    internal SpecSyntaxException(string spec, int offset, int length, string problem)
        : base(Format(spec, offset, length, problem, out int line, out int column, out string token))
    {
        Problem = problem; Offset = offset; Line = line; Column = column; Token = token;
    }

    /// <summary>What went wrong, without the position and caret lines.</summary>
    public string Problem { get; }
    /// <summary>0-based character offset of the offending token in the spec text.</summary>
    public int Offset { get; }
    /// <summary>1-based line of the offending token.</summary>
    public int Line { get; }
    /// <summary>1-based column of the offending token (one past the end of the line when something is missing at its end).</summary>
    public int Column { get; }
    /// <summary>The offending token as written ("" when something is missing).</summary>
    public string Token { get; }

    internal static (int Line, int Column) Position(string spec, int offset)
    {
        int lineStart = offset == 0 ? 0 : spec.LastIndexOf('\n', offset - 1) + 1;
        return (1 + spec.AsSpan(0, lineStart).Count('\n'), offset - lineStart + 1);
    }

    private static string Format(string spec, int offset, int length, string problem, out int line, out int column, out string token)
    {
        offset = Math.Clamp(offset, 0, spec.Length);
        length = Math.Clamp(length, 0, spec.Length - offset);
        token = spec.Substring(offset, length);
        (line, column) = Position(spec, offset);
        int lineStart = offset - column + 1;
        int lineEnd = spec.IndexOf('\n', lineStart);
        if (lineEnd < 0) lineEnd = spec.Length;
        string text = spec[lineStart..lineEnd].TrimEnd('\r');
        // Tabs are kept in the caret line so the caret stays under the token in a terminal.
        var pad = new StringBuilder();
        for (int i = lineStart; i < offset; i++) pad.Append(spec[i] == '\t' ? '\t' : ' ');
        string where = spec.Contains('\n') ? $"line {line}, column {column}" : $"column {column}";
        return $"spec: {problem} at {where}\n  {text}\n  {pad}{new string('^', Math.Max(1, length))}";
    }
}

/// <summary>One module of a parsed spec: its index in the <see cref="Sequential"/>, the text it came from and its output shape.</summary>
/// <param name="Name">State-dict prefix of the module ("0", "1", ...).</param>
/// <param name="Text">The spec text of the layer ("conv 11x11/4 96"); an inserted flatten says so.</param>
/// <param name="Column">1-based column of the layer's first token.</param>
/// <param name="Line">1-based line of the layer's first token.</param>
/// <param name="OutputShape">Output shape without the batch dimension: (C, H, W) or (features).</param>
/// <param name="Module">The module built for the layer.</param>
public sealed record SpecLayer(string Name, string Text, int Line, int Column, int[] OutputShape, Module Module);

/// <summary>The result of <see cref="SpecParser.Parse"/>: a trainable model and the shapes it was built for.</summary>
public sealed class SpecModel
{
    internal SpecModel(Sequential module, int[] inputShape, bool inputFromSpec, IReadOnlyList<SpecLayer> layers)
    {
        Module = module; InputShape = inputShape; InputFromSpec = inputFromSpec; Layers = layers;
    }

    /// <summary>The model: a <see cref="Sequential"/> of ConvLab modules named "0", "1", ... as in PyTorch.</summary>
    public Sequential Module { get; }
    /// <summary>Input shape without the batch dimension, in ConvLab's (C, H, W) order.</summary>
    public int[] InputShape { get; }
    /// <summary>True when the input shape came from the spec's INPUT layer.</summary>
    public bool InputFromSpec { get; }
    /// <summary>Every module of <see cref="Module"/> with its spec text and output shape.</summary>
    public IReadOnlyList<SpecLayer> Layers { get; }
    /// <summary>Output shape of the whole model without the batch dimension.</summary>
    public int[] OutputShape => Layers.Count > 0 ? Layers[^1].OutputShape : InputShape;
}

/// <summary>
/// Parses the layer notations of course material into a real, trainable model (docs/spec-notation.md).
/// Course style: <c>INPUT 28x28x1, CONV3-10, POOL2, FLATTEN, FC-3</c> (CONVk-n = k×k conv, n filters, stride 1,
/// padding floor((k-1)/2) so odd kernels keep the size; POOLk = k×k max pool, stride k; FC-n = n outputs).
/// Paper-table style: <c>conv 11x11/4 96</c>, <c>conv 5x5 p2 256</c>, <c>maxpool 3x3/2</c>, <c>dwconv 3x3</c>,
/// <c>pwconv 64</c>, <c>sepconv 3x3 128</c>, <c>deconv 4x4/2 p1 32</c>, <c>conv 3x3 d2 64</c>, <c>coordconv 7x7/2 64</c>,
/// <c>deformconv 3x3 64</c>, <c>avgpool 2x2</c>, <c>gap</c>, <c>fc 1000</c>, <c>relu</c>, <c>bn</c>, <c>dropout 0.5</c>,
/// <c>flatten</c>, <c>softmax</c> (padding 0 unless <c>pN</c> is given). Layers are separated by commas, semicolons,
/// newlines or <c>-&gt;</c>; <c>[ ... ]*N</c> repeats a group; <c>#</c> starts a comment. INPUT is written H×W×C as in
/// courses; every shape ConvLab reports is (C, H, W) (NCHW without the batch).
/// </summary>
public static partial class SpecParser
{
    /// <summary>Largest weight tensor (elements) a spec may ask for: 2^28 floats = 1 GiB.</summary>
    public const long MaxTensorElements = 1L << 28;
    /// <summary>Largest total of conv and linear weights (elements) a whole spec may ask for, also 2^28 floats = 1 GiB.</summary>
    public const long MaxModelElements = 1L << 28;
    private const int MaxLayers = 10_000;
    private const int MaxNumber = 1 << 20;

    /// <summary>
    /// Parses <paramref name="text"/> into a model. The input shape comes from the spec's INPUT layer or, if it has
    /// none, from <paramref name="inputShape"/> given as (C, H, W); when both are given they must agree.
    /// Throws <see cref="SpecSyntaxException"/> for every problem in the text.
    /// </summary>
    public static SpecModel Parse(string text, int[]? inputShape = null, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (inputShape != null && (inputShape.Length != 3 || inputShape.Any(d => d < 1)))
            throw new ArgumentException($"spec: the input shape must be three positive sizes (C, H, W), got [{string.Join(", ", inputShape)}]");
        var tokens = Lex(text);
        int pos = 0;
        var nodes = ParseList(text, tokens, ref pos, nested: false);
        return new Builder(text, generator).Build(nodes, inputShape);
    }

    /// <summary>True when <paramref name="text"/> looks like a spec rather than a model name (it has a separator, a space or a course keyword).</summary>
    public static bool LooksLikeSpec(string text) =>
        text.IndexOfAny([',', ';', '\n', ' ', '\t', '[']) >= 0 || text.Contains("->", StringComparison.Ordinal) || CourseWord().IsMatch(text);

    // ---- lexer -------------------------------------------------------------------------------------

    private enum Kind { Word, Sep, Open, Close, Star, End }

    private readonly record struct Tok(Kind Kind, string Text, int Offset);

    private static List<Tok> Lex(string s)
    {
        var list = new List<Tok>();
        int i = 0;
        while (i < s.Length)
        {
            char c = s[i];
            if (c == '#') { while (i < s.Length && s[i] != '\n') i++; continue; }
            if (c is ',' or ';' or '\n') { list.Add(new(Kind.Sep, c.ToString(), i++)); continue; }
            if (c == '-' && i + 1 < s.Length && s[i + 1] == '>') { list.Add(new(Kind.Sep, "->", i)); i += 2; continue; }
            if (c == '[') { list.Add(new(Kind.Open, "[", i++)); continue; }
            if (c == ']') { list.Add(new(Kind.Close, "]", i++)); continue; }
            if (c is '*' or '×') { list.Add(new(Kind.Star, c.ToString(), i++)); continue; }
            if (char.IsWhiteSpace(c)) { i++; continue; }
            int start = i;
            while (i < s.Length && !char.IsWhiteSpace(s[i]) && s[i] is not (',' or ';' or '[' or ']' or '*' or '×' or '#')
                   && !(s[i] == '-' && i + 1 < s.Length && s[i + 1] == '>')) i++;
            list.Add(new(Kind.Word, s[start..i], start));
        }
        list.Add(new(Kind.End, "", s.Length));
        return list;
    }

    // ---- syntax tree -------------------------------------------------------------------------------

    private abstract record Node;
    private sealed record LayerNode(List<Tok> Words) : Node;
    private sealed record RepeatNode(List<Node> Body, int Count) : Node;

    private static string Describe(Tok t) => t.Kind switch
    {
        Kind.End => "the end of the spec",
        Kind.Sep => t.Text == "\n" ? "the end of the line" : $"'{t.Text}'",
        _ => $"'{t.Text}'",
    };

    private static SpecSyntaxException Error(string text, Tok t, string problem) => new(text, t.Offset, t.Text == "\n" ? 0 : t.Text.Length, problem);

    private static List<Node> ParseList(string text, List<Tok> toks, ref int pos, bool nested)
    {
        var nodes = new List<Node>();
        while (true)
        {
            var t = toks[pos];
            switch (t.Kind)
            {
                case Kind.Sep: pos++; continue;
                case Kind.End when nested: throw Error(text, t, "expected ']' to close the group");
                case Kind.End: return nodes;
                case Kind.Close when nested: return nodes;
                case Kind.Close: throw Error(text, t, "unexpected ']' without a matching '['; expected a layer");
                case Kind.Star: throw Error(text, t, "unexpected '*'; expected a layer (repeat a group with [ ... ]*N)");
                case Kind.Open:
                {
                    pos++;
                    var body = ParseList(text, toks, ref pos, nested: true);
                    if (body.Count == 0) throw Error(text, toks[pos], "expected at least one layer inside '[ ]'");
                    pos++; // ']'
                    var star = toks[pos];
                    // "]*3", "]x3" and "] x 3" all repeat the group.
                    int count;
                    if (star.Kind == Kind.Star && toks[pos + 1].Kind == Kind.Word && int.TryParse(toks[pos + 1].Text, NumberStyles.None, CultureInfo.InvariantCulture, out count)) pos += 2;
                    else if (star.Kind == Kind.Word && RepeatWord().Match(star.Text) is { Success: true } m && int.TryParse(m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out count)) pos++;
                    else throw Error(text, star.Kind == Kind.Star ? toks[pos + 1] : star, $"expected a repeat count like *2 after ']', got {Describe(star.Kind == Kind.Star ? toks[pos + 1] : star)}");
                    if (count < 1 || count > MaxLayers)
                        throw Error(text, toks[pos - 1], $"expected a repeat count from 1 to {MaxLayers}, got {count}");
                    nodes.Add(new RepeatNode(body, count));
                    if (toks[pos].Kind is not (Kind.Sep or Kind.Close or Kind.End))
                        throw Error(text, toks[pos], $"expected ',' after the repeated group, got {Describe(toks[pos])}");
                    continue;
                }
                default:
                {
                    var words = new List<Tok>();
                    while (toks[pos].Kind == Kind.Word) words.Add(toks[pos++]);
                    if (toks[pos].Kind is Kind.Open or Kind.Star)
                        throw Error(text, toks[pos], $"unexpected {Describe(toks[pos])} inside a layer; expected ',' between layers");
                    nodes.Add(new LayerNode(words));
                    continue;
                }
            }
        }
    }

    [GeneratedRegex(@"^[x×](\d+)$", RegexOptions.IgnoreCase)]
    private static partial Regex RepeatWord();
    [GeneratedRegex(@"^(input|conv\d+-\d+|pool\d+|fc-?\d+)$", RegexOptions.IgnoreCase)]
    private static partial Regex CourseWord();
    [GeneratedRegex(@"^conv(\d+)-(\d+)$", RegexOptions.IgnoreCase)]
    private static partial Regex CourseConv();
    [GeneratedRegex(@"^pool(\d+)$", RegexOptions.IgnoreCase)]
    private static partial Regex CoursePool();
    [GeneratedRegex(@"^fc-?(\d+)$", RegexOptions.IgnoreCase)]
    private static partial Regex CourseFc();
    [GeneratedRegex(@"^(\d+)(?:x(\d+))?(?:/(\d+)(?:x(\d+))?)?$", RegexOptions.IgnoreCase)]
    private static partial Regex KernelWord();
    [GeneratedRegex(@"^(\d+)x(\d+)(?:x(\d+))?$", RegexOptions.IgnoreCase)]
    private static partial Regex SizeWord();
    [GeneratedRegex(@"^(op|p|s|d|g)(\d+)(?:x(\d+))?$", RegexOptions.IgnoreCase)]
    private static partial Regex OptionWord();

    // ---- model building ----------------------------------------------------------------------------

    /// <summary>Which optional arguments a layer keyword takes.</summary>
    [Flags]
    private enum Opt { None = 0, Count = 1, CountOptional = 2, Stride = 4, Pad = 8, Dilation = 16, Groups = 32, OutPad = 64, NoBias = 128 }

    /// <summary>Kernel/stride/padding/dilation (h, w), groups, output padding, channel count and bias of one layer.</summary>
    private sealed class Args
    {
        public int Kh, Kw, Sh = 1, Sw = 1, Ph, Pw, Dh = 1, Dw = 1, Groups = 1, OutPad;
        public int? Count;
        public bool Bias = true;
    }

    private sealed class Builder(string text, Generator? generator)
    {
        private readonly Sequential _seq = new();
        private readonly List<SpecLayer> _layers = [];
        private int[] _shape = [];
        // The first walk only checks: it computes every shape and weight size but builds no weight-holding module.
        private bool _dry;
        private int _count;
        private long _weights;
        private static readonly Module Placeholder = new Flatten();

        public SpecModel Build(List<Node> nodes, int[]? given)
        {
            bool fromSpec = false;
            if (nodes.Count > 0 && nodes[0] is LayerNode first && first.Words.Count > 0 && first.Words[0].Text.Equals("input", StringComparison.OrdinalIgnoreCase))
            {
                _shape = InputShape(first.Words);
                if (given != null && !given.SequenceEqual(_shape))
                    throw Error(text, first.Words[1], $"INPUT {first.Words[1].Text} (C, H, W) = {Shape(_shape)} differs from the given input shape {Shape(given)}");
                nodes = nodes[1..];
                fromSpec = true;
            }
            else if (given != null) _shape = [.. given];
            else
            {
                var at = nodes.Count > 0 ? FirstWord(nodes[0]) : new Tok(Kind.End, "", 0);
                throw Error(text, at, "expected 'INPUT HxWxC' (like INPUT 28x28x1) as the first layer, or an input shape given separately (CLI: --input CxHxW)");
            }
            var input = _shape;
            // Check the whole spec before allocating any weight, so that an error in a late layer (or a model too
            // large in total) costs no memory for the layers before it (fuzz/ found 57 MB allocated for an 86-byte spec
            // refused at its third layer).
            _dry = true;
            Walk(nodes);
            (_dry, _shape, _count, _weights) = (false, input, 0, 0);
            Walk(nodes);
            return new SpecModel(_seq, input, fromSpec, _layers);
        }

        private static Tok FirstWord(Node n) => n switch
        {
            LayerNode l => l.Words[0],
            RepeatNode r => FirstWord(r.Body[0]),
            _ => throw new InvalidOperationException(),
        };

        private void Walk(List<Node> nodes)
        {
            foreach (var n in nodes)
            {
                if (n is RepeatNode r) { for (int i = 0; i < r.Count; i++) Walk(r.Body); }
                else Layer(((LayerNode)n).Words);
            }
        }

        private int[] InputShape(List<Tok> w)
        {
            if (w.Count < 2 || SizeWord().Match(w[1].Text) is not { Success: true } m)
                throw Error(text, w.Count < 2 ? After(w[0]) : w[1], $"expected the input size HxWxC like 28x28x1 after '{w[0].Text}', got {(w.Count < 2 ? "nothing" : $"'{w[1].Text}'")}");
            if (w.Count > 2) throw Error(text, w[2], $"unexpected '{w[2].Text}' after '{w[0].Text} {w[1].Text}'; expected ','");
            int h = Num(w[1], m.Groups[1].Value), wd = Num(w[1], m.Groups[2].Value);
            int c = m.Groups[3].Success ? Num(w[1], m.Groups[3].Value) : 1;
            if (h < 1 || wd < 1 || c < 1) throw Error(text, w[1], $"expected positive sizes in '{w[1].Text}'");
            // Courses write HxWxC; "3x224x224" is almost surely PyTorch's CxHxW, which would silently build the wrong net.
            if (m.Groups[3].Success && h <= 4 && c > 4 && wd == c)
                throw Error(text, w[1], $"INPUT is written HxWxC as in courses, and '{w[1].Text}' looks like CxHxW; write {wd}x{c}x{h}");
            return [c, h, wd];
        }

        private Tok After(Tok t) => new(Kind.End, "", t.Offset + t.Text.Length);

        private int Num(Tok t, string digits) =>
            int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v <= MaxNumber ? v
                : throw Error(text, t, $"number {digits} in '{t.Text}' is too large (at most {MaxNumber})");

        private void Layer(List<Tok> w)
        {
            if (_count >= MaxLayers) throw Error(text, w[0], $"the spec expands to more than {MaxLayers} layers");
            var head = w[0];
            string kw = head.Text.ToLowerInvariant();
            try
            {
                if (kw == "input") throw Error(text, head, "INPUT may only be the first layer");
                if (CourseConv().Match(kw) is { Success: true } cc)
                {
                    NoMore(w, 1);
                    int k = Num(head, cc.Groups[1].Value), n = Num(head, cc.Groups[2].Value);
                    var a = new Args { Kh = k, Kw = k, Ph = (k - 1) / 2, Pw = (k - 1) / 2, Count = n };
                    Conv(w, "conv", a);
                    return;
                }
                if (CoursePool().Match(kw) is { Success: true } cp)
                {
                    NoMore(w, 1);
                    int k = Num(head, cp.Groups[1].Value);
                    Pool(w, true, new Args { Kh = k, Kw = k, Sh = k, Sw = k });
                    return;
                }
                if (CourseFc().Match(kw) is { Success: true } cf)
                {
                    NoMore(w, 1);
                    Fc(w, Num(head, cf.Groups[1].Value), true);
                    return;
                }
                switch (kw)
                {
                    case "conv": Conv(w, kw, Kernel(w, Opt.Count | Opt.Stride | Opt.Pad | Opt.Dilation | Opt.Groups | Opt.NoBias)); return;
                    case "dwconv": Conv(w, kw, Kernel(w, Opt.CountOptional | Opt.Stride | Opt.Pad | Opt.Dilation | Opt.NoBias)); return;
                    case "sepconv": case "coordconv": case "deformconv":
                        Conv(w, kw, Kernel(w, Opt.Count | Opt.Stride | Opt.Pad | Opt.Dilation | Opt.NoBias)); return;
                    case "deconv": Conv(w, kw, Kernel(w, Opt.Count | Opt.Stride | Opt.Pad | Opt.Dilation | Opt.OutPad | Opt.NoBias)); return;
                    case "pwconv":
                    {
                        var a = Options(w, 1, Opt.Count | Opt.NoBias, new Args { Kh = 1, Kw = 1 });
                        Conv(w, kw, a);
                        return;
                    }
                    case "maxpool": case "pool": case "avgpool":
                    {
                        var a = Kernel(w, Opt.Stride | Opt.Pad, strideDefaultsToKernel: true);
                        Pool(w, kw != "avgpool", a);
                        return;
                    }
                    case "gap": NoMore(w, 1); Spatial(w); Add(w, new GlobalAvgPool2d(), [_shape[0], 1, 1]); return;
                    case "fc": case "linear": case "dense":
                    {
                        if (w.Count < 2) throw Error(text, After(head), $"expected the number of outputs after '{head.Text}' (like fc 1000)");
                        NoMore(w, 2);
                        if (!int.TryParse(w[1].Text, NumberStyles.None, CultureInfo.InvariantCulture, out int n))
                            throw Error(text, w[1], $"expected the number of outputs after '{head.Text}' (like fc 1000), got '{w[1].Text}'");
                        Fc(w, n, false);
                        return;
                    }
                    case "flatten": NoMore(w, 1); Add(w, new Flatten(), [Numel(_shape)]); return;
                    case "relu": Simple(w, new ReLU()); return;
                    case "relu6": Simple(w, new ReLU6()); return;
                    case "tanh": Simple(w, new Tanh()); return;
                    case "sigmoid": Simple(w, new Sigmoid()); return;
                    case "lrelu": case "leakyrelu": Simple(w, new LeakyReLU()); return;
                    case "softmax": Simple(w, new Softmax(1)); return;
                    case "bn": case "batchnorm":
                        NoMore(w, 1);
                        Add(w, _shape.Length == 3 ? new BatchNorm2d(_shape[0]) : new BatchNorm1d(_shape[0]), _shape);
                        return;
                    case "dropout":
                    {
                        double p = 0.5;
                        if (w.Count > 1 && !(double.TryParse(w[1].Text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out p) && p is >= 0 and < 1))
                            throw Error(text, w[1], $"expected a drop probability in [0, 1) like 0.5 after 'dropout', got '{w[1].Text}'");
                        NoMore(w, w.Count > 1 ? 2 : 1);
                        Add(w, new Dropout(p, generator), _shape);
                        return;
                    }
                    default:
                        throw Error(text, head, $"unknown layer '{head.Text}'; expected one of INPUT, CONVk-n, POOLk, FC-n, conv, dwconv, pwconv, sepconv, deconv, coordconv, deformconv, maxpool, avgpool, gap, fc, flatten, relu, bn, dropout, softmax");
                }
            }
            catch (ArgumentException e) when (e is not SpecSyntaxException)
            {
                // A module constructor refused the arguments: report it at the layer rather than as a bare exception.
                throw new SpecSyntaxException(text, head.Offset, LayerLength(w), e.Message);
            }
        }

        private static int LayerLength(List<Tok> w) => w[^1].Offset + w[^1].Text.Length - w[0].Offset;

        private void NoMore(List<Tok> w, int used)
        {
            if (w.Count > used)
                throw Error(text, w[used], $"unexpected '{w[used].Text}' after '{string.Join(' ', w.Take(used).Select(t => t.Text))}'; expected ','");
        }

        private void Simple(List<Tok> w, Module m) { NoMore(w, 1); Add(w, m, _shape); }

        private void Spatial(List<Tok> w)
        {
            if (_shape.Length != 3)
                throw Error(text, w[0], $"'{w[0].Text}' needs a (C, H, W) input but the previous layer gives {_shape[0]} flat features");
        }

        /// <summary>Reads "KxK[/S]" then the options.</summary>
        private Args Kernel(List<Tok> w, Opt allowed, bool strideDefaultsToKernel = false)
        {
            if (w.Count < 2 || KernelWord().Match(w[1].Text) is not { Success: true } m || !w[1].Text.Contains('x', StringComparison.OrdinalIgnoreCase) && !w[1].Text.Contains('/'))
            {
                var at = w.Count < 2 ? After(w[0]) : w[1];
                throw Error(text, at, $"expected a kernel size like 3x3 after '{w[0].Text}', got {(w.Count < 2 ? "nothing" : $"'{w[1].Text}'")}");
            }
            var a = new Args { Kh = Num(w[1], m.Groups[1].Value) };
            a.Kw = m.Groups[2].Success ? Num(w[1], m.Groups[2].Value) : a.Kh;
            if (m.Groups[3].Success)
            {
                a.Sh = Num(w[1], m.Groups[3].Value);
                a.Sw = m.Groups[4].Success ? Num(w[1], m.Groups[4].Value) : a.Sh;
            }
            else if (strideDefaultsToKernel) { a.Sh = a.Kh; a.Sw = a.Kw; }
            if (a.Kh < 1 || a.Kw < 1 || a.Sh < 1 || a.Sw < 1)
                throw Error(text, w[1], $"expected positive kernel size and stride in '{w[1].Text}'");
            return Options(w, 2, allowed, a, stridePresent: m.Groups[3].Success);
        }

        private Args Options(List<Tok> w, int from, Opt allowed, Args a, bool stridePresent = false)
        {
            var seen = new HashSet<string>();
            string expected = ExpectedOptions(allowed);
            for (int i = from; i < w.Count; i++)
            {
                var t = w[i];
                string s = t.Text.ToLowerInvariant();
                if (s is "nobias" or "nb" && allowed.HasFlag(Opt.NoBias) && seen.Add("nobias")) { a.Bias = false; continue; }
                if (s.All(char.IsAsciiDigit) && (allowed & (Opt.Count | Opt.CountOptional)) != 0)
                {
                    int n = Num(t, s);
                    if (!seen.Add("count")) throw Error(text, t, $"a second channel count '{t.Text}' in '{w[0].Text}'; expected one");
                    if (n < 1) throw Error(text, t, $"expected a positive channel count, got '{t.Text}'");
                    a.Count = n;
                    continue;
                }
                if (OptionWord().Match(s) is { Success: true } m)
                {
                    string key = m.Groups[1].Value;
                    var flag = key switch { "p" => Opt.Pad, "s" => Opt.Stride, "d" => Opt.Dilation, "g" => Opt.Groups, _ => Opt.OutPad };
                    if (allowed.HasFlag(flag))
                    {
                        if (!seen.Add(key) || key == "s" && stridePresent)
                            throw Error(text, t, $"'{t.Text}' repeats an option already given for '{w[0].Text}'");
                        int v1 = Num(t, m.Groups[2].Value), v2 = m.Groups[3].Success ? Num(t, m.Groups[3].Value) : v1;
                        if (key is "s" or "d" or "g" && (v1 < 1 || v2 < 1)) throw Error(text, t, $"expected a positive value in '{t.Text}'");
                        switch (key)
                        {
                            case "p": a.Ph = v1; a.Pw = v2; break;
                            case "s": a.Sh = v1; a.Sw = v2; break;
                            case "d": a.Dh = v1; a.Dw = v2; break;
                            case "g" when !m.Groups[3].Success: a.Groups = v1; break;
                            case "op" when !m.Groups[3].Success: a.OutPad = v1; break;
                            default: throw Error(text, t, $"expected a single number in '{t.Text}'");
                        }
                        continue;
                    }
                }
                throw Error(text, t, $"unexpected '{t.Text}' in '{w[0].Text}'; expected {expected}");
            }
            if (allowed.HasFlag(Opt.Count) && a.Count == null)
                throw Error(text, After(w[^1]), $"expected the number of {(w[0].Text.Contains("conv", StringComparison.OrdinalIgnoreCase) ? "filters" : "outputs")} at the end of '{string.Join(' ', w.Select(t => t.Text))}' (like {w[0].Text} {(w.Count > 1 ? w[1].Text + " " : "")}64)");
            return a;
        }

        private static string ExpectedOptions(Opt allowed)
        {
            var parts = new List<string>();
            if ((allowed & (Opt.Count | Opt.CountOptional)) != 0) parts.Add("a channel count like 64");
            if (allowed.HasFlag(Opt.Stride)) parts.Add("sN (stride)");
            if (allowed.HasFlag(Opt.Pad)) parts.Add("pN (padding)");
            if (allowed.HasFlag(Opt.Dilation)) parts.Add("dN (dilation)");
            if (allowed.HasFlag(Opt.Groups)) parts.Add("gN (groups)");
            if (allowed.HasFlag(Opt.OutPad)) parts.Add("opN (output padding)");
            if (allowed.HasFlag(Opt.NoBias)) parts.Add("nobias");
            return parts.Count == 0 ? "','" : string.Join(", ", parts) + " or ','";
        }

        private void Conv(List<Tok> w, string kind, Args a)
        {
            Spatial(w);
            int c = _shape[0], h = _shape[1], wd = _shape[2];
            int n = a.Count ?? c;
            string what = string.Join(' ', w.Select(t => t.Text));
            if (kind == "dwconv")
            {
                if (n % c != 0) throw Error(text, w[^1], $"'{what}': a depthwise conv's output channels must be a multiple of its {c} input channels, got {n}");
                a.Groups = c;
            }
            if (c % a.Groups != 0 || n % a.Groups != 0)
                throw Error(text, w[0], $"'{what}': groups {a.Groups} must divide the {c} input and {n} output channels");
            int oh, ow;
            if (kind == "deconv")
            {
                if (a.OutPad >= Math.Max(a.Sh, a.Dh) || a.OutPad >= Math.Max(a.Sw, a.Dw))
                    throw Error(text, w[0], $"'{what}': output padding {a.OutPad} must be smaller than the stride or the dilation");
                oh = TransposedSize(w, what, h, a.Kh, a.Sh, a.Ph, a.Dh, a.OutPad);
                ow = TransposedSize(w, what, wd, a.Kw, a.Sw, a.Pw, a.Dw, a.OutPad);
            }
            else
            {
                oh = OutSize(w, what, h, a.Kh, a.Sh, a.Ph, a.Dh);
                ow = OutSize(w, what, wd, a.Kw, a.Sw, a.Pw, a.Dw);
            }
            long weights = (long)n * (c / a.Groups) * a.Kh * a.Kw;
            if (kind == "coordconv") weights = (long)n * ((c + 2) / a.Groups) * a.Kh * a.Kw;
            CheckSize(w, what, weights);
            int[] k = [a.Kh, a.Kw], s = [a.Sh, a.Sw], p = [a.Ph, a.Pw], d = [a.Dh, a.Dw];
            Module m = _dry ? Placeholder : kind switch
            {
                "sepconv" => new DepthwiseSeparableConv2d(c, n, k, s, p, d, a.Bias, generator: generator),
                "coordconv" => new CoordConv2d(c, n, k, s, p, d, bias: a.Bias, generator: generator),
                "deformconv" => new DeformConv2d(c, n, k, s, p, d, bias: a.Bias, generator: generator),
                "deconv" => new ConvTranspose2d(c, n, k, s, p, [a.OutPad, a.OutPad], bias: a.Bias, dilation: d, generator: generator),
                _ => new Conv2d(c, n, k, s, p, d, a.Groups, a.Bias, generator: generator),
            };
            Add(w, m, [n, oh, ow]);
        }

        private void Pool(List<Tok> w, bool max, Args a)
        {
            Spatial(w);
            string what = string.Join(' ', w.Select(t => t.Text));
            if (a.Ph > a.Kh / 2 || a.Pw > a.Kw / 2)
                throw Error(text, w[0], $"'{what}': padding {a.Ph} must be at most half the kernel size {a.Kh}");
            int oh = OutSize(w, what, _shape[1], a.Kh, a.Sh, a.Ph, 1), ow = OutSize(w, what, _shape[2], a.Kw, a.Sw, a.Pw, 1);
            int[] k = [a.Kh, a.Kw], s = [a.Sh, a.Sw], p = [a.Ph, a.Pw];
            Add(w, max ? new MaxPool2d(k, s, p) : new AvgPool2d(k, s, p), [_shape[0], oh, ow]);
        }

        private void Fc(List<Tok> w, int n, bool course)
        {
            if (n < 1) throw Error(text, course ? w[0] : w[1], $"expected a positive number of outputs, got {n}");
            if (_shape.Length == 3)
            {
                // fc on a feature map flattens it first, as every course table implies.
                var flat = new Flatten();
                AddAt(w[0], "(flatten before " + string.Join(' ', w.Select(t => t.Text)) + ")", flat, [Numel(_shape)]);
            }
            int features = _shape[0];
            CheckSize(w, string.Join(' ', w.Select(t => t.Text)), (long)features * n);
            Add(w, _dry ? Placeholder : new Linear(features, n, generator: generator), [n]);
        }

        private void CheckSize(List<Tok> w, string what, long elements)
        {
            if (elements > MaxTensorElements)
                throw Error(text, w[0], $"'{what}' needs a weight of {elements:N0} elements on a {Shape(_shape)} input; the limit is {MaxTensorElements:N0}");
            _weights += elements;
            if (_weights > MaxModelElements)
                throw Error(text, w[0], $"'{what}' brings the model's weights to {_weights:N0} elements; the limit for a whole spec is {MaxModelElements:N0}");
        }

        private int Numel(int[] shape)
        {
            long n = 1;
            foreach (var d in shape) n *= d;
            return n <= int.MaxValue ? (int)n : throw new ArgumentException($"a {Shape(shape)} feature map has more than {int.MaxValue} elements");
        }

        private int OutSize(List<Tok> w, string what, int size, int k, int s, int p, int d)
        {
            // POOL0 or a 0x0 window would divide by a zero stride below (found by fuzz/).
            if (k < 1 || s < 1) throw Error(text, w[0], $"'{what}': the kernel size and stride must be positive, got kernel {k}, stride {s}");
            long span = (long)d * (k - 1) + 1, padded = size + 2L * p;
            if (span > padded)
                throw Error(text, w[0], $"'{what}' needs a window of {span} but the padded input is only {padded} wide (input {Shape(_shape)})");
            return (int)Formulas.ConvOutput(size, k, s, p, d).Int;
        }

        private int TransposedSize(List<Tok> w, string what, int size, int k, int s, int p, int d, int op)
        {
            long o = Formulas.ConvTransposeOutput(size, k, s, p, op, d).Int;
            if (o < 1 || o > int.MaxValue)
                throw Error(text, w[0], $"'{what}' turns a size-{size} input into size {o}; expected a positive size below 2^31");
            return (int)o;
        }

        private void Add(List<Tok> w, Module m, int[] shape) =>
            AddAt(w[0], string.Join(' ', w.Select(t => t.Text)), m, shape, LayerLength(w));

        private void AddAt(Tok head, string what, Module m, int[] shape, int length = 0)
        {
            if (shape.Any(d => d < 1))
                throw new SpecSyntaxException(text, head.Offset, length, $"'{what}' gives the empty shape {Shape(shape)}");
            _count++;
            if (_dry) { _shape = shape; return; }
            var (line, column) = SpecSyntaxException.Position(text, head.Offset);
            _layers.Add(new SpecLayer(_seq.Count.ToString(CultureInfo.InvariantCulture), what, line, column, shape, m));
            _seq.Append(m);
            _shape = shape;
        }

        private static string Shape(int[] s) => "(" + string.Join(", ", s) + ")";
    }
}
