using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace ConvLab.Kernels;

/// <summary>The instruction set a GEMM runs on; tests force lower ones to exercise every path.</summary>
internal enum GemmIsa { Scalar, Vector128, Vector256, Vector512 }

/// <summary>
/// One ISA's vector operations for the micro-kernel. The kernel is written once over this interface;
/// struct implementations make the JIT specialise and inline it per ISA and element type.
/// </summary>
internal interface IGemmOps<T, TV> where T : unmanaged where TV : unmanaged
{
    /// <summary>Lanes per vector; a micro-tile is two vectors wide.</summary>
    static abstract int Width { get; }
    /// <summary>Rows of a full micro-tile (MR): as many as the register file holds accumulators for.</summary>
    static abstract int Rows { get; }
    static abstract TV Load(ref T p);
    static abstract void Store(TV v, ref T p);
    static abstract TV Broadcast(T x);
    static abstract TV Fma(TV a, TV b, TV c);
    static abstract TV Add(TV a, TV b);
}

/// <summary>AVX-512: 32 registers hold 14 rows x 2 vectors of accumulators plus two B vectors and a broadcast (measured ~10 % faster than 12 rows on Zen 5).</summary>
internal readonly struct Ops512<T> : IGemmOps<T, Vector512<T>> where T : unmanaged
{
    public static int Width => Vector512<T>.Count;
    public static int Rows => 14;
    public static Vector512<T> Load(ref T p) => Vector512.LoadUnsafe(ref p);
    public static void Store(Vector512<T> v, ref T p) => v.StoreUnsafe(ref p);
    public static Vector512<T> Broadcast(T x) => Vector512.Create(x);
    public static Vector512<T> Add(Vector512<T> a, Vector512<T> b) => a + b;
    public static Vector512<T> Fma(Vector512<T> a, Vector512<T> b, Vector512<T> c) =>
        typeof(T) == typeof(float)
            ? Vector512.FusedMultiplyAdd(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>()
            : Vector512.FusedMultiplyAdd(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();
}

/// <summary>AVX2/FMA: 16 registers hold 6 rows x 2 vectors of accumulators.</summary>
internal readonly struct Ops256<T> : IGemmOps<T, Vector256<T>> where T : unmanaged
{
    public static int Width => Vector256<T>.Count;
    public static int Rows => 6;
    public static Vector256<T> Load(ref T p) => Vector256.LoadUnsafe(ref p);
    public static void Store(Vector256<T> v, ref T p) => v.StoreUnsafe(ref p);
    public static Vector256<T> Broadcast(T x) => Vector256.Create(x);
    public static Vector256<T> Add(Vector256<T> a, Vector256<T> b) => a + b;
    public static Vector256<T> Fma(Vector256<T> a, Vector256<T> b, Vector256<T> c) =>
        typeof(T) == typeof(float)
            ? Vector256.FusedMultiplyAdd(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>()
            : Vector256.FusedMultiplyAdd(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();
}

/// <summary>SSE/NEON: 6 rows x 2 vectors; multiply-add is fused only where the hardware has it.</summary>
internal readonly struct Ops128<T> : IGemmOps<T, Vector128<T>> where T : unmanaged
{
    public static int Width => Vector128<T>.Count;
    public static int Rows => 6;
    public static Vector128<T> Load(ref T p) => Vector128.LoadUnsafe(ref p);
    public static void Store(Vector128<T> v, ref T p) => v.StoreUnsafe(ref p);
    public static Vector128<T> Broadcast(T x) => Vector128.Create(x);
    public static Vector128<T> Add(Vector128<T> a, Vector128<T> b) => a + b;
    public static Vector128<T> Fma(Vector128<T> a, Vector128<T> b, Vector128<T> c)
    {
        if (!System.Runtime.Intrinsics.X86.Fma.IsSupported && !AdvSimd.IsSupported) return a * b + c;
        return typeof(T) == typeof(float)
            ? Vector128.FusedMultiplyAdd(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>()
            : Vector128.FusedMultiplyAdd(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();
    }
}

/// <summary>Scalar fallback (also any element type without a vector path): a 4 x 2 tile.</summary>
internal readonly struct OpsScalar<T> : IGemmOps<T, T> where T : unmanaged, INumber<T>
{
    public static int Width => 1;
    public static int Rows => 4;
    public static T Load(ref T p) => p;
    public static void Store(T v, ref T p) => p = v;
    public static T Broadcast(T x) => x;
    public static T Add(T a, T b) => a + b;
    public static T Fma(T a, T b, T c) => a * b + c;
}

/// <summary>A compile-time row count, so one kernel body serves full tiles and the bottom edge.</summary>
internal interface IRowCount { static abstract int Value { get; } }
internal readonly struct R1 : IRowCount { public static int Value => 1; }
internal readonly struct R2 : IRowCount { public static int Value => 2; }
internal readonly struct R3 : IRowCount { public static int Value => 3; }
internal readonly struct R4 : IRowCount { public static int Value => 4; }
internal readonly struct R5 : IRowCount { public static int Value => 5; }
internal readonly struct R6 : IRowCount { public static int Value => 6; }
internal readonly struct R7 : IRowCount { public static int Value => 7; }
internal readonly struct R8 : IRowCount { public static int Value => 8; }
internal readonly struct R9 : IRowCount { public static int Value => 9; }
internal readonly struct R10 : IRowCount { public static int Value => 10; }
internal readonly struct R11 : IRowCount { public static int Value => 11; }
internal readonly struct R12 : IRowCount { public static int Value => 12; }
internal readonly struct R13 : IRowCount { public static int Value => 13; }
internal readonly struct R14 : IRowCount { public static int Value => 14; }

internal static class GemmKernel
{
    /// <summary>
    /// C[0..rows, 0..2W) (+)= Apanel · Bpanel over kc steps. Apanel holds MR values per step (rows
    /// used, the rest padding), Bpanel 2W values per step. Accumulators live in registers for the
    /// whole K block; C is touched once per tile.
    /// </summary>
    public static void Tile<T, TV, TOps>(int rows, int kc, ref T a, ref T b, ref T c, int ldc, bool add)
        where T : unmanaged where TV : unmanaged where TOps : IGemmOps<T, TV>
    {
        switch (rows)
        {
            case 1: Kernel<T, TV, TOps, R1>(kc, ref a, ref b, ref c, ldc, add); break;
            case 2: Kernel<T, TV, TOps, R2>(kc, ref a, ref b, ref c, ldc, add); break;
            case 3: Kernel<T, TV, TOps, R3>(kc, ref a, ref b, ref c, ldc, add); break;
            case 4: Kernel<T, TV, TOps, R4>(kc, ref a, ref b, ref c, ldc, add); break;
            case 5: Kernel<T, TV, TOps, R5>(kc, ref a, ref b, ref c, ldc, add); break;
            case 6: Kernel<T, TV, TOps, R6>(kc, ref a, ref b, ref c, ldc, add); break;
            case 7: Kernel<T, TV, TOps, R7>(kc, ref a, ref b, ref c, ldc, add); break;
            case 8: Kernel<T, TV, TOps, R8>(kc, ref a, ref b, ref c, ldc, add); break;
            case 9: Kernel<T, TV, TOps, R9>(kc, ref a, ref b, ref c, ldc, add); break;
            case 10: Kernel<T, TV, TOps, R10>(kc, ref a, ref b, ref c, ldc, add); break;
            case 11: Kernel<T, TV, TOps, R11>(kc, ref a, ref b, ref c, ldc, add); break;
            case 12: Kernel<T, TV, TOps, R12>(kc, ref a, ref b, ref c, ldc, add); break;
            case 13: Kernel<T, TV, TOps, R13>(kc, ref a, ref b, ref c, ldc, add); break;
            default: Kernel<T, TV, TOps, R14>(kc, ref a, ref b, ref c, ldc, add); break;
        }
    }

    // Rows beyond TR.Value are dead code the JIT drops, so unused accumulators never take a register.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel<T, TV, TOps, TR>(int kc, ref T a, ref T b, ref T c, int ldc, bool add)
        where T : unmanaged where TV : unmanaged where TOps : IGemmOps<T, TV> where TR : IRowCount
    {
        int w = TOps.Width, mr = TOps.Rows, nr = 2 * w;
        TV c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
           c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default,
           c60 = default, c61 = default, c70 = default, c71 = default, c80 = default, c81 = default,
           c90 = default, c91 = default, cA0 = default, cA1 = default, cB0 = default, cB1 = default,
           cC0 = default, cC1 = default, cD0 = default, cD1 = default;
        // Pull the C tile toward L1 while the K loop runs: its rows are ldc apart, and the misses would otherwise stall the stores.
        if (Sse.IsSupported)
            for (int i = 0; i < TR.Value; i++) { Prefetch(ref Unsafe.Add(ref c, i * ldc)); Prefetch(ref Unsafe.Add(ref c, i * ldc + nr - 1)); }
        ref T ap = ref a, bp = ref b;
        for (int p = 0; p < kc; p++)
        {
            TV b0 = TOps.Load(ref bp), b1 = TOps.Load(ref Unsafe.Add(ref bp, w)), x;
            x = TOps.Broadcast(ap); c00 = TOps.Fma(x, b0, c00); c01 = TOps.Fma(x, b1, c01);
            if (TR.Value > 1) { x = TOps.Broadcast(Unsafe.Add(ref ap, 1)); c10 = TOps.Fma(x, b0, c10); c11 = TOps.Fma(x, b1, c11); }
            if (TR.Value > 2) { x = TOps.Broadcast(Unsafe.Add(ref ap, 2)); c20 = TOps.Fma(x, b0, c20); c21 = TOps.Fma(x, b1, c21); }
            if (TR.Value > 3) { x = TOps.Broadcast(Unsafe.Add(ref ap, 3)); c30 = TOps.Fma(x, b0, c30); c31 = TOps.Fma(x, b1, c31); }
            if (TR.Value > 4) { x = TOps.Broadcast(Unsafe.Add(ref ap, 4)); c40 = TOps.Fma(x, b0, c40); c41 = TOps.Fma(x, b1, c41); }
            if (TR.Value > 5) { x = TOps.Broadcast(Unsafe.Add(ref ap, 5)); c50 = TOps.Fma(x, b0, c50); c51 = TOps.Fma(x, b1, c51); }
            if (TR.Value > 6) { x = TOps.Broadcast(Unsafe.Add(ref ap, 6)); c60 = TOps.Fma(x, b0, c60); c61 = TOps.Fma(x, b1, c61); }
            if (TR.Value > 7) { x = TOps.Broadcast(Unsafe.Add(ref ap, 7)); c70 = TOps.Fma(x, b0, c70); c71 = TOps.Fma(x, b1, c71); }
            if (TR.Value > 8) { x = TOps.Broadcast(Unsafe.Add(ref ap, 8)); c80 = TOps.Fma(x, b0, c80); c81 = TOps.Fma(x, b1, c81); }
            if (TR.Value > 9) { x = TOps.Broadcast(Unsafe.Add(ref ap, 9)); c90 = TOps.Fma(x, b0, c90); c91 = TOps.Fma(x, b1, c91); }
            if (TR.Value > 10) { x = TOps.Broadcast(Unsafe.Add(ref ap, 10)); cA0 = TOps.Fma(x, b0, cA0); cA1 = TOps.Fma(x, b1, cA1); }
            if (TR.Value > 11) { x = TOps.Broadcast(Unsafe.Add(ref ap, 11)); cB0 = TOps.Fma(x, b0, cB0); cB1 = TOps.Fma(x, b1, cB1); }
            if (TR.Value > 12) { x = TOps.Broadcast(Unsafe.Add(ref ap, 12)); cC0 = TOps.Fma(x, b0, cC0); cC1 = TOps.Fma(x, b1, cC1); }
            if (TR.Value > 13) { x = TOps.Broadcast(Unsafe.Add(ref ap, 13)); cD0 = TOps.Fma(x, b0, cD0); cD1 = TOps.Fma(x, b1, cD1); }
            ap = ref Unsafe.Add(ref ap, mr);
            bp = ref Unsafe.Add(ref bp, nr);
        }
        Save<T, TV, TOps>(ref c, c00, c01, add);
        if (TR.Value > 1) Save<T, TV, TOps>(ref Unsafe.Add(ref c, ldc), c10, c11, add);
        if (TR.Value > 2) Save<T, TV, TOps>(ref Unsafe.Add(ref c, 2 * ldc), c20, c21, add);
        if (TR.Value > 3) Save<T, TV, TOps>(ref Unsafe.Add(ref c, 3 * ldc), c30, c31, add);
        if (TR.Value > 4) Save<T, TV, TOps>(ref Unsafe.Add(ref c, 4 * ldc), c40, c41, add);
        if (TR.Value > 5) Save<T, TV, TOps>(ref Unsafe.Add(ref c, 5 * ldc), c50, c51, add);
        if (TR.Value > 6) Save<T, TV, TOps>(ref Unsafe.Add(ref c, 6 * ldc), c60, c61, add);
        if (TR.Value > 7) Save<T, TV, TOps>(ref Unsafe.Add(ref c, 7 * ldc), c70, c71, add);
        if (TR.Value > 8) Save<T, TV, TOps>(ref Unsafe.Add(ref c, 8 * ldc), c80, c81, add);
        if (TR.Value > 9) Save<T, TV, TOps>(ref Unsafe.Add(ref c, 9 * ldc), c90, c91, add);
        if (TR.Value > 10) Save<T, TV, TOps>(ref Unsafe.Add(ref c, 10 * ldc), cA0, cA1, add);
        if (TR.Value > 11) Save<T, TV, TOps>(ref Unsafe.Add(ref c, 11 * ldc), cB0, cB1, add);
        if (TR.Value > 12) Save<T, TV, TOps>(ref Unsafe.Add(ref c, 12 * ldc), cC0, cC1, add);
        if (TR.Value > 13) Save<T, TV, TOps>(ref Unsafe.Add(ref c, 13 * ldc), cD0, cD1, add);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe void Prefetch<T>(ref T p) => Sse.Prefetch0(Unsafe.AsPointer(ref p)); // a hint only: never faults, harmless if the GC moves the array

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Save<T, TV, TOps>(ref T c, TV v0, TV v1, bool add)
        where T : unmanaged where TV : unmanaged where TOps : IGemmOps<T, TV>
    {
        ref T c1 = ref Unsafe.Add(ref c, TOps.Width);
        if (add) { v0 = TOps.Add(v0, TOps.Load(ref c)); v1 = TOps.Add(v1, TOps.Load(ref c1)); }
        TOps.Store(v0, ref c);
        TOps.Store(v1, ref c1);
    }
}
