namespace ConvLab.Training;

/// <summary>
/// Accumulates classification metrics over batches: mean loss, top-1 and top-5 accuracy, the confusion matrix
/// (rows = true class, columns = predicted class) and per-class accuracy (recall). A sample counts as top-k correct
/// when fewer than k classes score strictly higher than its true class, so ties favour the true class.
/// </summary>
public sealed class ClassificationMetrics
{
    private readonly long[] _confusion;
    private double _lossSum;
    private long _top1, _top5;

    /// <summary>Creates empty metrics for <paramref name="numClasses"/> classes.</summary>
    public ClassificationMetrics(int numClasses)
    {
        if (numClasses <= 0) throw new ArgumentException($"metrics: number of classes must be positive, got {numClasses}");
        NumClasses = numClasses;
        _confusion = new long[numClasses * numClasses];
    }

    /// <summary>Number of classes.</summary>
    public int NumClasses { get; }

    /// <summary>Samples seen.</summary>
    public long Count { get; private set; }

    /// <summary>Mean loss per sample (NaN before any sample).</summary>
    public double Loss => Count == 0 ? double.NaN : _lossSum / Count;

    /// <summary>Fraction of samples whose highest-scoring class is the true one.</summary>
    public double Top1 => Count == 0 ? double.NaN : (double)_top1 / Count;

    /// <summary>Fraction of samples whose true class is among the five highest scores (all classes when fewer than five).</summary>
    public double Top5 => Count == 0 ? double.NaN : (double)_top5 / Count;

    /// <summary>Confusion matrix entry: samples of true class <paramref name="truth"/> predicted as <paramref name="predicted"/>.</summary>
    public long Confusion(int truth, int predicted) => _confusion[truth * NumClasses + predicted];

    /// <summary>The confusion matrix as rows (true class) of columns (predicted class).</summary>
    public long[][] ConfusionMatrix() =>
        [.. Enumerable.Range(0, NumClasses).Select(r => _confusion.AsSpan(r * NumClasses, NumClasses).ToArray())];

    /// <summary>Per true class, the fraction predicted correctly (NaN for a class with no samples).</summary>
    public double[] PerClassAccuracy()
    {
        var acc = new double[NumClasses];
        for (int c = 0; c < NumClasses; c++)
        {
            long row = 0;
            for (int p = 0; p < NumClasses; p++) row += _confusion[c * NumClasses + p];
            acc[c] = row == 0 ? double.NaN : (double)_confusion[c * NumClasses + c] / row;
        }
        return acc;
    }

    /// <summary>
    /// Adds a batch: <paramref name="logits"/> holds B x NumClasses scores row by row, <paramref name="targets"/> B
    /// class indices, and <paramref name="meanLoss"/> the batch's mean loss (weighted by B in <see cref="Loss"/>).
    /// </summary>
    public void Add(ReadOnlySpan<float> logits, ReadOnlySpan<long> targets, double meanLoss)
    {
        int b = targets.Length, c = NumClasses;
        if (logits.Length != b * c)
            throw new ArgumentException($"metrics: {b} targets of {c} classes need {b * c} scores, got {logits.Length}");
        for (int i = 0; i < b; i++)
        {
            long t = targets[i];
            if ((ulong)t >= (ulong)c) throw new ArgumentException($"metrics: target {t} is outside [0, {c})");
            var row = logits.Slice(i * c, c);
            float truth = row[(int)t];
            int higher = 0, argmax = 0;
            for (int k = 0; k < c; k++)
            {
                if (row[k] > truth) higher++;
                if (row[k] > row[argmax]) argmax = k;
            }
            if (higher == 0) { _top1++; argmax = (int)t; }
            if (higher < 5) _top5++;
            _confusion[t * c + argmax]++;
        }
        _lossSum += meanLoss * b;
        Count += b;
    }

    /// <summary>The accumulated sums and counts (loss sum, samples, top-1, top-5, then the confusion matrix row by row): counts
    /// stay exact in a double up to 2^53, so <see cref="RestoreState"/> gives back these metrics bit for bit.</summary>
    public double[] SaveState()
    {
        var state = new double[4 + _confusion.Length];
        (state[0], state[1], state[2], state[3]) = (_lossSum, Count, _top1, _top5);
        for (int i = 0; i < _confusion.Length; i++) state[4 + i] = _confusion[i];
        return state;
    }

    /// <summary>Replaces the accumulated metrics with a state from <see cref="SaveState"/> of metrics with as many classes.</summary>
    public void RestoreState(double[] state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Length != 4 + _confusion.Length)
            throw new ArgumentException($"metrics: a saved state of {NumClasses} classes has {4 + _confusion.Length} numbers, got {state.Length}");
        foreach (var v in state.AsSpan(1))
            if (!(v >= 0 && v == Math.Floor(v) && v <= 1L << 53)) throw new ArgumentException($"metrics: saved count {v} is not a whole number >= 0");
        (_lossSum, Count, _top1, _top5) = (state[0], (long)state[1], (long)state[2], (long)state[3]);
        for (int i = 0; i < _confusion.Length; i++) _confusion[i] = (long)state[4 + i];
    }
}
