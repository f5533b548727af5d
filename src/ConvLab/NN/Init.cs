using ConvLab.Autograd;

namespace ConvLab.NN;

/// <summary>Weight initialisers with PyTorch's formulas (<c>torch.nn.init</c>). All modify in place without recording gradients.</summary>
public static class Init
{
    /// <summary>fan_in and fan_out as PyTorch computes them: dim 1 and dim 0 times the receptive-field size.</summary>
    public static (int FanIn, int FanOut) CalculateFanInAndFanOut(Tensor tensor)
    {
        if (tensor.Rank < 2)
            throw new ArgumentException($"init: fan in and fan out can not be computed for a tensor with fewer than 2 dimensions (shape {ShapeUtil.Format(tensor.Shape)})");
        int receptive = 1;
        for (int d = 2; d < tensor.Rank; d++) receptive *= tensor.Shape[d];
        return (tensor.Shape[1] * receptive, tensor.Shape[0] * receptive);
    }

    /// <summary>The recommended gain for a nonlinearity ("linear", "conv2d", "sigmoid", "tanh", "relu", "leaky_relu", "selu").</summary>
    public static double CalculateGain(string nonlinearity, double param = 0.01) => nonlinearity switch
    {
        "linear" or "conv1d" or "conv2d" or "conv3d" or "conv_transpose1d" or "conv_transpose2d" or "conv_transpose3d" or "sigmoid" => 1,
        "tanh" => 5.0 / 3,
        "relu" => Math.Sqrt(2),
        "leaky_relu" => Math.Sqrt(2.0 / (1 + param * param)),
        "selu" => 3.0 / 4,
        _ => throw new ArgumentException($"init: unsupported nonlinearity '{nonlinearity}'"),
    };

    private static int Fan(Tensor t, string mode) => mode switch
    {
        "fan_in" => CalculateFanInAndFanOut(t).FanIn,
        "fan_out" => CalculateFanInAndFanOut(t).FanOut,
        _ => throw new ArgumentException($"init: mode must be 'fan_in' or 'fan_out', got '{mode}'"),
    };

    /// <summary>U(low, high).</summary>
    public static Tensor Uniform_(Tensor t, double low = 0, double high = 1, Generator? generator = null)
    {
        using var _ = new NoGrad();
        return t.Copy_(Tensor.Rand(t.Shape, generator, low, high, t.DType));
    }

    /// <summary>N(mean, std²).</summary>
    public static Tensor Normal_(Tensor t, double mean = 0, double std = 1, Generator? generator = null)
    {
        using var _ = new NoGrad();
        return t.Copy_(Tensor.Randn(t.Shape, generator, mean, std, t.DType));
    }

    /// <summary>Fills with a constant.</summary>
    public static Tensor Constant_(Tensor t, double value)
    {
        using var _ = new NoGrad();
        return t.Fill_(value);
    }

    /// <summary>Fills with zeros.</summary>
    public static Tensor Zeros_(Tensor t) => Constant_(t, 0);

    /// <summary>Fills with ones.</summary>
    public static Tensor Ones_(Tensor t) => Constant_(t, 1);

    /// <summary>Kaiming (He) uniform: U(-b, b), b = gain·sqrt(3 / fan).</summary>
    public static Tensor KaimingUniform_(Tensor t, double a = 0, string mode = "fan_in", string nonlinearity = "leaky_relu", Generator? generator = null)
    {
        double std = CalculateGain(nonlinearity, a) / Math.Sqrt(Fan(t, mode));
        double bound = Math.Sqrt(3.0) * std;
        return Uniform_(t, -bound, bound, generator);
    }

    /// <summary>Kaiming (He) normal: N(0, std²), std = gain / sqrt(fan).</summary>
    public static Tensor KaimingNormal_(Tensor t, double a = 0, string mode = "fan_in", string nonlinearity = "leaky_relu", Generator? generator = null)
    {
        double std = CalculateGain(nonlinearity, a) / Math.Sqrt(Fan(t, mode));
        return Normal_(t, 0, std, generator);
    }

    /// <summary>Xavier (Glorot) uniform: U(-b, b), b = gain·sqrt(6 / (fan_in + fan_out)).</summary>
    public static Tensor XavierUniform_(Tensor t, double gain = 1, Generator? generator = null)
    {
        var (fi, fo) = CalculateFanInAndFanOut(t);
        double bound = gain * Math.Sqrt(6.0 / (fi + fo));
        return Uniform_(t, -bound, bound, generator);
    }

    /// <summary>Xavier (Glorot) normal: N(0, std²), std = gain·sqrt(2 / (fan_in + fan_out)).</summary>
    public static Tensor XavierNormal_(Tensor t, double gain = 1, Generator? generator = null)
    {
        var (fi, fo) = CalculateFanInAndFanOut(t);
        return Normal_(t, 0, gain * Math.Sqrt(2.0 / (fi + fo)), generator);
    }
}
