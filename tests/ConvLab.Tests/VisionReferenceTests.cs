using ConvLab.Conformance;
using Xunit;

namespace ConvLab.Tests;

/// <summary>Every case of the box_ops and yolo families of ../shared/reference-vision must pass (read in place, never copied).</summary>
public class VisionReferenceTests
{
    private static readonly string[] Families = ["box_ops", "yolo"];

    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var family in Families)
            foreach (var f in ReferenceRunner.FindCases(Path.Combine(TestUtil.ReferenceVisionDir, family)))
                data.Add(Path.GetRelativePath(TestUtil.ReferenceVisionDir, f));
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void VisionReferenceCasePasses(string file)
    {
        var r = ReferenceRunner.RunFile(Path.Combine(TestUtil.ReferenceVisionDir, file), TestUtil.ReferenceVisionDir);
        Assert.True(r.Passed, $"{r.Name}: {r.Reason}");
    }

    [Fact]
    public void DetectionFamiliesArePresentAndEveryOpHasAHandler()
    {
        var ops = new HashSet<string>();
        foreach (var family in Families)
        {
            var files = ReferenceRunner.FindCases(Path.Combine(TestUtil.ReferenceVisionDir, family));
            Assert.True(files.Count >= 9, $"{family}: only {files.Count} cases under {TestUtil.ReferenceVisionDir}");
            foreach (var f in files) ops.Add(ReferenceCase.Load(f).Op);
        }
        string[] expected = ["box_iou", "generalized_box_iou", "distance_box_iou", "complete_box_iou", "box_area", "box_convert",
            "clip_boxes_to_image", "remove_small_boxes", "masks_to_boxes", "nms", "batched_nms", "generalized_box_iou_loss",
            "distance_box_iou_loss", "complete_box_iou_loss", "sigmoid_focal_loss", "roi_align", "yolo_v3_decode", "yolo_v1_decode",
            "anchor_kmeans", "average_precision"];
        foreach (var op in expected)
        {
            Assert.Contains(op, ops);
            Assert.Contains(op, ReferenceRunner.SupportedOps);
        }
    }
}
