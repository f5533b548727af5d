using System.CommandLine;
using System.Text.Json;
using ConvLab.Analysis;

namespace ConvLab.Cli;

/// <summary>
/// <c>convlab conv --input M --weight M [--transposed] [--stride S] [--padding P] [--dilation D] [--mode M] [--explain] [--im2col]</c>
/// and <c>convlab conv --solve-filter --input V --output V --kernel K</c>: worked convolutions (logic in <see cref="WorkedConv"/>).
/// </summary>
internal static class ConvCommand
{
    public static Command Create()
    {
        var input = new Option<string>("--input") { Description = "Input vector \"[1,2,3]\" or matrix \"[[1,2],[3,4]]\"", Required = true };
        var weight = new Option<string?>("--weight") { Description = "Filter, same rank as the input" };
        var transposed = new Option<bool>("--transposed") { Description = "Transposed convolution (each input element scales a copy of the filter; overlaps add)" };
        var stride = new Option<string>("--stride") { Description = "Stride (one value, or one per dimension as 2x1)", DefaultValueFactory = _ => "1" };
        var padding = new Option<string>("--padding") { Description = "Padding (transposed: rows/columns cropped from the full result)", DefaultValueFactory = _ => "0" };
        var dilation = new Option<string>("--dilation") { Description = "Dilation", DefaultValueFactory = _ => "1" };
        var outputPadding = new Option<string>("--output-padding") { Description = "Transposed only: extra rows/columns at the end", DefaultValueFactory = _ => "0" };
        var mode = new Option<string>("--mode") { Description = "Padding mode: zeros, reflect, replicate or circular", DefaultValueFactory = _ => "zeros" };
        var explain = new Option<bool>("--explain") { Description = "Write every output element as its sum of products (transposed: each input's scaled filter copy)" };
        var im2col = new Option<bool>("--im2col") { Description = "Print the column matrix (taps x output positions) and the GEMM that gives the result" };
        var solve = new Option<bool>("--solve-filter") { Description = "Recover the filter from --input and --output (least squares); needs --kernel" };
        var output = new Option<string?>("--output") { Description = "With --solve-filter: the convolution's output" };
        var kernel = new Option<string?>("--kernel") { Description = "With --solve-filter: the filter size (3, or 3x3)" };
        var format = new Option<string>("--format") { Description = "text or json", DefaultValueFactory = _ => "text" };
        format.AcceptOnlyFromAmong("text", "json");
        var cmd = new Command("conv", "Worked 1-d/2-d convolutions of small typed matrices: the result, each sum of products, im2col, transposed convolution, filter recovery.")
            { input, weight, transposed, stride, padding, dilation, outputPadding, mode, explain, im2col, solve, output, kernel, format };
        cmd.SetAction(pr =>
        {
            try
            {
                var x = MatrixText.Parse(pr.GetValue(input)!, "--input");
                int dims = x.Rank;
                var s = new WorkedConvSettings(MatrixText.ParseSize(pr.GetValue(stride)!, "--stride", dims, 1), MatrixText.ParseSize(pr.GetValue(padding)!, "--padding", dims, 0),
                    MatrixText.ParseSize(pr.GetValue(dilation)!, "--dilation", dims, 1), pr.GetValue(mode)!, pr.GetValue(transposed),
                    MatrixText.ParseSize(pr.GetValue(outputPadding)!, "--output-padding", dims, 0));
                bool json = pr.GetValue(format) == "json";
                if (pr.GetValue(solve))
                {
                    var y = MatrixText.Parse(pr.GetValue(output) ?? throw new ArgumentException("--output: --solve-filter needs the convolution's output"), "--output");
                    var k = MatrixText.ParseSize(pr.GetValue(kernel) ?? throw new ArgumentException("--kernel: --solve-filter needs the filter size (as 3 or 3x3)"), "--kernel", dims, 1);
                    RenderSolution(WorkedConv.SolveFilter(x, y, k, s), json, Console.Out);
                    return 0;
                }
                var wText = pr.GetValue(weight) ?? throw new ArgumentException("--weight: required (the filter), unless --solve-filter");
                Render(WorkedConv.Compute(x, MatrixText.Parse(wText, "--weight"), s), json, pr.GetValue(explain), pr.GetValue(im2col), Console.Out);
                return 0;
            }
            catch (ArgumentException e)
            {
                Console.Error.WriteLine(e.Message);
                return 1;
            }
        });
        return cmd;
    }

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static string Sizes(int[] v) => string.Join("x", v);

    internal static void Render(WorkedConvResult r, bool json, bool explain, bool im2col, TextWriter o)
    {
        var s = r.Settings;
        if (json)
        {
            var d = new Dictionary<string, object> { ["output"] = MatrixText.Nested(r.Output) };
            if (explain) d[r.Settings.Transposed ? "overlap_sums" : "sums"] = r.Sums;
            if (explain && s.Transposed)
                d["copies"] = r.Copies.Select(c => new { input = c.Index, value = c.Value, offset = c.Offset, copy = MatrixText.Nested(c.Copy) });
            if (im2col && r.Im2col is { } v)
                d["im2col"] = new { columns = MatrixText.Nested(v.Columns), weight_row = MatrixText.Nested(v.WeightRow), product = MatrixText.Nested(v.Product) };
            o.WriteLine(JsonSerializer.Serialize(d, JsonOptions));
            return;
        }
        string what = s.Transposed ? "transposed convolution" : "convolution";
        o.WriteLine($"{r.Input.Rank}-d {what}: input {Sizes(r.Input.Shape.ToArray())}, filter {Sizes(r.Weight.Shape.ToArray())}, stride {Sizes(s.Stride)}, padding {Sizes(s.Padding)}{(s.Transposed ? "" : $" ({s.PaddingMode})")}, dilation {Sizes(s.Dilation)} -> output {Sizes(r.Output.Shape.ToArray())}");
        if (!s.Transposed && s.Padding.Any(p => p > 0))
        {
            o.WriteLine("padded input:");
            foreach (var line in MatrixText.Grid(r.Padded)) o.WriteLine("  " + line);
        }
        o.WriteLine("output:");
        foreach (var line in MatrixText.Grid(r.Output)) o.WriteLine("  " + line);
        if (explain && s.Transposed)
        {
            o.WriteLine();
            o.WriteLine("each input element scales a copy of the filter, placed at stride times its index in the full output:");
            foreach (var c in r.Copies)
            {
                o.WriteLine($"  {c.Index} = {Formulas.Num(c.Value)} -> {Formulas.Num(c.Value)}·w at offset {string.Join(",", c.Offset)}:");
                foreach (var line in MatrixText.Grid(c.Copy)) o.WriteLine("    " + line);
            }
            if (s.Padding.Any(p => p > 0)) o.WriteLine($"  the full result is cropped by {Sizes(s.Padding)} on each side (padding)");
            o.WriteLine("overlap sums:");
        }
        else if (explain)
        {
            o.WriteLine();
            o.WriteLine("each output element is the sum of products of the filter with the input under it:");
        }
        if (explain) foreach (var line in r.Sums) o.WriteLine("  " + line);
        if (im2col && r.Im2col is { } im)
        {
            o.WriteLine();
            o.WriteLine($"im2col: column matrix {im.Columns.Shape[0]}x{im.Columns.Shape[1]} (one row per filter tap, one column per output position):");
            var cells = im.Columns.ToDoubleArray().Select(Formulas.Num).ToArray();
            int p = im.Columns.Shape[1], cw = Math.Max(cells.Max(c => c.Length), im.ColumnLabels.Max(l => l.Length));
            int lw = im.RowLabels.Max(l => l.Length);
            o.WriteLine("  " + new string(' ', lw) + "   " + string.Join("  ", im.ColumnLabels.Select(l => l.PadLeft(cw))));
            for (int i = 0; i < im.RowLabels.Count; i++)
                o.WriteLine($"  {im.RowLabels[i].PadLeft(lw)} | {string.Join("  ", cells.Skip(i * p).Take(p).Select(c => c.PadLeft(cw)))}");
            o.WriteLine($"GEMM: filter row (1x{im.WeightRow.Shape[1]}) {MatrixText.Format(im.WeightRow.Reshape(im.WeightRow.Shape[1]))} times the column matrix = {MatrixText.Format(im.Product.Reshape(im.Product.Shape[1]))}, reshaped to {Sizes(r.Output.Shape.ToArray())}");
        }
        else if (im2col) o.WriteLine("--im2col: a transposed convolution has no im2col form here; --explain shows its scaled copies");
    }

    internal static void RenderSolution(FilterSolution f, bool json, TextWriter o)
    {
        if (json)
        {
            o.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["filter"] = MatrixText.Nested(f.Filter), ["status"] = f.Status, ["equations"] = f.Equations, ["unknowns"] = f.Unknowns,
                ["rank"] = f.Rank, ["output"] = MatrixText.Nested(f.Reproduced), ["max_residual"] = f.MaxResidual,
            }, JsonOptions));
            return;
        }
        o.WriteLine("system (one row per output element; unknowns are the filter taps):");
        var rows = MatrixText.Grid(f.System);
        foreach (var line in rows) o.WriteLine("  " + line);
        o.WriteLine($"filter: {MatrixText.Format(f.Filter)}");
        o.WriteLine($"check: convolving the input with it gives {MatrixText.Format(f.Reproduced)}");
        foreach (var line in f.Explanation) o.WriteLine(line);
    }
}
