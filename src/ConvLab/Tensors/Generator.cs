namespace ConvLab;

/// <summary>
/// A seeded random-number generator (xoshiro256**). The same seed gives the same numbers on every
/// machine. <see cref="Default"/> plays the role of PyTorch's global generator (<c>torch.manual_seed</c>).
/// <para>Thread safety: the draws themselves (<see cref="NextUInt64"/>, <see cref="NextDouble"/>, ...) are not synchronised,
/// like <see cref="System.Random"/>. The tensor factories (<see cref="Tensor.Rand"/>, <see cref="Tensor.Randn"/>,
/// <see cref="Tensor.RandInt"/>, <see cref="Tensor.RandPerm"/>) and dropout lock the generator for the whole op, as PyTorch
/// locks its generator's mutex per op, so <see cref="Default"/> (or any generator) may be shared by threads through them:
/// each op then takes one contiguous block of the stream, and which op gets which block depends on scheduling. For
/// reproducible results across threads give each thread its own generator.</para>
/// </summary>
public sealed class Generator
{
    private ulong _s0, _s1, _s2, _s3;
    private double? _spareNormal;

    /// <summary>Creates a generator from a seed.</summary>
    public Generator(ulong seed = 0) => ManualSeed(seed);

    /// <summary>The process-wide generator used when none is passed (shared by all threads; see the class remarks).</summary>
    public static Generator Default { get; } = new(0);

    /// <summary>Re-seeds this generator.</summary>
    public Generator ManualSeed(ulong seed)
    {
        // SplitMix64 expands the seed into the four state words.
        ulong x = seed;
        _s0 = SplitMix(ref x); _s1 = SplitMix(ref x); _s2 = SplitMix(ref x); _s3 = SplitMix(ref x);
        _spareNormal = null;
        return this;
    }

    /// <summary>The full internal state, for checkpoints that resume bit for bit.</summary>
    public ulong[] GetState() => [_s0, _s1, _s2, _s3];

    /// <summary>Restores a state from <see cref="GetState"/>.</summary>
    public void SetState(ulong[] state)
    {
        if (state.Length != 4) throw new ArgumentException($"generator: state must have 4 words, got {state.Length}");
        (_s0, _s1, _s2, _s3) = (state[0], state[1], state[2], state[3]);
        _spareNormal = null;
    }

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>The next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3; _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1).</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, n).</summary>
    public int NextInt(int n)
    {
        if (n <= 0) throw new ArgumentException($"generator: bound must be positive, got {n}");
        return (int)(NextDouble() * n);
    }

    /// <summary>Standard normal (Box–Muller).</summary>
    public double NextNormal()
    {
        if (_spareNormal is double s) { _spareNormal = null; return s; }
        double u1;
        do u1 = NextDouble(); while (u1 <= double.Epsilon);
        double u2 = NextDouble();
        double r = Math.Sqrt(-2 * Math.Log(u1));
        _spareNormal = r * Math.Sin(2 * Math.PI * u2);
        return r * Math.Cos(2 * Math.PI * u2);
    }
}

public sealed partial class Tensor
{
    /// <summary>Uniform samples in [low, high) (PyTorch's <c>torch.rand</c> when low=0, high=1).</summary>
    public static Tensor Rand(ReadOnlySpan<int> shape, Generator? generator = null, double low = 0, double high = 1, DType dtype = DType.Float32)
    {
        var g = generator ?? Generator.Default;
        var t = Zeros(shape, dtype);
        double scale = high - low;
        lock (g)
        {
            if (t.Storage is float[] f) for (int i = 0; i < f.Length; i++) f[i] = (float)(low + scale * g.NextDouble());
            else if (t.Storage is double[] d) for (int i = 0; i < d.Length; i++) d[i] = low + scale * g.NextDouble();
            else for (int i = 0; i < t.Numel; i++) t.SetFlat(i, low + scale * g.NextDouble());
        }
        return t;
    }

    /// <summary>Standard-normal samples scaled by <paramref name="std"/> around <paramref name="mean"/> (PyTorch's <c>torch.randn</c>).</summary>
    public static Tensor Randn(ReadOnlySpan<int> shape, Generator? generator = null, double mean = 0, double std = 1, DType dtype = DType.Float32)
    {
        var g = generator ?? Generator.Default;
        var t = Zeros(shape, dtype);
        lock (g)
        {
            if (t.Storage is float[] f) for (int i = 0; i < f.Length; i++) f[i] = (float)(mean + std * g.NextNormal());
            else if (t.Storage is double[] d) for (int i = 0; i < d.Length; i++) d[i] = mean + std * g.NextNormal();
            else for (int i = 0; i < t.Numel; i++) t.SetFlat(i, mean + std * g.NextNormal());
        }
        return t;
    }

    /// <summary>Uniform random integers in [low, high) as int64 (PyTorch's <c>torch.randint</c>).</summary>
    public static Tensor RandInt(long low, long high, ReadOnlySpan<int> shape, Generator? generator = null)
    {
        if (high <= low) throw new ArgumentException($"randint: high ({high}) must be greater than low ({low})");
        var g = generator ?? Generator.Default;
        var t = Zeros(shape, DType.Int64);
        var d = (long[])t.Storage;
        lock (g) for (int i = 0; i < d.Length; i++) d[i] = low + (long)(g.NextDouble() * (high - low));
        return t;
    }

    /// <summary>A random permutation of 0..n-1 (int64).</summary>
    public static Tensor RandPerm(int n, Generator? generator = null)
    {
        var g = generator ?? Generator.Default;
        var p = new long[n];
        for (int i = 0; i < n; i++) p[i] = i;
        lock (g) for (int i = n - 1; i > 0; i--) { int j = g.NextInt(i + 1); (p[i], p[j]) = (p[j], p[i]); }
        return FromArray(p, n);
    }
}
