using ConvLab.NN;
using ConvLab.NN.Functional;
using CsCheck;
using Xunit;

namespace ConvLab.Tests;

public class ResampleTests
{
    private static readonly string[] LinearModes = ["", "", "", "linear", "bilinear", "trilinear"];

    /// <summary>Direct (non-separable) interpolation: each output sums the 2^k corner taps, coordinates per PyTorch 1.13.</summary>
    private static double[] NaiveInterpolate(Tensor x, int[] outSize, double[]? scales, bool nearest, bool align)
    {
        var shape = x.Shape.ToArray(); int k = shape.Length - 2;
        var src = x.ToDoubleArray();
        var taps = new (int lo, int hi, double l)[k][];
        for (int d = 0; d < k; d++)
        {
            int i = shape[2 + d], o = outSize[d];
            double? sf = scales?[scales.Length == 1 ? 0 : d];
            taps[d] = new (int, int, double)[o];
            for (int j = 0; j < o; j++)
            {
                if (nearest)
                {
                    float sc = sf.HasValue ? (float)(1 / sf.Value) : (float)i / o;
                    int idx = o == i ? j : o == 2 * i ? j / 2 : Math.Min((int)MathF.Floor(j * sc), i - 1);
                    taps[d][j] = (idx, idx, 0);
                    continue;
                }
                double sc2 = align ? (o > 1 ? (i - 1.0) / (o - 1) : 0) : sf.HasValue ? 1 / sf.Value : (double)i / o;
                double s = align ? sc2 * j : Math.Max(sc2 * (j + 0.5) - 0.5, 0);
                int lo = Math.Min((int)Math.Floor(s), i - 1);
                taps[d][j] = (lo, Math.Min(lo + 1, i - 1), Math.Clamp(s - lo, 0, 1));
            }
        }
        int[] oshape = [shape[0], shape[1], .. outSize];
        var result = new double[ShapeUtil.Numel(oshape)];
        var inStrides = ShapeUtil.ContiguousStrides(shape);
        for (int flat = 0; flat < result.Length; flat++)
        {
            int rem = flat; var idx = new int[oshape.Length];
            for (int d = oshape.Length - 1; d >= 0; d--) { idx[d] = rem % oshape[d]; rem /= oshape[d]; }
            double sum = 0;
            for (int corner = 0; corner < 1 << k; corner++)
            {
                double w = 1; int off = idx[0] * inStrides[0] + idx[1] * inStrides[1];
                for (int d = 0; d < k; d++)
                {
                    var (lo, hi, l) = taps[d][idx[2 + d]];
                    bool up = (corner >> d & 1) != 0;
                    w *= up ? l : 1 - l;
                    off += (up ? hi : lo) * inStrides[2 + d];
                }
                sum += w * src[off];
            }
            result[flat] = sum;
        }
        return result;
    }

    [Fact]
    public void InterpolateMatchesDirectFormulaAndGradChecks()
    {
        Gen.Select(Gen.Int[1, 3], Gen.Int[0, 1], Gen.Bool, Gen.Int[0, 2], Gen.UInt).Sample((k, nearestFlag, bySize, alignFlag, seed) =>
        {
            var g = new Generator(seed);
            bool nearest = nearestFlag == 0;
            string mode = nearest ? "nearest" : LinearModes[k + 2];
            bool? align = nearest || alignFlag == 2 ? null : alignFlag == 1;
            int[] inShape = [1 + g.NextInt(2), 1 + g.NextInt(2), .. Enumerable.Range(0, k).Select(_ => 1 + g.NextInt(k == 3 ? 3 : 4))];
            var x = TestUtil.RandD(g, inShape);
            int[]? size = null; double[]? scales = null;
            if (bySize) size = Enumerable.Range(0, k).Select(_ => 1 + g.NextInt(k == 3 ? 4 : 6)).ToArray();
            else scales = Enumerable.Range(0, g.NextInt(2) == 0 ? 1 : k).Select(_ => new[] { 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0 }[g.NextInt(7)]).ToArray();
            int[] outSize = size ?? Enumerable.Range(0, k).Select(d => (int)Math.Floor(inShape[2 + d] * scales![scales.Length == 1 ? 0 : d])).ToArray();
            Func<Tensor[], Tensor> f = a => F.Interpolate(a[0], size, scales, mode, align);
            if (outSize.Any(o => o <= 0)) { TestUtil.AssertOpError("interpolate", () => f([x])); return; }
            var y = f([x]);
            Assert.Equal([inShape[0], inShape[1], .. outSize], y.Shape.ToArray());
            var want = NaiveInterpolate(x, outSize, scales, nearest, align ?? false);
            var got = y.ToDoubleArray();
            for (int i = 0; i < want.Length; i++) Assert.Equal(want[i], got[i], 1e-12);
            TestUtil.AssertGradCheck(f, [x]);
        }, iter: 40);
    }

    [Fact]
    public void NearestUsesScaleFactorNotSizeRatio()
    {
        // 5 → floor(5·1.3) = 6 outputs: PyTorch maps with 1/1.3 (0,0,1,2,3,3), whereas size 6 maps with 5/6 (0,0,1,2,3,4).
        var x = Tensor.FromArray(new float[] { 0, 1, 2, 3, 4 }, 1, 1, 5);
        Assert.Equal([0f, 0, 1, 2, 3, 3], F.Interpolate(x, scaleFactor: [1.3]).ToArray());
        Assert.Equal([0f, 0, 1, 2, 3, 4], F.Interpolate(x, size: [6]).ToArray());
    }

    [Fact]
    public void ShufflesMoveElementsAsDefinedAndRoundTrip()
    {
        Gen.Select(Gen.Int[1, 3], Gen.Int[1, 3], Gen.Int[1, 3], Gen.Int[1, 3], Gen.Bool, Gen.UInt).Sample((r, c, h, w, batchDim, seed) =>
        {
            var g = new Generator(seed);
            int[] lead = batchDim ? [2] : [];
            var x = TestUtil.RandD(g, [.. lead, c * r * r, h, w]);
            var y = F.PixelShuffle(x, r);
            Assert.Equal([.. lead, c, h * r, w * r], y.Shape.ToArray());
            int b0 = lead.Length;
            for (int ci = 0; ci < c; ci++)
                for (int i = 0; i < h * r; i++)
                    for (int j = 0; j < w * r; j++)
                    {
                        int[] yi = [.. Enumerable.Repeat(b0 == 1 ? 1 : 0, b0), ci, i, j];
                        int[] xi = [.. Enumerable.Repeat(b0 == 1 ? 1 : 0, b0), ci * r * r + (i % r) * r + j % r, i / r, j / r];
                        Assert.Equal(x[xi], y[yi]);
                    }
            Assert.Equal(x.ToDoubleArray(), F.PixelUnshuffle(y, r).ToDoubleArray());
            TestUtil.AssertGradCheck(a => F.PixelShuffle(a[0], r), [x]);
            TestUtil.AssertGradCheck(a => F.PixelUnshuffle(a[0], r), [y.Detach().RequiresGrad_()]);

            int groups = r, cs = c * groups;
            var z = TestUtil.RandD(g, 2, cs, h, w);
            var s = F.ChannelShuffle(z, groups);
            for (int k = 0; k < cs; k++)
                Assert.Equal(z[1, (k % groups) * c + k / groups, h - 1, 0], s[1, k, h - 1, 0]);
            TestUtil.AssertGradCheck(a => F.ChannelShuffle(a[0], groups), [z]);
        }, iter: 20);
    }

    /// <summary>Random, often invalid, arguments: either the expected shape or an ArgumentException naming the op.</summary>
    [Fact]
    public void InvalidArgumentsThrowArgumentExceptionNamingTheOp()
    {
        string[] modes = ["nearest", "linear", "bilinear", "trilinear", "bicubic"];
        Gen.Select(Gen.Int[0, 3], Gen.Int[1, 6], Gen.Int[-1, 4], Gen.Int[-1, 3], Gen.Int[0, 4], Gen.UInt).Sample((op, rank, dim, factor, modeIdx, seed) =>
        {
            var g = new Generator(seed);
            var shape = Enumerable.Range(0, rank).Select(_ => Math.Max(0, dim + g.NextInt(3) - 1)).ToArray();
            var x = Tensor.Randn(shape, g);
            string mode = modes[modeIdx];
            int[]? size = g.NextInt(3) == 0 ? null : Enumerable.Range(0, 1 + g.NextInt(3)).Select(_ => factor + g.NextInt(3)).ToArray();
            double[]? scale = g.NextInt(3) == 0 ? null : Enumerable.Range(0, 1 + g.NextInt(3)).Select(_ => factor * 0.7).ToArray();
            bool? align = g.NextInt(3) switch { 0 => null, 1 => true, _ => false };
            var (name, call) = op switch
            {
                0 => ("interpolate", () => F.Interpolate(x, size, scale, mode, align)),
                1 => ("pixel_shuffle", () => F.PixelShuffle(x, factor)),
                2 => ("pixel_unshuffle", () => F.PixelUnshuffle(x, factor)),
                _ => ("channel_shuffle", (Func<Tensor>)(() => F.ChannelShuffle(x, factor))),
            };
            try
            {
                var y = call();
                Assert.Equal(x.Numel == 0 ? 0 : op == 0 ? y.Numel : x.Numel, y.Numel);
                Assert.Equal(x.Rank, y.Rank);
                if (op == 0) Assert.Equal(x.Shape[..2].ToArray(), y.Shape[..2].ToArray());
                if (op == 3) Assert.Equal(x.Shape.ToArray(), y.Shape.ToArray());
            }
            catch (ArgumentException e) { Assert.StartsWith(name + ":", e.Message); }
        }, iter: 400);
    }

    [Fact]
    public void ModulesMatchFunctionalAndValidateArguments()
    {
        var g = new Generator(5);
        var x = Tensor.Randn([1, 8, 3, 4], g);
        var up = new Upsample(scaleFactor: [2.0], mode: "bilinear", alignCorners: true);
        Assert.Empty(up.StateDict());
        Assert.Equal(F.Interpolate(x, scaleFactor: [2.0], mode: "bilinear", alignCorners: true).ToArray(), up.Forward(x).ToArray());
        Assert.Equal("Upsample(scale_factor=(2.0), mode=bilinear, align_corners=True)", up.ToString());
        Assert.Equal(F.PixelShuffle(x, 2).ToArray(), new PixelShuffle(2).Forward(x).ToArray());
        Assert.Equal(F.PixelUnshuffle(x, 1).ToArray(), new PixelUnshuffle(1).Forward(x).ToArray());
        Assert.Equal(F.ChannelShuffle(x, 4).ToArray(), new ChannelShuffle(4).Forward(x).ToArray());
        Assert.StartsWith("Upsample:", Assert.Throws<ArgumentException>(() => new Upsample()).Message);
        Assert.StartsWith("Upsample:", Assert.Throws<ArgumentException>(() => new Upsample([2], [2.0])).Message);
        Assert.StartsWith("Upsample:", Assert.Throws<ArgumentException>(() => new Upsample([2], alignCorners: false)).Message);
        Assert.StartsWith("PixelShuffle:", Assert.Throws<ArgumentException>(() => new PixelShuffle(0)).Message);
        Assert.StartsWith("PixelUnshuffle:", Assert.Throws<ArgumentException>(() => new PixelUnshuffle(-1)).Message);
        Assert.StartsWith("ChannelShuffle:", Assert.Throws<ArgumentException>(() => new ChannelShuffle(0)).Message);
        TestUtil.AssertOpError("channel_shuffle", () => new ChannelShuffle(3).Forward(x));
    }
}
