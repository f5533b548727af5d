using ConvLab.NN.Functional;

namespace ConvLab.Analysis;

/// <summary>A worked pooling: the output and, given an upstream gradient, where each gradient element goes.</summary>
/// <param name="Kind">max or avg.</param>
/// <param name="Output">The pooled result (from <c>F.MaxPool1d/2d</c> or <c>F.AvgPool1d/2d</c>), same rank as the input.</param>
/// <param name="Windows">One line per output element: its window and value (<c>y[0,0] = max(1, 3, 4, 6) = 6 at x[1,1]</c>).</param>
/// <param name="InputGrad">The input gradient from the library's backward, when an upstream gradient was given.</param>
/// <param name="Routing">One line per output element: where its upstream gradient is sent.</param>
public sealed record WorkedPoolResult(string Kind, Tensor Output, IReadOnlyList<string> Windows, Tensor? InputGrad, IReadOnlyList<string> Routing);

/// <summary>Max and average pooling of a small typed vector or matrix (one channel), with gradient routing.</summary>
public static class WorkedPool
{
    /// <summary>
    /// Pools <paramref name="input"/> (rank 1 or 2). <paramref name="stride"/> defaults to the kernel; average pooling
    /// counts padded zeros in the divisor (PyTorch's default <c>count_include_pad=True</c>).
    /// </summary>
    public static WorkedPoolResult Compute(Tensor input, string kind, int[] kernel, int[]? stride, int[] padding, Tensor? upstream)
    {
        int dims = input.Rank;
        if (dims is not (1 or 2)) throw new ArgumentException($"--input: expected a vector or a matrix, got rank {dims}");
        if (kind is not ("max" or "avg")) throw new ArgumentException($"--type: expected max or avg, got {kind}");
        stride ??= kernel;
        foreach (var (v, name) in new[] { (kernel, "kernel"), (stride, "stride"), (padding, "padding") })
            if (v.Length != dims) throw new ArgumentException($"--{name}: gives {v.Length} sizes for a {dims}-d input");
        for (int i = 0; i < dims; i++)
        {
            if (kernel[i] > input.Shape[i] + 2 * padding[i])
                throw new ArgumentException($"--kernel: a {string.Join("x", kernel)} window is larger than the {string.Join("x", input.Shape.ToArray())} input (padding {string.Join("x", padding)})");
            if (2 * padding[i] > kernel[i])
                throw new ArgumentException($"--padding: must be at most half the kernel (PyTorch's rule), got {padding[i]} for kernel {kernel[i]}");
        }
        var x = (dims == 1 ? input.Reshape(1, 1, input.Shape[0]) : input.Reshape(1, 1, input.Shape[0], input.Shape[1])).Detach().Contiguous();
        if (upstream != null) x.RequiresGrad_();
        Tensor y;
        long[]? argmax = null;
        if (kind == "max")
        {
            var (o, idx) = dims == 1 ? F.MaxPool1dWithIndices(x, kernel, stride, padding) : F.MaxPool2dWithIndices(x, kernel, stride, padding);
            y = o;
            argmax = idx.ToInt64Array();
        }
        else y = dims == 1 ? F.AvgPool1d(x, kernel, stride, padding) : F.AvgPool2d(x, kernel, stride, padding);
        var output = dims == 1 ? y.Detach().Reshape(y.Shape[^1]) : y.Detach().Reshape(y.Shape[^2], y.Shape[^1]);
        Tensor? grad = null;
        if (upstream != null)
        {
            if (!upstream.Shape.SequenceEqual(output.Shape.ToArray()))
                throw new ArgumentException($"--grad: has shape {string.Join("x", upstream.Shape.ToArray())} but the output is {string.Join("x", output.Shape.ToArray())}");
            y.Backward(upstream.Reshape(y.Shape.ToArray()));
            grad = x.Grad!.Reshape(input.Shape.ToArray());
        }

        int h = dims == 1 ? 1 : input.Shape[0], w = input.Shape[^1];
        int kh = dims == 1 ? 1 : kernel[0], kw = kernel[^1], sh = dims == 1 ? 1 : stride[0], sw = stride[^1];
        int ph = dims == 1 ? 0 : padding[0], pw = padding[^1];
        int oh = dims == 1 ? 1 : output.Shape[0], ow = output.Shape[^1];
        var xd = input.ToDoubleArray();
        var yd = output.ToDoubleArray();
        var gd = upstream?.ToDoubleArray();
        string Idx(string n, int r, int c) => dims == 1 ? $"{n}[{c}]" : $"{n}[{r},{c}]";
        var windows = new List<string>();
        var routing = new List<string>();
        for (int p = 0; p < oh; p++)
            for (int q = 0; q < ow; q++)
            {
                var vals = new List<string>();
                var cells = new List<string>();
                for (int a = 0; a < kh; a++)
                    for (int b = 0; b < kw; b++)
                    {
                        int r = p * sh + a - ph, c = q * sw + b - pw;
                        bool inside = r >= 0 && r < h && c >= 0 && c < w;
                        if (inside) { vals.Add(Formulas.Num(xd[r * w + c])); cells.Add(Idx("x", r, c)); }
                        else if (kind == "avg") vals.Add("0");
                    }
                int o = p * ow + q;
                string yLabel = Idx("y", p, q);
                if (kind == "max")
                {
                    int at = (int)argmax![o];
                    string from = Idx("x", at / w, at % w);
                    windows.Add($"{yLabel} = max({string.Join(", ", vals)}) = {Formulas.Num(yd[o])} at {from}");
                    if (gd != null) routing.Add($"g{yLabel} = {Formulas.Num(gd[o])} goes to {from} only (the window's maximum); the other {kh * kw - 1} get 0");
                }
                else
                {
                    int divisor = kh * kw;
                    windows.Add($"{yLabel} = ({string.Join(" + ", vals)}) / {divisor} = {Formulas.Num(yd[o])}");
                    if (gd != null) routing.Add($"g{yLabel} = {Formulas.Num(gd[o])} is split equally: {Formulas.Num(gd[o])} / {divisor} = {Formulas.Num(gd[o] / divisor)} to each of {string.Join(", ", cells)}");
                }
            }
        return new(kind, output, windows, grad, routing);
    }
}
