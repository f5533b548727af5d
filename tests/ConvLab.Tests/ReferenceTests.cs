using ConvLab.Cli;
using ConvLab.Conformance;
using Xunit;

namespace ConvLab.Tests;

/// <summary>Every PyTorch reference case in ../shared/reference must pass (read in place, never copied).</summary>
public class ReferenceTests
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var f in ReferenceRunner.FindCases(TestUtil.ReferenceDir))
            data.Add(Path.GetRelativePath(TestUtil.ReferenceDir, f));
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ReferenceCasePasses(string file)
    {
        var r = ReferenceRunner.RunFile(Path.Combine(TestUtil.ReferenceDir, file), TestUtil.ReferenceDir);
        Assert.True(r.Passed, $"{r.Name}: {r.Reason}");
    }

    [Fact]
    public void ReferenceDirectoryIsPresentAndComplete()
    {
        Assert.True(Directory.Exists(TestUtil.ReferenceDir), $"reference cases not found at {TestUtil.ReferenceDir}");
        Assert.True(ReferenceRunner.FindCases(TestUtil.ReferenceDir).Count >= 180);
    }

    [Fact]
    public void CheckReferenceCommandReportsUnknownOpsMalformedFilesAndShapeMismatchesAsFailures()
    {
        var dir = Directory.CreateTempSubdirectory("convlab-ref-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(dir, "bad"));
            File.WriteAllText(Path.Combine(dir, "bad", "unknown.json"),
                """{"name":"bad/unknown","family":"bad","op":"no_such_op","attrs":{},"inputs":{},"outputs":{},"upstream":{},"grads":{}}""");
            File.WriteAllText(Path.Combine(dir, "bad", "truncated.json"), """{"name":"bad/trunc", "op": "add", "inp""");
            File.WriteAllText(Path.Combine(dir, "bad", "shape.json"),
                """{"name":"bad/shape","family":"bad","op":"add","attrs":{},"inputs":{"input":{"shape":[2],"dtype":"float32","data":[1,2]},"other":{"shape":[2],"dtype":"float32","data":[1,2]}},"outputs":{"output":{"shape":[3],"dtype":"float32","data":[2,4,0]}},"upstream":{},"grads":{}}""");
            File.WriteAllText(Path.Combine(dir, "bad", "ok.json"),
                """{"name":"bad/ok","family":"bad","op":"add","attrs":{},"inputs":{"input":{"shape":[2],"dtype":"float32","data":[1,2]},"other":{"shape":[2],"dtype":"float32","data":[1,2]}},"outputs":{"output":{"shape":[2],"dtype":"float32","data":[2,4]}},"upstream":{"output":{"shape":[2],"dtype":"float32","data":[1,1]}},"grads":{"input":{"shape":[2],"dtype":"float32","data":[1,1]}}}""");
            var sw = new StringWriter();
            int code = CheckReferenceCommand.Run(dir, verbose: false, sw);
            var text = sw.ToString();
            Assert.Equal(1, code);
            Assert.Contains("unknown op 'no_such_op'", text);
            Assert.Contains("malformed", text);
            Assert.Contains("shape [2], expected [3]", text);
            Assert.EndsWith("1 passed, 3 failed", text.TrimEnd());
        }
        finally { Directory.Delete(dir, true); }
    }
}
