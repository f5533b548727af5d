using ConvLab.Autograd;
using ConvLab.NN;

namespace ConvLab.Experiments.InductiveBias;

/// <summary>The EdgeDetection notebook's two models as the library's <see cref="Sequential"/>s, with PyTorch indices.</summary>
public static class EdgeModels
{
    /// <summary>
    /// SimpleCNN: Conv(1→3, k×k, reflect padding k/2) → ReLU → MaxPool 2 (or AvgPool 2) → Conv(3→3, k×k, reflect padding
    /// k/2) → ReLU → global average pool → Linear(3→classes). 606 parameters at k = 7 and 3 classes.
    /// <paramref name="paddingMode"/> other than the notebook's reflect is a diagnostic: with circular padding the whole
    /// network is invariant to circular shifts by an even number of pixels.
    /// </summary>
    public static Sequential Cnn(ulong seed, int kernel = 7, int classes = 3, bool maxPool = true, string paddingMode = "reflect")
    {
        var g = new Generator(seed);
        return new Sequential(
            new Conv2d(1, 3, kernel, padding: kernel / 2, paddingMode: paddingMode, generator: g), new ReLU(),
            maxPool ? new MaxPool2d(2) : new AvgPool2d([2]),
            new Conv2d(3, 3, kernel, padding: kernel / 2, paddingMode: paddingMode, generator: g), new ReLU(),
            new GlobalAvgPool2d(flatten: true),
            new Linear(3, classes, generator: g));
    }

    /// <summary>MLP 784 → 50 → 10 → classes with ReLU: 39,793 parameters at 3 classes.</summary>
    public static Sequential Mlp(ulong seed, int classes = 3)
    {
        var g = new Generator(seed);
        return new Sequential(new Flatten(), new Linear(784, 50, generator: g), new ReLU(), new Linear(50, 10, generator: g), new ReLU(), new Linear(10, classes, generator: g));
    }

    /// <summary>
    /// The MLP of <paramref name="seed"/> for images whose pixel i is pixel permutation[i] of the original: the first
    /// layer's columns are permuted the same way, so it computes exactly the function of <see cref="Mlp"/> on the original.
    /// </summary>
    public static Sequential PermutedMlp(ulong seed, int[] permutation, int classes = 3)
    {
        var mlp = Mlp(seed, classes);
        var first = (Linear)mlp[1];
        var w = first.Weight.ToArray();
        int o = first.Weight.Shape[0], n = first.Weight.Shape[1];
        var p = new float[w.Length];
        for (int r = 0; r < o; r++)
            for (int i = 0; i < n; i++) p[r * n + i] = w[r * n + permutation[i]];
        using (new NoGrad()) first.Weight.Copy_(Tensor.FromArray(p, o, n));
        return mlp;
    }

    /// <summary>
    /// The edge-detector CNN: conv1 filter 0 is +1 in the rows above the centre and −1 below (a horizontal-edge
    /// detector), filter 1 its transpose, filter 2 stays random; conv2 passes each channel through (a centred 1); biases
    /// 0. Both convolutions are frozen, only the linear layer trains.
    /// </summary>
    public static Sequential EdgeInitCnn(ulong seed, int kernel = 7, int classes = 3)
    {
        var cnn = Cnn(seed, kernel, classes);
        var c1 = (Conv2d)cnn[0];
        var c2 = (Conv2d)cnn[3];
        int k = kernel, c = k / 2;
        var w1 = c1.Weight.ToArray();
        for (int y = 0; y < k; y++)
            for (int x = 0; x < k; x++)
            {
                float v = y < c ? 1 : y > c ? -1 : 0;
                w1[y * k + x] = v;               // filter 0: rows
                w1[k * k + x * k + y] = v;       // filter 1: its transpose
            }
        var w2 = new float[3 * 3 * k * k];
        for (int o = 0; o < 3; o++) w2[(o * 3 + o) * k * k + c * k + c] = 1;
        using (new NoGrad())
        {
            c1.Weight.Copy_(Tensor.FromArray(w1, 3, 1, k, k));
            c2.Weight.Copy_(Tensor.FromArray(w2, 3, 3, k, k));
            c1.Bias!.Fill_(0);
            c2.Bias!.Fill_(0);
        }
        c1.RequiresGrad(false);
        c2.RequiresGrad(false);
        return cnn;
    }
}
