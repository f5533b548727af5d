using ConvLab.Data;
using CsCheck;
using Xunit;

namespace ConvLab.Tests;

public sealed class ClutteredCanvasTests
{
    private static InMemoryImageDataset Source(int n, int side, int seed)
    {
        var r = new Random(seed);
        var pixels = new byte[n * side * side];
        r.NextBytes(pixels);
        return new InMemoryImageDataset(pixels, Enumerable.Range(0, n).Select(i => (long)(i % 3)).ToArray(), 1, side, side);
    }

    [Fact]
    public void WithoutClutterOrNoiseTheObjectSitsExactlyInItsBoxOnZeros()
    {
        Gen.Int[1, 6].Select(Gen.Int[8, 20], Gen.ULong).Sample((n, canvas, seed) =>
        {
            var src = Source(n, 8, (int)(seed % 1000));
            var d = new ClutteredCanvas(src, canvas, clutterPieces: 0, noise: 0, pieceSize: 4, seed: seed);
            for (int i = 0; i < n; i++)
            {
                var (x0, y0, x1, y1) = d.Box(i);
                Assert.Equal((8, 8), (x1 - x0, y1 - y0));
                Assert.True(x0 >= 0 && y0 >= 0 && x1 <= canvas && y1 <= canvas);
                var (img, label) = d.Get(i);
                Assert.Equal([1, canvas, canvas], img.Shape.ToArray());
                Assert.Equal(src.Get(i).Label, label);
                var v = img.ToArray();
                var o = src.Get(i).Input.ToArray();
                for (int y = 0; y < canvas; y++)
                    for (int x = 0; x < canvas; x++)
                    {
                        bool inside = x >= x0 && x < x1 && y >= y0 && y < y1;
                        Assert.Equal(inside ? o[(y - y0) * 8 + x - x0] : 0f, v[y * canvas + x]);
                    }
            }
        }, iter: 30);
    }

    [Fact]
    public void ItemsAreDeterministicPerSeedAndClutterNeverHidesTheObject()
    {
        var src = Source(20, 8, 3);
        var a = new ClutteredCanvas(src, 24, clutterPieces: 5, pieceSize: 4, noise: 0, seed: 7);
        var b = new ClutteredCanvas(src, 24, clutterPieces: 5, pieceSize: 4, noise: 0, seed: 7);
        var c = new ClutteredCanvas(src, 24, clutterPieces: 5, pieceSize: 4, noise: 0, seed: 8);
        int moved = 0;
        for (int i = 0; i < src.Count; i++)
        {
            Assert.Equal(a.Get(i).Input.ToArray(), b.Get(i).Input.ToArray());
            Assert.Equal(a.Box(i), b.Box(i));
            if (a.Box(i) != c.Box(i)) moved++;
            // Compositing by maximum: every object pixel is at least its source value inside the box.
            var (x0, y0, _, _) = a.Box(i);
            var v = a.Get(i).Input.ToArray();
            var o = src.Get(i).Input.ToArray();
            for (int y = 0; y < 8; y++)
                for (int x = 0; x < 8; x++) Assert.True(v[(y0 + y) * 24 + x0 + x] >= o[y * 8 + x]);
            // Clutter lands outside the box too (5 pieces of 16 pixels on a 576-pixel canvas with a 64-pixel box).
        }
        Assert.True(moved > 10, $"another seed moved only {moved} of 20 boxes");
        int outside = 0;
        for (int i = 0; i < src.Count; i++)
        {
            var (x0, y0, x1, y1) = a.Box(i);
            var v = a.Get(i).Input.ToArray();
            for (int y = 0; y < 24; y++)
                for (int x = 0; x < 24; x++)
                    if (!(x >= x0 && x < x1 && y >= y0 && y < y1) && v[y * 24 + x] > 0) outside++;
        }
        Assert.True(outside > 100, $"only {outside} cluttered pixels outside the boxes");
    }

    [Fact]
    public void NoiseStaysInRangeAndBadSettingsAreNamed()
    {
        var src = Source(4, 8, 1);
        var d = new ClutteredCanvas(src, 16, noise: 0.2, pieceSize: 4, seed: 1);
        foreach (var x in d.Get(2).Input.ToArray()) Assert.InRange(x, 0f, 1f);
        void Bad(Action a) => Assert.StartsWith("ClutteredCanvas:", Assert.ThrowsAny<ArgumentException>(a).Message);
        Bad(() => new ClutteredCanvas(src, 7));
        Bad(() => new ClutteredCanvas(src, 16, pieceSize: 9));
        Bad(() => new ClutteredCanvas(src, 16, clutterPieces: -1, pieceSize: 4));
        Bad(() => new ClutteredCanvas(src, 16, noise: 2, pieceSize: 4));
        Bad(() => new ClutteredCanvas(new InMemoryImageDataset(new byte[48], [0], 3, 4, 4), 16));
        Bad(() => d.Get(4));
        Bad(() => d.Box(-1));
        Bad(() => new ClutteredCanvas(src, 16, pieceSize: 4, count: 5));
        var first = new ClutteredCanvas(src, 16, noise: 0.2, pieceSize: 4, seed: 1, count: 2);
        Assert.Equal(2, first.Count);
        Assert.Equal(d.Get(1).Input.ToArray(), first.Get(1).Input.ToArray()); // the same canvases, fewer of them
        Bad(() => first.Get(2));
    }
}
