using ConvLab.Detection;
using ScottPlot;

namespace ConvLab.Imaging;

/// <summary>
/// PNG plots of detection: the mean-IoU-vs-k curve of anchor clustering and precision–recall curves per class.
/// Same setup and embedded font as <see cref="RunPlots"/>; the methods return the encoded file.
/// </summary>
public static class DetectionPlots
{
    /// <summary>Mean IoU of the best anchor per box against the number of anchors k (from <see cref="AnchorKMeans.Curve"/>).</summary>
    public static byte[] MeanIouCurvePng(IReadOnlyList<AnchorClusters> curve, int width = 800, int height = 500)
    {
        ArgumentNullException.ThrowIfNull(curve);
        RunPlots.CheckSize("MeanIouCurve", width, height);
        if (curve.Count == 0) throw new ArgumentException("DetectionPlots.MeanIouCurve: the curve is empty");
        var plot = RunPlots.NewPlot();
        var s = plot.Add.Scatter(curve.Select(c => (double)c.K).ToArray(), curve.Select(c => c.MeanIou).ToArray(), new Color(31, 119, 180));
        s.LineWidth = 2;
        s.MarkerSize = 7;
        plot.Title("Anchor clusters: mean IoU vs k");
        plot.XLabel("k (anchors)");
        plot.YLabel("mean IoU");
        plot.Axes.SetLimitsY(0, 1);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericFixedInterval(1);
        return plot.GetImageBytes(width, height, ImageFormat.Png);
    }

    /// <summary>
    /// Precision against recall for each class that has points, as steps of the precision envelope (the curve VOC AP
    /// integrates); the legend gives each class's name and, when <paramref name="ap"/> is given, its AP.
    /// </summary>
    public static byte[] PrCurvesPng(IReadOnlyList<PrCurve> curves, IReadOnlyList<string>? classNames = null, IReadOnlyList<double>? ap = null,
        int width = 800, int height = 600)
    {
        ArgumentNullException.ThrowIfNull(curves);
        RunPlots.CheckSize("PrCurves", width, height);
        if (curves.Count == 0) throw new ArgumentException("DetectionPlots.PrCurves: no curves");
        var plot = RunPlots.NewPlot();
        var palette = new ScottPlot.Palettes.Category10();
        int i = 0;
        foreach (var c in curves)
        {
            var color = palette.GetColor(i++);
            string name = classNames != null && c.Label < classNames.Count ? classNames[c.Label] : $"class {c.Label}";
            string label = ap != null && c.Label < ap.Count ? $"{name} (AP {ap[c.Label]:0.000})" : name;
            if (c.Recall.Length == 0)
            {
                // A class without predictions still gets a legend entry: its curve is the single point (0, 0).
                var empty = plot.Add.Scatter(new double[] { 0 }, new double[] { 0 }, color);
                empty.LegendText = label + ", no predictions";
                continue;
            }
            var (x, y) = Envelope(c.Recall, c.Precision);
            var s = plot.Add.Scatter(x, y, color);
            s.LegendText = label;
            s.LineWidth = 2;
            s.MarkerSize = 0;
        }
        plot.Title("Precision–recall");
        plot.XLabel("recall");
        plot.YLabel("precision");
        plot.Axes.SetLimits(0, 1.02, 0, 1.02);
        plot.ShowLegend(Alignment.LowerLeft);
        return plot.GetImageBytes(width, height, ImageFormat.Png);
    }

    /// <summary>Step points of the precision envelope (precision made monotone from the right), starting at recall 0.</summary>
    internal static (double[] Recall, double[] Precision) Envelope(double[] recall, double[] precision)
    {
        var env = (double[])precision.Clone();
        for (int i = env.Length - 2; i >= 0; i--) env[i] = Math.Max(env[i], env[i + 1]);
        // Recall in (r[i-1], r[i]] has precision env[i]: a horizontal step per prediction, joined by vertical drops.
        var x = new List<double>(); var y = new List<double>();
        for (int i = 0; i < recall.Length; i++)
        {
            x.Add(i == 0 ? 0 : recall[i - 1]); y.Add(env[i]);
            x.Add(recall[i]); y.Add(env[i]);
        }
        return ([.. x], [.. y]);
    }
}
