using ConvLab.Autograd;
using ConvLab.Data;
using ConvLab.NN;
using ConvLab.NN.Functional;

namespace ConvLab.Training;

/// <summary>
/// Regression for the <see cref="Trainer"/>: mini-batches of (input, target) pairs in an order derived from (seed, epoch)
/// (so a resumed run sees the same batches), a mean-reduced loss between the model's output and the target (<c>mse</c>,
/// <c>l1</c> or <c>smooth_l1</c>, PyTorch's names), and the mean absolute error as the score.
/// </summary>
public sealed class RegressionObjective : ITrainingObjective
{
    private readonly IRegressionDataset _train;
    private readonly IRegressionDataset? _validation;
    private readonly int _batchSize;
    private readonly ulong _seed;
    private readonly string _loss;
    private double _lossSum, _absSum;
    private long _samples, _elements;
    private Tensor? _output;

    /// <summary>Creates the objective; <paramref name="loss"/> is mse, l1 or smooth_l1.</summary>
    public RegressionObjective(IRegressionDataset train, IRegressionDataset? validation, int batchSize, ulong seed, string loss = "mse")
    {
        ArgumentNullException.ThrowIfNull(train);
        if (train.Count == 0) throw new ArgumentException("regression: the training set is empty");
        if (batchSize <= 0) throw new ArgumentException($"regression: batch size must be positive, got {batchSize}");
        if (loss is not ("mse" or "l1" or "smooth_l1")) throw new ArgumentException($"regression: loss must be mse, l1 or smooth_l1, got '{loss}'");
        (_train, _validation, _batchSize, _seed, _loss) = (train, validation, batchSize, seed, loss);
    }

    /// <inheritdoc/>
    public int StepsPerEpoch => (_train.Count + _batchSize - 1) / _batchSize;

    /// <inheritdoc/>
    public IEnumerable<object> Batches(int epoch)
    {
        var order = Tensor.RandPerm(_train.Count, new Generator(_seed ^ (0x9E3779B97F4A7C15UL * (ulong)(epoch + 1)))).ToInt64Array();
        for (int start = 0; start < order.Length; start += _batchSize)
            yield return Collate(_train, order.Skip(start).Take(_batchSize).Select(i => (int)i));
    }

    private static (Tensor, Tensor) Collate(IRegressionDataset data, IEnumerable<int> indices)
    {
        var samples = indices.Select(data.Get).ToList();
        return (Tensor.Stack([.. samples.Select(s => s.Input)]), Tensor.Stack([.. samples.Select(s => s.Target)]));
    }

    /// <inheritdoc/>
    public void BeginEpoch() => (_lossSum, _absSum, _samples, _elements) = (0, 0, 0, 0);

    private Tensor LossOf(Tensor output, Tensor target)
    {
        if (!output.Shape.SequenceEqual(target.Shape))
            throw new ArgumentException($"regression: the model outputs {ShapeUtil.Format(output.Shape)} but the targets are {ShapeUtil.Format(target.Shape)}");
        return _loss switch
        {
            "mse" => F.MseLoss(output, target),
            "l1" => F.L1Loss(output, target),
            _ => F.SmoothL1Loss(output, target),
        };
    }

    /// <inheritdoc/>
    public Tensor Loss(Module model, object batch)
    {
        var (x, y) = ((Tensor, Tensor))batch;
        _output = model.Forward(x);
        return LossOf(_output, y);
    }

    /// <inheritdoc/>
    public void StepDone(object batch, double loss)
    {
        var (_, y) = ((Tensor, Tensor))batch;
        int n = y.Size(0);
        _lossSum += loss * n;
        _samples += n;
        _absSum += AbsSum(_output!.Detach(), y);
        _elements += y.Numel;
        _output = null;
    }

    private static double AbsSum(Tensor a, Tensor b)
    {
        var x = a.Contiguous().ToDoubleArray();
        var y = b.Contiguous().ToDoubleArray();
        double s = 0;
        for (int i = 0; i < x.Length; i++) s += Math.Abs(x[i] - y[i]);
        return s;
    }

    /// <inheritdoc/>
    public (double Loss, double Score, long Samples) Running =>
        (_samples == 0 ? double.NaN : _lossSum / _samples, _elements == 0 ? double.NaN : _absSum / _elements, _samples);

    /// <inheritdoc/>
    public double[] SaveRunning() => [_lossSum, _absSum, _samples, _elements];

    /// <inheritdoc/>
    public void RestoreRunning(double[] state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Length != 4) throw new ArgumentException($"regression: a saved running state has 4 numbers, got {state.Length}");
        (_lossSum, _absSum, _samples, _elements) = (state[0], state[1], (long)state[2], (long)state[3]);
    }

    /// <inheritdoc/>
    public (double Loss, double Score)? Validate(Module model)
    {
        if (_validation == null || _validation.Count == 0) return null;
        bool training = model.Training;
        model.Eval();
        try
        {
            double loss = 0, abs = 0;
            long elements = 0;
            using (new NoGrad())
                for (int start = 0; start < _validation.Count; start += _batchSize)
                {
                    var (x, y) = Collate(_validation, Enumerable.Range(start, Math.Min(_batchSize, _validation.Count - start)));
                    var output = model.Forward(x);
                    loss += LossOf(output, y).Item() * y.Size(0);
                    abs += AbsSum(output, y);
                    elements += y.Numel;
                }
            return (loss / _validation.Count, abs / elements);
        }
        finally { model.Train(training); }
    }
}
