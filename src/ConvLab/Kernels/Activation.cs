using System.Numerics;
using System.Numerics.Tensors;

namespace ConvLab.Kernels;

/// <summary>The element-wise activations.</summary>
internal enum ActKind { Relu, LeakyRelu, Sigmoid, Tanh, Gelu, GeluTanh, Silu, Elu, Hardswish, Relu6, Softplus, Hardsigmoid }

/// <summary>An activation with its parameters: A is negative_slope / alpha / beta, B is softplus' threshold.</summary>
internal readonly record struct ActSpec(ActKind Kind, double A = 0, double B = 0);

/// <summary>
/// One element-wise activation as a value and a derivative. The derivative sees both the input x and
/// the output y so that each op can use the cheaper (or more accurate) of the two.
/// </summary>
internal interface IActivation<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    T Value(T x);
    T Derivative(T x, T y);
}

/// <summary>Activation forward/backward kernels over contiguous spans, plus softmax over [outer, D, inner].</summary>
internal static class Activation
{
    public static void Forward<T>(ActSpec s, ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T a = T.CreateChecked(s.A), b = T.CreateChecked(s.B);
        switch (s.Kind)
        {
            case ActKind.Relu: TensorPrimitives.Max(x, T.Zero, y); break;
            case ActKind.Sigmoid: TensorPrimitives.Sigmoid(x, y); break;
            case ActKind.Tanh: TensorPrimitives.Tanh(x, y); break;
            case ActKind.Silu: TensorPrimitives.Sigmoid(x, y); TensorPrimitives.Multiply(x, y, y); break;
            case ActKind.LeakyRelu: Map(new LeakyRelu<T>(a), x, y); break;
            case ActKind.Gelu: Map(new Gelu<T>(), x, y); break;
            case ActKind.GeluTanh: Map(new GeluTanh<T>(), x, y); break;
            case ActKind.Elu: Map(new Elu<T>(a), x, y); break;
            case ActKind.Hardswish: Map(new Hardswish<T>(), x, y); break;
            case ActKind.Relu6: Map(new Relu6<T>(), x, y); break;
            case ActKind.Softplus: Map(new Softplus<T>(a, b), x, y); break;
            case ActKind.Hardsigmoid: Map(new Hardsigmoid<T>(), x, y); break;
            default: throw new InvalidOperationException($"activation: unknown kind {s.Kind}");
        }
    }

    /// <summary>gx = gy · f'(x) where y = f(x).</summary>
    public static void Backward<T>(ActSpec s, ReadOnlySpan<T> x, ReadOnlySpan<T> y, ReadOnlySpan<T> gy, Span<T> gx)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T a = T.CreateChecked(s.A), b = T.CreateChecked(s.B);
        switch (s.Kind)
        {
            case ActKind.Sigmoid: // y(1 - y)
                TensorPrimitives.Subtract(T.One, y, gx); TensorPrimitives.Multiply(gx, y, gx);
                TensorPrimitives.Multiply(gx, gy, gx); break;
            case ActKind.Tanh: // 1 - y²
                TensorPrimitives.Multiply(y, y, gx); TensorPrimitives.Subtract(T.One, gx, gx);
                TensorPrimitives.Multiply(gx, gy, gx); break;
            case ActKind.Relu: ReluBackward(x, gy, gx); break;
            case ActKind.LeakyRelu: Chain(new LeakyRelu<T>(a), x, y, gy, gx); break;
            case ActKind.Gelu: Chain(new Gelu<T>(), x, y, gy, gx); break;
            case ActKind.GeluTanh: Chain(new GeluTanh<T>(), x, y, gy, gx); break;
            case ActKind.Silu: Chain(new Silu<T>(), x, y, gy, gx); break;
            case ActKind.Elu: Chain(new Elu<T>(a), x, y, gy, gx); break;
            case ActKind.Hardswish: Chain(new Hardswish<T>(), x, y, gy, gx); break;
            case ActKind.Relu6: Chain(new Relu6<T>(), x, y, gy, gx); break;
            case ActKind.Softplus: Chain(new Softplus<T>(a, b), x, y, gy, gx); break;
            case ActKind.Hardsigmoid: Chain(new Hardsigmoid<T>(), x, y, gy, gx); break;
            default: throw new InvalidOperationException($"activation: unknown kind {s.Kind}");
        }
    }

    private static void Map<T, TAct>(TAct f, ReadOnlySpan<T> x, Span<T> y)
        where T : unmanaged, IFloatingPointIeee754<T> where TAct : struct, IActivation<T>
    {
        for (int i = 0; i < x.Length; i++) y[i] = f.Value(x[i]);
    }

    /// <summary>gx = x &gt; 0 ? gy : 0, a select rather than gy·1{x &gt; 0}: the most frequent backward of a CNN, kept SIMD.</summary>
    private static void ReluBackward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> gy, Span<T> gx) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
            for (; i <= x.Length - Vector<T>.Count; i += Vector<T>.Count)
            {
                var xv = new Vector<T>(x[i..]);
                Vector.ConditionalSelect(Vector.GreaterThan(xv, Vector<T>.Zero), new Vector<T>(gy[i..]), Vector<T>.Zero).CopyTo(gx[i..]);
            }
        for (; i < x.Length; i++) gx[i] = x[i] > T.Zero ? gy[i] : T.Zero;
    }

    /// <summary>
    /// Guided backpropagation's ReLU backward (Springenberg et al., 2015): gx = gy where x &gt; 0 and gy &gt; 0, else 0, so
    /// only positive signal at active units flows back.
    /// </summary>
    public static void GuidedReluBackward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> gy, Span<T> gx) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < x.Length; i++) gx[i] = x[i] > T.Zero && gy[i] > T.Zero ? gy[i] : T.Zero;
    }

    private static void Chain<T, TAct>(TAct f, ReadOnlySpan<T> x, ReadOnlySpan<T> y, ReadOnlySpan<T> gy, Span<T> gx)
        where T : unmanaged, IFloatingPointIeee754<T> where TAct : struct, IActivation<T>
    {
        for (int i = 0; i < x.Length; i++) gx[i] = gy[i] * f.Derivative(x[i], y[i]);
    }

    // Derivatives follow PyTorch's backward formulas exactly, including which side a kink belongs to.
    private readonly struct Relu<T> : IActivation<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public T Value(T x) => x > T.Zero ? x : T.IsNaN(x) ? x : T.Zero;
        public T Derivative(T x, T y) => x > T.Zero ? T.One : T.Zero;
    }

    private readonly struct LeakyRelu<T>(T slope) : IActivation<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public T Value(T x) => x > T.Zero ? x : x * slope;
        public T Derivative(T x, T y) => x > T.Zero ? T.One : slope;
    }

    private readonly struct Gelu<T> : IActivation<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public T Value(T x) => T.CreateTruncating(GeluValue(double.CreateTruncating(x)));
        public T Derivative(T x, T y)
        {
            double v = double.CreateTruncating(x);
            double cdf = 0.5 * (1 + Erf(v * Math.Sqrt(0.5)));
            double pdf = Math.Exp(-0.5 * v * v) / Math.Sqrt(2 * Math.PI);
            return T.CreateTruncating(cdf + v * pdf);
        }
        private static double GeluValue(double v) => 0.5 * v * (1 + Erf(v * Math.Sqrt(0.5)));
    }

    private readonly struct GeluTanh<T> : IActivation<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        private static readonly T K = T.CreateTruncating(Math.Sqrt(2 / Math.PI)), C = T.CreateTruncating(0.044715),
            Half = T.CreateTruncating(0.5), Three = T.CreateTruncating(3);
        public T Value(T x) => Half * x * (T.One + T.Tanh(K * (x + C * x * x * x)));
        public T Derivative(T x, T y)
        {
            T t = T.Tanh(K * (x + C * x * x * x));
            return Half * (T.One + t) + Half * x * (T.One - t * t) * K * (T.One + Three * C * x * x);
        }
    }

    private readonly struct Silu<T> : IActivation<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public T Value(T x) => x / (T.One + T.Exp(-x));
        public T Derivative(T x, T y)
        {
            T s = T.One / (T.One + T.Exp(-x));
            return s * (T.One + x * (T.One - s));
        }
    }

    private readonly struct Elu<T>(T alpha) : IActivation<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public T Value(T x) => x > T.Zero ? x : alpha * ExpM1(x);
        public T Derivative(T x, T y) => x > T.Zero ? T.One : alpha * T.Exp(x);
    }

    private readonly struct Hardswish<T> : IActivation<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        private static readonly T Three = T.CreateTruncating(3), Six = T.CreateTruncating(6), Half = T.CreateTruncating(0.5);
        public T Value(T x) => x <= -Three ? T.Zero : x >= Three ? x : x * (x + Three) / Six;
        public T Derivative(T x, T y) => x < -Three ? T.Zero : x <= Three ? x / Three + Half : T.One;
    }

    private readonly struct Relu6<T> : IActivation<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        private static readonly T Six = T.CreateTruncating(6);
        public T Value(T x) => T.IsNaN(x) ? x : T.Clamp(x, T.Zero, Six);
        public T Derivative(T x, T y) => x <= T.Zero || x >= Six ? T.Zero : T.One;
    }

    private readonly struct Softplus<T>(T beta, T threshold) : IActivation<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        // Above the threshold softplus is the identity (PyTorch's linear region, also avoiding exp overflow).
        public T Value(T x) => x * beta > threshold ? x : Log1p(T.Exp(x * beta)) / beta;
        public T Derivative(T x, T y)
        {
            if (x * beta > threshold) return T.One;
            T z = T.Exp(x * beta);
            return z / (z + T.One);
        }
    }

    private readonly struct Hardsigmoid<T> : IActivation<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        private static readonly T Three = T.CreateTruncating(3), Six = T.CreateTruncating(6), Half = T.CreateTruncating(0.5);
        public T Value(T x) => x <= -Three ? T.Zero : x >= Three ? T.One : x / Six + Half;
        public T Derivative(T x, T y) => x > -Three && x < Three ? T.One / Six : T.Zero;
    }

    /// <summary>log(1 + u) accurate for small u (Goldberg's trick; .NET's LogP1 is log(1 + u) directly).</summary>
    internal static T Log1p<T>(T u) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T w = T.One + u;
        if (w == T.One) return u;
        if (T.IsPositiveInfinity(w)) return w;
        return T.Log(w) * u / (w - T.One);
    }

    /// <summary>exp(x) - 1 accurate for small x (Kahan's trick).</summary>
    internal static T ExpM1<T>(T x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T u = T.Exp(x);
        if (u == T.One) return x;
        T um1 = u - T.One;
        if (um1 == -T.One) return um1;
        return um1 * x / T.Log(u);
    }

    /// <summary>
    /// The error function to about 1e-15 relative. Below 2.5: erf(x) = 2/√π · e^(-x²) · Σ 2ⁿ x^(2n+1)/(2n+1)!!,
    /// a series of positive terms (no cancellation, unlike the Taylor series). From 2.5 to 6: 1 - erfc(x) with
    /// erfc from its continued fraction, which converges quickly there. Beyond 6 erf is 1 in double.
    /// </summary>
    internal static double Erf(double x)
    {
        double a = Math.Abs(x), r;
        if (double.IsNaN(x)) return x;
        if (a < 2.5)
        {
            double x2 = a * a, t = a, s = a;
            for (int n = 0; n < 200 && t > s * 1e-17; n++) { t *= 2 * x2 / (2 * n + 3); s += t; }
            r = 2 / Math.Sqrt(Math.PI) * Math.Exp(-x2) * s;
        }
        else if (a < 6)
        {
            // erfc(a) = e^(-a²)/√π · 1/(a + (1/2)/(a + (2/2)/(a + (3/2)/(a + ...)))), evaluated bottom-up.
            double f = a;
            for (int k = 60; k >= 1; k--) f = a + k * 0.5 / f;
            r = 1 - Math.Exp(-a * a) / Math.Sqrt(Math.PI) / f;
        }
        else r = 1;
        return Math.CopySign(r, x);
    }

    /// <summary>
    /// Softmax (or log-softmax) along the middle axis of [outer, D, inner], stabilised by subtracting the
    /// maximum. With inner = 1 each softmax is one contiguous row; otherwise the D entries of one softmax are
    /// strided, so whole rows of inner elements are processed at once against scratch rows for max and sum.
    /// </summary>
    public static void Softmax<T>(ReadOnlySpan<T> x, int outer, int d, int inner, Span<T> y, bool log)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (d == 0 || inner == 0) return;
        if (inner == 1)
        {
            var tmp = log ? new T[d] : [];
            for (int o = 0; o < outer; o++)
            {
                var yr = y.Slice(o * d, d);
                TensorPrimitives.Subtract(x.Slice(o * d, d), TensorPrimitives.Max(x.Slice(o * d, d)), yr);
                if (log)
                {
                    TensorPrimitives.Exp(yr, tmp);
                    TensorPrimitives.Subtract(yr, T.Log(TensorPrimitives.Sum<T>(tmp)), yr);
                }
                else
                {
                    TensorPrimitives.Exp(yr, yr);
                    TensorPrimitives.Divide(yr, TensorPrimitives.Sum<T>(yr), yr);
                }
            }
            return;
        }
        var m = new T[inner]; var s = new T[inner]; var e = new T[inner];
        for (int o = 0; o < outer; o++)
        {
            var xb = x.Slice(o * d * inner, d * inner); var yb = y.Slice(o * d * inner, d * inner);
            xb.Slice(0, inner).CopyTo(m);
            for (int r = 1; r < d; r++) TensorPrimitives.Max(m, xb.Slice(r * inner, inner), m);
            Array.Clear(s);
            for (int r = 0; r < d; r++)
            {
                var yr = yb.Slice(r * inner, inner);
                TensorPrimitives.Subtract(xb.Slice(r * inner, inner), m, yr);
                if (log) { TensorPrimitives.Exp(yr, e); TensorPrimitives.Add(s, e, s); }
                else { TensorPrimitives.Exp(yr, yr); TensorPrimitives.Add(s, yr, s); }
            }
            if (log) TensorPrimitives.Log(s, s);
            for (int r = 0; r < d; r++)
            {
                var yr = yb.Slice(r * inner, inner);
                if (log) TensorPrimitives.Subtract(yr, s, yr); else TensorPrimitives.Divide(yr, s, yr);
            }
        }
    }

    /// <summary>
    /// Backward of <see cref="Softmax{T}"/> from its output y: softmax gx = y·(gy - Σ gy·y),
    /// log-softmax gx = gy - exp(y)·Σ gy (sums along D).
    /// </summary>
    public static void SoftmaxBackward<T>(ReadOnlySpan<T> y, ReadOnlySpan<T> gy, int outer, int d, int inner, Span<T> gx, bool log)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (d == 0 || inner == 0) return;
        if (inner == 1)
        {
            for (int o = 0; o < outer; o++)
            {
                var yr = y.Slice(o * d, d); var gr = gy.Slice(o * d, d); var dst = gx.Slice(o * d, d);
                if (log) { TensorPrimitives.Exp(yr, dst); TensorPrimitives.MultiplyAdd(dst, -TensorPrimitives.Sum(gr), gr, dst); }
                else TensorPrimitives.AddMultiply(gr, -TensorPrimitives.Dot(gr, yr), yr, dst);
            }
            return;
        }
        var acc = new T[inner];
        for (int o = 0; o < outer; o++)
        {
            int b = o * d * inner;
            Array.Clear(acc);
            for (int r = 0; r < d; r++)
            {
                var gr = gy.Slice(b + r * inner, inner);
                if (log) TensorPrimitives.Add(acc, gr, acc); else TensorPrimitives.MultiplyAdd(gr, y.Slice(b + r * inner, inner), acc, acc);
            }
            for (int r = 0; r < d; r++)
            {
                var yr = y.Slice(b + r * inner, inner); var gr = gy.Slice(b + r * inner, inner); var dst = gx.Slice(b + r * inner, inner);
                if (log) { TensorPrimitives.Exp(yr, dst); TensorPrimitives.Multiply(dst, acc, dst); TensorPrimitives.Subtract(gr, dst, dst); }
                else { TensorPrimitives.Subtract(gr, acc, dst); TensorPrimitives.Multiply(dst, yr, dst); }
            }
        }
    }
}
