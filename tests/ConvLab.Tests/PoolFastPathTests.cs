using ConvLab.Autograd.Nodes;
using ConvLab.Kernels;
using ConvLab.NN;
using ConvLab.NN.Functional;
using CsCheck;
using Xunit;

namespace ConvLab.Tests;

/// <summary>The plain 2-d max-pool kernel (SIMD rows, byte argmax taps) against the generic window loop.</summary>
public class PoolFastPathTests
{
    private sealed record Case(int N, int C, int Kh, int Kw, int Sh, int Sw, int H, int W, bool Ceil, bool F64, uint Seed, int Ph = 0, int Pw = 0)
    {
        public override string ToString() => $"x=[{N},{C},{H},{W}] k=[{Kh},{Kw}] s=[{Sh},{Sw}] p=[{Ph},{Pw}] ceil={Ceil} f64={F64}";
    }

    /// <summary>Max-pool cases with padding up to half the kernel (PyTorch's limit): the −∞-padded route of the plain kernel.</summary>
    private static Gen<Case> PaddedGen =>
        Gen.Select(CaseGen(), Gen.Int[0, 2].Array[2]).Select((c, p) => c with { Ph = Math.Min(p[0], c.Kh / 2), Pw = Math.Min(p[1], c.Kw / 2) });

    private static Gen<Case> CaseGen() => CaseGenValue;

    private static readonly Gen<Case> CaseGenValue =
        Gen.Select(Gen.Int[1, 3], Gen.Int[1, 4], Gen.Int[1, 3].Array[2], Gen.Int[1, 3].Array[2], Gen.Int[0, 19].Array[2], Gen.Bool, Gen.Bool, Gen.UInt)
           .Select((n, c, k, s, extra, ceil, f64, seed) => new Case(n, c, k[0], k[1], s[0], s[1], k[0] + extra[0], k[1] + extra[1], ceil, f64, seed));

    /// <summary>Few distinct values plus NaN and −∞, so windows have ties, NaNs and all −∞ maxima.</summary>
    private static Tensor Input(Case c)
    {
        var rnd = new Random((int)c.Seed);
        double[] pool = [0, 1, 2, -1, double.NaN, double.NegativeInfinity];
        var data = new double[c.N * c.C * c.H * c.W];
        for (int i = 0; i < data.Length; i++) data[i] = rnd.Next(10) < 7 ? rnd.Next(4) : pool[rnd.Next(pool.Length)];
        var x = Tensor.FromArray(data, c.N, c.C, c.H, c.W);
        return c.F64 ? x : x.To(DType.Float32);
    }

    private static (double[] Y, long[] Idx, double[] Gx) Run(Case c, Tensor x0, Tensor gy, bool fast, bool withIndices)
    {
        bool saved = Pool.ForceGeneralPath;
        Pool.ForceGeneralPath = !fast;
        try
        {
            var x = x0.Detach().RequiresGrad_();
            Tensor y; long[] idx = [];
            if (withIndices)
            {
                var (o, i) = F.MaxPool2dWithIndices(x, [c.Kh, c.Kw], [c.Sh, c.Sw], [c.Ph, c.Pw], ceilMode: c.Ceil);
                (y, idx) = (o, i.Contiguous().Buffer<long>()[..o.Numel]);
            }
            else y = new MaxPool2d([c.Kh, c.Kw], [c.Sh, c.Sw], [c.Ph, c.Pw], ceilMode: c.Ceil).Forward(x);
            y.Backward(gy);
            return (y.ToDoubleArray(), idx, x.Grad!.ToDoubleArray());
        }
        finally { Pool.ForceGeneralPath = saved; }
    }

    /// <summary>Values, indices and gradients of the fast path equal the generic loop's bit for bit.</summary>
    private static void AssertFastMatchesGeneric(Case c)
    {
        var x = Input(c);
        var yShape = F.MaxPool2d(x, [c.Kh, c.Kw], [c.Sh, c.Sw], [c.Ph, c.Pw], ceilMode: c.Ceil).Shape.ToArray();
        var gy = Tensor.Randn(yShape, new Generator(c.Seed), dtype: x.DType);
        foreach (bool withIndices in new[] { false, true })
        {
            var fast = Run(c, x, gy, true, withIndices);
            var slow = Run(c, x, gy, false, withIndices);
            // Bitwise: NaN must land where the generic loop puts it and sums accumulate in the same order.
            Assert.Equal(slow.Y.Select(BitConverter.DoubleToInt64Bits), fast.Y.Select(BitConverter.DoubleToInt64Bits));
            Assert.Equal(slow.Idx, fast.Idx);
            Assert.Equal(slow.Gx.Select(BitConverter.DoubleToInt64Bits), fast.Gx.Select(BitConverter.DoubleToInt64Bits));
        }
    }

    [Fact]
    public void FastPathMatchesGenericLoop()
    {
        int plainHits = 0;
        CaseGen().Sample(c =>
        {
            AssertFastMatchesGeneric(c);
            if (!c.Ceil || ((c.H - c.Kh) % c.Sh == 0 && (c.W - c.Kw) % c.Sw == 0)) plainHits++;
        }, iter: 150);
        Assert.True(plainHits > 20, $"only {plainHits} cases took the plain path");
    }

    [Fact]
    public void PaddedFastPathMatchesGenericLoop()
    {
        int paddedHits = 0;
        PaddedGen.Sample(c =>
        {
            if (c.Ph + c.Pw > 0 && new MaxPool2d([c.Kh, c.Kw], [c.Sh, c.Sw], [c.Ph, c.Pw], ceilMode: c.Ceil).Forward(Tensor.Ones([1, 1, c.H, c.W]).RequiresGrad_()).GradFn is MaxPool2dTapsBackward)
                Interlocked.Increment(ref paddedHits);
            AssertFastMatchesGeneric(c);
        }, iter: 150);
        Assert.True(paddedHits > 20, $"only {paddedHits} padded cases took the padded plain route");
    }

    [Fact]
    public void PaddedFastPathGradCheck()
    {
        var perm = Tensor.RandPerm(2 * 3 * 9 * 11, new Generator(8)).ToDoubleArray();
        var x = Tensor.FromArray(perm, 2, 3, 9, 11).RequiresGrad_();
        TestUtil.AssertGradCheck(t => F.MaxPool2d(t[0], [3, 3], [2, 2], [1, 1]), [x]);
        TestUtil.AssertGradCheck(t => F.MaxPool2d(t[0], [3, 2], [2, 2], [1, 0], ceilMode: true), [x]);
    }

    [Fact]
    public void AvgFastPathMatchesGenericLoopBitForBit()
    {
        CaseGen().Sample(c =>
        {
            var x0 = Tensor.Randn([c.N, c.C, c.H, c.W], new Generator(c.Seed), dtype: c.F64 ? DType.Float64 : DType.Float32);
            var yShape = F.AvgPool2d(x0, [c.Kh, c.Kw], [c.Sh, c.Sw], ceilMode: c.Ceil).Shape.ToArray();
            var gy = Tensor.Randn(yShape, new Generator(c.Seed + 1), dtype: x0.DType);
            (long[] Y, long[] Gx) Run(bool fast, int divisor)
            {
                bool saved = Pool.ForceGeneralPath;
                Pool.ForceGeneralPath = !fast;
                try
                {
                    var x = x0.Detach().RequiresGrad_();
                    var y = F.AvgPool2d(x, [c.Kh, c.Kw], [c.Sh, c.Sw], ceilMode: c.Ceil, divisorOverride: divisor == 0 ? null : divisor);
                    y.Backward(gy);
                    return (y.ToDoubleArray().Select(BitConverter.DoubleToInt64Bits).ToArray(), x.Grad!.ToDoubleArray().Select(BitConverter.DoubleToInt64Bits).ToArray());
                }
                finally { Pool.ForceGeneralPath = saved; }
            }
            foreach (int divisor in new[] { 0, 3 })
            {
                var (fy, fgx) = Run(true, divisor);
                var (sy, sgx) = Run(false, divisor);
                Assert.Equal(sy, fy);
                Assert.Equal(sgx, fgx);
            }
        }, iter: 100);
    }

    [Fact]
    public void PlainPathIsTakenOnlyForFullUnpaddedWindows()
    {
        PoolWindows W(int[] k, int[] s, int[] p, int[] d, int[] inS, int[] outS) => PoolWindows.Sliding(inS, outS, k, s, p, d, true);
        Assert.Equal((2, 2, 2, 2), Pool.Plain2d(W([2, 2], [2, 2], [0, 0], [1, 1], [28, 28], [14, 14])));
        Assert.Equal((3, 3, 1, 1), Pool.Plain2d(W([3, 3], [1, 1], [0, 0], [1, 1], [9, 9], [7, 7])));
        Assert.Null(Pool.Plain2d(W([3, 3], [2, 2], [1, 1], [1, 1], [8, 8], [4, 4])));   // padding clips the first window
        Assert.Null(Pool.Plain2d(W([2, 2], [2, 2], [0, 0], [2, 2], [8, 8], [3, 3])));   // dilation
        Assert.Null(Pool.Plain2d(W([2, 2], [2, 2], [0, 0], [1, 1], [5, 5], [3, 3])));   // ceil_mode partial last window
        Assert.Null(Pool.Plain2d(W([2, 2, 2], [2, 2, 2], [0, 0, 0], [1, 1, 1], [4, 4, 4], [2, 2, 2]))); // 3-d
    }

    [Fact]
    public void FastPathGradCheck()
    {
        // Distinct values: every window has a unique maximum, so the numeric gradient exists.
        var perm = Tensor.RandPerm(2 * 3 * 9 * 11, new Generator(7)).ToDoubleArray();
        var x = Tensor.FromArray(perm, 2, 3, 9, 11).RequiresGrad_();
        TestUtil.AssertGradCheck(t => F.MaxPool2d(t[0], [3, 2], [2, 3]), [x]);
        TestUtil.AssertGradCheck(t => F.MaxPool2d(t[0], [2]), [x]);
    }
}
