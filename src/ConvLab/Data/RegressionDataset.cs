namespace ConvLab.Data;

/// <summary>A map-style dataset of regression pairs: <see cref="Count"/> samples, each an input and a float target tensor.</summary>
public interface IRegressionDataset
{
    /// <summary>Number of samples.</summary>
    int Count { get; }

    /// <summary>The sample at <paramref name="index"/> (0 &lt;= index &lt; Count).</summary>
    (Tensor Input, Tensor Target) Get(int index);
}

/// <summary>Regression pairs produced on demand by a function of the index (synthetic data, or a view of another dataset).</summary>
public sealed class FuncRegressionDataset(int count, Func<int, (Tensor Input, Tensor Target)> sample) : IRegressionDataset
{
    /// <inheritdoc/>
    public int Count { get; } = count >= 0 ? count : throw new ArgumentException($"regression dataset: count must be non-negative, got {count}");

    /// <inheritdoc/>
    public (Tensor Input, Tensor Target) Get(int index) =>
        (uint)index < (uint)Count ? sample(index) : throw new ArgumentOutOfRangeException(nameof(index), $"regression dataset: index {index} is out of range for {Count} samples");
}
