using ConvLab.Conformance;
using Xunit;

namespace ConvLab.Tests;

/// <summary>Every case of the <c>explain</c> family in ../shared/reference-vision must pass (read in place, never copied).</summary>
public class ExplainReferenceTests
{
    private static string ExplainDir => Path.Combine(TestUtil.ReferenceVisionDir, "explain");

    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var f in ReferenceRunner.FindCases(ExplainDir)) data.Add(Path.GetRelativePath(TestUtil.ReferenceVisionDir, f));
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ExplainCasePasses(string file)
    {
        var r = ReferenceRunner.RunFile(Path.Combine(TestUtil.ReferenceVisionDir, file), TestUtil.ReferenceVisionDir);
        Assert.True(r.Passed, $"{r.Name}: {r.Reason}");
    }

    [Fact]
    public void ExplainFamilyIsPresentAndCoversEveryDefinition()
    {
        Assert.True(Directory.Exists(ExplainDir), $"explain reference cases not found at {ExplainDir}");
        var ops = ReferenceRunner.FindCases(ExplainDir).Select(f => ReferenceCase.Load(f).Op).ToHashSet();
        string[] expected = ["saliency", "input_x_gradient", "guided_backprop", "integrated_gradients", "occlusion", "grad_cam", "cam",
            "smoothgrad", "deletion_curve", "insertion_curve", "pointing_game", "saliency_box_iou"];
        Assert.Empty(expected.Except(ops));
        foreach (var op in expected) Assert.Contains(op, ReferenceRunner.SupportedOps);
        var rules = ReferenceRunner.FindCases(ExplainDir).Select(ReferenceCase.Load).Where(c => c.Op == "integrated_gradients")
            .Select(c => c.Attrs["method"].GetString()).ToHashSet();
        Assert.Equal(["gausslegendre", "riemann_left", "riemann_middle", "riemann_right", "riemann_trapezoid"], rules.Order());
    }

    [Fact]
    public void CheckReferenceCommandPassesTheExplainFamily()
    {
        var (code, text) = CliTests.Convlab("check-reference", ExplainDir);
        var last = text.TrimEnd().Split('\n')[^1].Trim();
        int n = ReferenceRunner.FindCases(ExplainDir).Count;
        Assert.Equal($"{n} passed, 0 failed", last);
        Assert.Equal(0, code);
    }

    [Fact]
    public void AWrongStoredNumberFailsTheCase()
    {
        // The runner really compares: perturbing one expected value of a case makes it fail.
        var c = ReferenceCase.Load(Path.Combine(ExplainDir, "saliency_gap.json"));
        var want = c.Outputs["output"].ToArray();
        want[5] += 0.5f;
        var broken = new ReferenceCase
        {
            Name = c.Name, Family = c.Family, Op = c.Op, Attrs = c.Attrs, Inputs = c.Inputs, Model = c.Model,
            Outputs = new Dictionary<string, Tensor> { ["output"] = Tensor.FromArray(want, c.Outputs["output"].Shape.ToArray()) },
            Upstream = c.Upstream, Grads = c.Grads, Rtol = c.Rtol, Atol = c.Atol,
        };
        Assert.True(ReferenceRunner.Run(c).Passed);
        Assert.False(ReferenceRunner.Run(broken).Passed);
    }
}
