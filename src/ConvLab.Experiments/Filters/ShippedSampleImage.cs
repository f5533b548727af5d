using System.Reflection;
using ConvLab.Imaging;

namespace ConvLab.Experiments.Filters;

/// <summary>
/// The sample image the project ships: <c>Filters/sample-image.png</c>, embedded in this assembly, written by
/// <c>tools/sample-image</c> from <see cref="Vision.SampleImage"/> (provenance and licence in <c>tools/sample-image/README.md</c>).
/// </summary>
internal static class ShippedSampleImage
{
    /// <summary>Manifest name of the embedded PNG.</summary>
    public const string ResourceName = "ConvLab.Experiments.Filters.sample-image.png";

    /// <summary>How the image was made, for reports.</summary>
    public const string Provenance = "sample-image.png shipped with ConvLab (128x128 RGB PNG written by tools/sample-image from ConvLab.Vision.SampleImage: " +
        "sky gradient, sun, house, fence, checkerboard, diagonal stripes, dots; no third-party material, CC0 1.0)";

    /// <summary>The PNG's bytes as shipped.</summary>
    public static byte[] Bytes()
    {
        using var s = typeof(ShippedSampleImage).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"the embedded resource {ResourceName} is missing from {typeof(ShippedSampleImage).Assembly.GetName().Name}");
        using var m = new MemoryStream();
        s.CopyTo(m);
        return m.ToArray();
    }

    /// <summary>The image as float32 (3, 128, 128) in [0, 1].</summary>
    public static Tensor Load() => ImageFile.Load(Bytes(), "sample-image.png");
}
