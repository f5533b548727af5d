namespace ConvLab.Detection;

/// <summary>Precision–recall points of one class, in decreasing score order (one point per prediction of the class).</summary>
/// <param name="Label">Class index.</param>
/// <param name="Recall">Recall after each prediction.</param>
/// <param name="Precision">Precision after each prediction (not interpolated).</param>
/// <param name="Scores">Score of each prediction.</param>
public sealed record PrCurve(int Label, double[] Recall, double[] Precision, double[] Scores);

/// <summary>VOC-style average precision at one IoU threshold.</summary>
/// <param name="Ap">AP per class (0 for a class without ground truth).</param>
/// <param name="HasGt">Whether each class has ground truth.</param>
/// <param name="Map">Mean AP over the classes that have ground truth (0 when none has).</param>
/// <param name="Curves">Precision–recall points per class.</param>
/// <param name="IouThreshold">The IoU a match needs.</param>
public sealed record VocApResult(double[] Ap, bool[] HasGt, double Map, PrCurve[] Curves, double IouThreshold);

/// <summary>COCO-style results (pycocotools' bbox evaluation, conventions in docs/detection.md).</summary>
/// <param name="Map">mAP@[.5:.95]: mean over IoU 0.50, 0.55, …, 0.95, classes with ground truth and 101 recall points.</param>
/// <param name="Map50">mAP at IoU 0.5 (101-point).</param>
/// <param name="Map75">mAP at IoU 0.75 (101-point).</param>
/// <param name="MapSmall">mAP@[.5:.95] for ground truth of area &lt; 32².</param>
/// <param name="MapMedium">mAP@[.5:.95] for area in [32², 96²].</param>
/// <param name="MapLarge">mAP@[.5:.95] for area &gt; 96².</param>
/// <param name="ApPerClass">AP@[.5:.95] per class (−1 for a class without ground truth, pycocotools' marker).</param>
/// <param name="Ap50PerClass">AP@0.5 per class (−1 without ground truth).</param>
public sealed record CocoResult(double Map, double Map50, double Map75, double MapSmall, double MapMedium, double MapLarge,
    double[] ApPerClass, double[] Ap50PerClass);

/// <summary>
/// Detector evaluation: VOC all-point AP as <c>shared/reference-vision/README.md</c> defines <c>average_precision</c>,
/// and COCO's mAP@[.5:.95] with pycocotools' matching, 101-point interpolation, area ranges and maxDets.
/// Predictions and ground truth are given per image (the same number of images in both).
/// </summary>
public static class DetectionMetrics
{
    /// <summary>
    /// VOC AP per class: predictions in decreasing score order (ties in image, then list order) take the ground-truth box of
    /// the same class and image with the highest IoU; it is a true positive when that IoU ≥ <paramref name="iouThreshold"/>
    /// and the box is not yet matched, else a false positive. AP = area under the precision envelope (precision made
    /// monotone from the right, summed where recall changes).
    /// </summary>
    public static VocApResult VocAp(IReadOnlyList<IReadOnlyList<DetectedBox>> predictions, IReadOnlyList<IReadOnlyList<GroundTruthBox>> groundTruth,
        int numClasses, double iouThreshold = 0.5)
    {
        const string op = "average_precision";
        Check(predictions, groundTruth, numClasses, op);
        if (double.IsNaN(iouThreshold) || iouThreshold < 0 || iouThreshold > 1)
            throw new ArgumentException($"{op}: iou_threshold must be in [0, 1], got {iouThreshold}");
        var ap = new double[numClasses]; var hasGt = new bool[numClasses]; var curves = new PrCurve[numClasses];
        for (int c = 0; c < numClasses; c++)
        {
            var gts = new List<GroundTruthBox>[groundTruth.Count];
            int npos = 0;
            for (int i = 0; i < groundTruth.Count; i++)
            {
                gts[i] = [.. groundTruth[i].Where(g => g.Label == c)];
                npos += gts[i].Count;
            }
            var preds = Flatten(predictions, c);
            var matched = gts.Select(g => new bool[g.Count]).ToArray();
            var tp = new bool[preds.Count];
            for (int p = 0; p < preds.Count; p++)
            {
                var (img, d) = preds[p];
                int best = -1; double bestIou = double.NegativeInfinity;
                for (int g = 0; g < gts[img].Count; g++)
                {
                    double iou = Iou(d.X0, d.Y0, d.X1, d.Y1, gts[img][g].X0, gts[img][g].Y0, gts[img][g].X1, gts[img][g].Y1);
                    if (iou > bestIou) { bestIou = iou; best = g; }
                }
                if (best >= 0 && bestIou >= iouThreshold && !matched[img][best]) { matched[img][best] = true; tp[p] = true; }
            }
            hasGt[c] = npos > 0;
            curves[c] = Curve(c, preds, tp, npos);
            ap[c] = hasGt[c] ? AllPoint(curves[c].Recall, curves[c].Precision) : 0;
        }
        var withGt = Enumerable.Range(0, numClasses).Where(c => hasGt[c]).ToList();
        return new VocApResult(ap, hasGt, withGt.Count == 0 ? 0 : withGt.Average(c => ap[c]), curves, iouThreshold);
    }

    /// <summary>
    /// COCO bbox evaluation (pycocotools' COCOeval): per image and class the top <paramref name="maxDetections"/>
    /// predictions by score each take the unmatched ground-truth box of highest IoU ≥ t (IoU t = 0.50:0.05:0.95); ground
    /// truth outside the area range is ignored, as are unmatched predictions outside it; precision at recall
    /// 0, 0.01, …, 1 from the precision envelope (0 beyond the last recall); means over the entries of classes with
    /// ground truth.
    /// </summary>
    public static CocoResult Coco(IReadOnlyList<IReadOnlyList<DetectedBox>> predictions, IReadOnlyList<IReadOnlyList<GroundTruthBox>> groundTruth,
        int numClasses, int maxDetections = 100)
    {
        const string op = "coco_map";
        Check(predictions, groundTruth, numClasses, op);
        if (maxDetections < 1) throw new ArgumentException($"{op}: maxDets must be positive, got {maxDetections}");
        var thresholds = Enumerable.Range(0, 10).Select(i => 0.5 + 0.05 * i).ToArray();
        (double lo, double hi)[] areas = [(0, 1e10), (0, 32 * 32), (32 * 32, 96 * 96), (96 * 96, 1e10)];
        // precision[area][t][class] = mean over the 101 recall points, or -1 without ground truth.
        var ap = new double[areas.Length, thresholds.Length, numClasses];
        for (int a = 0; a < areas.Length; a++)
            for (int c = 0; c < numClasses; c++)
            {
                var res = CocoClass(predictions, groundTruth, c, areas[a], thresholds, maxDetections);
                for (int t = 0; t < thresholds.Length; t++) ap[a, t, c] = res[t];
            }
        double Mean(int area, int? tOnly)
        {
            var v = new List<double>();
            for (int t = 0; t < thresholds.Length; t++)
                if (tOnly == null || tOnly == t)
                    for (int c = 0; c < numClasses; c++) if (ap[area, t, c] > -1) v.Add(ap[area, t, c]);
            return v.Count == 0 ? -1 : v.Average();
        }
        var perClass = new double[numClasses]; var per50 = new double[numClasses];
        for (int c = 0; c < numClasses; c++)
        {
            per50[c] = ap[0, 0, c];
            var v = Enumerable.Range(0, thresholds.Length).Select(t => ap[0, t, c]).Where(x => x > -1).ToList();
            perClass[c] = v.Count == 0 ? -1 : v.Average();
        }
        return new CocoResult(Mean(0, null), Mean(0, 0), Mean(0, 5), Mean(1, null), Mean(2, null), Mean(3, null), perClass, per50);
    }

    private static double[] CocoClass(IReadOnlyList<IReadOnlyList<DetectedBox>> predictions, IReadOnlyList<IReadOnlyList<GroundTruthBox>> groundTruth,
        int c, (double lo, double hi) area, double[] thresholds, int maxDets)
    {
        int nt = thresholds.Length;
        var scores = new List<double>(); var tps = new List<bool[]>(); var ignored = new List<bool[]>();
        int npig = 0;
        for (int img = 0; img < groundTruth.Count; img++)
        {
            var gt = groundTruth[img].Where(g => g.Label == c).ToList();
            var gtIgnore = gt.Select(g => g.Area < area.lo || g.Area > area.hi).ToList();
            // pycocotools sorts ground truth with the ignored ones last (stable), and detections by score (stable).
            var gOrder = Enumerable.Range(0, gt.Count).OrderBy(g => gtIgnore[g] ? 1 : 0).ToArray();
            var dets = predictions[img].Where(d => d.Label == c).Select((d, i) => (d, i))
                .OrderByDescending(x => x.d.Score).ThenBy(x => x.i).Take(maxDets).Select(x => x.d).ToList();
            npig += gtIgnore.Count(x => !x);
            var gtm = new bool[nt, gt.Count];
            foreach (var d in dets)
            {
                var tp = new bool[nt]; var ig = new bool[nt];
                for (int t = 0; t < nt; t++)
                {
                    double best = Math.Min(thresholds[t], 1 - 1e-10); int m = -1;
                    foreach (int g in gOrder)
                    {
                        if (gtm[t, g]) continue;
                        // Once a non-ignored match exists, ignored ground truth (sorted last) cannot replace it.
                        if (m > -1 && !gtIgnore[m] && gtIgnore[g]) break;
                        double iou = Iou(d.X0, d.Y0, d.X1, d.Y1, gt[g].X0, gt[g].Y0, gt[g].X1, gt[g].Y1);
                        if (iou < best) continue;
                        best = iou; m = g;
                    }
                    if (m == -1) { ig[t] = d.Area < area.lo || d.Area > area.hi; continue; }
                    gtm[t, m] = true; tp[t] = true; ig[t] = gtIgnore[m];
                }
                scores.Add(d.Score); tps.Add(tp); ignored.Add(ig);
            }
        }
        var result = new double[nt];
        if (npig == 0) { Array.Fill(result, -1); return result; }
        var order = Enumerable.Range(0, scores.Count).OrderByDescending(i => scores[i]).ThenBy(i => i).ToArray();
        for (int t = 0; t < nt; t++)
        {
            var rc = new List<double>(); var pr = new List<double>();
            double tpSum = 0, fpSum = 0;
            foreach (int i in order)
            {
                if (ignored[i][t]) continue;
                if (tps[i][t]) tpSum++; else fpSum++;
                rc.Add(tpSum / npig); pr.Add(tpSum / (tpSum + fpSum + 2.220446049250313e-16));
            }
            for (int i = pr.Count - 1; i > 0; i--) pr[i - 1] = Math.Max(pr[i - 1], pr[i]);
            double sum = 0; int k = 0;
            for (int r = 0; r <= 100; r++)
            {
                double recall = r / 100.0;
                while (k < rc.Count && rc[k] < recall) k++;
                if (k < rc.Count) sum += pr[k];
            }
            result[t] = sum / 101;
        }
        return result;
    }

    private static List<(int Image, DetectedBox D)> Flatten(IReadOnlyList<IReadOnlyList<DetectedBox>> predictions, int c)
    {
        var list = new List<(int, DetectedBox, int)>();
        int seq = 0;
        for (int i = 0; i < predictions.Count; i++)
            foreach (var d in predictions[i]) { if (d.Label == c) list.Add((i, d, seq)); seq++; }
        return [.. list.OrderByDescending(x => x.Item2.Score).ThenBy(x => x.Item3).Select(x => (x.Item1, x.Item2))];
    }

    private static PrCurve Curve(int c, List<(int Image, DetectedBox D)> preds, bool[] tp, int npos)
    {
        var recall = new double[preds.Count]; var precision = new double[preds.Count]; var scores = new double[preds.Count];
        double t = 0;
        for (int i = 0; i < preds.Count; i++)
        {
            if (tp[i]) t++;
            recall[i] = npos == 0 ? 0 : t / npos;
            precision[i] = t / (i + 1);
            scores[i] = preds[i].D.Score;
        }
        return new PrCurve(c, recall, precision, scores);
    }

    /// <summary>VOC 2010+ all-point AP: area under the precision envelope, with sentinels recall 0/1 and precision 0.</summary>
    internal static double AllPoint(double[] recall, double[] precision)
    {
        int n = recall.Length;
        var mrec = new double[n + 2]; var mpre = new double[n + 2];
        mrec[n + 1] = 1;
        for (int i = 0; i < n; i++) { mrec[i + 1] = recall[i]; mpre[i + 1] = precision[i]; }
        for (int i = n; i >= 0; i--) mpre[i] = Math.Max(mpre[i], mpre[i + 1]);
        double ap = 0;
        for (int i = 1; i <= n + 1; i++)
            if (mrec[i] != mrec[i - 1]) ap += (mrec[i] - mrec[i - 1]) * mpre[i];
        return ap;
    }

    internal static double Iou(double ax0, double ay0, double ax1, double ay1, double bx0, double by0, double bx1, double by1)
    {
        double w = Math.Max(Math.Min(ax1, bx1) - Math.Max(ax0, bx0), 0), h = Math.Max(Math.Min(ay1, by1) - Math.Max(ay0, by0), 0);
        double inter = w * h, union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter;
        return union > 0 ? inter / union : 0;
    }

    private static void Check(IReadOnlyList<IReadOnlyList<DetectedBox>> predictions, IReadOnlyList<IReadOnlyList<GroundTruthBox>> groundTruth, int numClasses, string op)
    {
        if (numClasses < 1) throw new ArgumentException($"{op}: num_classes must be positive, got {numClasses}");
        if (predictions.Count != groundTruth.Count)
            throw new ArgumentException($"{op}: predictions cover {predictions.Count} images but ground truth covers {groundTruth.Count}");
        for (int i = 0; i < predictions.Count; i++)
            for (int j = 0; j < predictions[i].Count; j++)
            {
                var d = predictions[i][j];
                if (float.IsNaN(d.Score)) throw new ArgumentException($"{op}: image {i}, prediction {j}: score is NaN");
                if (d.Label < 0 || d.Label >= numClasses) throw new ArgumentException($"{op}: image {i}, prediction {j}: label {d.Label} is outside [0, {numClasses})");
                if (!(d.X1 >= d.X0 && d.Y1 >= d.Y0)) throw new ArgumentException($"{op}: image {i}, prediction {j}: box [{d.X0}, {d.Y0}, {d.X1}, {d.Y1}] has x1 < x0 or y1 < y0 (or NaN)");
            }
        for (int i = 0; i < groundTruth.Count; i++)
            for (int j = 0; j < groundTruth[i].Count; j++)
            {
                var g = groundTruth[i][j];
                if (g.Label < 0 || g.Label >= numClasses) throw new ArgumentException($"{op}: image {i}, ground truth {j}: label {g.Label} is outside [0, {numClasses})");
                if (!(g.X1 >= g.X0 && g.Y1 >= g.Y0)) throw new ArgumentException($"{op}: image {i}, ground truth {j}: box [{g.X0}, {g.Y0}, {g.X1}, {g.Y1}] has x1 < x0 or y1 < y0 (or NaN)");
            }
    }
}
