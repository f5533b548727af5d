using System.Numerics.Tensors;

namespace ConvLab.Data;

/// <summary>
/// A per-sample transform on a float (C, H, W) tensor. Randomness comes only from the generator passed in, so a
/// loader that seeds one generator per sample gets the same augmentation whatever thread runs it.
/// </summary>
public abstract class Transform
{
    /// <summary>Transforms one sample; returns a new float32 tensor (the input is not modified).</summary>
    public abstract Tensor Apply(Tensor sample, Generator generator);

    /// <summary>The sample's values as a fresh float32 array plus its (C, H, W) size, after checking the rank.</summary>
    private protected static (float[] Data, int C, int H, int W) Unpack(Tensor sample, string name)
    {
        if (sample.Rank != 3 || !sample.IsFloatingPoint)
            throw new ArgumentException($"{name}: expected a float (C, H, W) tensor but got {sample.DType} of shape {ShapeUtil.Format(sample.Shape)}");
        return (sample.Detach().Float().ToArray(), sample.Size(0), sample.Size(1), sample.Size(2));
    }

    private protected static Tensor Pack(float[] data, int c, int h, int w) => new(data, [c, h, w]);

    /// <summary>
    /// Bilinear resampling with zero fill: output pixel p takes the input at (srcX[p], srcY[p]) (pixel units).
    /// Corners outside the image contribute zero, so integer coordinates reproduce the input exactly.
    /// </summary>
    private protected static float[] Resample(float[] src, int c, int h, int w, float[] srcX, float[] srcY)
    {
        int plane = h * w;
        var dst = new float[src.Length];
        for (int p = 0; p < plane; p++)
        {
            float x = srcX[p], y = srcY[p];
            if (!(x > -1 && x < w && y > -1 && y < h)) continue;
            int x0 = (int)MathF.Floor(x), y0 = (int)MathF.Floor(y);
            float fx = x - x0, fy = y - y0;
            float w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy;
            bool xIn0 = x0 >= 0, xIn1 = x0 + 1 < w, yIn0 = y0 >= 0, yIn1 = y0 + 1 < h;
            for (int ch = 0, off = 0; ch < c; ch++, off += plane)
            {
                float v = 0;
                if (yIn0 && xIn0) v += w00 * src[off + y0 * w + x0];
                if (yIn0 && xIn1) v += w01 * src[off + y0 * w + x0 + 1];
                if (yIn1 && xIn0) v += w10 * src[off + (y0 + 1) * w + x0];
                if (yIn1 && xIn1) v += w11 * src[off + (y0 + 1) * w + x0 + 1];
                dst[off + p] = v;
            }
        }
        return dst;
    }
}

/// <summary>Applies transforms in order (torchvision's <c>Compose</c>).</summary>
public sealed class Compose(params Transform[] transforms) : Transform
{
    /// <summary>The transforms, in application order.</summary>
    public IReadOnlyList<Transform> Transforms { get; } = transforms.ToArray();

    /// <inheritdoc/>
    public override Tensor Apply(Tensor sample, Generator generator)
    {
        foreach (var t in Transforms) sample = t.Apply(sample, generator);
        return sample;
    }
}

/// <summary>Per-channel <c>(x - mean[c]) / std[c]</c>; one value means the same for every channel.</summary>
public sealed class Normalize : Transform
{
    private readonly float[] _mean, _std;

    /// <summary>Creates the transform; every std must be non-zero and finite.</summary>
    public Normalize(float[] mean, float[] std)
    {
        if (mean.Length == 0 || std.Length == 0)
            throw new ArgumentException("Normalize: mean and std need at least one value");
        if (std.Any(s => s == 0 || !float.IsFinite(s)))
            throw new ArgumentException($"Normalize: std must be non-zero and finite, got [{string.Join(", ", std)}]");
        (_mean, _std) = (mean.ToArray(), std.ToArray());
    }

    /// <inheritdoc/>
    public override Tensor Apply(Tensor sample, Generator generator)
    {
        var (x, c, h, w) = Unpack(sample, "Normalize");
        foreach (var (name, len) in new[] { ("mean", _mean.Length), ("std", _std.Length) })
            if (len != 1 && len != c)
                throw new ArgumentException($"Normalize: {name} has {len} values but the sample has {c} channels");
        int plane = h * w;
        for (int ch = 0; ch < c; ch++)
        {
            var s = x.AsSpan(ch * plane, plane);
            TensorPrimitives.Subtract(s, _mean[_mean.Length == 1 ? 0 : ch], s);
            TensorPrimitives.Divide(s, _std[_std.Length == 1 ? 0 : ch], s);
        }
        return Pack(x, c, h, w);
    }
}

/// <summary>Zero-pads by <c>padding</c> on every side, then crops a random <c>size</c> window (torchvision's <c>RandomCrop</c>).</summary>
public sealed class RandomCrop : Transform
{
    private readonly int _h, _w, _pad;

    /// <summary>Creates the transform; <paramref name="size"/> is (H, W) or one value for a square crop.</summary>
    public RandomCrop(int[] size, int padding = 0)
    {
        if (size.Length is not (1 or 2) || size.Any(s => s <= 0))
            throw new ArgumentException($"RandomCrop: size must be one or two positive values, got [{string.Join(", ", size)}]");
        if (padding < 0) throw new ArgumentException($"RandomCrop: padding must be non-negative, got {padding}");
        (_h, _w, _pad) = (size[0], size[^1], padding);
    }

    /// <inheritdoc/>
    public override Tensor Apply(Tensor sample, Generator generator)
    {
        var (x, c, h, w) = Unpack(sample, "RandomCrop");
        int ph = h + 2 * _pad, pw = w + 2 * _pad;
        if (_h > ph || _w > pw)
            throw new ArgumentException($"RandomCrop: crop {_h}x{_w} is larger than the padded input {ph}x{pw}");
        // Window origin in input coordinates (negative inside the padding).
        int top = generator.NextInt(ph - _h + 1) - _pad, left = generator.NextInt(pw - _w + 1) - _pad;
        var dst = new float[c * _h * _w];
        int x0 = Math.Max(0, -left), x1 = Math.Min(_w, w - left);
        for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < _h; i++)
            {
                int sy = top + i;
                if (sy < 0 || sy >= h || x1 <= x0) continue;
                x.AsSpan(ch * h * w + sy * w + left + x0, x1 - x0).CopyTo(dst.AsSpan((ch * _h + i) * _w + x0));
            }
        return Pack(dst, c, _h, _w);
    }
}

/// <summary>Mirrors the sample left-right with probability p (torchvision's <c>RandomHorizontalFlip</c>).</summary>
public sealed class RandomHorizontalFlip : Transform
{
    private readonly double _p;

    /// <summary>Creates the transform; 0 &lt;= p &lt;= 1.</summary>
    public RandomHorizontalFlip(double p = 0.5)
    {
        if (!(p >= 0 && p <= 1)) throw new ArgumentException($"RandomHorizontalFlip: p must be in [0, 1], got {p}");
        _p = p;
    }

    /// <inheritdoc/>
    public override Tensor Apply(Tensor sample, Generator generator)
    {
        var (x, c, h, w) = Unpack(sample, "RandomHorizontalFlip");
        if (generator.NextDouble() < _p)
            for (int row = 0; row < c * h; row++) x.AsSpan(row * w, w).Reverse();
        return Pack(x, c, h, w);
    }
}

/// <summary>
/// Random rotation, translation, scale and shear about the image centre (torchvision's <c>RandomAffine</c>),
/// applied by inverse mapping each output pixel with bilinear sampling and zero fill.
/// </summary>
public sealed class RandomAffine : Transform
{
    private readonly double _degrees;
    private readonly double[]? _translate, _scale, _shear;

    /// <summary>
    /// Creates the transform. Angle ~ U(-degrees, degrees); translate = (fx, fy): shift ~ U(-f*size, f*size) rounded to
    /// whole pixels; scale = (lo, hi); shear in degrees: one value s (x-shear ~ U(-s, s)), two (x-shear range) or four
    /// (x then y range). Null disables a component.
    /// </summary>
    public RandomAffine(double degrees, double[]? translate = null, double[]? scale = null, double[]? shear = null)
    {
        if (!(degrees >= 0) || double.IsInfinity(degrees)) throw new ArgumentException($"RandomAffine: degrees must be non-negative and finite, got {degrees}");
        if (translate != null && (translate.Length != 2 || translate.Any(t => !(t >= 0 && t <= 1))))
            throw new ArgumentException($"RandomAffine: translate must be two fractions in [0, 1], got [{string.Join(", ", translate)}]");
        if (scale != null && (scale.Length != 2 || !(scale[0] > 0) || !(scale[1] >= scale[0]) || double.IsInfinity(scale[1])))
            throw new ArgumentException($"RandomAffine: scale must be (lo, hi) with 0 < lo <= hi, got [{string.Join(", ", scale)}]");
        if (shear != null && (shear.Length is not (1 or 2 or 4) || shear.Any(s => !double.IsFinite(s)) || (shear.Length == 1 && shear[0] < 0)))
            throw new ArgumentException($"RandomAffine: shear must be one non-negative value or 2 or 4 finite values, got [{string.Join(", ", shear)}]");
        (_degrees, _translate, _scale, _shear) = (degrees, translate?.ToArray(), scale?.ToArray(), shear?.ToArray());
    }

    private static double Uniform(Generator g, double lo, double hi) => lo + (hi - lo) * g.NextDouble();

    /// <inheritdoc/>
    public override Tensor Apply(Tensor sample, Generator generator)
    {
        var (x, c, h, w) = Unpack(sample, "RandomAffine");
        var g = generator;
        double angle = Uniform(g, -_degrees, _degrees) * Math.PI / 180;
        double tx = _translate == null ? 0 : Math.Round(Uniform(g, -_translate[0] * w, _translate[0] * w));
        double ty = _translate == null ? 0 : Math.Round(Uniform(g, -_translate[1] * h, _translate[1] * h));
        double s = _scale == null ? 1 : Uniform(g, _scale[0], _scale[1]);
        double shx = 0, shy = 0;
        if (_shear != null)
        {
            shx = _shear.Length == 1 ? Uniform(g, -_shear[0], _shear[0]) : Uniform(g, _shear[0], _shear[1]);
            if (_shear.Length == 4) shy = Uniform(g, _shear[2], _shear[3]);
        }
        return Pack(Warp(x, c, h, w, angle, tx, ty, s, shx, shy), c, h, w);
    }

    /// <summary>
    /// The affine warp for fixed parameters: angle in radians (positive turns clockwise on screen, as torchvision's
    /// <c>F.affine</c>), shift in pixels, scale, shear in degrees. Forward map about the centre c:
    /// p_out = c + t + R * Sh * s * (p_in - c); each output pixel samples the input at the inverse image.
    /// </summary>
    internal static float[] Warp(float[] x, int c, int h, int w, double angle, double tx, double ty, double s, double shx, double shy)
    {
        double cos = Math.Cos(angle), sin = Math.Sin(angle);
        double kx = Math.Tan(shx * Math.PI / 180), ky = Math.Tan(shy * Math.PI / 180);
        // A = R * [[1, kx], [ky, 1]] * s
        double a = s * (cos - sin * ky), b = s * (cos * kx - sin), cc = s * (sin + cos * ky), d = s * (sin * kx + cos);
        double det = a * d - b * cc;
        if (Math.Abs(det) < 1e-12)
            throw new ArgumentException($"RandomAffine: shear ({shx}, {shy}) degrees makes the transform singular");
        double ia = d / det, ib = -b / det, ic = -cc / det, id = a / det;
        double cx = (w - 1) * 0.5, cy = (h - 1) * 0.5;
        var srcX = new float[h * w];
        var srcY = new float[h * w];
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++)
            {
                double u = j - cx - tx, v = i - cy - ty;
                srcX[i * w + j] = (float)(ia * u + ib * v + cx);
                srcY[i * w + j] = (float)(ic * u + id * v + cy);
            }
        return Resample(x, c, h, w, srcX, srcY);
    }
}

/// <summary>
/// Elastic deformation (Simard, Steinkraus &amp; Platt 2003): two displacement fields of U(-1, 1) noise, each
/// smoothed by a Gaussian of std <c>sigma</c> (reflecting borders) and scaled by <c>alpha</c> pixels, shared by all
/// channels and applied by bilinear resampling with zero fill.
/// </summary>
public sealed class ElasticDeformation : Transform
{
    private readonly double _alpha, _sigma;

    /// <summary>Creates the transform; <paramref name="alpha"/> and <paramref name="sigma"/> must be finite and non-negative.</summary>
    public ElasticDeformation(double alpha, double sigma)
    {
        if (!(alpha >= 0) || double.IsInfinity(alpha)) throw new ArgumentException($"ElasticDeformation: alpha must be non-negative and finite, got {alpha}");
        if (!(sigma >= 0) || double.IsInfinity(sigma)) throw new ArgumentException($"ElasticDeformation: sigma must be non-negative and finite, got {sigma}");
        (_alpha, _sigma) = (alpha, sigma);
    }

    /// <inheritdoc/>
    public override Tensor Apply(Tensor sample, Generator generator)
    {
        var (x, c, h, w) = Unpack(sample, "ElasticDeformation");
        var kernel = GaussianKernel(_sigma);
        var srcX = Field(generator, h, w, kernel);
        var srcY = Field(generator, h, w, kernel);
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++)
            {
                srcX[i * w + j] = j + (float)_alpha * srcX[i * w + j];
                srcY[i * w + j] = i + (float)_alpha * srcY[i * w + j];
            }
        return Pack(Resample(x, c, h, w, srcX, srcY), c, h, w);
    }

    /// <summary>Normalised 1-d Gaussian taps, truncated at 4 sigma (as scipy's gaussian_filter).</summary>
    private static float[] GaussianKernel(double sigma)
    {
        if (sigma == 0) return [1f];
        int r = (int)Math.Ceiling(4 * sigma);
        var k = new float[2 * r + 1];
        double sum = 0;
        for (int i = -r; i <= r; i++) sum += Math.Exp(-0.5 * i * i / (sigma * sigma));
        for (int i = -r; i <= r; i++) k[i + r] = (float)(Math.Exp(-0.5 * i * i / (sigma * sigma)) / sum);
        return k;
    }

    private static float[] Field(Generator g, int h, int w, float[] kernel)
    {
        var f = new float[h * w];
        for (int i = 0; i < f.Length; i++) f[i] = (float)(2 * g.NextDouble() - 1);
        var tmp = new float[h * w];
        Blur(f, tmp, h, w, 1, w, kernel);   // along x
        Blur(tmp, f, w, h, w, 1, kernel);   // along y
        return f;
    }

    /// <summary>Separable pass over <paramref name="lines"/> lines of <paramref name="len"/> samples at <paramref name="step"/>.</summary>
    private static void Blur(float[] src, float[] dst, int lines, int len, int step, int lineStride, float[] kernel)
    {
        int r = kernel.Length / 2;
        var padded = new float[len + 2 * r];
        for (int l = 0; l < lines; l++)
        {
            int b = l * lineStride;
            for (int i = -r; i < len + r; i++) padded[i + r] = src[b + Reflect(i, len) * step];
            for (int i = 0; i < len; i++) dst[b + i * step] = TensorPrimitives.Dot(kernel, padded.AsSpan(i, kernel.Length));
        }
    }

    /// <summary>Half-sample symmetric reflection (scipy's 'reflect': d c b a | a b c d | d c b a), any distance.</summary>
    private static int Reflect(int i, int n)
    {
        int period = 2 * n;
        i %= period;
        if (i < 0) i += period;
        return i < n ? i : period - 1 - i;
    }
}
