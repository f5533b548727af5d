using ConvLab.NN.Functional;

namespace ConvLab.Explain;

/// <summary>
/// Maps that ignore the model, against which attribution methods are judged: a uniform random map (chance), the Sobel
/// gradient magnitude of the image (an edge detector: it "localises" any object on a plain background without knowing
/// the class) and the box itself (the upper bound of the pointing game and box IoU).
/// </summary>
public static class BaselineMaps
{
    /// <summary>A (1, 1, H, W) float32 map of independent uniform values in [0, 1) from a generator seeded with <paramref name="seed"/>.</summary>
    public static Tensor Random(int height, int width, ulong seed)
    {
        if (height < 1 || width < 1) throw new ArgumentException($"random_map: size must be positive, got {height}x{width}");
        return Tensor.Rand([1, 1, height, width], new Generator(seed));
    }

    /// <summary>
    /// The Sobel gradient magnitude sqrt(Gx² + Gy²) of <paramref name="image"/> ((C, H, W) or (1, C, H, W); channels
    /// summed), with replicated edges so the border is not mistaken for an edge: a (1, 1, H, W) float32 map.
    /// </summary>
    public static Tensor Sobel(Tensor image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Rank == 3) image = image.Unsqueeze(0);
        if (image.Rank != 4 || image.Size(0) != 1 || !image.IsFloatingPoint)
            throw new ArgumentException($"sobel: expected a float (C, H, W) or (1, C, H, W) image, got {image.DType} of rank {image.Rank}");
        if (image.Size(2) < 2 || image.Size(3) < 2) throw new ArgumentException($"sobel: the image must be at least 2x2, got {image.Size(2)}x{image.Size(3)}");
        var x = image.Detach().Float().Sum(1, keepdim: true);
        var kernels = Tensor.FromArray(new float[] { -1, 0, 1, -2, 0, 2, -1, 0, 1, -1, -2, -1, 0, 0, 0, 1, 2, 1 }, 2, 1, 3, 3);
        var g = F.Conv2d(F.Pad(x, [1, 1, 1, 1], "replicate"), kernels);
        return g.Mul(g).Sum(1, keepdim: true).Sqrt();
    }

    /// <summary>A (1, 1, H, W) float32 map that is 1 inside <paramref name="box"/> and 0 elsewhere.</summary>
    public static Tensor Box(int height, int width, PixelBox box)
    {
        if (box.X0 < 0 || box.Y0 < 0 || box.X1 > width || box.Y1 > height || box.X0 >= box.X1 || box.Y0 >= box.Y1)
            throw new ArgumentException($"box_map: box {box} is not a non-empty box inside the {width}x{height} image");
        var m = new float[height * width];
        for (int y = box.Y0; y < box.Y1; y++)
            for (int x = box.X0; x < box.X1; x++) m[y * width + x] = 1;
        return Tensor.FromArray(m, 1, 1, height, width);
    }
}
