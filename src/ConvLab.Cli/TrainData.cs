using System.Reflection;
using ConvLab.Data;

namespace ConvLab.Cli;

/// <summary>A training/test split pair and where it came from.</summary>
internal sealed record TrainData(IDataset Train, IDataset Test, string Source, string Description, string[] ClassNames);

/// <summary>
/// Finds the data of <c>convlab train</c>: <c>--data DIR</c> (<c>embedded</c> forces the shipped subset), then the
/// Debian package dataset-fashion-mnist, then the Fashion-MNIST subset embedded in this assembly.
/// </summary>
internal static class TrainDataSource
{
    public const string Embedded = "embedded";
    public const string DebianDir = "/usr/share/datasets/fashion-mnist";

    public static readonly string[] FashionClasses =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    private static readonly string[] Files =
        ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"];

    /// <summary>The source <paramref name="data"/> names (null: search), as a directory or <see cref="Embedded"/>.</summary>
    public static string Resolve(string? data)
    {
        if (data != null)
        {
            if (data == Embedded) return Embedded;
            if (!Directory.Exists(data)) throw new ArgumentException($"train: --data directory '{data}' does not exist (use a folder of IDX files, or 'embedded')");
            return Path.GetFullPath(data);
        }
        return File.Exists(Path.Combine(DebianDir, Files[0])) && File.Exists(Path.Combine(DebianDir, Files[2])) ? DebianDir : Embedded;
    }

    /// <summary>Loads both splits of <paramref name="source"/> (a result of <see cref="Resolve"/>), each cut to its limit when given.</summary>
    public static TrainData Load(string source, int? limitTrain = null, int? limitTest = null, bool trainSplit = true, bool forced = false)
    {
        InMemoryImageDataset? train = null, test;
        if (source == Embedded)
        {
            var dir = Directory.CreateTempSubdirectory("convlab-embedded-");
            try
            {
                foreach (var f in Files)
                {
                    using var s = typeof(TrainDataSource).Assembly.GetManifestResourceStream("ConvLab.Cli.EmbeddedData." + f)
                        ?? throw new InvalidOperationException($"train: the embedded resource {f} is missing from {Assembly.GetExecutingAssembly().GetName().Name}");
                    using var o = File.Create(Path.Combine(dir.FullName, f));
                    s.CopyTo(o);
                }
                if (trainSplit) train = FashionMnist.Load(dir.FullName, true);
                test = FashionMnist.Load(dir.FullName, false);
            }
            finally { dir.Delete(true); }
        }
        else
        {
            if (trainSplit) train = FashionMnist.Load(source, true);
            test = FashionMnist.Load(source, false);
        }
        bool fashion = source == Embedded || source.Contains("fashion", StringComparison.OrdinalIgnoreCase);
        int classes = (int)Math.Max(train == null ? 0 : Max(train.Labels), Max(test.Labels)) + 1;
        string[] names = fashion && classes <= 10 ? FashionClasses : [.. Enumerable.Range(0, classes).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture))];
        IDataset tr = train == null ? test : Limit(train, limitTrain), te = Limit(test, limitTest);
        string what = source == Embedded ? "the Fashion-MNIST subset embedded in convlab (" + (forced ? "--data embedded" : "no --data given and no " + DebianDir) + ")"
            : source == DebianDir ? $"Fashion-MNIST from {DebianDir} (Debian package dataset-fashion-mnist)"
            : $"IDX files in {source}";
        return new TrainData(tr, te, source, what, names);
    }

    private static long Max(ReadOnlySpan<long> labels)
    {
        long m = 0;
        foreach (var l in labels) m = Math.Max(m, l);
        return m;
    }

    private static IDataset Limit(IDataset d, int? n) => n is int k && k < d.Count ? new FirstN(d, k) : d;

    /// <summary>The first N samples of a dataset (quick runs and tests).</summary>
    private sealed class FirstN(IDataset inner, int count) : IDataset
    {
        public int Count { get; } = count > 0 ? count : throw new ArgumentException($"train: a sample limit must be positive, got {count}");
        public (Tensor Input, long Label) Get(int index) =>
            (uint)index < (uint)Count ? inner.Get(index) : throw new ArgumentOutOfRangeException(nameof(index), $"index {index} is out of range for {Count} samples");
    }
}
