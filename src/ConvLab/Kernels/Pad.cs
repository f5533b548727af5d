using System.Numerics;

namespace ConvLab.Kernels;

/// <summary>Padding modes of <c>F.pad</c>.</summary>
internal enum PadMode { Constant, Reflect, Replicate, Circular }

/// <summary>
/// N-d padding as a gather through per-dimension index maps (output index → source index, or -1 for
/// the fill value); the backward is the matching scatter-add, which folds reflected, replicated and
/// wrapped positions back onto their sources.
/// </summary>
internal static class Pad
{
    /// <summary>Source index for each output index of one dimension padded by (before, after).</summary>
    public static int[] IndexMap(int size, int before, int after, PadMode mode)
    {
        var map = new int[size + before + after];
        for (int o = 0; o < map.Length; o++)
        {
            int i = o - before;
            map[o] = mode switch
            {
                PadMode.Constant => (uint)i < (uint)size ? i : -1,
                PadMode.Replicate => Math.Clamp(i, 0, size - 1),
                PadMode.Circular => ((i % size) + size) % size,
                _ => i < 0 ? -i : i >= size ? 2 * (size - 1) - i : i,
            };
        }
        return map;
    }

    /// <summary>
    /// Gather (<paramref name="scatter"/> false: dst[o] = src[map(o)] or fill) or its adjoint (true:
    /// src[map(o)] += dst[o]) over a dense tensor of <paramref name="outer"/> unpadded leading planes,
    /// each with the padded trailing dimensions described by <paramref name="inSize"/> and <paramref name="maps"/>.
    /// </summary>
    public static void Transfer<T>(bool scatter, T[] src, int srcOff, T[] dst, int dstOff, int outer, int[] inSize, int[][] maps, T fill)
        where T : unmanaged, INumber<T>
    {
        int m = inSize.Length, last = m - 1;
        var inStrides = ShapeUtil.ContiguousStrides(inSize);
        int inPlane = ShapeUtil.Numel(inSize), lineLen = maps[last].Length, lines = 1;
        for (int j = 0; j < last; j++) lines *= maps[j].Length;
        var lastMap = maps[last];
        Span<int> idx = stackalloc int[m];
        int o = dstOff;
        for (int b = 0; b < outer; b++)
        {
            int plane = srcOff + b * inPlane;
            idx.Clear();
            for (int l = 0; l < lines; l++)
            {
                int baseOff = plane;
                for (int j = 0; j < last && baseOff >= 0; j++)
                {
                    int si = maps[j][idx[j]];
                    baseOff = si < 0 ? -1 : baseOff + si * inStrides[j];
                }
                if (!scatter)
                    for (int t = 0; t < lineLen; t++)
                        dst[o + t] = baseOff < 0 || lastMap[t] < 0 ? fill : src[baseOff + lastMap[t]];
                else if (baseOff >= 0)
                    for (int t = 0; t < lineLen; t++)
                        if (lastMap[t] >= 0) src[baseOff + lastMap[t]] += dst[o + t];
                o += lineLen;
                for (int q = last - 1; q >= 0; q--)
                {
                    if (++idx[q] < maps[q].Length) break;
                    idx[q] = 0;
                }
            }
        }
    }
}
