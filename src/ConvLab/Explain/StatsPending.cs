// Placeholder until ConvLab.Stats lands on main (the integrator's); deleted on that merge.
namespace ConvLab.Stats;

internal sealed record TTestResult(double T, double Df, double PValue);

internal static class TTest
{
    public static TTestResult OneSample(double[] x, double mu = 0) => throw new NotImplementedException("ConvLab.Stats is not merged yet");
}

internal static class MultipleTesting
{
    public static bool[] Bonferroni(double[] p, double alpha) => throw new NotImplementedException("ConvLab.Stats is not merged yet");
    public static bool[] BenjaminiHochberg(double[] p, double alpha) => throw new NotImplementedException("ConvLab.Stats is not merged yet");
}

internal static class Correlation
{
    public static double Spearman(double[] x, double[] y) => throw new NotImplementedException("ConvLab.Stats is not merged yet");
}
