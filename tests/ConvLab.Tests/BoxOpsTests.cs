using ConvLab.Detection;
using ConvLab.NN.Functional;
using CsCheck;
using Xunit;

namespace ConvLab.Tests;

/// <summary>torchvision-style box operations: NMS against brute force, batched NMS against per-class NMS, gradients, bad input.</summary>
public class BoxOpsTests
{
    /// <summary>Random boxes on a 1/4-pixel grid (so coordinate offsets are exact in float32), with repeated boxes and repeated scores.</summary>
    private static (float[] Boxes, float[] Scores) RandomBoxes(Generator g, int n)
    {
        var b = new float[4 * n]; var s = new float[n];
        for (int i = 0; i < n; i++)
        {
            if (i > 0 && g.NextInt(6) == 0)
            {
                int j = g.NextInt(i);
                Array.Copy(b, 4 * j, b, 4 * i, 4);
            }
            else
            {
                float x = g.NextInt(160) / 4f, y = g.NextInt(160) / 4f, w = g.NextInt(80) / 4f, h = g.NextInt(80) / 4f;
                (b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]) = (x, y, x + w, y + h);
            }
            s[i] = g.NextInt(4) == 0 && i > 0 ? s[g.NextInt(i)] : (float)g.NextDouble();
        }
        return (b, s);
    }

    /// <summary>torchvision's IoU as its CPU kernel computes it: float32 areas and intersection, inter / (area_kept + area_other − inter).</summary>
    private static float FloatIou(float[] b, int i, int j)
    {
        float ai = (b[4 * i + 2] - b[4 * i]) * (b[4 * i + 3] - b[4 * i + 1]);
        float aj = (b[4 * j + 2] - b[4 * j]) * (b[4 * j + 3] - b[4 * j + 1]);
        float w = MathF.Max(0, MathF.Min(b[4 * i + 2], b[4 * j + 2]) - MathF.Max(b[4 * i], b[4 * j]));
        float h = MathF.Max(0, MathF.Min(b[4 * i + 3], b[4 * j + 3]) - MathF.Max(b[4 * i + 1], b[4 * j + 1]));
        float inter = w * h;
        return inter / (ai + aj - inter);
    }

    /// <summary>The definition, written independently: visit by decreasing score (ties by index), keep unless IoU with a kept box &gt; t.</summary>
    private static long[] BruteForceNms(float[] b, float[] s, double t, IEnumerable<int>? subset = null)
    {
        var order = (subset ?? Enumerable.Range(0, s.Length)).OrderByDescending(i => s[i]).ThenBy(i => i).ToList();
        var kept = new List<int>();
        foreach (int i in order)
            if (!kept.Any(k => (double)FloatIou(b, k, i) > t)) kept.Add(i);
        return [.. kept.Select(i => (long)i)];
    }

    private static Tensor T(float[] b, int n) => Tensor.FromArray(b, n, 4);

    [Fact]
    public void NmsEqualsBruteForceOnRandomBoxesIncludingTiesAndThresholdsAtAnIouPlusMinus1e5()
    {
        Gen.Select(Gen.Int[0, 60], Gen.ULong, Gen.Int[0, 3]).Sample((n, seed, mode) =>
        {
            var g = new Generator(seed);
            var (b, s) = RandomBoxes(g, n);
            double t = 0.1 + 0.8 * g.NextDouble();
            if (n >= 2 && mode > 0)
            {
                // A threshold just above or below an IoU that actually occurs.
                double iou = FloatIou(b, g.NextInt(n), g.NextInt(n));
                if (double.IsNaN(iou)) iou = 0.5; // two empty boxes
                t = mode == 1 ? iou + 1e-5 : mode == 2 ? iou - 1e-5 : iou;
            }
            var got = BoxOps.Nms(T(b, n), Tensor.FromArray(s, n), t).ToInt64Array();
            Assert.Equal(BruteForceNms(b, s, t), got);
        }, iter: 300);
    }

    [Fact]
    public void NmsOfNoBoxesIsEmptyAndOfOneBoxKeepsIt()
    {
        Assert.Equal(0, BoxOps.Nms(Tensor.Zeros(0, 4), Tensor.Zeros(0), 0.5).Numel);
        Assert.Equal(0, BoxOps.BatchedNms(Tensor.Zeros(0, 4), Tensor.Zeros(0), Tensor.FromArray(Array.Empty<long>(), 0), 0.5).Numel);
        Assert.Equal([0L], BoxOps.Nms(Tensor.FromArray(new float[] { 1, 2, 3, 4 }, 1, 4), Tensor.Of(0.3f), 0.5).ToInt64Array());
        // Identical boxes: only the higher score survives; with equal scores the first index.
        var two = Tensor.FromArray(new float[] { 0, 0, 2, 2, 0, 0, 2, 2 }, 2, 4);
        Assert.Equal([1L], BoxOps.Nms(two, Tensor.Of(0.2f, 0.9f), 0.5).ToInt64Array());
        Assert.Equal([0L], BoxOps.Nms(two, Tensor.Of(0.5f, 0.5f), 0.5).ToInt64Array());
    }

    [Fact]
    public void NmsOnLargeSetsEqualsBruteForceWhereTheKeptSetIsBucketed()
    {
        // ≥ 256 boxes take the x-bucketed kept set; thresholds 0 and 1 are its edges (0: any overlap suppresses).
        Gen.Select(Gen.Int[256, 900], Gen.ULong, Gen.OneOf(0.0, 0.3, 0.5, 0.7, 1.0), Gen.Int[1, 5]).Sample((n, seed, t, classes) =>
        {
            var g = new Generator(seed);
            var (b, s) = RandomBoxes(g, n);
            Assert.Equal(BruteForceNms(b, s, t), BoxOps.Nms(T(b, n), Tensor.FromArray(s, n), t).ToInt64Array());
            var idx = Enumerable.Range(0, n).Select(_ => (long)g.NextInt(classes)).ToArray();
            var want = Enumerable.Range(0, classes)
                .SelectMany(c => BruteForceNms(b, s, t, Enumerable.Range(0, n).Where(i => idx[i] == c)))
                .OrderByDescending(i => s[i]).ThenBy(i => i).ToArray();
            Assert.Equal(want, BoxOps.BatchedNms(T(b, n), Tensor.FromArray(s, n), Tensor.FromArray(idx, n), t).ToInt64Array());
        }, iter: 12);
    }

    [Fact]
    public void BatchedNmsEqualsPerClassNms()
    {
        Gen.Select(Gen.Int[0, 50], Gen.Int[1, 4], Gen.ULong).Sample((n, classes, seed) =>
        {
            var g = new Generator(seed);
            var (b, s) = RandomBoxes(g, n);
            var idx = Enumerable.Range(0, n).Select(_ => (long)g.NextInt(classes)).ToArray();
            double t = 0.2 + 0.6 * g.NextDouble();
            var want = Enumerable.Range(0, classes)
                .SelectMany(c => BruteForceNms(b, s, t, Enumerable.Range(0, n).Where(i => idx[i] == c)))
                .OrderByDescending(i => s[i]).ThenBy(i => i).ToArray();
            var got = BoxOps.BatchedNms(T(b, n), Tensor.FromArray(s, n), Tensor.FromArray(idx, n), t).ToInt64Array();
            Assert.Equal(want, got);
        }, iter: 200);
    }

    [Fact]
    public void PairwiseIouMatchesTheDirectFormulaAndIsSymmetricWithTheDiagonalOne()
    {
        var g = new Generator(3);
        var (b1, _) = RandomBoxes(g, 13); var (b2, _) = RandomBoxes(g, 21);
        for (int i = 0; i < 13; i++) b1[4 * i + 2] += 0.25f;
        var iou = BoxOps.BoxIou(T(b1, 13), T(b2, 21)).ToArray();
        var rev = BoxOps.BoxIou(T(b2, 21), T(b1, 13)).ToArray();
        var all = b1.Concat(b2).ToArray();
        for (int i = 0; i < 13; i++)
            for (int j = 0; j < 21; j++)
            {
                float want = FloatIou(all, i, 13 + j);
                Assert.Equal(float.IsNaN(want) ? 0 : want, float.IsNaN(iou[i * 21 + j]) ? 0 : iou[i * 21 + j], 6);
                Assert.Equal(iou[i * 21 + j], rev[j * 13 + i], 6);
            }
        var self = BoxOps.BoxIou(T(b1, 13), T(b1, 13)).ToArray();
        for (int i = 0; i < 13; i++) Assert.Equal(1f, self[i * 13 + i], 6);
        // GIoU, DIoU and CIoU equal IoU for identical boxes and never exceed it.
        foreach (var f in new Func<Tensor, Tensor, Tensor>[] { BoxOps.GeneralizedBoxIou, (a, b) => BoxOps.DistanceBoxIou(a, b), (a, b) => BoxOps.CompleteBoxIou(a, b) })
        {
            var v = f(T(b1, 13), T(b2, 21)).ToArray();
            for (int k = 0; k < v.Length; k++) Assert.True(v[k] <= iou[k] + 1e-6);
            var d = f(T(b1, 13), T(b1, 13)).ToArray();
            for (int i = 0; i < 13; i++) Assert.Equal(1f, d[i * 13 + i], 5);
        }
    }

    [Fact]
    public void BoxConvertRoundTripsAndIsDifferentiable()
    {
        var g = new Generator(5);
        var boxes = Tensor.FromArray(RandomBoxes(g, 6).Boxes, 2, 3, 4);
        foreach (var fmt in new[] { "xywh", "cxcywh" })
            Assert.True(BoxOps.BoxConvert(BoxOps.BoxConvert(boxes, "xyxy", fmt), fmt, "xyxy").AllClose(boxes, 1e-5, 1e-5));
        var x = TestUtil.RandD(g, 3, 4);
        TestUtil.AssertGradCheck(t => BoxOps.BoxConvert(t[0], "cxcywh", "xyxy"), [x]);
        TestUtil.AssertGradCheck(t => BoxOps.BoxConvert(t[0], "xyxy", "cxcywh"), [x]);
    }

    /// <summary>Pairs of valid float64 boxes (width and height ≥ 0.5) that partly overlap.</summary>
    private static (Tensor A, Tensor B) BoxPairs(ulong seed, int n)
    {
        var g = new Generator(seed);
        double[] Make()
        {
            var d = new double[4 * n];
            for (int i = 0; i < n; i++)
            {
                double x = 3 * g.NextDouble(), y = 3 * g.NextDouble();
                (d[4 * i], d[4 * i + 1], d[4 * i + 2], d[4 * i + 3]) = (x, y, x + 0.5 + 2 * g.NextDouble(), y + 0.5 + 2 * g.NextDouble());
            }
            return d;
        }
        return (Tensor.FromArray(Make(), n, 4).RequiresGrad_(), Tensor.FromArray(Make(), n, 4).RequiresGrad_());
    }

    [Fact]
    public void BoxIouLossesPassGradCheckForBothBoxSets()
    {
        Gen.Select(Gen.ULong, Gen.Int[1, 5], Gen.OneOf("none", "mean", "sum")).Sample((seed, n, reduction) =>
        {
            var (a, b) = BoxPairs(seed, n);
            TestUtil.AssertGradCheck(t => F.GeneralizedBoxIouLoss(t[0], t[1], reduction), [a, b]);
            TestUtil.AssertGradCheck(t => F.DistanceBoxIouLoss(t[0], t[1], reduction), [a, b]);
        }, iter: 20);
    }

    /// <summary>CIoU's aspect term v = 4/π²·(atan(w_gt/h_gt) − atan(w/h))², written independently.</summary>
    private static double AspectV(double[] p, double[] g, int i) =>
        4 / (Math.PI * Math.PI) * Math.Pow(Math.Atan((g[4 * i + 2] - g[4 * i]) / (g[4 * i + 3] - g[4 * i + 1])) - Math.Atan((p[4 * i + 2] - p[4 * i]) / (p[4 * i + 3] - p[4 * i + 1])), 2);

    [Fact]
    public void CompleteIouLossGradientHoldsAlphaConstantAsTorchvision()
    {
        Gen.Select(Gen.ULong, Gen.Int[1, 4]).Sample((seed, n) =>
        {
            var (a, b) = BoxPairs(seed, n);
            F.CompleteBoxIouLoss(a, b, "sum").Backward();
            var p = a.ToDoubleArray(); var gt = b.ToDoubleArray();
            // alpha from the unperturbed boxes, then a central difference of DIoU loss + alpha·v with alpha fixed.
            var alpha = new double[n];
            var diou0 = F.DistanceBoxIouLoss(a.Detach(), b.Detach()).ToDoubleArray();
            var iou0 = BoxOps.BoxIou(a.Detach(), b.Detach()).ToDoubleArray();
            for (int i = 0; i < n; i++) { double v = AspectV(p, gt, i); alpha[i] = v / (1 - iou0[i * n + i] + v + 1e-7); }
            double L(double[] q)
            {
                var d = F.DistanceBoxIouLoss(Tensor.FromArray(q, n, 4), b.Detach()).ToDoubleArray();
                return Enumerable.Range(0, n).Sum(i => d[i] + alpha[i] * AspectV(q, gt, i));
            }
            var grad = a.Grad!.ToDoubleArray(); var gb = b.Grad!.ToDoubleArray();
            Assert.True(diou0.Length == n);
            for (int k = 0; k < 4 * n; k++)
            {
                var up = (double[])p.Clone(); var dn = (double[])p.Clone();
                up[k] += 1e-6; dn[k] -= 1e-6;
                double num = (L(up) - L(dn)) / 2e-6;
                Assert.True(Math.Abs(num - grad[k]) <= 1e-5 + 1e-3 * Math.Abs(num), $"element {k}: analytical {grad[k]} vs numerical {num}");
            }
            Assert.Contains(gb, v => v != 0);
        }, iter: 20);
    }

    [Fact]
    public void IouLossesOfIdenticalBoxesAreZeroAndMeanOfNoBoxesIsZero()
    {
        var (a, _) = BoxPairs(1, 4);
        foreach (var f in new Func<Tensor, Tensor, string, double, Tensor>[] { F.GeneralizedBoxIouLoss, F.DistanceBoxIouLoss, F.CompleteBoxIouLoss })
        {
            Assert.True(f(a, a.Detach(), "none", 1e-7).AllClose(Tensor.Zeros([4], DType.Float64), 1e-6, 1e-6));
            Assert.Equal(0, f(Tensor.Zeros(0, 4), Tensor.Zeros(0, 4), "mean", 1e-7).Item());
        }
    }

    [Fact]
    public void SigmoidFocalLossPassesGradCheckAndReducesToBceWhenGammaIsZeroWithoutAlpha()
    {
        var g = new Generator(11);
        var x = TestUtil.RandD(g, 3, 5);
        var t = Tensor.Rand([3, 5], g, dtype: DType.Float64).Gt(Tensor.Scalar(0.5, DType.Float64));
        foreach (var (alpha, gamma) in new[] { (0.25, 2.0), (-1.0, 1.5), (0.5, 0.0) })
            TestUtil.AssertGradCheck(v => F.SigmoidFocalLoss(v[0], t, alpha, gamma, "sum"), [x]);
        Assert.True(F.SigmoidFocalLoss(x, t, -1, 0, "mean").AllClose(F.BinaryCrossEntropyWithLogits(x, t), 1e-12, 1e-12));
    }

    [Fact]
    public void RoiAlignPassesGradCheckAndAveragesAConstantMapToItsValue()
    {
        var g = new Generator(2);
        var x = TestUtil.RandD(g, 2, 2, 6, 7);
        var rois = Tensor.FromArray(new double[] { 0, 0.3, 0.7, 9.1, 8.2, 1, 2.2, 1.1, 5.3, 11.7, 1, -1.5, -0.7, 3.2, 2.9 }, 3, 5);
        foreach (var (ratio, aligned) in new[] { (-1, false), (2, true), (1, false), (-1, true) })
            TestUtil.AssertGradCheck(t => F.RoiAlign(t[0], rois, [2, 3], 0.5, ratio, aligned), [x]);
        // A constant map reads as the constant wherever the samples lie inside the map.
        var c = Tensor.Full([1, 1, 8, 8], 3.5);
        var inside = Tensor.FromArray(new float[] { 0, 1, 1, 6, 5 }, 1, 5);
        Assert.True(F.RoiAlign(c, inside, [3, 3], 1, -1, true).AllClose(Tensor.Full([1, 1, 3, 3], 3.5), 1e-6, 1e-6));
    }

    [Fact]
    public void BadBoxesNaNScoresAndBadArgumentsAreErrorsNamingTheOpAndTheBox()
    {
        var flipped = Tensor.FromArray(new float[] { 0, 0, 2, 2, 5, 1, 3, 4 }, 2, 4);
        var e = TestUtil.AssertOpError("nms", () => BoxOps.Nms(flipped, Tensor.Of(0.1f, 0.2f), 0.5));
        Assert.Contains("boxes[1]", e.Message);
        TestUtil.AssertOpError("box_iou", () => BoxOps.BoxIou(flipped, flipped));
        TestUtil.AssertOpError("generalized_box_iou_loss", () => F.GeneralizedBoxIouLoss(flipped, flipped));
        var ok = Tensor.FromArray(new float[] { 0, 0, 2, 2, 1, 1, 3, 4 }, 2, 4);
        Assert.Contains("score 1 is NaN", TestUtil.AssertOpError("nms", () => BoxOps.Nms(ok, Tensor.Of(0.1f, float.NaN), 0.5)).Message);
        TestUtil.AssertOpError("nms", () => BoxOps.Nms(ok, Tensor.Of(0.1f), 0.5));
        TestUtil.AssertOpError("batched_nms", () => BoxOps.BatchedNms(ok, Tensor.Of(0.1f, 0.2f), Tensor.FromArray(new long[] { 0 }, 1), 0.5));
        TestUtil.AssertOpError("box_area", () => BoxOps.BoxArea(Tensor.Zeros(3, 5)));
        TestUtil.AssertOpError("box_convert", () => BoxOps.BoxConvert(ok, "xyxy", "yxyx"));
        TestUtil.AssertOpError("masks_to_boxes", () => BoxOps.MasksToBoxes(Tensor.Zeros(1, 3, 3)));
        TestUtil.AssertOpError("roi_align", () => F.RoiAlign(Tensor.Zeros(1, 1, 4, 4), Tensor.FromArray(new float[] { 1, 0, 0, 1, 1 }, 1, 5), [2, 2]));
        TestUtil.AssertOpError("roi_align", () => F.RoiAlign(Tensor.Zeros(1, 1, 4, 4), Tensor.FromArray(new float[] { 0, 0, 0, 1, 1 }, 1, 5), [2, 2], samplingRatio: 0));
        TestUtil.AssertOpError("sigmoid_focal_loss", () => F.SigmoidFocalLoss(Tensor.Zeros(2), Tensor.Zeros(3)));
    }

    [Fact]
    public void CheckReferenceCommandPassesTheBoxOpsAndYoloFamilies()
    {
        foreach (var family in new[] { "box_ops", "yolo" })
        {
            var (code, text) = CliTests.Convlab("check-reference", Path.Combine(TestUtil.ReferenceVisionDir, family));
            Assert.Equal(0, code);
            Assert.Matches(@"\d+ passed, 0 failed\s*$", text);
        }
    }
}
