using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ConvLab.Kernels;
using ConvLab.NN.Functional;
using Spectre.Console;

namespace ConvLab.Cli;

/// <summary>
/// <c>convlab bench conv --input 8x64x56x56 --out-channels 64 --kernel 3 ...</c>: runs one convolution shape
/// with every algorithm that can run it and prints median time, GFLOP/s, share of this machine's FMA peak,
/// workspace and the largest error against a float64 reference.
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var input = new Option<string>("--input") { Description = "Input shape NxCxL, NxCxHxW or NxCxDxHxW", Required = true };
        var outCh = new Option<int>("--out-channels") { Description = "Output channels", Required = true };
        var kernel = new Option<string>("--kernel") { Description = "Kernel size: 3 or 3x5", Required = true };
        var stride = new Option<string>("--stride") { Description = "Stride: 1 or 2x1", DefaultValueFactory = _ => "1" };
        var padding = new Option<string>("--padding") { Description = "Zero padding: 0 or 1x2", DefaultValueFactory = _ => "0" };
        var dilation = new Option<string>("--dilation") { Description = "Dilation: 1 or 2x2", DefaultValueFactory = _ => "1" };
        var groups = new Option<int>("--groups") { Description = "Channel groups", DefaultValueFactory = _ => 1 };
        var transposed = new Option<bool>("--transposed") { Description = "Transposed convolution (conv_transposeNd with this stride/padding)" };
        var backward = new Option<bool>("--backward") { Description = "Time forward + backward (input and weight gradients)" };
        var threads = new Option<int?>("--threads") { Description = "Threads (default: CONVLAB_THREADS or all cores)" };
        var repeat = new Option<int>("--repeat") { Description = "Timed runs per algorithm (median reported)", DefaultValueFactory = _ => 5 };
        var format = new Option<string>("--format") { Description = "table or json", DefaultValueFactory = _ => "table" };
        var only = new Option<ConvAlgorithm?>("--algorithm") { Description = "Run only this algorithm (default: every one that applies)" };
        var conv = new Command("conv", "Compare the convolution algorithms on one shape: time, GFLOP/s, % of FMA peak, workspace, error.")
            { input, outCh, kernel, stride, padding, dilation, groups, transposed, backward, threads, repeat, format, only };
        conv.SetAction(pr =>
        {
            try
            {
                var spec = Spec.Parse(pr.GetValue(input)!, pr.GetValue(outCh), pr.GetValue(kernel)!, pr.GetValue(stride)!, pr.GetValue(padding)!,
                    pr.GetValue(dilation)!, pr.GetValue(groups), pr.GetValue(transposed), pr.GetValue(backward), pr.GetValue(repeat), pr.GetValue(format)!) with { Only = pr.GetValue(only) };
                if (pr.GetValue(threads) is int t)
                {
                    if (t < 1) throw new ArgumentException($"bench conv: --threads must be at least 1, got {t}");
                    Threads.Count = t;
                }
                return Run(spec, Console.Out);
            }
            catch (ArgumentException e)
            {
                Console.Error.WriteLine(e.Message);
                return 2;
            }
        });
        return new Command("bench", "Micro-benchmarks of ConvLab's kernels.") { conv, BenchNmsCommand.Create() };
    }

    /// <summary>The shape and options of one run.</summary>
    internal sealed record Spec(int[] Input, int OutChannels, int[] Kernel, int[] Stride, int[] Padding, int[] Dilation, int Groups,
        bool Transposed, bool Backward, int Repeat, bool Json)
    {
        public int Dims => Input.Length - 2;
        /// <summary>Only this algorithm, or null for all.</summary>
        public ConvAlgorithm? Only { get; init; }

        public static Spec Parse(string input, int outCh, string kernel, string stride, string padding, string dilation, int groups,
            bool transposed, bool backward, int repeat, string format)
        {
            var shape = Ints("--input", input, 0, 1);
            if (shape.Length is < 3 or > 5) throw new ArgumentException($"bench conv: --input must be NxCxL, NxCxHxW or NxCxDxHxW, got '{input}'");
            int d = shape.Length - 2;
            if (outCh < 1) throw new ArgumentException($"bench conv: --out-channels must be positive, got {outCh}");
            if (repeat < 1) throw new ArgumentException($"bench conv: --repeat must be positive, got {repeat}");
            if (format is not ("table" or "json")) throw new ArgumentException($"bench conv: --format must be 'table' or 'json', got '{format}'");
            return new Spec(shape, outCh, Ints("--kernel", kernel, d, 1), Ints("--stride", stride, d, 1), Ints("--padding", padding, d, 0),
                Ints("--dilation", dilation, d, 1), groups, transposed, backward, repeat, format == "json");
        }

        private static int[] Ints(string name, string text, int d, int min)
        {
            var parts = text.Split('x', StringSplitOptions.TrimEntries);
            var v = new int[parts.Length];
            for (int i = 0; i < parts.Length; i++)
                if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out v[i]) || v[i] < min)
                    throw new ArgumentException($"bench conv: {name} must be {(min > 0 ? "positive" : "non-negative")} integers separated by 'x', got '{text}'");
            if (d == 0) return v;
            if (v.Length == 1) return Enumerable.Repeat(v[0], d).ToArray();
            if (v.Length != d) throw new ArgumentException($"bench conv: {name} needs 1 or {d} values for a {d}-d input, got '{text}'");
            return v;
        }

        public override string ToString() =>
            $"{(Transposed ? "conv_transpose" : "conv")}{Dims}d {string.Join("x", Input)} -> {OutChannels}, kernel {string.Join("x", Kernel)}, " +
            $"stride {string.Join("x", Stride)}, padding {string.Join("x", Padding)}, dilation {string.Join("x", Dilation)}, groups {Groups}" +
            (Backward ? ", forward+backward" : ", forward");
    }

    private sealed record Row(string Algorithm, double MedianMs, double MinMs, double MaxMs, double CpuMs, double Gflops, double PeakFraction, long WorkspaceBytes, double MaxError);

    private static readonly (string Name, ConvAlgorithm Algo, int Tile)[] Candidates =
    [
        ("Im2colGemm", ConvAlgorithm.Im2colGemm, 0), ("Direct", ConvAlgorithm.Direct, 0), ("Depthwise", ConvAlgorithm.Depthwise, 0),
        ("Gemm1x1", ConvAlgorithm.Gemm1x1, 0), ("Winograd F(2x2,3x3)", ConvAlgorithm.Winograd, 2), ("Winograd F(4x4,3x3)", ConvAlgorithm.Winograd, 4),
        ("Auto", ConvAlgorithm.Auto, 0),
    ];

    internal static int Run(Spec s, TextWriter output)
    {
        int n = s.Input[0], cin = s.Input[1];
        if (s.Groups < 1 || cin % s.Groups != 0 || s.OutChannels % s.Groups != 0)
            throw new ArgumentException($"bench conv: --groups must divide the input channels ({cin}) and --out-channels ({s.OutChannels}), got {s.Groups}");
        int[] wShape = s.Transposed ? [cin, s.OutChannels / s.Groups, .. s.Kernel] : [s.OutChannels, cin / s.Groups, .. s.Kernel];
        var gen = new Generator(1);
        var x = Tensor.Randn(s.Input, gen); var w = Tensor.Randn(wShape, gen).Mul(Tensor.Scalar(1 / Math.Sqrt(ShapeUtil.Numel(wShape.AsSpan(1)))));
        var geo = Geometry(s);
        var upstream64 = Tensor.Randn(Forward(s, x.Double(), w.Double(), ConvAlgorithm.Im2colGemm).Shape, new Generator(2), dtype: DType.Float64);
        var upstream = upstream64.Float();
        var reference = Passes(s, x.Double(), w.Double(), ConvAlgorithm.Im2colGemm, upstream64, 0);
        double peak = FmaPeak.Measure(Threads.Count, runs: 3);
        double flops = 2.0 * geo.Macs * (s.Backward ? 3 : 1);
        var rows = new List<Row>();
        var skipped = new List<string>();
        foreach (var (name, algo, tile) in Candidates.Where(c => s.Only == null || c.Algo == s.Only))
        {
            if (ConvDispatch.WhyNot(algo, geo) is { } why) { skipped.Add($"{name}: {why}"); continue; }
            var got = Passes(s, x, w, algo, upstream, tile); // error, and the first warm-up run
            // Warm up until the JIT's tiered compilation has had time to optimise the hot loops.
            // Timed runs reuse their arrays as a training step does (StorageRecycler): fresh memory would add a page
            // fault per 4 KB on first touch, which on a VM can cost more than the convolution.
            var recycler = new StorageRecycler();
            void Timed()
            {
                recycler.Begin();
                try { Passes(s, x, w, algo, upstream, tile); }
                finally { recycler.End([]); }
            }
            var warm = Stopwatch.StartNew();
            for (int r = 0; r < 20 && (r < 2 || warm.ElapsedMilliseconds < 500); r++) Timed();
            double err = got.Zip(reference, (a, b) => MaxAbsDiff(a, b)).Max();
            var times = new double[s.Repeat];
            // Process CPU time per run (all threads) next to wall time: on a shared machine it shows the
            // work an algorithm does even when the wall clock mostly measures waiting for a core.
            var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            for (int r = 0; r < s.Repeat; r++)
            {
                var sw = Stopwatch.StartNew();
                Timed();
                times[r] = sw.Elapsed.TotalMilliseconds;
            }
            double cpuMs = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMilliseconds / s.Repeat;
            Array.Sort(times);
            double med = times[times.Length / 2];
            long ws = WithTile(tile, () => Enum.GetValues<ConvPass>().Where(p => s.Backward || p == (s.Transposed ? ConvPass.BackwardInput : ConvPass.Forward))
                .Max(p => ConvDispatch.WorkspaceBytes<float>(algo, p, geo)));
            double gf = flops / (med * 1e6);
            rows.Add(new Row(name, med, times[0], times[^1], cpuMs, gf, gf / peak, ws, err));
        }

        if (s.Json)
        {
            var doc = new
            {
                shape = s.ToString(), threads = Threads.Count, peak_gflops = Math.Round(peak, 1), gflop = flops / 1e9,
                results = rows.Select(r => new
                {
                    algorithm = r.Algorithm, median_ms = r.MedianMs, min_ms = r.MinMs, max_ms = r.MaxMs, cpu_ms = r.CpuMs, gflops = r.Gflops,
                    peak_fraction = r.PeakFraction, workspace_bytes = r.WorkspaceBytes, max_abs_error = r.MaxError,
                }),
                not_applicable = skipped,
            };
            output.WriteLine(JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
            return 0;
        }
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors });
        console.Profile.Width = 160;
        output.WriteLine($"{s} — {flops / 1e9:0.###} GFLOP per run, {Threads.Count} threads, FMA peak {peak:0} GFLOP/s, median of {s.Repeat}");
        var table = new Table().AddColumns("algorithm", "median ms", "min–max ms", "CPU ms", "GFLOP/s", "% peak", "workspace", "max |error| vs float64");
        string F(double v, string f) => v.ToString(f, CultureInfo.InvariantCulture);
        foreach (var r in rows)
            table.AddRow(Markup.Escape(r.Algorithm), F(r.MedianMs, "0.00"), $"{F(r.MinMs, "0.00")}–{F(r.MaxMs, "0.00")}", F(r.CpuMs, "0.0"), F(r.Gflops, "0.0"),
                F(100 * r.PeakFraction, "0.0"), Bytes(r.WorkspaceBytes), F(r.MaxError, "0.0e+0"));
        console.Write(table);
        foreach (var k in skipped) output.WriteLine("not applicable: " + k);
        return 0;
    }

    private static string Bytes(long b) => b < 1 << 10 ? $"{b} B" : b < 1 << 20 ? $"{b / 1024.0:0.0} KiB" : $"{b / 1048576.0:0.0} MiB";

    private static double MaxAbsDiff(Tensor a, Tensor b) => a.Double().Sub(b).Abs().Max().Item();

    private static T WithTile<T>(int tile, Func<T> f)
    {
        int saved = Winograd.TileOverride;
        Winograd.TileOverride = tile;
        try { return f(); }
        finally { Winograd.TileOverride = saved; }
    }

    private static Tensor Forward(Spec s, Tensor x, Tensor w, ConvAlgorithm algo) => s.Transposed
        ? F.ConvTransposeNd($"conv_transpose{s.Dims}d", s.Dims, x, w, null, s.Stride, s.Padding, null, s.Groups, s.Dilation, algo)
        : F.ConvNd($"conv{s.Dims}d", s.Dims, x, w, null, s.Stride, s.Padding, null, s.Dilation, s.Groups, "zeros", algo);

    /// <summary>The output, and with --backward also the input and weight gradients.</summary>
    private static Tensor[] Passes(Spec s, Tensor x, Tensor w, ConvAlgorithm algo, Tensor upstream, int tile) => WithTile(tile, () =>
    {
        if (!s.Backward) return new[] { Forward(s, x, w, algo) };
        var xg = x.Detach().RequiresGrad_(); var wg = w.Detach().RequiresGrad_();
        var y = Forward(s, xg, wg, algo);
        y.Backward(upstream);
        return new[] { y.Detach(), xg.Grad!, wg.Grad! };
    });

    /// <summary>The convolution geometry of the spec (for a transposed one: of the convolution it is the adjoint of).</summary>
    private static ConvGeometry Geometry(Spec s)
    {
        int d = s.Dims, n = s.Input[0], cin = s.Input[1];
        var size = s.Input[2..];
        var other = new int[d];
        for (int i = 0; i < d; i++)
        {
            int span = s.Dilation[i] * (s.Kernel[i] - 1) + 1;
            other[i] = s.Transposed ? (size[i] - 1) * s.Stride[i] - 2 * s.Padding[i] + span : (size[i] + 2 * s.Padding[i] - span) / s.Stride[i] + 1;
        }
        return s.Transposed
            ? new ConvGeometry(n, s.OutChannels, cin, s.Groups, other, size, s.Kernel, s.Stride, s.Padding, s.Dilation)
            : new ConvGeometry(n, cin, s.OutChannels, s.Groups, size, other, s.Kernel, s.Stride, s.Padding, s.Dilation);
    }
}
