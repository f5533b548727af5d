namespace ConvLab.Data;

/// <summary>
/// A localisation dataset with ground truth: each item of a source dataset of single-channel images (e.g.
/// Fashion-MNIST) pasted at a random position on a larger canvas strewn with clutter, so the box holding the object is
/// known. Clutter pieces are square crops of other, randomly chosen items of the same source (as in cluttered MNIST),
/// so they look like parts of objects but carry no information about the label; the object is composited on top with
/// a per-pixel maximum (Fashion-MNIST's background is 0), and optional uniform noise is added last. Every random
/// choice of item i is derived from (seed, i), so items can be read in any order and are the same on every machine.
/// </summary>
public sealed class ClutteredCanvas : IDataset
{
    private readonly IDataset _source;
    private readonly int _objectH, _objectW;

    /// <summary>
    /// Wraps <paramref name="source"/> (items (1, h, w), values in [0, 1]) onto square canvases of
    /// <paramref name="canvasSize"/> pixels with <paramref name="clutterPieces"/> crops of side <paramref name="pieceSize"/>
    /// and uniform noise of amplitude <paramref name="noise"/>. With <paramref name="count"/>, only the first
    /// <paramref name="count"/> source items become canvases (clutter is still cut from the whole source).
    /// </summary>
    public ClutteredCanvas(IDataset source, int canvasSize = 56, int clutterPieces = 6, int pieceSize = 8, double noise = 0.05, ulong seed = 0, int? count = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (source.Count == 0) throw new ArgumentException("ClutteredCanvas: the source dataset is empty");
        var first = source.Get(0).Input;
        if (first.Rank != 3 || first.Size(0) != 1)
            throw new ArgumentException($"ClutteredCanvas: source items must be single-channel images (1, H, W), got rank {first.Rank} [{string.Join(", ", first.Shape.ToArray())}]");
        (_objectH, _objectW) = (first.Size(1), first.Size(2));
        if (canvasSize < Math.Max(_objectH, _objectW) || canvasSize > 1024)
            throw new ArgumentException($"ClutteredCanvas: canvasSize must be between the object size ({_objectH}x{_objectW}) and 1024, got {canvasSize}");
        if (clutterPieces is < 0 or > 1000) throw new ArgumentException($"ClutteredCanvas: clutterPieces must be in [0, 1000], got {clutterPieces}");
        if (pieceSize < 1 || pieceSize > Math.Min(_objectH, _objectW))
            throw new ArgumentException($"ClutteredCanvas: pieceSize must be in [1, {Math.Min(_objectH, _objectW)}] (the source image side), got {pieceSize}");
        if (!(noise is >= 0 and <= 1)) throw new ArgumentException($"ClutteredCanvas: noise must be in [0, 1], got {noise}");
        if (count is int c && (c < 1 || c > source.Count)) throw new ArgumentException($"ClutteredCanvas: count must be in [1, {source.Count}] (the source's size), got {c}");
        (_source, CanvasSize, ClutterPieces, PieceSize, Noise, Seed, Count) = (source, canvasSize, clutterPieces, pieceSize, noise, seed, count ?? source.Count);
    }

    /// <summary>Side of the square canvas in pixels.</summary>
    public int CanvasSize { get; }

    /// <summary>Clutter crops per canvas.</summary>
    public int ClutterPieces { get; }

    /// <summary>Side of each clutter crop.</summary>
    public int PieceSize { get; }

    /// <summary>Amplitude of the uniform noise added to every pixel (clamped to [0, 1] afterwards).</summary>
    public double Noise { get; }

    /// <summary>The seed every placement derives from.</summary>
    public ulong Seed { get; }

    /// <inheritdoc/>
    public int Count { get; }

    /// <summary>
    /// The paste box of item <paramref name="index"/>: [X0, X1) x [Y0, Y1) in canvas pixels (column x, row y, end
    /// exclusive), the whole pasted source image.
    /// </summary>
    public (int X0, int Y0, int X1, int Y1) Box(int index)
    {
        Check(index);
        var (x, y) = Position(Rng(index));
        return (x, y, x + _objectW, y + _objectH);
    }

    /// <inheritdoc/>
    public (Tensor Input, long Label) Get(int index)
    {
        Check(index);
        var g = Rng(index);
        var (ox, oy) = Position(g);
        int n = CanvasSize;
        var canvas = new float[n * n];
        for (int p = 0; p < ClutterPieces; p++)
        {
            var other = Pixels(g.NextInt(_source.Count));
            int sx = g.NextInt(_objectW - PieceSize + 1), sy = g.NextInt(_objectH - PieceSize + 1);
            int dx = g.NextInt(n - PieceSize + 1), dy = g.NextInt(n - PieceSize + 1);
            for (int y = 0; y < PieceSize; y++)
                for (int x = 0; x < PieceSize; x++)
                {
                    ref float c = ref canvas[(dy + y) * n + dx + x];
                    c = Math.Max(c, other[(sy + y) * _objectW + sx + x]);
                }
        }
        var (obj, label) = _source.Get(index);
        var o = Pixels(obj, index);
        for (int y = 0; y < _objectH; y++)
            for (int x = 0; x < _objectW; x++)
            {
                ref float c = ref canvas[(oy + y) * n + ox + x];
                c = Math.Max(c, o[y * _objectW + x]);
            }
        if (Noise > 0)
            for (int i = 0; i < canvas.Length; i++) canvas[i] = (float)Math.Clamp(canvas[i] + Noise * g.NextDouble(), 0, 1);
        return (Tensor.FromArray(canvas, 1, n, n), label);
    }

    private (int X, int Y) Position(Generator g) => (g.NextInt(CanvasSize - _objectW + 1), g.NextInt(CanvasSize - _objectH + 1));

    private Generator Rng(int index)
    {
        // SplitMix-style mixing of (seed, index) so neighbouring indices and seeds give unrelated streams.
        ulong z = Seed * 0x9E3779B97F4A7C15UL + (ulong)index + 1;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return new Generator(z ^ (z >> 31));
    }

    private float[] Pixels(int index) => Pixels(_source.Get(index).Input, index);

    private float[] Pixels(Tensor t, int index)
    {
        if (t.Rank != 3 || t.Size(0) != 1 || t.Size(1) != _objectH || t.Size(2) != _objectW)
            throw new InvalidDataException($"ClutteredCanvas: source item {index} has shape [{string.Join(", ", t.Shape.ToArray())}], expected [1, {_objectH}, {_objectW}] like item 0");
        return t.ToArray();
    }

    private void Check(int index)
    {
        if ((uint)index >= (uint)Count)
            throw new ArgumentOutOfRangeException(nameof(index), $"ClutteredCanvas: index {index} is out of range for {Count} samples");
    }
}
