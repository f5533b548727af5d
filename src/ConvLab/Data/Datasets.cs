using System.Numerics.Tensors;

namespace ConvLab.Data;

/// <summary>A map-style dataset: <see cref="Count"/> samples, each a float tensor and an integer class label.</summary>
public interface IDataset
{
    /// <summary>Number of samples.</summary>
    int Count { get; }

    /// <summary>The sample at <paramref name="index"/> (0 &lt;= index &lt; Count).</summary>
    (Tensor Input, long Label) Get(int index);
}

/// <summary>
/// Images held as bytes (N, C, H, W) with int64 labels. <see cref="Get"/> returns a float32 (C, H, W) tensor scaled
/// to [0, 1] (PyTorch's <c>ToTensor</c>).
/// </summary>
public sealed class InMemoryImageDataset : IDataset
{
    private readonly byte[] _pixels;
    private readonly long[] _labels;

    /// <summary>Wraps <paramref name="pixels"/> (N*C*H*W bytes, not copied) and <paramref name="labels"/> (N values).</summary>
    public InMemoryImageDataset(byte[] pixels, long[] labels, int channels, int height, int width)
    {
        if (channels <= 0 || height <= 0 || width <= 0)
            throw new ArgumentException($"InMemoryImageDataset: image size must be positive, got (C, H, W) = ({channels}, {height}, {width})");
        long per = (long)channels * height * width;
        if (pixels.Length != labels.Length * per)
            throw new ArgumentException($"InMemoryImageDataset: {labels.Length} labels need {labels.Length * per} pixel bytes of ({channels}, {height}, {width}) images but {pixels.Length} were given");
        (_pixels, _labels, Channels, Height, Width) = (pixels, labels, channels, height, width);
    }

    /// <summary>Channels per image.</summary>
    public int Channels { get; }

    /// <summary>Image height.</summary>
    public int Height { get; }

    /// <summary>Image width.</summary>
    public int Width { get; }

    /// <inheritdoc/>
    public int Count => _labels.Length;

    /// <summary>All labels (not copied).</summary>
    public ReadOnlySpan<long> Labels => _labels;

    /// <inheritdoc/>
    public (Tensor Input, long Label) Get(int index)
    {
        if ((uint)index >= (uint)Count)
            throw new ArgumentOutOfRangeException(nameof(index), $"InMemoryImageDataset: index {index} is out of range for {Count} samples");
        int per = Channels * Height * Width;
        var src = _pixels.AsSpan(index * per, per);
        var dst = new float[per];
        // Divide (not multiply by 1/255) to match torchvision's ToTensor bit for bit.
        TensorPrimitives.ConvertChecked<byte, float>(src, dst);
        TensorPrimitives.Divide(dst, 255f, dst);
        return (new Tensor(dst, [Channels, Height, Width]), _labels[index]);
    }
}

/// <summary>Loads MNIST from a directory holding the four standard IDX files (plain or .gz).</summary>
public static class Mnist
{
    /// <summary>Loads the training (60000) or test (10000) split as 1x28x28 images.</summary>
    public static InMemoryImageDataset Load(string directory, bool train) => IdxDataset.Load(directory, train);
}

/// <summary>Loads Fashion-MNIST (same file names and format as MNIST).</summary>
public static class FashionMnist
{
    /// <summary>Loads the training (60000) or test (10000) split as 1x28x28 images.</summary>
    public static InMemoryImageDataset Load(string directory, bool train) => IdxDataset.Load(directory, train);
}

/// <summary>Loads CIFAR-10 from its binary distribution (data_batch_1..5.bin, test_batch.bin).</summary>
public static class Cifar10
{
    /// <summary>Loads the training (5 batches) or test split as 3x32x32 images; <paramref name="directory"/> may
    /// hold the files or the extracted <c>cifar-10-batches-bin</c> folder.</summary>
    public static InMemoryImageDataset Load(string directory, bool train) =>
        CifarDataset.Load(directory, "cifar-10-batches-bin",
            train ? ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"] : ["test_batch.bin"],
            Cifar10Reader.Read, false);
}

/// <summary>Loads CIFAR-100 from its binary distribution (train.bin, test.bin).</summary>
public static class Cifar100
{
    /// <summary>Loads the training or test split as 3x32x32 images with fine (100-class) labels, or the 20 coarse
    /// labels when <paramref name="coarse"/> is set; <paramref name="directory"/> may hold the files or the extracted
    /// <c>cifar-100-binary</c> folder.</summary>
    public static InMemoryImageDataset Load(string directory, bool train, bool coarse = false) =>
        CifarDataset.Load(directory, "cifar-100-binary", [train ? "train.bin" : "test.bin"], Cifar100Reader.Read, coarse);
}

internal static class IdxDataset
{
    internal static InMemoryImageDataset Load(string directory, bool train)
    {
        string prefix = train ? "train" : "t10k";
        string imagesPath = Find(directory, $"{prefix}-images-idx3-ubyte");
        string labelsPath = Find(directory, $"{prefix}-labels-idx1-ubyte");
        var images = IdxReader.ReadImages(imagesPath);
        var labels = IdxReader.ReadLabels(labelsPath);
        if (labels.Length != images.Count)
            throw DataFile.Error(labelsPath, $"holds {labels.Length} labels but {Path.GetFileName(imagesPath)} holds {images.Count} images");
        var l = new long[labels.Length];
        for (int i = 0; i < l.Length; i++) l[i] = labels[i];
        return new InMemoryImageDataset(images.Pixels, l, 1, images.Rows, images.Cols);
    }

    private static string Find(string directory, string name)
    {
        foreach (var candidate in new[] { name, name + ".gz" })
        {
            var p = Path.Combine(directory, candidate);
            if (File.Exists(p)) return p;
        }
        throw new FileNotFoundException($"{name}: neither {name} nor {name}.gz exists in {directory}", Path.Combine(directory, name));
    }
}

internal static class CifarDataset
{
    internal static InMemoryImageDataset Load(string directory, string subfolder, string[] files, Func<string, CifarRecords> read, bool coarse)
    {
        if (!File.Exists(Path.Combine(directory, files[0])) && Directory.Exists(Path.Combine(directory, subfolder)))
            directory = Path.Combine(directory, subfolder);
        var parts = new List<CifarRecords>();
        foreach (var f in files)
        {
            var p = Path.Combine(directory, f);
            if (!File.Exists(p)) throw new FileNotFoundException($"{f}: not found in {directory}", p);
            parts.Add(read(p));
        }
        var pixels = new byte[parts.Sum(r => (long)r.Pixels.Length)];
        var labels = new long[parts.Sum(r => r.Count)];
        int po = 0, lo = 0;
        foreach (var r in parts)
        {
            r.Pixels.CopyTo(pixels, po); po += r.Pixels.Length;
            (coarse ? r.CoarseLabels! : r.Labels).CopyTo(labels, lo); lo += r.Count;
        }
        return new InMemoryImageDataset(pixels, labels, 3, 32, 32);
    }
}
