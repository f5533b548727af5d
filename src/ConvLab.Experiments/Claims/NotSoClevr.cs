using ConvLab.Data;

namespace ConvLab.Experiments.Claims;

/// <summary>
/// Liu et al.'s Not-so-Clevr: a 9x9 white square centred at (x, y), x, y ∈ 4…59, on a 64x64 black canvas (3,136
/// examples), with the uniform split (a seeded random 25 % for test) and the quadrant split (test = centres with both
/// coordinates in the upper-right quadrant: x ≥ 32, y &lt; 32).
/// </summary>
internal static class NotSoClevr
{
    public const int Canvas = 64, Half = 4, Lo = 4, Hi = 59;
    public static readonly string[] Splits = ["uniform", "quadrant"];
    public static readonly string[] Tasks = ["classification", "regression"];

    /// <summary>Every centre, row-major (y outer).</summary>
    public static List<(int X, int Y)> Centres()
    {
        var list = new List<(int, int)>();
        for (int y = Lo; y <= Hi; y++)
            for (int x = Lo; x <= Hi; x++) list.Add((x, y));
        return list;
    }

    /// <summary>The (train, test) centres of a split; an unknown split is an error naming the option.</summary>
    public static (List<(int X, int Y)> Train, List<(int X, int Y)> Test) Split(string split, Generator g)
    {
        var all = Centres();
        switch (split)
        {
            case "uniform":
            {
                var order = Tensor.RandPerm(all.Count, g).ToInt64Array();
                int test = all.Count / 4;
                return ([.. order.Skip(test).Select(i => all[(int)i])], [.. order.Take(test).Select(i => all[(int)i])]);
            }
            case "quadrant":
                return ([.. all.Where(c => !InQuadrant(c))], [.. all.Where(InQuadrant)]);
            default:
                throw new ArgumentException($"experiment coordconv: --set split={split} is not a split; the splits are {string.Join(", ", Splits)}");
        }
    }

    private static bool InQuadrant((int X, int Y) c) => c.X >= Canvas / 2 && c.Y < Canvas / 2;

    /// <summary>The one-hot class of a centre: its pixel index y·64 + x.</summary>
    public static long Pixel((int X, int Y) c) => c.Y * Canvas + c.X;

    /// <summary>Coordinates in [−1, 1] as AddCoords normalises them.</summary>
    public static float Normalised(int v) => v * 2f / (Canvas - 1) - 1;

    /// <summary>Coordinate classification: input the (x, y) pair as a 2x1x1 tensor in [−1, 1], label the centre pixel.</summary>
    public sealed class Coordinates(List<(int X, int Y)> centres) : IDataset
    {
        public int Count => centres.Count;

        public (Tensor Input, long Label) Get(int index)
        {
            var c = centres[index];
            return (Tensor.FromArray([Normalised(c.X), Normalised(c.Y)], 2, 1, 1), Pixel(c));
        }
    }

    /// <summary>
    /// Coordinate regression: input the rendered 1x64x64 image, target the centre (x, y) in [−1, 1]; as a classification
    /// dataset the label is the centre pixel (so batched inference reuses the classification path).
    /// </summary>
    public sealed class Images(List<(int X, int Y)> centres) : IRegressionDataset, IDataset
    {
        public int Count => centres.Count;

        (Tensor Input, Tensor Target) IRegressionDataset.Get(int index)
        {
            var c = centres[index];
            return (Render(c), Tensor.FromArray([Normalised(c.X), Normalised(c.Y)], 2));
        }

        (Tensor Input, long Label) IDataset.Get(int index) => (Render(centres[index]), Pixel(centres[index]));
    }

    /// <summary>A normalised coordinate back in pixels (the inverse of <see cref="Normalised"/>).</summary>
    public static double Pixels(double normalised) => (normalised + 1) * (Canvas - 1) / 2;

    /// <summary>The rendered 1x64x64 image of a centre (values 0/1).</summary>
    public static Tensor Render((int X, int Y) c)
    {
        var px = new float[Canvas * Canvas];
        for (int y = c.Y - Half; y <= c.Y + Half; y++)
            for (int x = c.X - Half; x <= c.X + Half; x++) px[y * Canvas + x] = 1;
        return Tensor.FromArray(px, 1, Canvas, Canvas);
    }
}
