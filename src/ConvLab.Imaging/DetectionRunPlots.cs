using ConvLab.Detection;
using ConvLab.IO;
using ScottPlot;

namespace ConvLab.Imaging;

/// <summary>The plots of a detection run: precision–recall curves per class and anchors' mean IoU against k (RunPlots' setup and font).</summary>
public static class DetectionRunPlots
{
    /// <summary>One precision–recall curve per class with ground truth (recall on x), PNG bytes.</summary>
    public static byte[] PrCurvesPng(IReadOnlyList<PrCurve> curves, IReadOnlyList<string> classNames, string title, int width = 800, int height = 600)
    {
        ArgumentNullException.ThrowIfNull(curves);
        ArgumentNullException.ThrowIfNull(classNames);
        var plot = RunPlots.NewPlot();
        foreach (var c in curves)
        {
            if (c.Recall.Length == 0) continue;
            // Start at recall 0 with the first precision so a curve is visible even with one prediction.
            double[] r = [0, .. c.Recall], p = [c.Precision[0], .. c.Precision];
            var s = plot.Add.Scatter(r, p);
            s.LegendText = c.Label < classNames.Count ? classNames[c.Label] : c.Label.ToString(System.Globalization.CultureInfo.InvariantCulture);
            s.LineWidth = 2;
            s.MarkerSize = 0;
        }
        plot.Title(title);
        plot.XLabel("recall");
        plot.YLabel("precision");
        plot.Axes.SetLimits(0, 1.02, 0, 1.02);
        plot.ShowLegend(Alignment.LowerLeft);
        return plot.GetImageBytes(width, height, ImageFormat.Png);
    }

    /// <summary>Writes <see cref="PrCurvesPng"/> atomically.</summary>
    public static void WritePrCurves(string path, IReadOnlyList<PrCurve> curves, IReadOnlyList<string> classNames, string title)
    {
        var png = PrCurvesPng(curves, classNames, title);
        AtomicFile.Write(path, s => s.Write(png));
    }

    /// <summary>Mean IoU of the best anchor against the number of anchors k, the chosen k marked, PNG bytes.</summary>
    public static byte[] MeanIouCurvePng(IReadOnlyList<int> k, IReadOnlyList<double> meanIou, int chosen, int width = 800, int height = 500)
    {
        ArgumentNullException.ThrowIfNull(k);
        ArgumentNullException.ThrowIfNull(meanIou);
        if (k.Count == 0 || k.Count != meanIou.Count) throw new ArgumentException($"DetectionRunPlots: {k.Count} values of k for {meanIou.Count} mean IoUs");
        var plot = RunPlots.NewPlot();
        var s = plot.Add.Scatter(k.Select(v => (double)v).ToArray(), meanIou.ToArray());
        s.LineWidth = 2;
        s.MarkerSize = 6;
        int at = k.ToList().IndexOf(chosen);
        if (at >= 0)
        {
            var m = plot.Add.Marker(chosen, meanIou[at]);
            m.MarkerSize = 14;
            m.LegendText = $"k = {chosen}: {meanIou[at]:F3}";
            plot.ShowLegend(Alignment.LowerRight);
        }
        plot.Title("Anchors (k-means, 1 - IoU distance): mean IoU against k");
        plot.XLabel("k (anchors)");
        plot.YLabel("mean IoU");
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericFixedInterval(1);
        return plot.GetImageBytes(width, height, ImageFormat.Png);
    }

    /// <summary>Writes <see cref="MeanIouCurvePng"/> atomically.</summary>
    public static void WriteMeanIouCurve(string path, IReadOnlyList<int> k, IReadOnlyList<double> meanIou, int chosen)
    {
        var png = MeanIouCurvePng(k, meanIou, chosen);
        AtomicFile.Write(path, s => s.Write(png));
    }
}
