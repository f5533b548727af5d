using ConvLab.Autograd;
using Xunit;

namespace ConvLab.Tests;

internal static class TestUtil
{
    /// <summary>The repository root (the folder holding ConvLab.sln).</summary>
    public static string RepoRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir != null && !File.Exists(Path.Combine(dir.FullName, "ConvLab.sln"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("tests: cannot find ConvLab.sln above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>The shared PyTorch reference cases, read in place: $CONVLAB_REFERENCE or ../shared/reference beside the repository.</summary>
    public static string ReferenceDir
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("CONVLAB_REFERENCE");
            if (!string.IsNullOrEmpty(env)) return env;
            return Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "reference"));
        }
    }

    /// <summary>The shared detection/explanation reference cases, read in place: $CONVLAB_REFERENCE_VISION or ../shared/reference-vision beside the repository.</summary>
    public static string ReferenceVisionDir
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("CONVLAB_REFERENCE_VISION");
            if (!string.IsNullOrEmpty(env)) return env;
            return Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "reference-vision"));
        }
    }

    /// <summary>A float64 tensor of standard-normal values that requires grad.</summary>
    public static Tensor RandD(Generator g, params int[] shape) => Tensor.Randn(shape, g, dtype: DType.Float64).RequiresGrad_();

    /// <summary>Asserts that <paramref name="f"/>'s analytical gradients match finite differences in float64.</summary>
    public static void AssertGradCheck(Func<Tensor[], Tensor> f, Tensor[] inputs, double atol = 1e-5, double rtol = 1e-3, double eps = 1e-6)
    {
        var r = GradCheck.Check(f, inputs, eps, atol, rtol);
        Assert.True(r.Ok, r.Message);
    }

    /// <summary>Asserts that <paramref name="action"/> throws an ArgumentException whose message starts with the op name.</summary>
    public static ArgumentException AssertOpError(string op, Action action)
    {
        var e = Assert.ThrowsAny<ArgumentException>(action);
        Assert.StartsWith(op + ":", e.Message);
        return e;
    }
}
