using ConvLab.Detection;

namespace ConvLab.Imaging;

/// <summary>
/// A folder of images with YOLO-format label files (Ultralytics' layout): <c>root/images/NAME.ext</c> with
/// <c>root/labels/NAME.txt</c>, or both side by side in <c>root</c>; class names one per line in <c>root/classes.txt</c>
/// (else <c>0</c>, <c>1</c>, … up to the largest class seen). Every label file is parsed and checked when the dataset is
/// opened (<see cref="YoloLabels"/>): a label file without its image, a bad token or an out-of-range value is an
/// <see cref="InvalidDataException"/> naming the file and line. An image without a label file has no boxes. Images are
/// decoded lazily and resized to <see cref="ImageSize"/> (boxes are normalised, so they follow).
/// </summary>
public sealed class YoloFolderDataset : IDetectionDataset
{
    private readonly string[] _images;
    private readonly List<YoloLabel>[] _labels;
    private readonly int _size;

    /// <summary>Opens <paramref name="root"/>; images are resized to <paramref name="size"/>² RGB.</summary>
    public YoloFolderDataset(string root, int size = 128)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        ImageFile.CheckOptions("YoloFolderDataset", 3, size, size);
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"YoloFolderDataset: folder {root} does not exist");
        string imageDir = Directory.Exists(Path.Combine(root, "images")) ? Path.Combine(root, "images") : root;
        string labelDir = Directory.Exists(Path.Combine(root, "labels")) ? Path.Combine(root, "labels") : root;
        var exts = ImageFolderDataset.DefaultExtensions.ToHashSet(StringComparer.OrdinalIgnoreCase);
        var images = Directory.EnumerateFiles(imageDir).Where(f => exts.Contains(Path.GetExtension(f)))
            .Order(StringComparer.Ordinal).ToArray();
        var byStem = images.GroupBy(f => Path.GetFileNameWithoutExtension(f)!).ToDictionary(g => g.Key, g => g.ToArray(), StringComparer.Ordinal);
        if (byStem.Values.FirstOrDefault(v => v.Length > 1) is { } dup)
            throw new InvalidDataException($"{imageDir}: images {string.Join(" and ", dup.Select(Path.GetFileName))} share one label file name");
        string namesFile = Path.Combine(root, "classes.txt");
        string[]? names = File.Exists(namesFile)
            ? [.. File.ReadAllLines(namesFile).Select(l => l.Trim()).Where(l => l.Length > 0)]
            : null;
        if (names is { Length: 0 }) throw new InvalidDataException($"{namesFile}: no class names");
        var labelFiles = Directory.EnumerateFiles(labelDir, "*.txt").Where(f => Path.GetFullPath(f) != Path.GetFullPath(namesFile))
            .Order(StringComparer.Ordinal);
        foreach (var lf in labelFiles)
            if (!byStem.ContainsKey(Path.GetFileNameWithoutExtension(lf)))
                throw new InvalidDataException($"{lf}: no image {Path.GetFileNameWithoutExtension(lf)}.* for this label file in {imageDir}");
        if (images.Length == 0) throw new InvalidDataException($"{imageDir}: no images ({string.Join(" ", exts.Order())})");
        _labels = new List<YoloLabel>[images.Length];
        int maxClass = -1;
        for (int i = 0; i < images.Length; i++)
        {
            string lf = Path.Combine(labelDir, Path.GetFileNameWithoutExtension(images[i]) + ".txt");
            _labels[i] = File.Exists(lf) ? YoloLabels.Read(lf, names?.Length) : [];
            foreach (var l in _labels[i]) maxClass = Math.Max(maxClass, l.Class);
        }
        ClassNames = names ?? [.. Enumerable.Range(0, Math.Max(1, maxClass + 1)).Select(c => c.ToString(System.Globalization.CultureInfo.InvariantCulture))];
        (_images, _size, Root) = (images, size, root);
    }

    /// <summary>The root folder.</summary>
    public string Root { get; }

    /// <inheritdoc/>
    public int Count => _images.Length;

    /// <inheritdoc/>
    public IReadOnlyList<string> ClassNames { get; }

    /// <inheritdoc/>
    public (int Channels, int Height, int Width) ImageSize => (3, _size, _size);

    /// <summary>Path of image <paramref name="index"/>.</summary>
    public string ImagePath(int index) => _images[index];

    /// <inheritdoc/>
    public DetectionSample Get(int index)
    {
        var (boxes, labels) = Targets(index);
        return new DetectionSample(ImageFile.Load(_images[index], 3, _size, _size), boxes, labels);
    }

    /// <inheritdoc/>
    public (float[] Boxes, long[] Labels) Targets(int index)
    {
        if ((uint)index >= (uint)Count)
            throw new ArgumentOutOfRangeException(nameof(index), $"YoloFolderDataset: index {index} is out of range for {Count} samples");
        var labels = _labels[index];
        var boxes = new float[4 * labels.Count];
        for (int k = 0; k < labels.Count; k++)
        {
            var l = labels[k];
            boxes[4 * k] = (float)((l.Cx - l.W / 2) * _size);
            boxes[4 * k + 1] = (float)((l.Cy - l.H / 2) * _size);
            boxes[4 * k + 2] = (float)((l.Cx + l.W / 2) * _size);
            boxes[4 * k + 3] = (float)((l.Cy + l.H / 2) * _size);
        }
        return (boxes, [.. labels.Select(l => (long)l.Class)]);
    }
}
