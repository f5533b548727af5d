namespace ConvLab.Imaging;

/// <summary>
/// A colormap as a small table of evenly spaced RGB stops, linearly interpolated. <see cref="Viridis"/> and
/// <see cref="Inferno"/> are perceptually ordered sequential maps for magnitudes; <see cref="RdBu"/> is a diverging map
/// (blue below the centre, near-white at 0.5, red above) for signed values centred at zero.
/// </summary>
public sealed class Colormap
{
    private readonly byte[] _stops;

    private Colormap(string name, bool diverging, params byte[] stops)
    {
        if (stops.Length < 6 || stops.Length % 3 != 0) throw new ArgumentException($"Colormap {name}: need at least two RGB stops, got {stops.Length} values");
        (Name, Diverging, _stops) = (name, diverging, stops);
    }

    /// <summary>The colormap's name.</summary>
    public string Name { get; }

    /// <summary>True for a diverging map (its middle colour stands for zero).</summary>
    public bool Diverging { get; }

    // Stops sampled by eye from the published maps at nine (eleven for RdBu) even positions; interpolating between
    // them stays within a few levels of the full 256-entry tables, which is plenty for a heat map.

    /// <summary>A viridis-like sequential map: dark purple (0) through teal to yellow (1).</summary>
    public static Colormap Viridis { get; } = new("viridis", false,
        68, 1, 84, 72, 40, 120, 59, 82, 139, 44, 114, 142, 33, 145, 140, 40, 174, 128, 92, 200, 99, 170, 220, 50, 253, 231, 37);

    /// <summary>An inferno-like sequential map: black (0) through purple and orange to pale yellow (1).</summary>
    public static Colormap Inferno { get; } = new("inferno", false,
        0, 0, 4, 31, 12, 72, 85, 15, 109, 136, 34, 106, 186, 54, 85, 227, 89, 51, 249, 140, 10, 249, 201, 50, 252, 255, 164);

    /// <summary>An RdBu-like diverging map: dark blue (0), near-white (0.5), dark red (1).</summary>
    public static Colormap RdBu { get; } = new("rdbu", true,
        5, 48, 97, 33, 102, 172, 67, 147, 195, 146, 197, 222, 209, 229, 240, 247, 247, 247,
        253, 219, 199, 244, 165, 130, 214, 96, 77, 178, 24, 43, 103, 0, 31);

    /// <summary>The colour at <paramref name="t"/> (clamped to [0, 1]; NaN gives mid gray).</summary>
    public (byte R, byte G, byte B) this[double t]
    {
        get
        {
            if (double.IsNaN(t)) return (128, 128, 128);
            int segments = _stops.Length / 3 - 1;
            double p = Math.Clamp(t, 0, 1) * segments;
            int i = Math.Min((int)p, segments - 1);
            double f = p - i;
            byte Channel(int c) => (byte)Math.Round(_stops[3 * i + c] + f * (_stops[3 * (i + 1) + c] - _stops[3 * i + c]));
            return (Channel(0), Channel(1), Channel(2));
        }
    }
}
