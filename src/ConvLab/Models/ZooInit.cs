using ConvLab.Autograd;
using ConvLab.NN;

namespace ConvLab.Models;

/// <summary>
/// torchvision's weight initialisations for the zoo. Writes straight into the parameter storage because
/// the per-element <see cref="Init"/> path is too slow for the 100M+ parameters of VGG.
/// </summary>
internal static class ZooInit
{
    /// <summary>Kaiming normal, mode fan_out, relu gain, for every Conv2d weight; conv biases to zero.</summary>
    public static void KaimingNormalConvs(Module model, Generator? generator)
    {
        foreach (var (_, m) in model.NamedModules())
            if (m is Conv2d conv)
            {
                Normal(conv.Weight, Math.Sqrt(2.0 / Init.CalculateFanInAndFanOut(conv.Weight).FanOut), generator);
                if (conv.Bias != null) Init.Zeros_(conv.Bias);
            }
    }

    /// <summary>N(0, std²) weights and zero biases for every Linear (VGG's classifier).</summary>
    public static void NormalLinears(Module model, double std, Generator? generator)
    {
        foreach (var (_, m) in model.NamedModules())
            if (m is Linear fc)
            {
                Normal(fc.Weight, std, generator);
                if (fc.Bias != null) Init.Zeros_(fc.Bias);
            }
    }

    private const int Chunk = 1 << 20;

    /// <summary>
    /// N(0, std²) in place. Large tensors are filled in parallel chunks, each from its own generator seeded
    /// in order from <paramref name="generator"/>, so the result does not depend on the thread schedule.
    /// </summary>
    private static void Normal(Tensor t, double std, Generator? generator)
    {
        var g = generator ?? Generator.Default;
        using var _ = new NoGrad();
        var data = t.Buffer<float>();
        int offset = t.StorageOffset, n = t.Numel, chunks = (n + Chunk - 1) / Chunk;
        if (!t.IsContiguous) throw new InvalidOperationException("zoo init: parameters are contiguous");
        var seeds = new ulong[chunks];
        for (int c = 0; c < chunks; c++) seeds[c] = g.NextUInt64();
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = chunks > 1 ? -1 : 1 }, c =>
        {
            var cg = new Generator(seeds[c]);
            int end = Math.Min(n, (c + 1) * Chunk);
            for (int i = c * Chunk; i < end; i++) data[offset + i] = (float)(std * cg.NextNormal());
        });
    }
}
