using ConvLab.Detection;
using ConvLab.Imaging;
using ConvLab.Models;
using ConvLab.Training;
using Xunit;

namespace ConvLab.Tests;

/// <summary>Detection training: synthetic data determinism, YOLO label files, the YOLO loss's assignment and ignore rule,
/// multi-scale batches, bit-for-bit resume of detection training.</summary>
public class DetectionTrainingTests
{
    [Fact]
    public void SyntheticShapesAreAFunctionOfSeedAndIndex()
    {
        var a = new SyntheticShapes(40, 7, 64);
        var b = new SyntheticShapes(40, 7, 64);
        var other = new SyntheticShapes(40, 8, 64);
        int differing = 0;
        foreach (int i in new[] { 39, 0, 17, 0 })
        {
            var x = a.Get(i);
            var y = b.Get(i);
            Assert.Equal(x.Image.ToDoubleArray(), y.Image.ToDoubleArray());
            Assert.Equal(x.Boxes, y.Boxes);
            Assert.Equal(x.Labels, y.Labels);
            var (boxes, labels) = a.Targets(i);
            Assert.Equal(x.Boxes, boxes);
            Assert.Equal(x.Labels, labels);
            Assert.InRange(x.Count, 1, a.MaxObjects);
            for (int k = 0; k < x.Count; k++)
            {
                Assert.InRange(x.Labels[k], 0, 3);
                Assert.True(x.Boxes[4 * k] >= 0 && x.Boxes[4 * k + 1] >= 0 && x.Boxes[4 * k + 2] <= 64 && x.Boxes[4 * k + 3] <= 64);
                Assert.True(x.Boxes[4 * k + 2] - x.Boxes[4 * k] >= 0.12 * 64 - 1);
            }
            if (!other.Get(i).Boxes.SequenceEqual(x.Boxes)) differing++;
        }
        Assert.True(differing >= 3);
        Assert.Equal([3, 64, 64], a.Get(3).Image.Shape.ToArray());
        var img = a.Get(5).Image.ToDoubleArray();
        Assert.All(img, v => Assert.InRange(v, 0.0, 1.0));
    }

    [Fact]
    public void ShapesFillTheirBoxes()
    {
        var data = new SyntheticShapes(10, 3, 64);
        int total = 0;
        for (int i = 0; i < 10; i++)
        {
            var s = data.Get(i);
            for (int k = 0; k < s.Count; k++)
            {
                // A shape touches all four sides of its box: the box row/column through its middle differs from the background.
                int x0 = (int)s.Boxes[4 * k], y0 = (int)s.Boxes[4 * k + 1], x1 = (int)s.Boxes[4 * k + 2] - 1, y1 = (int)s.Boxes[4 * k + 3] - 1;
                if (s.Labels[k] == 2) continue; // a triangle's apex is one pixel wide; its base and sides are checked by the others' geometry
                int cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
                int checkedPoints = 0;
                foreach (var (x, y) in new[] { (x0, cy), (x1, cy), (cx, y0), (cx, y1), (cx, cy) })
                {
                    // Later shapes may overlap this one a little (IoU <= 0.2) and paint over it.
                    if (Enumerable.Range(0, s.Count).Any(o => o != k && x >= s.Boxes[4 * o] && x < s.Boxes[4 * o + 2] && y >= s.Boxes[4 * o + 1] && y < s.Boxes[4 * o + 3])) continue;
                    Assert.Equal(Colour(s, k), Pixel(s.Image, x, y));
                    checkedPoints++;
                }
                total += checkedPoints;
            }
        }
        Assert.True(total > 40, $"{total} points checked");
        static (double, double, double) Pixel(Tensor img, int x, int y) => (img[0, y, x], img[1, y, x], img[2, y, x]);
        // The middle of a square is all shape colour; other classes share it, and it is what the edges must show.
        static (double, double, double) Colour(DetectionSample s, int k) =>
            Pixel(s.Image, (int)((s.Boxes[4 * k] + s.Boxes[4 * k + 2]) / 2), (int)((s.Boxes[4 * k + 1] + s.Boxes[4 * k + 3]) / 2));
    }

    [Theory]
    [InlineData("0 0.5 0.5 0.2", "expected 5 values")]
    [InlineData("a 0.5 0.5 0.2 0.2", "class 'a' is not an integer")]
    [InlineData("7 0.5 0.5 0.2 0.2", "class 7 is out of range [0, 3]")]
    [InlineData("-1 0.5 0.5 0.2 0.2", "class -1 is out of range")]
    [InlineData("1 0.5 x 0.2 0.2", "cy 'x' is not a number")]
    [InlineData("1 0.5 0.5 1.2 0.2", "w = 1.2 is outside [0, 1]")]
    [InlineData("1 0.5 0.5 0 0.2", "zero width or height")]
    [InlineData("1 0.9 0.5 0.4 0.2", "extends outside the image")]
    [InlineData("1 0.5 0.5 NaN 0.2", "w 'NaN' is not a number")]
    public void LabelFileErrorsNameFileAndLine(string bad, string expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => YoloLabels.Parse("0 0.5 0.5 0.2 0.2\n\n" + bad + "\n", "img7.txt", 4));
        Assert.StartsWith("img7.txt:3: ", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void YoloFolderReadsImagesAndLabelsAndNamesMissingImages()
    {
        string root = Path.Combine(Path.GetTempPath(), $"convlab-yolo-{Guid.NewGuid():N}");
        try
        {
            Directory.CreateDirectory(Path.Combine(root, "images"));
            Directory.CreateDirectory(Path.Combine(root, "labels"));
            File.WriteAllLines(Path.Combine(root, "classes.txt"), ["cat", "dog"]);
            var img = Tensor.Rand([3, 20, 40], new Generator(1));
            File.WriteAllBytes(Path.Combine(root, "images", "a.png"), BoxDrawing.Png(img, [], minSide: 1));
            File.WriteAllBytes(Path.Combine(root, "images", "b.png"), BoxDrawing.Png(img, [], minSide: 1));
            YoloLabels.Write(Path.Combine(root, "labels", "a.txt"), [new YoloLabel(1, 0.5, 0.5, 0.5, 0.25), new YoloLabel(0, 0.25, 0.75, 0.1, 0.2)]);
            var data = new YoloFolderDataset(root, 64);
            Assert.Equal(["cat", "dog"], data.ClassNames);
            Assert.Equal(2, data.Count);
            var a = data.Get(0);
            Assert.Equal([3, 64, 64], a.Image.Shape.ToArray());
            Assert.Equal([1L, 0L], a.Labels);
            Assert.Equal([16f, 24f, 48f, 40f], a.Boxes[..4]);
            Assert.Empty(data.Get(1).Labels); // no label file: an image without objects

            File.WriteAllText(Path.Combine(root, "labels", "c.txt"), "0 0.5 0.5 0.1 0.1\n");
            var missing = Assert.Throws<InvalidDataException>(() => new YoloFolderDataset(root, 64));
            Assert.Contains("c.txt", missing.Message);
            Assert.Contains("no image c.*", missing.Message);
            File.Delete(Path.Combine(root, "labels", "c.txt"));
            File.WriteAllText(Path.Combine(root, "labels", "b.txt"), "0 0.5 0.5 0.1 0.1\n2 0.5 0.5 0.1 0.1\n");
            var range = Assert.Throws<InvalidDataException>(() => new YoloFolderDataset(root, 64));
            Assert.Contains("b.txt:2: class 2 is out of range [0, 1]", range.Message);
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }

    private static readonly float[][] Anchors = [[40, 40, 60, 30, 80, 80], [8, 8, 16, 16, 12, 24]];

    /// <summary>Raw maps for a 64x64 input (strides 32, 16) with every value 0 except the objectness logits, set to -6.</summary>
    private static Tensor[] QuietMaps(int classes)
    {
        int k = 5 + classes;
        return [.. new[] { 2, 4 }.Select(g =>
        {
            var m = new float[3 * k * g * g];
            for (int a = 0; a < 3; a++)
                for (int c = 0; c < g * g; c++) m[(a * k + 4) * g * g + c] = -6;
            return Tensor.FromArray(m, 1, 3 * k, g, g);
        })];
    }

    [Fact]
    public void LossAssignsTheBestAnchorPerScaleInTheCentreCell()
    {
        Assert.Equal(1, YoloLoss.BestAnchor(Anchors[0], 58, 32));
        Assert.Equal(0, YoloLoss.BestAnchor([10, 10, 10, 10], 10, 10)); // ties go to the first
        var loss = new YoloLoss(2, Anchors, TinyYolo.Strides, ignoreThreshold: 0.5);
        // One 16x16 box centred at (40, 24): stride 32 cell (row 0, col 1), anchor 0 (40x40 is closest in shape);
        // stride 16 cell (row 1, col 2), anchor 1 (16x16 exactly).
        var r = loss.Compute(QuietMaps(2), [([32, 16, 48, 32], [1])], 64, 64);
        Assert.Equal([new YoloAssignment(0, 0, 0, 0, 0, 1), new YoloAssignment(0, 0, 1, 1, 1, 2)], r.Assignments);
        Assert.Equal(0, r.Recalled);

        // Gradient at the responsible anchor: tx is BCE against the centre's cell fraction (0.25 at stride 32 and 0.5 at
        // stride 16), weighted 2 - area fraction; tw is squared error against log(w / anchor).
        var maps = QuietMaps(2);
        foreach (var m in maps) m.RequiresGrad = true;
        loss.Compute(maps, [([32, 16, 48, 32], [1])], 64, 64).Loss.Backward();
        double weight = 2 - 16.0 * 16 / (64 * 64);
        int k = 7;
        Assert.Equal(weight * (0.5 - 0.25), maps[0].Grad![0, 0 * k + 0, 0, 1], 5);
        Assert.Equal(weight * (0.5 - 0.5), maps[1].Grad![0, 1 * k + 0, 1, 2], 5);
        Assert.Equal(weight * 2 * (0 - Math.Log(16.0 / 40)), maps[0].Grad![0, 0 * k + 2, 0, 1], 4);
        Assert.Equal(1 / (1 + Math.Exp(6)) - 1, maps[1].Grad![0, 1 * k + 4, 1, 2], 5); // objectness target 1
        Assert.Equal(1 / (1 + Math.Exp(-0.0)) - 1, maps[1].Grad![0, 1 * k + 6, 1, 2], 5); // class 1 target 1
        Assert.Equal(1 / (1 + Math.Exp(-0.0)), maps[1].Grad![0, 1 * k + 5, 1, 2], 5); // class 0 target 0
        Assert.Equal(1 / (1 + Math.Exp(6)), maps[1].Grad![0, 0 * k + 4, 0, 0], 5); // a negative: objectness target 0
        Assert.Equal(0, maps[1].Grad![0, 0 * k + 5, 0, 0]); // negatives learn no class
    }

    [Fact]
    public void NonBestAnchorsOverlappingATruthAreIgnored()
    {
        var loss = new YoloLoss(2, Anchors, TinyYolo.Strides, ignoreThreshold: 0.5);
        var maps = QuietMaps(2);
        int k = 7;
        // Stride 16, anchor 0 (8x8) in the responsible cell (1, 2): predict tw = th = log 2, a 16x16 box at the centre
        // (40, 24) — the ground truth itself (IoU 1), though anchor 1 is the responsible one.
        maps[1][0, 0 * k + 2, 1, 2] = Math.Log(2);
        maps[1][0, 0 * k + 3, 1, 2] = Math.Log(2);
        // Anchor 2 (12x24) there decodes to 12x24 around the same centre: IoU 12*16 / (256 + 288 - 192) = 0.545 > 0.5.
        (float[] Boxes, long[] Labels) target = ([32f, 16f, 48f, 32f], [1]);
        var r = loss.Compute(maps, [target], 64, 64);
        Assert.Equal(2, r.Ignored);
        double baseLoss = r.Loss.Item();
        // An ignored anchor's objectness is free; a negative's is not.
        maps[1][0, 0 * k + 4, 1, 2] = 3;
        Assert.Equal(baseLoss, loss.Compute(maps, [target], 64, 64).Loss.Item(), 6);
        maps[1][0, 2 * k + 4, 1, 2] = 3;
        Assert.Equal(baseLoss, loss.Compute(maps, [target], 64, 64).Loss.Item(), 6);
        maps[1][0, 0 * k + 4, 0, 0] = 3;
        Assert.True(loss.Compute(maps, [target], 64, 64).Loss.Item() > baseLoss + 1);
        // Above the IoU of anchor 2's box (0.545) only the exact one stays ignored.
        var strict = new YoloLoss(2, Anchors, TinyYolo.Strides, ignoreThreshold: 0.6);
        Assert.Equal(1, strict.Compute(maps, [target], 64, 64).Ignored);
    }

    [Fact]
    public void LossRejectsBadTargetsAndShapes()
    {
        var loss = new YoloLoss(2, Anchors, TinyYolo.Strides);
        Assert.StartsWith("yolo_loss: image 0 box 0", Assert.Throws<ArgumentException>(() => loss.Compute(QuietMaps(2), [([30f, 16, 20, 32], [1])], 64, 64)).Message);
        Assert.Contains("class 5", Assert.Throws<ArgumentException>(() => loss.Compute(QuietMaps(2), [([10f, 10, 20, 20], [5])], 64, 64)).Message);
        Assert.StartsWith("yolo_loss: map 0", Assert.Throws<ArgumentException>(() => loss.Compute(QuietMaps(2), [([10f, 10, 20, 20], [1])], 96, 96)).Message);
        Assert.Contains("not a positive multiple of 32", Assert.Throws<ArgumentException>(() => new TinyYolo(2, 2).ForwardScales(Tensor.Zeros([1, 3, 48, 64]))).Message);
        Assert.Contains("training size 100", Assert.Throws<ArgumentException>(() =>
            new DetectionObjective(new SyntheticShapes(4, 0, 64), null, loss, new DetectionObjectiveOptions { TrainSizes = [64, 100] })).Message);
    }

    [Fact]
    public void MultiScaleBatchesAreSeededAndResizeTheBoxes()
    {
        var data = new SyntheticShapes(24, 2, 64);
        var loss = new YoloLoss(4, Anchors, TinyYolo.Strides);
        var options = new DetectionObjectiveOptions { BatchSize = 2, Seed = 5, TrainSizes = [32, 64, 96], SizeEvery = 2, EvalSize = 64 };
        var a = new DetectionObjective(data, null, loss, options);
        var b = new DetectionObjective(data, null, loss, options);
        var sizes = Enumerable.Range(0, 12).Select(i => a.SizeOf(1, i)).ToArray();
        Assert.True(sizes.Distinct().Count() > 1);
        for (int i = 0; i < 12; i += 2) Assert.Equal(sizes[i], sizes[i + 1]);
        var ba = a.Batches(1).Cast<DetectionBatch>().ToList();
        var bb = b.Batches(1).Cast<DetectionBatch>().ToList();
        Assert.Equal(12, ba.Count);
        for (int i = 0; i < 12; i++)
        {
            Assert.Equal(sizes[i], ba[i].Size);
            Assert.Equal(ba[i].Images.ToDoubleArray(), bb[i].Images.ToDoubleArray());
            Assert.Equal(ba[i].Targets.SelectMany(t => t.Boxes), bb[i].Targets.SelectMany(t => t.Boxes));
        }
        // Collate scales boxes with the image.
        var s = data.Get(0);
        var c = DetectionObjective.Collate([s], 32);
        Assert.Equal(s.Boxes.Select(v => v / 2), c.Targets[0].Boxes);
    }

    [Fact]
    public void DetectionTrainingResumesBitForBit()
    {
        string ckpt = Path.Combine(Path.GetTempPath(), $"convlab-detect-{Guid.NewGuid():N}.ckpt");
        try
        {
            double[][] Run(int epochs, bool resume)
            {
                var model = new TinyYolo(4, 2, generator: new Generator(3));
                var loss = new YoloLoss(4, Anchors, TinyYolo.Strides);
                var objective = new DetectionObjective(new SyntheticShapes(6, 1, 64), new SyntheticShapes(2, 2, 64), loss,
                    new DetectionObjectiveOptions { BatchSize = 3, Seed = 4, TrainSizes = [32, 64], SizeEvery = 1, EvalSize = 64 });
                var opt = new Adam(model.Parameters(), 1e-2);
                var trainer = new Trainer(model, opt, new CosineAnnealingLR(opt, 2), objective,
                    new TrainerOptions { Epochs = epochs, CheckpointPath = ckpt });
                if (resume) trainer.LoadCheckpoint(ckpt);
                trainer.Fit();
                Assert.Equal(epochs, trainer.History.Count);
                Assert.All(trainer.History, h => Assert.True(double.IsFinite(h.TrainLoss) && double.IsFinite(h.TestLoss)));
                return [.. model.StateDict().OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => kv.Value.ToDoubleArray())];
            }
            var straight = Run(2, false);
            Run(1, false);
            var resumed = Run(2, true);
            Assert.Equal(straight, resumed);
        }
        finally { if (File.Exists(ckpt)) File.Delete(ckpt); }
    }
}
