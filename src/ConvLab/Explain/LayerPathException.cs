namespace ConvLab.Explain;

/// <summary>
/// A layer path that names no usable layer of the model: unknown (with the nearest existing names), never called by
/// the forward, an out-of-range or malformed call index, or a layer whose output is not a feature map. Callers that
/// map errors onto options (the CLI's <c>--layer</c>) catch this type instead of reading the message.
/// </summary>
public sealed class LayerPathException : ArgumentException
{
    /// <summary>Creates the error for <paramref name="layer"/>.</summary>
    /// <param name="message">The full message, starting with the method's name.</param>
    /// <param name="layer">The layer path as given.</param>
    /// <param name="nearestNames">The closest module paths of the model (by edit distance), empty when not a lookup failure.</param>
    public LayerPathException(string message, string layer, IReadOnlyList<string>? nearestNames = null) : base(message)
    {
        Layer = layer;
        NearestNames = nearestNames ?? [];
    }

    /// <summary>The layer path as given.</summary>
    public string Layer { get; }

    /// <summary>The model's module paths closest to <see cref="Layer"/>, nearest first (empty unless the path was unknown).</summary>
    public IReadOnlyList<string> NearestNames { get; }
}
