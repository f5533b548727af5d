using ConvLab.Autograd;
using ConvLab.NN.Functional;

namespace ConvLab.Analysis;

/// <summary>Settings of a worked convolution; sizes hold one entry per spatial dimension of the input.</summary>
/// <param name="Stride">Stride per dimension.</param>
/// <param name="Padding">Padding per dimension (for a transposed convolution, the rows/columns cropped from the full result).</param>
/// <param name="Dilation">Dilation per dimension.</param>
/// <param name="PaddingMode">zeros, reflect, replicate or circular (PyTorch's <c>padding_mode</c>; transposed: zeros only).</param>
/// <param name="Transposed">Transposed convolution (PyTorch's <c>conv_transpose1d/2d</c>).</param>
/// <param name="OutputPadding">Extra rows/columns at the end of a transposed convolution's output.</param>
public sealed record WorkedConvSettings(int[] Stride, int[] Padding, int[] Dilation, string PaddingMode = "zeros", bool Transposed = false, int[]? OutputPadding = null);

/// <summary>One input element's scaled copy of the filter in a transposed convolution, placed at <see cref="Offset"/> of the uncropped output.</summary>
/// <param name="Index">The input element ("x[0,1]").</param>
/// <param name="Value">Its value.</param>
/// <param name="Offset">Where the copy's first element lands in the uncropped output (row, column; a 1-d offset has row 0).</param>
/// <param name="Copy">Value times the filter (with dilation gaps as zeros).</param>
public sealed record ScaledCopy(string Index, double Value, int[] Offset, Tensor Copy);

/// <summary>The im2col view of a convolution: the column matrix (kernel taps × output positions) and the GEMM weight-row × columns.</summary>
/// <param name="Columns">(K, P): column p holds the (padded) input under the filter at output position p, taps in row-major order.</param>
/// <param name="WeightRow">(1, K): the filter flattened in the same tap order.</param>
/// <param name="Product">(1, P): <see cref="WeightRow"/> · <see cref="Columns"/>, computed by the library's matmul; reshaped it is the output.</param>
/// <param name="RowLabels">The tap of each row ("w[0,1]").</param>
/// <param name="ColumnLabels">The output position of each column ("y[1,0]").</param>
public sealed record Im2colView(Tensor Columns, Tensor WeightRow, Tensor Product, IReadOnlyList<string> RowLabels, IReadOnlyList<string> ColumnLabels);

/// <summary>A worked convolution: the output (from <c>F.Conv1d/2d</c> or <c>F.ConvTranspose1d/2d</c>) and its working.</summary>
/// <param name="Input">The input as typed (float64, rank 1 or 2).</param>
/// <param name="Weight">The filter as typed.</param>
/// <param name="Padded">The input after padding with the mode (regular convolution; the input itself for a transposed one).</param>
/// <param name="Output">The result, same rank as the input.</param>
/// <param name="Sums">One line per output element: its sum of products and value (<c>y[0,1] = 1·2 + 2·3 = 8</c>).</param>
/// <param name="Im2col">The column matrix and GEMM (regular convolution only).</param>
/// <param name="Copies">Each input element's scaled copy of the filter (transposed convolution only).</param>
/// <param name="Settings">The settings used.</param>
public sealed record WorkedConvResult(Tensor Input, Tensor Weight, Tensor Padded, Tensor Output, IReadOnlyList<string> Sums,
    Im2colView? Im2col, IReadOnlyList<ScaledCopy> Copies, WorkedConvSettings Settings);

/// <summary>How a filter-recovery system was posed and solved.</summary>
/// <param name="Filter">The recovered filter (minimum-norm least-squares solution), shaped as the kernel.</param>
/// <param name="Equations">Number of equations (output elements).</param>
/// <param name="Unknowns">Number of unknowns (filter taps).</param>
/// <param name="Rank">Rank of the system matrix.</param>
/// <param name="Status">exactly determined, over-determined or under-determined.</param>
/// <param name="System">(equations, unknowns): row p holds the input under the filter at output p.</param>
/// <param name="Reproduced">The convolution of the input with the recovered filter (through <c>F.Conv1d/2d</c>).</param>
/// <param name="MaxResidual">max |reproduced - output|: zero when the output is consistent with some filter.</param>
/// <param name="Explanation">Sentences saying how the system was posed and what its determinacy means.</param>
public sealed record FilterSolution(Tensor Filter, int Equations, int Unknowns, int Rank, string Status, Tensor System, Tensor Reproduced,
    double MaxResidual, IReadOnlyList<string> Explanation);

/// <summary>
/// Worked numeric examples of 1-d and 2-d convolutions of small typed matrices (one channel): the numbers come from the
/// library's functional ops; the working enumerates the sums those ops compute (the course's exam examples).
/// </summary>
public static class WorkedConv
{
    /// <summary>Convolves (or transposed-convolves) <paramref name="input"/> with <paramref name="weight"/>, both rank 1 or both rank 2.</summary>
    public static WorkedConvResult Compute(Tensor input, Tensor weight, WorkedConvSettings s)
    {
        int dims = CheckRanks(input, weight);
        CheckSizes(s, dims);
        var x = As2d(input);
        var w = As2d(weight);
        var outPad = s.OutputPadding ?? new int[dims];
        if (s.Transposed)
        {
            if (s.PaddingMode != "zeros")
                throw new ArgumentException($"--mode: transposed convolution pads only with zeros (PyTorch's conv_transpose has no padding_mode), got {s.PaddingMode}");
            var y = dims == 1
                ? F.ConvTranspose1d(Batch(input), Batch(weight), stride: s.Stride, padding: s.Padding, outputPadding: outPad, dilation: s.Dilation)
                : F.ConvTranspose2d(Batch(input), Batch(weight), stride: s.Stride, padding: s.Padding, outputPadding: outPad, dilation: s.Dilation);
            var output = Unbatch(y, dims);
            return new(input, weight, input, output, TransposedSums(x, w, As2d(output), s, dims), null, Copies(x, w, s, dims), s);
        }
        var padded = Pad(input, s, dims);
        var pd = As2d(padded);
        int[] k = [w.Shape[0], w.Shape[1]];
        for (int i = 0; i < 2; i++)
        {
            int span = Get(s.Dilation, dims, i, 1) * (k[i] - 1) + 1;
            if (span > pd.Shape[i])
                throw new ArgumentException($"--weight: the {Shape(weight)} kernel{(span > k[i] ? $" (dilated to span {span})" : "")} is larger than the {Shape(input)} input{(s.Padding.Any(p => p > 0) ? $" padded to {Shape(padded)}" : "")}");
        }
        var outT = Unbatch(dims == 1
            ? F.Conv1d(Batch(input), Batch(weight), stride: s.Stride, padding: s.Padding, dilation: s.Dilation, paddingMode: s.PaddingMode)
            : F.Conv2d(Batch(input), Batch(weight), stride: s.Stride, padding: s.Padding, dilation: s.Dilation, paddingMode: s.PaddingMode), dims);
        var view = Columns(pd, w, As2d(outT), s, dims);
        return new(input, weight, padded, outT, Sums(view, w, As2d(outT), dims), view, [], s);
    }

    /// <summary>
    /// Recovers a filter of size <paramref name="kernel"/> from an input and the output a convolution with it gave:
    /// one equation per output element (the im2col rows), solved as minimum-norm least squares; the result says
    /// whether the system was exactly, over- or under-determined.
    /// </summary>
    public static FilterSolution SolveFilter(Tensor input, Tensor output, int[] kernel, WorkedConvSettings s)
    {
        if (s.Transposed) throw new ArgumentException("--solve-filter: recovers the filter of a regular convolution; drop --transposed");
        int dims = input.Rank;
        if (dims is not (1 or 2)) throw new ArgumentException($"--input: expected a vector or a matrix, got rank {dims}");
        if (output.Rank != dims) throw new ArgumentException($"--output: is rank {output.Rank} but --input is rank {dims}");
        if (kernel.Length != dims) throw new ArgumentException($"--kernel: gives {kernel.Length} sizes for a {dims}-d input");
        CheckSizes(s, dims);
        var probe = Tensor.Zeros(dims == 1 ? [kernel[0]] : [kernel[0], kernel[1]], DType.Float64);
        var padded = Pad(input, s, dims);
        var pd = As2d(padded);
        var k2 = dims == 1 ? new[] { 1, kernel[0] } : kernel;
        int[] outSize = new int[2];
        for (int i = 0; i < 2; i++)
        {
            int span = Get(s.Dilation, dims, i, 1) * (k2[i] - 1) + 1;
            if (span > pd.Shape[i])
                throw new ArgumentException($"--kernel: a {string.Join("x", kernel)} filter is larger than the {Shape(input)} input padded to {Shape(padded)}");
            outSize[i] = (pd.Shape[i] - span) / Get(s.Stride, dims, i, 1) + 1;
        }
        var expected = dims == 1 ? new[] { outSize[1] } : outSize;
        if (!output.Shape.SequenceEqual(expected))
            throw new ArgumentException($"--output: has shape {Shape(output)} but a {string.Join("x", kernel)} filter on the {Shape(input)} input gives {string.Join("x", expected)}");
        var view = Columns(pd, As2d(probe), Tensor.Zeros([outSize[0], outSize[1]], DType.Float64), s, dims);
        var a = view.Columns.Transpose(0, 1).Contiguous();
        int m = a.Shape[0], n = a.Shape[1];
        var (filter, rank) = MinNormLeastSquares(a.ToDoubleArray(), output.ToDoubleArray(), m, n);
        var fT = Tensor.FromArray(filter, dims == 1 ? [kernel[0]] : kernel);
        var reproduced = Compute(input, fT, s).Output;
        double residual = reproduced.ToDoubleArray().Zip(output.ToDoubleArray(), (p, q) => Math.Abs(p - q)).DefaultIfEmpty(0).Max();
        string status = rank < n ? "under-determined" : m > n ? "over-determined" : "exactly determined";
        var why = new List<string>
        {
            $"{m} equations (one per output element) in {n} unknowns (the filter taps); the system matrix has rank {rank}.",
            status switch
            {
                "under-determined" => $"under-determined: {n - rank} direction(s) of the filter do not affect the output, so infinitely many filters fit; this is the one of least norm.",
                "over-determined" => residual <= 1e-9 * Math.Max(1, output.ToDoubleArray().Max(Math.Abs))
                    ? $"over-determined: {m} equations for {n} unknowns, and they are consistent: the filter reproduces the output exactly."
                    : $"over-determined: {m} equations for {n} unknowns with no exact solution; this is the least-squares fit (max residual {Formulas.Num(residual)}).",
                _ => "exactly determined: one equation per tap and full rank, so the filter is unique.",
            },
        };
        return new(fT, m, n, rank, status, a, reproduced, residual, why);
    }

    private static int CheckRanks(Tensor input, Tensor weight)
    {
        if (input.Rank is not (1 or 2)) throw new ArgumentException($"--input: expected a vector or a matrix, got rank {input.Rank}");
        if (weight.Rank != input.Rank)
            throw new ArgumentException($"--weight: is {(weight.Rank == 1 ? "a vector" : "a matrix")} but --input is {(input.Rank == 1 ? "a vector" : "a matrix")}; both must be 1-d or both 2-d");
        return input.Rank;
    }

    private static void CheckSizes(WorkedConvSettings s, int dims)
    {
        void One(int[]? v, string name, int min)
        {
            if (v == null) return;
            if (v.Length != dims) throw new ArgumentException($"--{name}: gives {v.Length} sizes for a {dims}-d convolution");
            if (v.Any(e => e < min)) throw new ArgumentException($"--{name}: must be >= {min}, got {string.Join("x", v)}");
        }
        One(s.Stride, "stride", 1);
        One(s.Padding, "padding", 0);
        One(s.Dilation, "dilation", 1);
        One(s.OutputPadding, "output-padding", 0);
        if (s.PaddingMode is not ("zeros" or "reflect" or "replicate" or "circular"))
            throw new ArgumentException($"--mode: expected zeros, reflect, replicate or circular, got {s.PaddingMode}");
    }

    private static int Get(int[] v, int dims, int i2d, int dflt) => dims == 1 ? (i2d == 0 ? dflt : v[0]) : v[i2d];

    private static string Shape(Tensor t) => string.Join("x", t.Shape.ToArray());

    private static Tensor As2d(Tensor t) => t.Rank == 1 ? t.Reshape(1, t.Shape[0]) : t;

    private static Tensor Batch(Tensor t) => t.Rank == 1 ? t.Reshape(1, 1, t.Shape[0]) : t.Reshape(1, 1, t.Shape[0], t.Shape[1]);

    private static Tensor Unbatch(Tensor t, int dims) => dims == 1 ? t.Reshape(t.Shape[^1]) : t.Reshape(t.Shape[^2], t.Shape[^1]);

    private static Tensor Pad(Tensor input, WorkedConvSettings s, int dims)
    {
        var pad = dims == 1 ? new[] { s.Padding[0], s.Padding[0] } : [s.Padding[1], s.Padding[1], s.Padding[0], s.Padding[0]];
        var mode = s.PaddingMode == "zeros" ? "constant" : s.PaddingMode;
        try
        {
            using var _ = new NoGrad();
            return Unbatch(F.Pad(Batch(input), pad, mode), dims);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"--padding: {e.Message}");
        }
    }

    private static string Factor(double v) => v < 0 ? $"({Formulas.Num(v)})" : Formulas.Num(v);

    private static string Idx(string name, int dims, int r, int c) => dims == 1 ? $"{name}[{c}]" : $"{name}[{r},{c}]";

    private static Im2colView Columns(Tensor padded, Tensor w, Tensor output, WorkedConvSettings s, int dims)
    {
        int kh = w.Shape[0], kw = w.Shape[1], oh = output.Shape[0], ow = output.Shape[1];
        int sh = Get(s.Stride, dims, 0, 1), sw = Get(s.Stride, dims, 1, 1), dh = Get(s.Dilation, dims, 0, 1), dw = Get(s.Dilation, dims, 1, 1);
        var xp = padded.ToDoubleArray();
        int pw = padded.Shape[1];
        var cols = new double[kh * kw * oh * ow];
        for (int a = 0; a < kh; a++)
            for (int b = 0; b < kw; b++)
                for (int p = 0; p < oh; p++)
                    for (int q = 0; q < ow; q++)
                        cols[(a * kw + b) * oh * ow + p * ow + q] = xp[(p * sh + a * dh) * pw + q * sw + b * dw];
        var colT = Tensor.FromArray(cols, kh * kw, oh * ow);
        var wRow = w.Contiguous().Reshape(1, kh * kw);
        var rows = Enumerable.Range(0, kh * kw).Select(i => Idx("w", dims, i / kw, i % kw)).ToList();
        var labels = Enumerable.Range(0, oh * ow).Select(i => Idx("y", dims, i / ow, i % ow)).ToList();
        return new(colT, wRow, wRow.Matmul(colT), rows, labels);
    }

    private static IReadOnlyList<string> Sums(Im2colView v, Tensor w, Tensor output, int dims)
    {
        var cols = v.Columns.ToDoubleArray();
        var wd = v.WeightRow.ToDoubleArray();
        var y = output.ToDoubleArray();
        int k = wd.Length, p = y.Length;
        return Enumerable.Range(0, p).Select(j =>
            $"{v.ColumnLabels[j]} = {string.Join(" + ", Enumerable.Range(0, k).Select(t => $"{Factor(cols[t * p + j])}·{Factor(wd[t])}"))} = {Formulas.Num(y[j])}").ToList();
    }

    private static IReadOnlyList<ScaledCopy> Copies(Tensor x, Tensor w, WorkedConvSettings s, int dims)
    {
        int kh = w.Shape[0], kw = w.Shape[1];
        int dh = Get(s.Dilation, dims, 0, 1), dw = Get(s.Dilation, dims, 1, 1), sh = Get(s.Stride, dims, 0, 1), sw = Get(s.Stride, dims, 1, 1);
        int ch = dh * (kh - 1) + 1, cw = dw * (kw - 1) + 1;
        var wd = w.ToDoubleArray();
        var xd = x.ToDoubleArray();
        var list = new List<ScaledCopy>();
        for (int i = 0; i < x.Shape[0]; i++)
            for (int j = 0; j < x.Shape[1]; j++)
            {
                double v = xd[i * x.Shape[1] + j];
                var copy = new double[ch * cw];
                for (int a = 0; a < kh; a++)
                    for (int b = 0; b < kw; b++)
                        copy[a * dh * cw + b * dw] = v * wd[a * kw + b];
                var t = Tensor.FromArray(copy, ch, cw);
                list.Add(new(Idx("x", dims, i, j), v, dims == 1 ? [j * sw] : [i * sh, j * sw], dims == 1 ? t.Reshape(cw) : t));
            }
        return list;
    }

    private static IReadOnlyList<string> TransposedSums(Tensor x, Tensor w, Tensor output, WorkedConvSettings s, int dims)
    {
        int kh = w.Shape[0], kw = w.Shape[1], ih = x.Shape[0], iw = x.Shape[1];
        int dh = Get(s.Dilation, dims, 0, 1), dw = Get(s.Dilation, dims, 1, 1), sh = Get(s.Stride, dims, 0, 1), sw = Get(s.Stride, dims, 1, 1);
        int ph = Get(s.Padding, dims, 0, 0), pw = Get(s.Padding, dims, 1, 0);
        var wd = w.ToDoubleArray();
        var xd = x.ToDoubleArray();
        var y = output.ToDoubleArray();
        var lines = new List<string>();
        for (int p = 0; p < output.Shape[0]; p++)
            for (int q = 0; q < output.Shape[1]; q++)
            {
                var terms = new List<string>();
                for (int i = 0; i < ih; i++)
                    for (int a = 0; a < kh; a++)
                    {
                        if (i * sh + a * dh != p + ph) continue;
                        for (int j = 0; j < iw; j++)
                            for (int b = 0; b < kw; b++)
                                if (j * sw + b * dw == q + pw)
                                    terms.Add($"{Factor(xd[i * iw + j])}·{Factor(wd[a * kw + b])}");
                    }
                var sum = terms.Count == 0 ? "0 (no copy overlaps)" : string.Join(" + ", terms);
                lines.Add($"{Idx("y", dims, p, q)} = {sum} = {Formulas.Num(y[p * output.Shape[1] + q])}");
            }
        return lines;
    }

    /// <summary>Minimum-norm least squares through the eigen-decomposition of AᵀA (cyclic Jacobi): small systems only.</summary>
    private static (double[] X, int Rank) MinNormLeastSquares(double[] a, double[] y, int m, int n)
    {
        var g = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double acc = 0;
                for (int r = 0; r < m; r++) acc += a[r * n + i] * a[r * n + j];
                g[i * n + j] = acc;
            }
        var v = new double[n * n];
        for (int i = 0; i < n; i++) v[i * n + i] = 1;
        for (int sweep = 0; sweep < 100; sweep++)
        {
            double off = 0;
            for (int i = 0; i < n; i++) for (int j = i + 1; j < n; j++) off += g[i * n + j] * g[i * n + j];
            if (off < 1e-30) break;
            for (int p = 0; p < n; p++)
                for (int q = p + 1; q < n; q++)
                {
                    double gpq = g[p * n + q];
                    if (Math.Abs(gpq) < 1e-300) continue;
                    double theta = (g[q * n + q] - g[p * n + p]) / (2 * gpq);
                    double t = Math.Sign(theta == 0 ? 1 : theta) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
                    double c = 1 / Math.Sqrt(t * t + 1), sn = t * c;
                    for (int k = 0; k < n; k++)
                    {
                        double gkp = g[k * n + p], gkq = g[k * n + q];
                        g[k * n + p] = c * gkp - sn * gkq;
                        g[k * n + q] = sn * gkp + c * gkq;
                    }
                    for (int k = 0; k < n; k++)
                    {
                        double gpk = g[p * n + k], gqk = g[q * n + k];
                        g[p * n + k] = c * gpk - sn * gqk;
                        g[q * n + k] = sn * gpk + c * gqk;
                    }
                    for (int k = 0; k < n; k++)
                    {
                        double vkp = v[k * n + p], vkq = v[k * n + q];
                        v[k * n + p] = c * vkp - sn * vkq;
                        v[k * n + q] = sn * vkp + c * vkq;
                    }
                }
        }
        var aty = new double[n];
        for (int i = 0; i < n; i++)
            for (int r = 0; r < m; r++) aty[i] += a[r * n + i] * y[r];
        double maxEig = Enumerable.Range(0, n).Max(i => g[i * n + i]);
        double tol = Math.Max(maxEig, 1e-300) * n * 1e-12;
        var x = new double[n];
        int rank = 0;
        for (int e = 0; e < n; e++)
        {
            double lambda = g[e * n + e];
            if (lambda <= tol) continue;
            rank++;
            double proj = 0;
            for (int i = 0; i < n; i++) proj += v[i * n + e] * aty[i];
            for (int i = 0; i < n; i++) x[i] += v[i * n + e] * proj / lambda;
        }
        // Round-off of the decomposition (1e-15 relative) would otherwise print 1.9999999999999998 for the exam's 2.
        double scale = x.Length == 0 ? 0 : x.Max(Math.Abs);
        for (int i = 0; i < n; i++)
            x[i] = Math.Abs(x[i]) < 1e-12 * (1 + scale) ? 0 : double.Parse(x[i].ToString("G12", System.Globalization.CultureInfo.InvariantCulture), System.Globalization.CultureInfo.InvariantCulture);
        return (x, rank);
    }
}
