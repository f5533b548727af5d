namespace ConvLab.Autograd;

/// <summary>Outcome of <see cref="GradCheck.Check"/>.</summary>
/// <param name="Ok">True when every analytical gradient matched the numerical one.</param>
/// <param name="Message">The first mismatch (input, element, analytical vs numerical), or "ok".</param>
/// <param name="MaxAbsError">Largest absolute difference seen.</param>
public sealed record GradCheckResult(bool Ok, string Message, double MaxAbsError);

/// <summary>
/// Numeric gradient check (PyTorch's <c>torch.autograd.gradcheck</c>): compares the gradients that
/// backward computes with central finite differences, in float64. The function's output is reduced
/// with a fixed random upstream gradient so that every output element takes part.
/// </summary>
public static class GradCheck
{
    /// <summary>
    /// Checks <paramref name="f"/> at <paramref name="inputs"/>. Inputs must be float64; only those
    /// with RequiresGrad are checked. Passes when |analytical - numerical| &lt;= atol + rtol·|numerical|.
    /// </summary>
    public static GradCheckResult Check(Func<Tensor[], Tensor> f, Tensor[] inputs, double eps = 1e-6, double atol = 1e-5, double rtol = 1e-3, ulong seed = 1234)
    {
        foreach (var x in inputs)
            if (x.RequiresGrad && x.DType != DType.Float64)
                throw new ArgumentException("gradcheck: inputs that require grad must be float64");
        var y0 = f(inputs);
        var upstream = Tensor.Randn(y0.Shape, new Generator(seed), dtype: DType.Float64);

        double Loss()
        {
            using var _ = new NoGrad();
            return f(inputs).Double().Mul(upstream).Sum().Item();
        }

        foreach (var x in inputs) x.Grad = null;
        var loss = f(inputs).Double().Mul(upstream).Sum();
        if (!loss.RequiresGrad) return new(false, "gradcheck: output does not require grad (no input was recorded)", double.PositiveInfinity);
        loss.Backward();

        double maxErr = 0;
        for (int k = 0; k < inputs.Length; k++)
        {
            var x = inputs[k];
            if (!x.RequiresGrad) continue;
            var analytical = x.Grad?.ToDoubleArray() ?? new double[x.Numel];
            var buf = x.Buffer<double>();
            // Enumerate the positions of x's elements in its buffer (x may be a view).
            var positions = new int[x.Numel];
            var idxT = Tensor.Arange(0, buf.Length, dtype: DType.Float64);
            var pos = new Tensor(idxT.Storage, x._shape, x._strides, x._offset).ToDoubleArray();
            for (int i = 0; i < positions.Length; i++) positions[i] = (int)pos[i];
            for (int i = 0; i < x.Numel; i++)
            {
                int p = positions[i];
                double orig = buf[p];
                buf[p] = orig + eps; double lp = Loss();
                buf[p] = orig - eps; double lm = Loss();
                buf[p] = orig;
                double numerical = (lp - lm) / (2 * eps);
                double err = Math.Abs(analytical[i] - numerical);
                maxErr = Math.Max(maxErr, err);
                if (!(err <= atol + rtol * Math.Abs(numerical)))
                    return new(false, $"gradcheck: input {k} element {i}: analytical {analytical[i]:G6} vs numerical {numerical:G6}", maxErr);
            }
        }
        return new(true, "ok", maxErr);
    }
}
