using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.Intrinsics;
using ConvLab.Detection;
using ConvLab.IO;
using Spectre.Console;

namespace ConvLab.Cli;

/// <summary>
/// <c>convlab bench nms --boxes 1000,10000</c>: median times of <see cref="BoxOps.Nms(Tensor, Tensor, double)"/>,
/// batched NMS and <see cref="BoxOps.BoxIou"/> on seeded detector-like boxes (clusters around objects). With
/// <c>--dump DIR</c> it writes the inputs and kept indices as raw little-endian files for
/// <c>tools/pytorch-side-by-side/nms_box_iou.py</c>, which times torchvision on the same boxes and checks the indices.
/// </summary>
internal static class BenchNmsCommand
{
    public static Command Create()
    {
        var boxes = new Option<string>("--boxes") { Description = "Comma-separated box counts", DefaultValueFactory = _ => "1000,10000" };
        var repeat = new Option<int>("--repeat") { Description = "Timed runs per case (median reported)", DefaultValueFactory = _ => 21 };
        var threshold = new Option<double>("--iou-threshold") { Description = "NMS IoU threshold", DefaultValueFactory = _ => 0.5 };
        var dump = new Option<string?>("--dump") { Description = "Write boxes, scores, classes and kept indices here (raw float32/int64) for the torchvision script" };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the boxes", DefaultValueFactory = _ => 2026 };
        var cmd = new Command("nms", "Time NMS, batched NMS and box IoU on seeded detector-like boxes (single thread).") { boxes, repeat, threshold, dump, seed };
        cmd.SetAction(pr =>
        {
            try
            {
                var counts = pr.GetValue(boxes)!.Split(',', StringSplitOptions.TrimEntries)
                    .Select(s => int.TryParse(s, CultureInfo.InvariantCulture, out int n) && n >= 1 && n <= 1_000_000 ? n
                        : throw new ArgumentException($"bench nms: --boxes must list counts between 1 and 1000000, got '{s}'")).ToArray();
                int r = pr.GetValue(repeat);
                if (r < 1) throw new ArgumentException($"bench nms: --repeat must be positive, got {r}");
                double t = pr.GetValue(threshold);
                if (!(t >= 0 && t <= 1)) throw new ArgumentException($"bench nms: --iou-threshold must be in [0, 1], got {t}");
                CliPaths.OutputFolder("bench nms: --dump", pr.GetValue(dump));
                return Run(counts, r, t, pr.GetValue(dump), pr.GetValue(seed), Console.Out);
            }
            catch (ArgumentException e)
            {
                Console.Error.WriteLine(e.Message);
                return 2;
            }
        });
        return cmd;
    }

    /// <summary>Boxes around 1 + n/20 objects in a 1024-pixel image: jittered copies as a detector proposes them, scores uniform.</summary>
    internal static (float[] Boxes, float[] Scores, long[] Classes) MakeBoxes(int n, ulong seed)
    {
        var g = new Generator(seed + (ulong)n);
        int objects = 1 + n / 20;
        var centres = Enumerable.Range(0, objects).Select(_ => (X: 1024 * g.NextDouble(), Y: 1024 * g.NextDouble(), W: 16 + 200 * g.NextDouble(), H: 16 + 200 * g.NextDouble())).ToArray();
        var b = new float[4 * n]; var s = new float[n]; var c = new long[n];
        for (int i = 0; i < n; i++)
        {
            var o = centres[g.NextInt(objects)];
            double cx = o.X + 0.2 * o.W * g.NextNormal(), cy = o.Y + 0.2 * o.H * g.NextNormal();
            double w = o.W * Math.Exp(0.2 * g.NextNormal()), h = o.H * Math.Exp(0.2 * g.NextNormal());
            (b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]) = ((float)(cx - w / 2), (float)(cy - h / 2), (float)(cx + w / 2), (float)(cy + h / 2));
            s[i] = (float)g.NextDouble();
            c[i] = g.NextInt(20);
        }
        return (b, s, c);
    }

    internal static int Run(int[] counts, int repeat, double threshold, string? dump, ulong seed, TextWriter output)
    {
        if (dump != null) Directory.CreateDirectory(dump);
        var table = new Table().AddColumns("op", "boxes", "median ms", "min ms", "kept");
        int saved = Threads.Count;
        Threads.Count = 1;
        try
        {
            foreach (int n in counts)
            {
                var (b, s, c) = MakeBoxes(n, seed);
                Tensor boxes = Tensor.FromArray(b, n, 4), scores = Tensor.FromArray(s, n), classes = Tensor.FromArray(c, n);
                int m = Math.Min(n, 1000);
                var first = boxes.Narrow(0, 0, m).Contiguous();
                Tensor? kept = null, keptBatched = null;
                var rows = new (string Op, Func<Tensor> Run, Action<Tensor> Keep)[]
                {
                    ("nms", () => BoxOps.Nms(boxes, scores, threshold), k => kept = k),
                    ("batched_nms (20 classes)", () => BoxOps.BatchedNms(boxes, scores, classes, threshold), k => keptBatched = k),
                    ($"box_iou ({m} x {n})", () => BoxOps.BoxIou(first, boxes), _ => { }),
                };
                foreach (var (op, run, keep) in rows)
                {
                    var result = run();
                    keep(result);
                    var times = new double[repeat];
                    for (int i = 0; i < repeat; i++)
                    {
                        var sw = Stopwatch.StartNew();
                        run();
                        times[i] = sw.Elapsed.TotalMilliseconds;
                    }
                    Array.Sort(times);
                    table.AddRow(Markup.Escape(op), n.ToString(CultureInfo.InvariantCulture), times[repeat / 2].ToString("0.000", CultureInfo.InvariantCulture),
                        times[0].ToString("0.000", CultureInfo.InvariantCulture), op.StartsWith("box_iou", StringComparison.Ordinal) ? "" : result.Numel.ToString(CultureInfo.InvariantCulture));
                }
                if (dump != null)
                {
                    Raw(Path.Combine(dump, $"boxes_{n}.f32"), b.SelectMany(BitConverter.GetBytes));
                    Raw(Path.Combine(dump, $"scores_{n}.f32"), s.SelectMany(BitConverter.GetBytes));
                    Raw(Path.Combine(dump, $"classes_{n}.i64"), c.SelectMany(BitConverter.GetBytes));
                    Raw(Path.Combine(dump, $"kept_{n}.i64"), kept!.ToInt64Array().SelectMany(BitConverter.GetBytes));
                    Raw(Path.Combine(dump, $"kept_batched_{n}.i64"), keptBatched!.ToInt64Array().SelectMany(BitConverter.GetBytes));
                }
            }
        }
        finally { Threads.Count = saved; }
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output) });
        console.Write(table);
        output.WriteLine($"1 thread, IoU threshold {threshold.ToString(CultureInfo.InvariantCulture)}, {repeat} runs per case, SIMD Vector256 {(Vector256.IsHardwareAccelerated ? "on" : "off")}, seed {seed}");
        return 0;
    }

    private static void Raw(string path, IEnumerable<byte> bytes) => AtomicFile.Write(path, s => s.Write(bytes.ToArray()));
}
