using ConvLab.Data;

namespace ConvLab.Experiments.Claims;

/// <summary>A dataset seen through a change of its inputs and labels (a shifted domain, classes renumbered).</summary>
internal sealed class Mapped(IDataset inner, Func<Tensor, Tensor>? input, Func<long, long>? label) : IDataset
{
    public int Count => inner.Count;

    public (Tensor Input, long Label) Get(int index)
    {
        var (x, y) = inner.Get(index);
        return (input?.Invoke(x) ?? x, label?.Invoke(y) ?? y);
    }
}

/// <summary>Precomputed feature vectors with labels (linear probes train on them).</summary>
internal sealed class Features(float[][] rows, long[] labels) : IDataset
{
    public int Count => rows.Length;

    public (Tensor Input, long Label) Get(int index) => (Tensor.FromArray(rows[index], rows[index].Length), labels[index]);
}
