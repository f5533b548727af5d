using System.CommandLine;
using System.Globalization;
using System.Text;
using ConvLab.Analysis;
using ConvLab.Imaging;
using ConvLab.IO;
using ConvLab.Vision;

namespace ConvLab.Cli;

/// <summary><c>convlab filter [IMAGE] --kernel NAME|MATRIX [--mode zeros|reflect|replicate|circular] --out OUT.png [--raw OUT.csv]</c> (logic in <see cref="Filters"/>).</summary>
internal static class FilterCommand
{
    public static Command Create()
    {
        var image = new Argument<string?>("image") { Description = "Image file (PNG, JPEG, BMP, WebP, GIF); omitted: the project's sample image", Arity = ArgumentArity.ZeroOrOne };
        var kernel = new Option<string>("--kernel") { Description = $"Kernel: {string.Join(", ", Filters.Names)}, or a matrix \"[[..],[..]]\"", Required = true };
        var mode = new Option<string>("--mode") { Description = "Boundary mode: zeros, reflect, replicate or circular", DefaultValueFactory = _ => "zeros" };
        var output = new Option<string>("--out") { Description = "Output PNG (grey, the response clipped to [0, 1])", Required = true };
        var raw = new Option<string?>("--raw") { Description = "Also write the raw (unclipped) response as CSV, one image row per line" };
        var cmd = new Command("filter", "Filter an image (grey: 0.2989 R + 0.5870 G + 0.1140 B) with a hand-designed kernel through conv2d.") { image, kernel, mode, output, raw };
        cmd.SetAction(pr =>
        {
            try
            {
                CliPaths.OutputFile("--out", pr.GetValue(output));
                CliPaths.OutputFile("--raw", pr.GetValue(raw));
                var f = Filters.Parse(pr.GetValue(kernel)!);
                var m = pr.GetValue(mode)!;
                if (!Filters.Modes.Contains(m)) throw new ArgumentException($"--mode: expected {string.Join(", ", Filters.Modes)}, got \"{m}\"");
                var path = pr.GetValue(image);
                var grey = Filters.Grey(path == null ? SampleImage.Create() : Load(path));
                var response = Filters.Apply(grey, f, m);
                var outPath = pr.GetValue(output)!;
                AtomicFile.Write(outPath, s => s.Write(ImageFile.EncodePng(Filters.Clip01(response))));
                if (pr.GetValue(raw) is { } rawPath) AtomicFile.Write(rawPath, s => s.Write(Csv(response)));
                var d = response.ToDoubleArray();
                Console.Out.WriteLine($"{f.Name} ({string.Join(" and ", f.Kernels.Select(k => $"{k.Shape[0]}x{k.Shape[1]}"))}{(f.Magnitude ? ", magnitude sqrt(gx² + gy²)" : "")}) on {(path ?? "the sample image")} " +
                    $"({grey.Shape[0]}x{grey.Shape[1]} grey), {m} boundary -> {outPath}");
                Console.Out.WriteLine($"response: min {Formulas.Num(d.Min())}, max {Formulas.Num(d.Max())}, mean {Formulas.Num(d.Average())}; " +
                    $"{d.Count(v => v < 0 || v > 1)} of {d.Length} pixels outside [0, 1] were clipped in the PNG{(pr.GetValue(raw) != null ? " (raw values in the CSV)" : "")}");
                return 0;
            }
            catch (ArgumentException e)
            {
                Console.Error.WriteLine(e.Message);
                return 1;
            }
            catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"filter: {e.Message}");
                return 1;
            }
        });
        return cmd;
    }

    private static Tensor Load(string path)
    {
        if (!File.Exists(path)) throw new ArgumentException($"IMAGE: no such file: {path}");
        try { return ImageFile.Load(path); }
        catch (InvalidDataException e) { throw new ArgumentException($"IMAGE: cannot decode {e.Message}"); }
    }

    private static byte[] Csv(Tensor response)
    {
        var d = response.ToDoubleArray();
        int w = response.Shape[1];
        var sb = new StringBuilder();
        for (int r = 0; r < response.Shape[0]; r++)
            sb.AppendLine(string.Join(",", d.Skip(r * w).Take(w).Select(v => v.ToString("R", CultureInfo.InvariantCulture))));
        return Encoding.UTF8.GetBytes(sb.ToString());
    }
}
