using System.Globalization;
using ConvLab.Analysis;
using ConvLab.Autograd;
using ConvLab.NN.Functional;

namespace ConvLab.Vision;

/// <summary>
/// A hand-designed filter: one kernel, or the Sobel pair whose responses combine into a gradient magnitude.
/// Kernels are float64 (kH, kW) and applied as PyTorch's conv2d does (cross-correlation, no flip).
/// </summary>
/// <param name="Name">The name it was asked by (<c>sobel-x</c>, <c>box:3</c>, <c>matrix</c>).</param>
/// <param name="Kernels">One kernel, or two (x then y) for a magnitude.</param>
/// <param name="Magnitude">True: the response is sqrt(rx² + ry²) of the two kernels' responses.</param>
public sealed record HandFilter(string Name, IReadOnlyList<Tensor> Kernels, bool Magnitude = false)
{
    /// <summary>The kernel (the x kernel of a magnitude).</summary>
    public Tensor Kernel => Kernels[0];
}

/// <summary>The best hand-designed match of one learned filter.</summary>
/// <param name="Index">The learned filter (output channel).</param>
/// <param name="BestMatch">The hand-designed filter most similar to it.</param>
/// <param name="Cosine">Their cosine similarity (signed: −1 is the same detector with the opposite polarity).</param>
public sealed record FilterMatch(int Index, string BestMatch, double Cosine);

/// <summary>
/// Hand-designed filters (the course's HandDesignFilters notebook): named kernels, typed matrices, grey conversion and
/// filtering through <c>F.Conv2d</c>
/// with "same" padding in every boundary mode.
/// </summary>
public static class Filters
{
    /// <summary>The boundary modes (PyTorch's <c>padding_mode</c>).</summary>
    public static readonly IReadOnlyList<string> Modes = ["zeros", "reflect", "replicate", "circular"];

    /// <summary>The names <see cref="Parse"/> accepts besides a typed matrix.</summary>
    public static readonly IReadOnlyList<string> Names =
        ["box:N", "gaussian:SIGMA", "laplacian", "sobel-x", "sobel-y", "prewitt-x", "prewitt-y", "gradient-magnitude", "sharpen", "emboss", "gabor:THETA_DEG:WAVELENGTH"];

    /// <summary>
    /// A filter by name (<see cref="Names"/>) or a matrix typed as <c>"[[..],[..]]"</c>. Every error is an
    /// <see cref="ArgumentException"/> starting with <c>--kernel:</c>.
    /// </summary>
    public static HandFilter Parse(string spec)
    {
        var s = spec.Trim();
        if (s.StartsWith('['))
        {
            var m = MatrixText.Parse(s, "--kernel");
            return new("matrix", [m.Rank == 1 ? m.Reshape(1, m.Shape[0]) : m]);
        }
        var parts = s.ToLowerInvariant().Split(':');
        double Arg(int i, string what, double min)
        {
            if (parts.Length <= i || !double.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v) || v < min)
                throw new ArgumentException($"--kernel: {parts[0]} needs {what} >= {min.ToString(CultureInfo.InvariantCulture)} (as {Names.First(n => n.StartsWith(parts[0], StringComparison.Ordinal))}), got \"{spec}\"");
            return v;
        }
        void NoArgs()
        {
            if (parts.Length > 1) throw new ArgumentException($"--kernel: {parts[0]} takes no argument, got \"{spec}\"");
        }
        switch (parts[0])
        {
            case "box":
                {
                    double n = Arg(1, "a size N", 1);
                    if (n != Math.Floor(n) || n > 99) throw new ArgumentException($"--kernel: box:N needs an integer N from 1 to 99, got \"{spec}\"");
                    if (parts.Length > 2) throw new ArgumentException($"--kernel: box takes one argument, got \"{spec}\"");
                    return new(s, [Box((int)n)]);
                }
            case "gaussian":
                {
                    double sigma = Arg(1, "a standard deviation SIGMA", 0.1);
                    if (sigma > 16) throw new ArgumentException($"--kernel: gaussian:SIGMA needs SIGMA <= 16, got \"{spec}\"");
                    return new(s, [Gaussian(sigma)]);
                }
            case "gabor":
                {
                    double theta = Arg(1, "an orientation THETA_DEG", -360), lambda = Arg(2, "a wavelength", 2);
                    if (lambda > 32) throw new ArgumentException($"--kernel: gabor wavelength must be at most 32 pixels, got \"{spec}\"");
                    return new(s, [Gabor(theta, lambda)]);
                }
            case "laplacian": NoArgs(); return new(s, [M(3, 0, 1, 0, 1, -4, 1, 0, 1, 0)]);
            case "sobel-x": NoArgs(); return new(s, [SobelX]);
            case "sobel-y": NoArgs(); return new(s, [SobelX.Transpose(0, 1).Contiguous()]);
            case "prewitt-x": NoArgs(); return new(s, [M(3, -1, 0, 1, -1, 0, 1, -1, 0, 1)]);
            case "prewitt-y": NoArgs(); return new(s, [M(3, -1, -1, -1, 0, 0, 0, 1, 1, 1)]);
            case "gradient-magnitude": NoArgs(); return new(s, [SobelX, SobelX.Transpose(0, 1).Contiguous()], Magnitude: true);
            case "sharpen": NoArgs(); return new(s, [M(3, 0, -1, 0, -1, 5, -1, 0, -1, 0)]);
            case "emboss": NoArgs(); return new(s, [M(3, -2, -1, 0, -1, 1, 1, 0, 1, 2)]);
            default:
                throw new ArgumentException($"--kernel: unknown kernel \"{spec}\"; known: {string.Join(", ", Names)}, or a matrix typed as \"[[..],[..]]\"");
        }
    }

    private static Tensor SobelX => M(3, -1, 0, 1, -2, 0, 2, -1, 0, 1);

    private static Tensor M(int n, params double[] v) => Tensor.FromArray(v, n, n);

    /// <summary>Box blur: N×N, every entry 1/N².</summary>
    public static Tensor Box(int n) => Tensor.Full([n, n], 1.0 / (n * n), DType.Float64);

    /// <summary>Normalised Gaussian of standard deviation <paramref name="sigma"/>, size 2·ceil(3σ)+1.</summary>
    public static Tensor Gaussian(double sigma)
    {
        int r = (int)Math.Ceiling(3 * sigma), n = 2 * r + 1;
        var g = new double[n * n];
        for (int y = 0; y < n; y++)
            for (int x = 0; x < n; x++)
                g[y * n + x] = Math.Exp(-((x - r) * (x - r) + (y - r) * (y - r)) / (2 * sigma * sigma));
        double sum = g.Sum();
        return Tensor.FromArray(g.Select(v => v / sum).ToArray(), n, n);
    }

    /// <summary>
    /// Real Gabor kernel: a cosine of <paramref name="wavelength"/> pixels across orientation <paramref name="thetaDegrees"/>
    /// (0 = stripes varying along x) under a Gaussian of σ = 0.56·wavelength (one-octave bandwidth) and aspect 0.5, made
    /// zero-mean so flat regions give 0. Size 2·ceil(2.5σ)+1 unless <paramref name="size"/> is given.
    /// </summary>
    public static Tensor Gabor(double thetaDegrees, double wavelength, int? size = null)
    {
        double sigma = 0.56 * wavelength, theta = thetaDegrees * Math.PI / 180, gamma = 0.5;
        int n = size ?? 2 * (int)Math.Ceiling(2.5 * sigma) + 1;
        double c = (n - 1) / 2.0;
        var g = new double[n * n];
        for (int y = 0; y < n; y++)
            for (int x = 0; x < n; x++)
            {
                double xr = (x - c) * Math.Cos(theta) + (y - c) * Math.Sin(theta), yr = -(x - c) * Math.Sin(theta) + (y - c) * Math.Cos(theta);
                g[y * n + x] = Math.Exp(-(xr * xr + gamma * gamma * yr * yr) / (2 * sigma * sigma)) * Math.Cos(2 * Math.PI * xr / wavelength);
            }
        double mean = g.Average();
        return Tensor.FromArray(g.Select(v => v - mean).ToArray(), n, n);
    }

    /// <summary>A Gabor bank: every orientation (degrees) at every wavelength, named <c>gabor:THETA:WAVELENGTH</c>.</summary>
    public static IReadOnlyList<HandFilter> GaborBank(IReadOnlyList<double> orientations, IReadOnlyList<double> wavelengths) =>
        wavelengths.SelectMany(l => orientations.Select(t => new HandFilter(
            $"gabor:{t.ToString(CultureInfo.InvariantCulture)}:{l.ToString(CultureInfo.InvariantCulture)}", [Gabor(t, l)]))).ToList();

    /// <summary>
    /// Grey image (H, W) from an image (C, H, W) with C = 1 (kept) or 3: 0.2989·R + 0.5870·G + 0.1140·B (the notebook's
    /// weights, float64).
    /// </summary>
    public static Tensor Grey(Tensor image)
    {
        if (image.Rank != 3 || image.Shape[0] is not (1 or 3))
            throw new ArgumentException($"filter: expected an image (1 or 3, H, W), got shape {ShapeUtil.Format(image.Shape)}");
        var x = image.Detach().Double();
        if (image.Shape[0] == 1) return x.Reshape(image.Shape[1], image.Shape[2]).Contiguous();
        var w = Tensor.FromArray(new[] { 0.2989, 0.5870, 0.1140 }, 3, 1, 1);
        return x.Mul(w).Sum(0);
    }

    /// <summary>
    /// Applies <paramref name="filter"/> to a grey image (H, W) with "same" padding in <paramref name="mode"/>; the raw
    /// response (not clipped), (H, W) float64. The kernel must fit in the image.
    /// </summary>
    public static Tensor Apply(Tensor grey, HandFilter filter, string mode = "zeros")
    {
        if (grey.Rank != 2) throw new ArgumentException($"filter: expected a grey (H, W) image, got shape {ShapeUtil.Format(grey.Shape)}");
        if (!Modes.Contains(mode)) throw new ArgumentException($"--mode: expected {string.Join(", ", Modes)}, got \"{mode}\"");
        int h = grey.Shape[0], w = grey.Shape[1];
        foreach (var k in filter.Kernels)
            if (k.Shape[0] > h || k.Shape[1] > w)
                throw new ArgumentException($"--kernel: the {k.Shape[0]}x{k.Shape[1]} kernel {filter.Name} is larger than the {h}x{w} image");
        using var _ = new NoGrad();
        var x = grey.Double().Reshape(1, 1, h, w);
        Tensor Conv(Tensor k) => F.Conv2d(x, k.Double().Reshape(1, 1, k.Shape[0], k.Shape[1]), "same", paddingMode: mode).Reshape(h, w);
        if (!filter.Magnitude) return Conv(filter.Kernel);
        var gx = Conv(filter.Kernels[0]);
        var gy = Conv(filter.Kernels[1]);
        return gx.Mul(gx).Add(gy.Mul(gy)).Sqrt();
    }

    /// <summary>A response clipped to [0, 1] for display (the notebook's <c>np.clip</c>).</summary>
    public static Tensor Clip01(Tensor response)
    {
        var d = response.ToDoubleArray().Select(v => Math.Clamp(v, 0, 1)).ToArray();
        return Tensor.FromArray(d, response.Shape.ToArray());
    }

    /// <summary>
    /// Hand-designed filters of size <paramref name="k"/>×<paramref name="k"/> for comparing with learned ones: box, Gaussian
    /// (σ = k/6), the 3×3 kernels centred in a k×k zero frame (k ≥ 3), and a Gabor bank at 4 orientations.
    /// </summary>
    public static IReadOnlyList<(string Name, Tensor Kernel)> ComparisonBank(int k)
    {
        var list = new List<(string, Tensor)> { ($"box:{k}", Box(k)) };
        if (k >= 3)
        {
            var g = Gaussian(k / 6.0);
            list.Add(($"gaussian:{Formulas.Num(k / 6.0)}", Centre(g, k)));
            foreach (var n in new[] { "laplacian", "sobel-x", "sobel-y", "prewitt-x", "prewitt-y", "sharpen", "emboss" })
                list.Add((n, Centre(Parse(n).Kernel, k)));
            foreach (var t in new[] { 0.0, 45, 90, 135 })
                list.Add(($"gabor:{Formulas.Num(t)}:{Formulas.Num(Math.Max(2, k / 2.0))}", Gabor(t, Math.Max(2, k / 2.0), k)));
        }
        return list;
    }

    /// <summary>A kernel centred in a k×k frame of zeros, or cropped to its centre when larger.</summary>
    private static Tensor Centre(Tensor kernel, int k)
    {
        int n = kernel.Shape[0];
        var src = kernel.ToDoubleArray();
        var dst = new double[k * k];
        for (int y = 0; y < k; y++)
            for (int x = 0; x < k; x++)
            {
                int sy = y - (k - n) / 2, sx = x - (k - n) / 2;
                if (sy >= 0 && sy < n && sx >= 0 && sx < n) dst[y * k + x] = src[sy * n + sx];
            }
        return Tensor.FromArray(dst, k, k);
    }

    /// <summary>
    /// For each learned filter of a first-layer weight (out, in, kH, kW), averaged over its input channels, the
    /// hand-designed kernel of <paramref name="bank"/> with the largest |cosine similarity| (the sign is kept).
    /// </summary>
    public static IReadOnlyList<FilterMatch> BestMatches(Tensor weight, IReadOnlyList<(string Name, Tensor Kernel)> bank)
    {
        if (weight.Rank != 4) throw new ArgumentException($"filter: expected a convolution weight (out, in, kH, kW), got shape {ShapeUtil.Format(weight.Shape)}");
        int o = weight.Shape[0], ci = weight.Shape[1], kh = weight.Shape[2], kw = weight.Shape[3];
        var w = weight.Detach().ToDoubleArray();
        var usable = bank.Where(b => b.Kernel.Shape[0] == kh && b.Kernel.Shape[1] == kw).Select(b => (b.Name, V: b.Kernel.ToDoubleArray())).ToList();
        if (usable.Count == 0) throw new ArgumentException($"filter: no hand-designed kernel of size {kh}x{kw} to compare with");
        var result = new List<FilterMatch>();
        for (int f = 0; f < o; f++)
        {
            var mean = new double[kh * kw];
            for (int c = 0; c < ci; c++)
                for (int i = 0; i < kh * kw; i++) mean[i] += w[(f * ci + c) * kh * kw + i] / ci;
            var best = usable.Select(b => (b.Name, Cos: Cosine(mean, b.V))).MaxBy(b => Math.Abs(b.Cos));
            result.Add(new(f, best.Name, best.Cos));
        }
        return result;
    }

    /// <summary>Cosine similarity of two vectors; 0 when either is zero.</summary>
    public static double Cosine(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        double ab = 0, aa = 0, bb = 0;
        for (int i = 0; i < a.Count; i++) { ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i]; }
        return aa == 0 || bb == 0 ? 0 : ab / Math.Sqrt(aa * bb);
    }
}
