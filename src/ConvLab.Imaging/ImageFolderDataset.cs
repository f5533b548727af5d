using ConvLab.Data;

namespace ConvLab.Imaging;

/// <summary>
/// torchvision's <c>ImageFolder</c>: <c>root/&lt;class&gt;/**/&lt;image&gt;</c>, one class per sub-folder. Class names are the
/// sub-folder names in ordinal order and labels their indices; files are found recursively (following links), sorted
/// by folder then name, and filtered by extension (case-insensitive). Images are decoded lazily in
/// <see cref="Get"/> by <see cref="ImageFile"/>, so the dataset works with <see cref="DataLoader"/> (its prefetch
/// thread decodes) and its transforms.
/// </summary>
public sealed class ImageFolderDataset : IDataset
{
    /// <summary>The extensions read by default (the formats SkiaSharp decodes).</summary>
    public static IReadOnlyList<string> DefaultExtensions { get; } = [".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif"];

    private readonly (string Path, long Label)[] _samples;

    /// <summary>
    /// Indexes <paramref name="root"/>. <paramref name="channels"/> is 1 (grayscale) or 3 (RGB); with
    /// <paramref name="height"/> and <paramref name="width"/> every image is resized to that size (needed for batching
    /// images of different sizes). <paramref name="extensions"/> defaults to <see cref="DefaultExtensions"/>.
    /// A class folder without images is an error, as in torchvision.
    /// </summary>
    public ImageFolderDataset(string root, int channels = 3, int? height = null, int? width = null, IEnumerable<string>? extensions = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        ImageFile.CheckOptions("ImageFolderDataset", channels, height, width);
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"ImageFolderDataset: folder {root} does not exist");
        var exts = (extensions ?? DefaultExtensions).Select(e => e.StartsWith('.') ? e : "." + e).ToHashSet(StringComparer.OrdinalIgnoreCase);
        if (exts.Count == 0) throw new ArgumentException("ImageFolderDataset: the extension list is empty");

        var classes = new DirectoryInfo(root).EnumerateDirectories().Select(d => d.Name).Order(StringComparer.Ordinal).ToArray();
        if (classes.Length == 0) throw new InvalidDataException($"{root}: no class sub-folders (expected root/<class>/<image>)");
        var samples = new List<(string, long)>();
        var empty = new List<string>();
        var options = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = false };
        for (int label = 0; label < classes.Length; label++)
        {
            var files = Directory.EnumerateFiles(Path.Combine(root, classes[label]), "*", options)
                .Where(f => exts.Contains(Path.GetExtension(f)))
                .Select(f => (Dir: Path.GetDirectoryName(f)!, Name: Path.GetFileName(f)))
                .OrderBy(f => f.Dir, StringComparer.Ordinal).ThenBy(f => f.Name, StringComparer.Ordinal)
                .Select(f => Path.Combine(f.Dir, f.Name)).ToList();
            if (files.Count == 0) empty.Add(classes[label]);
            samples.AddRange(files.Select(f => (f, (long)label)));
        }
        if (empty.Count > 0)
            throw new InvalidDataException($"{root}: no images with extensions {string.Join(" ", exts.Order())} in class folder(s) {string.Join(", ", empty)}");
        (_samples, Classes, Root, Channels, Height, Width) = (samples.ToArray(), classes, root, channels, height, width);
    }

    /// <summary>The root folder.</summary>
    public string Root { get; }

    /// <summary>Class names (sub-folder names, ordinal order); label i is <c>Classes[i]</c>.</summary>
    public IReadOnlyList<string> Classes { get; }

    /// <summary>Channels per image (1 or 3).</summary>
    public int Channels { get; }

    /// <summary>Resize height, or null to keep each image's size.</summary>
    public int? Height { get; }

    /// <summary>Resize width, or null to keep each image's size.</summary>
    public int? Width { get; }

    /// <inheritdoc/>
    public int Count => _samples.Length;

    /// <summary>The file and label of sample <paramref name="index"/>.</summary>
    public (string Path, long Label) Sample(int index)
    {
        if ((uint)index >= (uint)Count)
            throw new ArgumentOutOfRangeException(nameof(index), $"ImageFolderDataset: index {index} is out of range for {Count} samples");
        return _samples[index];
    }

    /// <inheritdoc/>
    public (Tensor Input, long Label) Get(int index)
    {
        var (path, label) = Sample(index);
        return (ImageFile.Load(path, Channels, Height, Width), label);
    }
}
