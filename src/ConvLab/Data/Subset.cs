namespace ConvLab.Data;

/// <summary>The samples of a dataset at given indices, in that order (PyTorch's <c>torch.utils.data.Subset</c>).</summary>
public sealed class Subset : IDataset
{
    private readonly IDataset _dataset;
    private readonly int[] _indices;

    /// <summary>Selects <paramref name="indices"/> (copied) of <paramref name="dataset"/>; each must be in range.</summary>
    public Subset(IDataset dataset, IReadOnlyList<int> indices)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(indices);
        _indices = [.. indices];
        foreach (int i in _indices)
            if ((uint)i >= (uint)dataset.Count)
                throw new ArgumentException($"subset: index {i} is out of range for a dataset of {dataset.Count} samples");
        _dataset = dataset;
    }

    /// <summary>The first <paramref name="count"/> samples whose label satisfies <paramref name="keep"/>, in dataset order (all of them when count is null).</summary>
    public static Subset Where(IDataset dataset, Func<long, bool> keep, int? count = null)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(keep);
        var picked = new List<int>();
        for (int i = 0; i < dataset.Count && (count == null || picked.Count < count); i++)
            if (keep(dataset.Get(i).Label)) picked.Add(i);
        return new Subset(dataset, picked);
    }

    /// <summary>The selected indices into the underlying dataset.</summary>
    public IReadOnlyList<int> Indices => _indices;

    /// <inheritdoc/>
    public int Count => _indices.Length;

    /// <inheritdoc/>
    public (Tensor Input, long Label) Get(int index)
    {
        if ((uint)index >= (uint)_indices.Length)
            throw new ArgumentOutOfRangeException(nameof(index), $"subset: index {index} is out of range for {_indices.Length} samples");
        return _dataset.Get(_indices[index]);
    }
}
