using ScottPlot;
using SkiaSharp;

namespace ConvLab.Imaging;

/// <summary>
/// The DejaVu Sans subset shipped inside this assembly, registered with ScottPlot under <see cref="Family"/>. Plots use
/// it instead of system fonts, which a bare machine may not have (text would silently vanish) and which would make the
/// images differ between machines.
/// </summary>
internal sealed class EmbeddedFont : IFontResolver
{
    internal const string Family = "ConvLab DejaVu Sans";

    internal static readonly SKTypeface Regular = Load("DejaVuSans.ttf");
    internal static readonly SKTypeface Bold = Load("DejaVuSans-Bold.ttf");

    private static readonly Lock Gate = new();
    private static bool _registered;

    /// <summary>Adds the resolver to ScottPlot once; it answers only for <see cref="Family"/>.</summary>
    internal static void Register()
    {
        lock (Gate)
        {
            if (_registered) return;
            Fonts.FontResolvers.Insert(0, new EmbeddedFont());
            _registered = true;
        }
    }

    public SKTypeface? CreateTypeface(string fontName, bool bold, bool italic) =>
        fontName == Family ? (bold ? Bold : Regular) : null;

    public SKTypeface? CreateTypeface(string fontName, FontWeight weight, FontSlant slant, FontSpacing width) =>
        fontName == Family ? (weight >= FontWeight.SemiBold ? Bold : Regular) : null;

    private static SKTypeface Load(string file)
    {
        using var stream = typeof(EmbeddedFont).Assembly.GetManifestResourceStream("ConvLab.Imaging.Fonts." + file)
            ?? throw new InvalidOperationException($"ConvLab.Imaging: embedded font {file} is missing from the assembly");
        return SKTypeface.FromStream(stream)
            ?? throw new InvalidOperationException($"ConvLab.Imaging: embedded font {file} could not be loaded");
    }
}
