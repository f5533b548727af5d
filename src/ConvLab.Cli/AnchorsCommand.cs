using System.CommandLine;
using System.Globalization;
using ConvLab.Detection;
using Spectre.Console;

namespace ConvLab.Cli;

/// <summary><c>convlab anchors DATASET -k 9</c>: YOLOv2's dimension clusters of a dataset's boxes, their mean IoU, and the mean-IoU-vs-k plot.</summary>
internal static class AnchorsCommand
{
    public static Command Create()
    {
        var dataset = new Argument<string>("dataset") { Description = "'synthetic' or a folder of images with YOLO label files" };
        var k = new Option<int>("-k", "--k") { Description = "Number of anchors (default 9)", DefaultValueFactory = _ => 9 };
        var kMax = new Option<int?>("--k-max") { Description = "Largest k of the mean-IoU-vs-k curve (default max(k, 12))" };
        var size = new Option<int>("--image-size") { Description = "Image side the boxes are measured at (default 128; YOLO folders are normalised)", DefaultValueFactory = _ => 128 };
        var count = new Option<int>("--images") { Description = "Synthetic images to cluster (default 2000)", DefaultValueFactory = _ => 2000 };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the synthetic data and the k-means++ start (default 0)" };
        var outFile = new Option<string>("--out") { Description = "Plot of mean IoU against k (default anchors.png)", DefaultValueFactory = _ => "anchors.png" };
        var cmd = new Command("anchors", "Cluster a dataset's box sizes into k anchors (k-means with 1 - IoU distance), print them with their mean IoU and plot mean IoU against k.")
        {
            dataset, k, kMax, size, count, seed, outFile,
        };
        cmd.SetAction(pr =>
        {
            var console = TrainCommand.Console(Console.Out);
            try
            {
                string name = pr.GetValue(dataset)!;
                int kk = pr.GetValue(k), side = pr.GetValue(size), n = pr.GetValue(count);
                int top = pr.GetValue(kMax) ?? Math.Max(kk, 12);
                ulong s = pr.GetValue(seed);
                if (kk < 1) throw new ArgumentException($"anchors: -k must be at least 1, got {kk}");
                if (top < kk) throw new ArgumentException($"anchors: --k-max ({top}) must be at least -k ({kk})");
                if (side < 1) throw new ArgumentException($"anchors: --image-size must be positive, got {side}");
                if (n < 1) throw new ArgumentException($"anchors: --images must be at least 1, got {n}");
                CliPaths.OutputFile("anchors: --out", pr.GetValue(outFile));
                IDetectionDataset data = name == "synthetic" ? new SyntheticShapes(n, s, side)
                    : Directory.Exists(name) ? new Imaging.YoloFolderDataset(name, side)
                    : throw new ArgumentException($"anchors: dataset '{name}' is neither 'synthetic' nor an existing folder");
                var wh = DetectionData.BoxSizes(data);
                int boxes = wh.Length / 2;
                if (boxes < top) throw new ArgumentException($"anchors: {name} has {boxes} boxes, fewer than k = {top}");
                var whT = Tensor.FromArray(wh, boxes, 2);
                var fit = AnchorKMeans.Fit(whT, kk, seed: s);
                var curve = AnchorKMeans.Curve(whT, top, s);
                var a = fit.Anchors.ToDoubleArray();
                var table = new Table().Title(Markup.Escape($"{kk} anchors of {boxes:N0} boxes ({name}, {side} px)")).AddColumns("#", "width", "height", "area");
                for (int i = 0; i < kk; i++)
                    table.AddRow((i + 1).ToString(CultureInfo.InvariantCulture), F(a[2 * i]), F(a[2 * i + 1]), F(a[2 * i] * a[2 * i + 1]));
                console.Write(table);
                console.MarkupLineInterpolated($"[bold]mean IoU {fit.MeanIou:F4}[/] with k = {kk} ({fit.Iterations} k-means steps)");
                console.MarkupLine(Markup.Escape("mean IoU vs k: " + string.Join("  ", curve.Select(c => string.Create(CultureInfo.InvariantCulture, $"{c.K}:{c.MeanIou:F3}")))));
                string target = pr.GetValue(outFile)!;
                var png = Imaging.DetectionPlots.MeanIouCurvePng(curve);
                IO.AtomicFile.Write(target, s => s.Write(png));
                console.MarkupLineInterpolated($"wrote {target}");
                return 0;
            }
            catch (Exception e) when (e is ArgumentException or InvalidDataException or FileNotFoundException or DirectoryNotFoundException)
            {
                return TrainCommand.Fail(Console.Out, e.Message);
            }
        });
        return cmd;
    }

    private static string F(double v) => v.ToString("F1", CultureInfo.InvariantCulture);
}
