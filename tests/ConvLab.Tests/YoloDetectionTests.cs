using ConvLab.Detection;
using ConvLab.Models;
using CsCheck;
using Xunit;

namespace ConvLab.Tests;

/// <summary>YOLO decoding and post-processing, anchor k-means and AP/mAP: properties from the definitions.</summary>
public class YoloDetectionTests
{
    [Fact]
    public void DecodingAnAllZeroPredictionGivesCellCentresAnchorSizesAndScoresOneQuarter()
    {
        Gen.Select(Gen.Int[1, 3], Gen.Int[1, 4], Gen.Int[1, 4], Gen.Int[1, 3], Gen.Int[1, 3], Gen.OneOf(8, 16, 32)).Sample((a, h, w, c, n, stride) =>
        {
            var anchors = Tensor.FromArray(Enumerable.Range(0, 2 * a).Select(i => 5f + 7 * i).ToArray(), a, 2);
            var o = YoloDecode.V3(Tensor.Zeros(n, a * (5 + c), h, w), anchors, stride, c);
            var boxes = o.Boxes.ToArray(); var scores = o.Scores().ToArray(); var an = anchors.ToArray();
            for (int img = 0; img < n; img++)
                for (int ai = 0; ai < a; ai++)
                    for (int row = 0; row < h; row++)
                        for (int col = 0; col < w; col++)
                        {
                            int r = (img * a * h * w) + (ai * h + row) * w + col;
                            Assert.Equal((col + 0.5f) * stride, boxes[4 * r], 4);
                            Assert.Equal((row + 0.5f) * stride, boxes[4 * r + 1], 4);
                            Assert.Equal(an[2 * ai], boxes[4 * r + 2], 4);
                            Assert.Equal(an[2 * ai + 1], boxes[4 * r + 3], 4);
                            for (int k = 0; k < c; k++) Assert.Equal(0.25f, scores[r * c + k], 6);
                        }
        }, iter: 30);
    }

    [Fact]
    public void DecodingPassesGradCheck()
    {
        var g = new Generator(4);
        var anchors = Tensor.FromArray(new double[] { 10, 14, 23, 27 }, 2, 2);
        TestUtil.AssertGradCheck(t =>
        {
            var o = YoloDecode.V3(t[0], anchors, 8, 2);
            return Tensor.Cat([o.Boxes.Reshape(-1), o.Objectness.Reshape(-1), o.ClassProbs.Reshape(-1)], 0).MulScalar(0.1);
        }, [TestUtil.RandD(g, 1, 14, 2, 3)]);
        foreach (bool sqrt in new[] { true, false })
            TestUtil.AssertGradCheck(t =>
            {
                var o = YoloDecode.V1(t[0], 2, 3, 64, 48, sqrt);
                return Tensor.Cat([o.Boxes.Reshape(-1), o.Confidence.Reshape(-1), o.ClassScores.Reshape(-1)], 0).MulScalar(0.1);
            }, [TestUtil.RandD(g, 2, 3, 3, 13)]);
    }

    [Fact]
    public void DecodingAppliesToTheZoosYoloV3MapsAndPostProcessingFindsAPlantedBox()
    {
        // The zoo's raw rows (N, 3·ΣHW, 5+C) are the decoder's rows in the same order.
        var model = new YoloV3(numClasses: 2);
        var maps = model.ForwardScales(Tensor.Zeros(1, 3, 64, 64));
        Assert.Equal([1, 21, 2, 2], maps[0].Shape.ToArray());
        var decoded = YoloDecode.V3(maps, [.. YoloDecode.DarknetAnchors.Select(a => Tensor.FromArray(a, 3, 2))], YoloDecode.DarknetStrides, 2);
        Assert.Equal([1, 3 * (4 + 16 + 64), 4], decoded.Boxes.Shape.ToArray());

        // A hand-made stride-16 map: anchor 1 at row 2, column 1 is confident in class 1; everything else is off.
        var p = new float[1 * 3 * 7 * 4 * 4];
        Array.Fill(p, -10f);
        int At(int a, int k, int row, int col) => ((a * 7 + k) * 4 + row) * 4 + col;
        for (int a = 0; a < 3; a++) for (int k = 0; k < 4; k++) for (int r = 0; r < 4; r++) for (int c = 0; c < 4; c++) p[At(a, k, r, c)] = 0;
        p[At(1, 4, 2, 1)] = 6; p[At(1, 6, 2, 1)] = 6; p[At(1, 5, 2, 1)] = -6;
        // Its neighbour predicts nearly the same box with a lower score: NMS removes it.
        p[At(1, 4, 2, 2)] = 3; p[At(1, 6, 2, 2)] = 3; p[At(1, 0, 2, 2)] = -20;
        var anchors = Tensor.FromArray(new float[] { 10, 10, 30, 20, 40, 40 }, 3, 2);
        var dets = YoloPostProcess.Run(YoloDecode.V3(Tensor.FromArray(p, 1, 21, 4, 4), anchors, 16, 2), new PostProcessOptions { IouThreshold = 0.3 });
        var d = Assert.Single(dets[0]);
        Assert.Equal(1, d.Label);
        Assert.Equal(24 - 15, d.X0, 3); Assert.Equal(40 - 10, d.Y0, 3); Assert.Equal(24 + 15, d.X1, 3); Assert.Equal(40 + 10, d.Y1, 3);
        Assert.True(d.Score > 0.99f);
        // Top-k and the score threshold.
        var many = YoloPostProcess.Run(YoloDecode.V3(Tensor.Zeros(1, 21, 4, 4), anchors, 16, 2), new PostProcessOptions { ScoreThreshold = 0.2, IouThreshold = 1, MaxDetections = 5 });
        Assert.Equal(5, many[0].Count);
        Assert.Empty(YoloPostProcess.Run(YoloDecode.V3(Tensor.Zeros(1, 21, 4, 4), anchors, 16, 2))[0]);
    }

    [Fact]
    public void DecodingRejectsMismatchedChannelsAndPostProcessingRejectsNaNScores()
    {
        TestUtil.AssertOpError("yolo_v3_decode", () => YoloDecode.V3(Tensor.Zeros(1, 20, 2, 2), Tensor.Ones(3, 2), 8, 2));
        TestUtil.AssertOpError("yolo_v1_decode", () => YoloDecode.V1(Tensor.Zeros(1, 2, 2, 12), 2, 3, 64, 64, false));
        var scores = Tensor.FromArray(new float[] { 0.5f, float.NaN }, 1, 2, 1);
        TestUtil.AssertOpError("yolo_postprocess", () => YoloPostProcess.Run(Tensor.Ones(1, 2, 4), scores));
    }

    private static Tensor RandomWh(Generator g, int n, double scale = 1)
    {
        var d = new double[2 * n];
        for (int i = 0; i < d.Length; i++) d[i] = scale * (1 + g.NextInt(64)) / 2.0;
        return Tensor.FromArray(d, n, 2);
    }

    [Fact]
    public void KMeansGivenExactlyKDistinctBoxesReturnsThemSortedByArea()
    {
        Gen.Select(Gen.Int[1, 8], Gen.ULong).Sample((k, seed) =>
        {
            var g = new Generator(seed);
            var set = new HashSet<(double, double)>();
            while (set.Count < k) set.Add((1 + g.NextInt(40), 1 + g.NextInt(40)));
            var wh = Tensor.FromArray(set.SelectMany(p => new[] { p.Item1, p.Item2 }).ToArray(), k, 2);
            var r = AnchorKMeans.Fit(wh, k, seed: seed);
            var want = set.OrderBy(p => p.Item1 * p.Item2).SelectMany(p => new[] { p.Item1, p.Item2 }).ToArray();
            var got = r.Anchors.ToDoubleArray();
            // Equal areas may come in either order; compare as sets, then check the area order.
            Assert.Equal(set.OrderBy(p => p).ToArray(), Enumerable.Range(0, k).Select(i => (got[2 * i], got[2 * i + 1])).OrderBy(p => p).ToArray());
            for (int i = 1; i < k; i++) Assert.True(got[2 * i - 2] * got[2 * i - 1] <= got[2 * i] * got[2 * i + 1]);
            Assert.Equal(1.0, r.MeanIou, 12);
            Assert.Equal(want.Length, got.Length);
        }, iter: 50);
    }

    [Fact]
    public void KMeansCurveDoesNotDecreaseAndScalingTheBoxesScalesTheAnchors()
    {
        Gen.Select(Gen.Int[10, 60], Gen.ULong).Sample((n, seed) =>
        {
            var wh = RandomWh(new Generator(seed), n);
            var curve = AnchorKMeans.Curve(wh, 6, seed);
            Assert.Equal(6, curve.Count);
            for (int k = 1; k < 6; k++) Assert.True(curve[k].MeanIou >= curve[k - 1].MeanIou, $"k={k + 1}: {curve[k].MeanIou} < {curve[k - 1].MeanIou}");
            Assert.All(curve, c => Assert.Equal(c.MeanIou, AnchorKMeans.MeanIou(wh, c.Anchors), 5));
            var a = AnchorKMeans.Fit(wh, 4, seed: seed).Anchors.ToDoubleArray();
            var scaled = AnchorKMeans.Fit(RandomWh(new Generator(seed), n, 4), 4, seed: seed).Anchors.ToDoubleArray();
            for (int i = 0; i < a.Length; i++) Assert.Equal(4 * a[i], scaled[i], 4);
        }, iter: 30);
    }

    [Fact]
    public void KMeansRejectsMoreClustersThanBoxesAndNonPositiveSizes()
    {
        Assert.Contains("larger than the number of boxes", TestUtil.AssertOpError("anchor_kmeans", () => AnchorKMeans.Fit(Tensor.Ones(3, 2), 4)).Message);
        TestUtil.AssertOpError("anchor_kmeans", () => AnchorKMeans.Fit(Tensor.FromArray(new float[] { 1, 2, 0, 3 }, 2, 2), 1));
        TestUtil.AssertOpError("anchor_kmeans", () => AnchorKMeans.Curve(Tensor.Ones(3, 2), 5));
    }

    private static (List<IReadOnlyList<DetectedBox>> Preds, List<IReadOnlyList<GroundTruthBox>> Gts) RandomScene(Generator g, int images, int classes)
    {
        var preds = new List<IReadOnlyList<DetectedBox>>(); var gts = new List<IReadOnlyList<GroundTruthBox>>();
        int serial = 0;
        for (int i = 0; i < images; i++)
        {
            var gt = new List<GroundTruthBox>(); var pr = new List<DetectedBox>();
            for (int j = g.NextInt(4); j > 0; j--)
            {
                float x = g.NextInt(100), y = g.NextInt(100), w = 4 + g.NextInt(60), h = 4 + g.NextInt(60);
                gt.Add(new GroundTruthBox(x, y, x + w, y + h, g.NextInt(classes)));
            }
            foreach (var b in gt)
            {
                if (g.NextInt(4) == 0) continue;
                float dx = (float)(g.NextDouble() * 8 - 4);
                pr.Add(new DetectedBox(b.X0 + dx, b.Y0, b.X1 + dx, b.Y1, (float)g.NextDouble() * 0.9f + 1e-4f * serial++, g.NextInt(5) == 0 ? g.NextInt(classes) : b.Label));
            }
            for (int j = g.NextInt(3); j > 0; j--)
            {
                float x = g.NextInt(100), y = g.NextInt(100);
                pr.Add(new DetectedBox(x, y, x + 10, y + 12, (float)g.NextDouble() * 0.9f + 1e-4f * serial++, g.NextInt(classes)));
            }
            preds.Add(pr); gts.Add(gt);
        }
        return (preds, gts);
    }

    [Fact]
    public void ApIsOneForAPerfectDetectorAndDoesNotDependOnTheOrderOfImages()
    {
        Gen.Select(Gen.Int[1, 8], Gen.Int[1, 4], Gen.ULong).Sample((images, classes, seed) =>
        {
            var g = new Generator(seed);
            var (preds, gts) = RandomScene(g, images, classes);
            var perfect = gts.Select(l => (IReadOnlyList<DetectedBox>)l.Select((b, j) => new DetectedBox(b.X0, b.Y0, b.X1, b.Y1, 0.5f + 0.01f * j, b.Label)).ToList()).ToList();
            var voc = DetectionMetrics.VocAp(perfect, gts, classes);
            for (int c = 0; c < classes; c++) Assert.Equal(voc.HasGt[c] ? 1.0 : 0.0, voc.Ap[c], 12);
            var coco = DetectionMetrics.Coco(perfect, gts, classes);
            if (voc.HasGt.Any(h => h)) { Assert.Equal(1.0, voc.Map, 12); Assert.Equal(1.0, coco.Map, 12); Assert.Equal(1.0, coco.Map50, 12); }

            var perm = Enumerable.Range(0, images).OrderBy(_ => g.NextDouble()).ToArray();
            var a = DetectionMetrics.VocAp(preds, gts, classes, 0.5);
            var b = DetectionMetrics.VocAp([.. perm.Select(i => preds[i])], [.. perm.Select(i => gts[i])], classes, 0.5);
            Assert.Equal(a.Ap, b.Ap);
            var ca = DetectionMetrics.Coco(preds, gts, classes);
            var cb = DetectionMetrics.Coco([.. perm.Select(i => preds[i])], [.. perm.Select(i => gts[i])], classes);
            Assert.Equal(ca.ApPerClass, cb.ApPerClass);
            Assert.True(ca.Map <= ca.Map50 + 1e-12);
        }, iter: 60);
    }

    [Fact]
    public void CocoMatchesAHandComputedCase()
    {
        // One class, one image, two ground-truth boxes; three predictions: a perfect one (0.9), a false positive (0.8),
        // one with IoU 0.6 against the second box (0.7). pycocotools: at IoU 0.5-0.6 recall 1 at precision 2/3
        // (envelope: precision 1 up to recall 0.5, then 2/3); above 0.6 only the first matches.
        var gt = new List<IReadOnlyList<GroundTruthBox>> { new[] { new GroundTruthBox(0, 0, 10, 10, 0), new GroundTruthBox(20, 0, 30, 10, 0) } };
        var pr = new List<IReadOnlyList<DetectedBox>> { new[] { new DetectedBox(0, 0, 10, 10, 0.9f, 0), new DetectedBox(50, 50, 60, 60, 0.8f, 0), new DetectedBox(20, 0, 30, 6, 0.7f, 0) } };
        var r = DetectionMetrics.Coco(pr, gt, 1);
        double low = (51 * 1.0 + 50 * (2.0 / 3)) / 101, high = 51 / 101.0;
        Assert.Equal(low, r.Map50, 9);
        // IoU 0.6 matches at thresholds 0.50, 0.55, 0.60 (3 of 10).
        Assert.Equal((3 * low + 7 * high) / 10, r.Map, 9);
        Assert.Equal(-1, r.MapLarge);
        var voc = DetectionMetrics.VocAp(pr, gt, 1);
        Assert.Equal(0.5 + 0.5 * 2.0 / 3, voc.Map, 12);
    }

    [Fact]
    public void MetricsRejectNaNScoresFlippedBoxesAndMismatchedImageCounts()
    {
        var gt = new List<IReadOnlyList<GroundTruthBox>> { new[] { new GroundTruthBox(0, 0, 10, 10, 0) } };
        TestUtil.AssertOpError("average_precision", () => DetectionMetrics.VocAp([new[] { new DetectedBox(0, 0, 1, 1, float.NaN, 0) }], gt, 1));
        TestUtil.AssertOpError("average_precision", () => DetectionMetrics.VocAp([new[] { new DetectedBox(5, 0, 1, 1, 0.5f, 0) }], gt, 1));
        TestUtil.AssertOpError("coco_map", () => DetectionMetrics.Coco([], gt, 1));
        // Empty prediction lists are valid: AP 0 where there is ground truth.
        Assert.Equal(0, DetectionMetrics.VocAp([Array.Empty<DetectedBox>()], gt, 1).Map);
    }
}
