namespace ConvLab.Vision;

/// <summary>
/// The project's sample image for the filter experiments, drawn by this code (no file, no licence question): a
/// 128×128 RGB scene with the structures hand-designed filters respond to — a smooth sky gradient, a sun disc (curved
/// edges), a house (horizontal, vertical and sloped edges), a fence of vertical bars (a single spatial frequency), a
/// checkerboard (corners), diagonal stripes (an orientation for the Gabor bank) and fine text-like dots (blur
/// removes them first). Deterministic: the same pixels on every machine.
/// </summary>
public static class SampleImage
{
    /// <summary>Side of the image in pixels.</summary>
    public const int Size = 128;

    /// <summary>How the image was made, for reports.</summary>
    public const string Provenance = "drawn procedurally by ConvLab.Vision.SampleImage (128x128 RGB: sky gradient, sun, house, fence, checkerboard, diagonal stripes, dots); no external file";

    /// <summary>The image as float32 (3, 128, 128) in [0, 1].</summary>
    public static Tensor Create()
    {
        const int n = Size;
        var px = new float[3 * n * n];
        void Set(int x, int y, double r, double g, double b)
        {
            if (x < 0 || y < 0 || x >= n || y >= n) return;
            px[y * n + x] = (float)r; px[n * n + y * n + x] = (float)g; px[2 * n * n + y * n + x] = (float)b;
        }
        for (int y = 0; y < n; y++)
            for (int x = 0; x < n; x++)
            {
                double t = y / (double)n;
                if (y < 80) Set(x, y, 0.35 + 0.4 * t, 0.55 + 0.3 * t, 0.95 - 0.2 * t);       // sky, lighter towards the horizon
                else Set(x, y, 0.25, 0.55 - 0.2 * (y - 80) / 48.0, 0.2);                    // grass, darker towards the bottom
            }
        for (int y = 6; y < 34; y++)                                                           // sun: disc of radius 12
            for (int x = 90; x < 118; x++)
                if ((x - 104) * (x - 104) + (y - 20) * (y - 20) <= 144) Set(x, y, 1.0, 0.85, 0.3);
        for (int y = 50; y < 90; y++)                                                          // house wall with a door and a window
            for (int x = 20; x < 64; x++)
            {
                bool door = x >= 36 && x < 46 && y >= 68, window = x >= 50 && x < 58 && y >= 58 && y < 66;
                if (door) Set(x, y, 0.35, 0.2, 0.1);
                else if (window) Set(x, y, 0.7, 0.85, 1.0);
                else Set(x, y, 0.85, 0.8, 0.65);
            }
        for (int y = 30; y < 50; y++)                                                          // roof: a triangle (sloped edges)
            for (int x = 16; x < 68; x++)
                if (Math.Abs(x - 42) <= (y - 30) * 26 / 20) Set(x, y, 0.6, 0.15, 0.1);
        for (int y = 84; y < 104; y++)                                                         // fence: vertical bars, period 6
            for (int x = 70; x < 126; x++)
                if (x % 6 < 3 || y is 88 or 89 or 98 or 99) Set(x, y, 0.95, 0.95, 0.9);
        for (int y = 106; y < 126; y++)                                                        // checkerboard, 5-pixel squares
            for (int x = 4; x < 44; x++)
            {
                double v = ((x - 4) / 5 + (y - 106) / 5) % 2 == 0 ? 0.05 : 0.95;
                Set(x, y, v, v, v);
            }
        for (int y = 106; y < 126; y++)                                                        // diagonal stripes at 45 degrees, period 8
            for (int x = 50; x < 90; x++)
            {
                double v = 0.5 + 0.45 * Math.Sin(2 * Math.PI * (x + y) / 8.0);
                Set(x, y, v, v * 0.9, v * 0.8);
            }
        for (int y = 108; y < 124; y += 3)                                                     // fine dots, one pixel each
            for (int x = 96; x < 124; x += 3)
                Set(x, y, 0.0, 0.0, 0.0);
        return Tensor.FromArray(px, 3, n, n);
    }
}
