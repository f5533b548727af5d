using System.CommandLine;
using System.Text.Json;
using ConvLab.Analysis;

namespace ConvLab.Cli;

/// <summary><c>convlab pool --input M [--type max|avg] [--kernel K] [--stride S] [--padding P] [--grad M] [--format text|json]</c> (logic in <see cref="WorkedPool"/>).</summary>
internal static class PoolCommand
{
    public static Command Create()
    {
        var input = new Option<string>("--input") { Description = "Input vector \"[1,2,3]\" or matrix \"[[1,2],[3,4]]\"", Required = true };
        var type = new Option<string>("--type") { Description = "max or avg", DefaultValueFactory = _ => "max" };
        type.AcceptOnlyFromAmong("max", "avg");
        var kernel = new Option<string>("--kernel") { Description = "Window size (one value, or one per dimension as 2x1)", DefaultValueFactory = _ => "2" };
        var stride = new Option<string?>("--stride") { Description = "Stride (default: the window size)" };
        var padding = new Option<string>("--padding") { Description = "Padding (max: ignored cells; avg: zeros counted in the divisor)", DefaultValueFactory = _ => "0" };
        var grad = new Option<string?>("--grad") { Description = "Upstream gradient (shape of the output): shows where each element is routed and the input gradient" };
        var format = new Option<string>("--format") { Description = "text or json", DefaultValueFactory = _ => "text" };
        format.AcceptOnlyFromAmong("text", "json");
        var cmd = new Command("pool", "Worked max/average pooling of a small typed matrix, with its gradient routing.") { input, type, kernel, stride, padding, grad, format };
        cmd.SetAction(pr =>
        {
            try
            {
                var x = MatrixText.Parse(pr.GetValue(input)!, "--input");
                int dims = x.Rank;
                var st = pr.GetValue(stride) is { } sText ? MatrixText.ParseSize(sText, "--stride", dims, 1) : null;
                var g = pr.GetValue(grad) is { } gText ? MatrixText.Parse(gText, "--grad") : null;
                var r = WorkedPool.Compute(x, pr.GetValue(type)!, MatrixText.ParseSize(pr.GetValue(kernel)!, "--kernel", dims, 1), st,
                    MatrixText.ParseSize(pr.GetValue(padding)!, "--padding", dims, 0), g);
                Render(r, pr.GetValue(format) == "json", Console.Out);
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

    internal static void Render(WorkedPoolResult r, bool json, TextWriter o)
    {
        if (json)
        {
            var d = new Dictionary<string, object> { ["output"] = MatrixText.Nested(r.Output), ["windows"] = r.Windows };
            if (r.InputGrad is { } gi) { d["grad_input"] = MatrixText.Nested(gi); d["routing"] = r.Routing; }
            o.WriteLine(JsonSerializer.Serialize(d, new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
            return;
        }
        o.WriteLine($"{r.Kind} pooling -> output {string.Join("x", r.Output.Shape.ToArray())}:");
        foreach (var line in MatrixText.Grid(r.Output)) o.WriteLine("  " + line);
        o.WriteLine("windows:");
        foreach (var line in r.Windows) o.WriteLine("  " + line);
        if (r.InputGrad is not { } g) return;
        o.WriteLine("gradient routing:");
        foreach (var line in r.Routing) o.WriteLine("  " + line);
        o.WriteLine("input gradient:");
        foreach (var line in MatrixText.Grid(g)) o.WriteLine("  " + line);
    }
}
