using System.Numerics;
using System.Numerics.Tensors;

namespace ConvLab.Kernels;

/// <summary>Element-wise regression losses: the loss of d = input - target.</summary>
internal enum RegressionKind { Mse, L1, SmoothL1, Huber }

/// <summary>
/// Loss kernels. Classification losses work on a (N, C, S) layout (S = product of the spatial
/// dimensions, class stride S) and express every variant — index or probability targets, class
/// weights, label smoothing, ignore_index — as one coefficient tensor a (N, C, S) with
/// loss_e = -Σ_k a_k·logp_k, so forward and backward are shared by cross_entropy and nll_loss.
/// </summary>
internal static class Loss
{
    /// <summary>
    /// Fills a (N, C, S): a_k = w_k·((1-ε)·q_k + ε/C) where q is the one-hot of the class index (or the
    /// given probabilities), and all zeros where the index equals <paramref name="ignoreIndex"/>.
    /// Returns Σ over non-ignored elements of w[target] (the "mean" denominator for index targets).
    /// </summary>
    public static double Coefficients<T>(int n, int c, int s, bool byIndex, ReadOnlySpan<long> index, ReadOnlySpan<T> prob, ReadOnlySpan<T> weight,
        long ignoreIndex, double smoothing, Span<T> a) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T keep = T.CreateChecked(1 - smoothing), spread = T.CreateChecked(c > 0 ? smoothing / c : 0);
        bool weighted = !weight.IsEmpty;
        double weightSum = 0;
        for (int b = 0; b < n; b++)
            for (int j = 0; j < s; j++)
            {
                int e = b * s + j, baseOff = b * c * s + j;
                long t = byIndex ? index[e] : -1;
                if (byIndex && t == ignoreIndex)
                {
                    for (int k = 0; k < c; k++) a[baseOff + k * s] = T.Zero;
                    continue;
                }
                if (byIndex) weightSum += weighted ? double.CreateChecked(weight[(int)t]) : 1;
                for (int k = 0; k < c; k++)
                {
                    int o = baseOff + k * s;
                    T q = byIndex ? (k == t ? T.One : T.Zero) : prob[o];
                    T v = keep * q + spread;
                    a[o] = weighted ? v * weight[k] : v;
                }
            }
        return weightSum;
    }

    /// <summary>Numerically stable log-softmax over the class dimension of (N, C, S).</summary>
    public static void LogSoftmax<T>(ReadOnlySpan<T> x, int n, int c, int s, Span<T> logp) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (s == 1)
        {
            var tmp = new T[c];
            for (int b = 0; b < n && c > 0; b++)
            {
                var row = x.Slice(b * c, c); var dst = logp.Slice(b * c, c);
                T max = TensorPrimitives.Max(row);
                if (!T.IsFinite(max)) max = T.Zero;
                TensorPrimitives.Subtract(row, max, dst);
                TensorPrimitives.Exp<T>(dst, tmp);
                TensorPrimitives.Subtract(dst, T.Log(TensorPrimitives.Sum<T>(tmp)), dst);
            }
            return;
        }
        for (int b = 0; b < n; b++)
            for (int j = 0; j < s; j++)
            {
                int baseOff = b * c * s + j;
                T max = T.NegativeInfinity;
                for (int k = 0; k < c; k++) max = T.Max(max, x[baseOff + k * s]);
                if (!T.IsFinite(max)) max = T.Zero;
                T sum = T.Zero;
                for (int k = 0; k < c; k++) sum += T.Exp(x[baseOff + k * s] - max);
                T lse = max + T.Log(sum);
                for (int k = 0; k < c; k++) logp[baseOff + k * s] = x[baseOff + k * s] - lse;
            }
    }

    /// <summary>loss_e = -Σ_k a_k·logp_k; terms with a_k = 0 are skipped so that -inf log-probabilities of unused classes do not give NaN.</summary>
    public static void ClassLoss<T>(ReadOnlySpan<T> logp, ReadOnlySpan<T> a, int n, int c, int s, Span<T> loss) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int b = 0; b < n; b++)
            for (int j = 0; j < s; j++)
            {
                int baseOff = b * c * s + j;
                T sum = T.Zero;
                for (int k = 0; k < c; k++)
                {
                    T ak = a[baseOff + k * s];
                    if (ak != T.Zero) sum += ak * logp[baseOff + k * s];
                }
                loss[b * s + j] = -sum;
            }
    }

    /// <summary>
    /// Gradient of loss_e w.r.t. the input, scaled by g_e: for logits (softmax inside) g·(p_k·Σa - a_k),
    /// for log-probabilities (nll_loss) -g·a_k.
    /// </summary>
    public static void ClassLossBackward<T>(ReadOnlySpan<T> logp, ReadOnlySpan<T> a, ReadOnlySpan<T> g, int n, int c, int s, bool logits, Span<T> gx)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int b = 0; b < n; b++)
            for (int j = 0; j < s; j++)
            {
                int baseOff = b * c * s + j;
                T ge = g[b * s + j];
                T total = T.Zero;
                if (logits) for (int k = 0; k < c; k++) total += a[baseOff + k * s];
                for (int k = 0; k < c; k++)
                {
                    int o = baseOff + k * s;
                    gx[o] = logits ? ge * (T.Exp(logp[o]) * total - a[o]) : -ge * a[o];
                }
            }
    }

    /// <summary>Per-element regression loss of d = x - y and its derivative ∂loss/∂x (= -∂loss/∂y) when <paramref name="dx"/> is not empty.</summary>
    public static void Regression<T>(RegressionKind kind, double param, ReadOnlySpan<T> x, ReadOnlySpan<T> y, Span<T> loss, Span<T> dx)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T p = T.CreateChecked(param), half = T.CreateChecked(0.5), two = T.CreateChecked(2);
        bool grad = !dx.IsEmpty;
        for (int i = 0; i < loss.Length; i++)
        {
            T d = x[i] - y[i], ad = T.Abs(d);
            T l, g;
            switch (kind)
            {
                case RegressionKind.Mse: l = d * d; g = two * d; break;
                case RegressionKind.L1: l = ad; g = T.CreateChecked(T.Sign(d)); break;
                // beta = 0 is plain L1 (PyTorch), so the quadratic branch needs ad < beta strictly.
                case RegressionKind.SmoothL1:
                    if (ad < p) { l = half * d * d / p; g = d / p; }
                    else { l = ad - half * p; g = T.CreateChecked(T.Sign(d)); }
                    break;
                default:
                    if (ad <= p) { l = half * d * d; g = d; }
                    else { l = p * (ad - half * p); g = p * T.CreateChecked(T.Sign(d)); }
                    break;
            }
            loss[i] = l;
            if (grad) dx[i] = g;
        }
    }

    /// <summary>
    /// Binary cross entropy on logits, stable form (1-y)·x + (1 + (pw-1)·y)·softplus(-x), times w; with
    /// ∂/∂x and ∂/∂y when the derivative spans are not empty. Empty w / pw mean 1.
    /// </summary>
    public static void BceWithLogits<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> y, ReadOnlySpan<T> w, ReadOnlySpan<T> pw, Span<T> loss, Span<T> dx, Span<T> dy)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < loss.Length; i++)
        {
            T xi = x[i], yi = y[i];
            T wi = w.IsEmpty ? T.One : w[i], pwm1 = pw.IsEmpty ? T.Zero : pw[i] - T.One;
            T softplusNeg = T.LogP1(T.Exp(-T.Abs(xi))) + T.Max(-xi, T.Zero);
            T logWeight = T.One + pwm1 * yi;
            loss[i] = wi * ((T.One - yi) * xi + logWeight * softplusNeg);
            if (!dx.IsEmpty)
            {
                T sigmoidNeg = T.One / (T.One + T.Exp(xi));
                dx[i] = wi * (T.One - yi - logWeight * sigmoidNeg);
            }
            if (!dy.IsEmpty) dy[i] = wi * (pwm1 * softplusNeg - xi);
        }
    }
}
