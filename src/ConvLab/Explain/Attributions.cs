using ConvLab.Autograd;
using ConvLab.NN;
using ConvLab.NN.Functional;

namespace ConvLab.Explain;

/// <summary>
/// Attribution methods in Captum's and pytorch-grad-cam's vocabulary. Every method runs the given model as it is
/// (train/eval mode is the caller's choice), leaves its parameters and their gradients untouched, and works on the
/// autograd graph ConvLab records: layers are found by module path in the traced forward, not by hooks, so in-place
/// style activations, modules called twice and residual adds need no special care. Errors are
/// <see cref="ArgumentException"/>s starting with the method's name.
/// </summary>
/// <remarks>
/// Batched methods (integrated gradients, SmoothGrad, VarGrad, occlusion) build and run at most one batch of perturbed
/// inputs at a time. Maps have the input's dtype (float32 for float32 inputs).
/// </remarks>
public static class Attributions
{
    /// <summary>
    /// Gradient saliency (Simonyan et al., 2014; Captum's <c>Saliency</c>): d target / d input, its absolute value when
    /// <paramref name="abs"/> (Captum's default).
    /// </summary>
    public static Attribution Saliency(Module model, Tensor input, ExplainTarget target, bool abs = true)
    {
        const string op = "saliency";
        Check(model, input, target, op);
        var pass = GradientPass(model, input, target, op);
        var g = pass.InputGrad!;
        return new(op, abs ? g.Abs() : g, pass.Resolved);
    }

    /// <summary>Input × gradient (Captum's <c>InputXGradient</c>).</summary>
    public static Attribution InputXGradient(Module model, Tensor input, ExplainTarget target)
    {
        const string op = "input_x_gradient";
        Check(model, input, target, op);
        var pass = GradientPass(model, input, target, op);
        return new(op, input.Detach().Mul(pass.InputGrad!), pass.Resolved);
    }

    /// <summary>
    /// SmoothGrad (Smilkov et al., 2017; Captum's <c>NoiseTunnel</c> over <c>Saliency</c>): the mean saliency over
    /// <paramref name="nSamples"/> copies of the input with Gaussian noise of standard deviation
    /// <paramref name="stdevFraction"/> × (max − min) of each sample, from a generator seeded with <paramref name="seed"/>.
    /// </summary>
    public static Attribution SmoothGrad(Module model, Tensor input, ExplainTarget target, int nSamples = 50, double stdevFraction = 0.15,
        int seed = 0, bool abs = true, int batchSize = 16)
    {
        const string op = "smoothgrad";
        Check(model, input, target, op);
        var noise = SeededNoise(input, nSamples, stdevFraction, seed, op);
        var (mean, _, resolved) = NoisyGradients(model, input, target, nSamples, noise, abs, batchSize, op);
        return new(op, mean, resolved);
    }

    /// <summary>SmoothGrad with given noise (n, N, C, H, W): the mean over i of the saliency at input + noise[i].</summary>
    public static Attribution SmoothGrad(Module model, Tensor input, ExplainTarget target, Tensor noise, bool abs = true, int batchSize = 16)
    {
        const string op = "smoothgrad";
        Check(model, input, target, op);
        ArgumentNullException.ThrowIfNull(noise);
        if (noise.Rank != input.Rank + 1 || !noise.Shape[1..].SequenceEqual(input.Shape) || noise.Shape[0] < 1)
            throw new ArgumentException($"{op}: noise must have shape (n, {string.Join(", ", input.Shape.ToArray())}), got {ShapeUtil.Format(noise.Shape)}");
        var data = noise.Detach().ToDoubleArray();
        int per = input.Numel;
        var (mean, _, resolved) = NoisyGradients(model, input, target, noise.Shape[0], (i, dest) => Array.Copy(data, (long)i * per, dest, 0, per), abs, batchSize, op);
        return new(op, mean, resolved);
    }

    /// <summary>
    /// VarGrad (Adebayo et al., 2018; Captum's <c>NoiseTunnel</c> with <c>vargrad</c>): the variance (population, over the
    /// <paramref name="nSamples"/> noisy copies, noise as in <see cref="SmoothGrad(Module, Tensor, ExplainTarget, int, double, int, bool, int)"/>)
    /// of the signed gradient.
    /// </summary>
    public static Attribution VarGrad(Module model, Tensor input, ExplainTarget target, int nSamples = 50, double stdevFraction = 0.15,
        int seed = 0, int batchSize = 16)
    {
        const string op = "vargrad";
        Check(model, input, target, op);
        var noise = SeededNoise(input, nSamples, stdevFraction, seed, op);
        var (_, variance, resolved) = NoisyGradients(model, input, target, nSamples, noise, false, batchSize, op);
        return new(op, variance, resolved);
    }

    /// <summary>
    /// Integrated gradients (Sundararajan et al., 2017; Captum's <c>IntegratedGradients</c>): (input − baseline) ×
    /// Σ_i w_i ∇f(baseline + α_i (input − baseline)) with the options' rule, returning the completeness delta
    /// sum(attributions) − (f(input) − f(baseline)) per sample. At most
    /// <see cref="IntegratedGradientsOptions.InternalBatchSize"/> path points are held at a time.
    /// </summary>
    public static Attribution IntegratedGradients(Module model, Tensor input, ExplainTarget target, IntegratedGradientsOptions? options = null)
    {
        const string op = "integrated_gradients";
        Check(model, input, target, op);
        var o = options ?? new IntegratedGradientsOptions();
        if (o.InternalBatchSize < 1) throw new ArgumentException($"{op}: internal batch size must be positive, got {o.InternalBatchSize}");
        var (alphas, weights) = Quadrature.Rule(o.Rule, o.Steps, op);
        var baseline = (o.Baseline ?? throw new ArgumentException($"{op}: baseline is null")).For(input, o.Seed, op);

        var (fx, resolved) = Scores(model, input, target, op);
        var (fb, _) = Scores(model, baseline, target.ForRows(resolved, Enumerable.Range(0, input.Shape[0]).ToArray()), op);
        int n = input.Shape[0], per = input.Numel / n, steps = alphas.Length;
        var x = input.Detach().ToDoubleArray();
        var b = baseline.ToDoubleArray();
        var sum = new double[x.Length];
        var rowTarget = new int[steps * n];
        for (int r = 0; r < rowTarget.Length; r++) rowTarget[r] = r / steps;
        int rows = Math.Min(o.InternalBatchSize, steps * n);
        var batch = new double[rows * per];
        var g = new double[rows * per];
        ForEachBatch(model, steps * n, o.InternalBatchSize, (start, count) =>
        {
            for (int j = 0; j < count; j++)
            {
                int s = (start + j) / steps; double a = alphas[(start + j) % steps];
                for (int e = 0; e < per; e++) batch[j * per + e] = b[s * per + e] + a * (x[s * per + e] - b[s * per + e]);
            }
            var t = BatchTensor(batch, count, input.Shape[1..], input.DType);
            ReadInto(GradientPass(model, t, target.ForRows(resolved, rowTarget.AsSpan(start, count)), op).InputGrad!, g);
            for (int j = 0; j < count; j++)
            {
                int s = (start + j) / steps; double w = weights[(start + j) % steps];
                for (int e = 0; e < per; e++) sum[s * per + e] += w * g[j * per + e];
            }
        });
        var delta = new double[n];
        for (int s = 0; s < n; s++)
        {
            double total = 0;
            for (int e = 0; e < per; e++)
            {
                int i = s * per + e;
                sum[i] *= x[i] - b[i];
                total += sum[i];
            }
            delta[s] = total - (fx[s] - fb[s]);
        }
        return new(op, Tensor.FromArray(sum, input.Shape.ToArray()).To(input.DType), resolved, delta);
    }

    /// <summary>
    /// Guided backpropagation (Springenberg et al., 2015; Captum's <c>GuidedBackprop</c>): the input gradient with every
    /// ReLU's backward passing only positive gradients at positive inputs. The change applies to this call's backward
    /// only (a thread-local switch), never to other passes.
    /// </summary>
    public static Attribution GuidedBackprop(Module model, Tensor input, ExplainTarget target)
    {
        const string op = "guided_backprop";
        Check(model, input, target, op);
        var pass = GradientPass(model, input, target, op, guided: true);
        return new(op, pass.InputGrad!, pass.Resolved);
    }

    /// <summary>
    /// Occlusion (Zeiler and Fergus, 2014; Captum's <c>Occlusion</c>): every position of a window of
    /// <paramref name="window"/> (C, h, w) — or (h, w) over all channels — moved by <paramref name="strides"/> (default
    /// 1 per dimension; floor((size − window) / stride) + 1 positions per dimension) is set to
    /// <paramref name="baselineValue"/>; f(input) − f(occluded) is added to every element of the window and each
    /// element's total divided by the number of windows that covered it (0 where none did). Forward passes only, in
    /// batches of at most <paramref name="batchSize"/> occluded inputs.
    /// </summary>
    public static Attribution Occlusion(Module model, Tensor input, ExplainTarget target, int[] window, int[]? strides = null,
        double baselineValue = 0, int batchSize = 32)
    {
        const string op = "occlusion";
        Check(model, input, target, op, image: true);
        var (win, str) = Windows(input, window, strides, op);
        if (batchSize < 1) throw new ArgumentException($"{op}: batch size must be positive, got {batchSize}");
        int n = input.Shape[0], c = input.Shape[1], h = input.Shape[2], w = input.Shape[3], per = c * h * w;
        int pc = (c - win[0]) / str[0] + 1, ph = (h - win[1]) / str[1] + 1, pw = (w - win[2]) / str[2] + 1, positions = pc * ph * pw;
        var (fx, resolved) = Scores(model, input, target, op);
        var x = input.Detach().ToDoubleArray();
        var total = new double[x.Length];
        var covered = new int[per];
        for (int p = 0; p < positions; p++) ForWindow(p, (e) => covered[e]++);
        var rowTarget = new int[positions * n];
        for (int r = 0; r < rowTarget.Length; r++) rowTarget[r] = r / positions;
        var batch = new double[Math.Min(batchSize, positions * n) * per];
        ForEachBatch(model, positions * n, batchSize, (start, count) =>
        {
            for (int j = 0; j < count; j++)
            {
                int s = (start + j) / positions, p = (start + j) % positions;
                Array.Copy(x, s * per, batch, j * per, per);
                ForWindow(p, e => batch[j * per + e] = baselineValue);
            }
            var (f, _) = Scores(model, BatchTensor(batch, count, input.Shape[1..], input.DType), target.ForRows(resolved, rowTarget.AsSpan(start, count)), op);
            for (int j = 0; j < count; j++)
            {
                int s = (start + j) / positions, p = (start + j) % positions;
                double d = fx[s] - f[j];
                ForWindow(p, e => total[s * per + e] += d);
            }
        });
        for (int i = 0; i < total.Length; i++) total[i] = covered[i % per] > 0 ? total[i] / covered[i % per] : 0;
        return new(op, Tensor.FromArray(total, input.Shape.ToArray()).To(input.DType), resolved);

        void ForWindow(int p, Action<int> visit)
        {
            int c0 = p / (ph * pw) * str[0], y0 = p / pw % ph * str[1], x0 = p % pw * str[2];
            for (int cc = c0; cc < c0 + win[0]; cc++)
                for (int yy = y0; yy < y0 + win[1]; yy++)
                    for (int xx = x0; xx < x0 + win[2]; xx++) visit((cc * h + yy) * w + xx);
        }
    }

    /// <summary>
    /// Class activation map (Zhou et al., 2016) for a network whose <paramref name="layer"/> output A (N, K, h, w) is
    /// globally average-pooled into its final linear layer with weight W: Σ_k W[target, k]·A_k (no ReLU, no bias, no
    /// normalisation). Networks that do not end that way are refused with the reason.
    /// </summary>
    public static Attribution Cam(Module model, Tensor input, ExplainTarget target, string layer)
    {
        const string op = "cam";
        Check(model, input, target, op, image: true);
        if (!target.IsClassification) throw new ArgumentException($"{op}: CAM explains a class of a classifier; the target is {target}");
        LayerCapture.Result run;
        using (new NoGrad()) run = LayerCapture.Forward(model, input.Detach(), layer, op);
        var a = FeatureMap(run, op);
        var (_, resolved) = target.Select(run.Output, input.Shape, op);
        var fc = run.Tracer.Invocations.LastOrDefault(i => i.Module is Linear);
        if (fc.Module is not Linear linear || !ReferenceEquals(fc.Output, run.Output))
            throw new ArgumentException($"{op}: the model must end in global average pooling and a linear layer; its output does not come from a Linear module (use grad_cam)");
        var pooled = a.Mean([2, 3]);
        if (!fc.Input.Shape.SequenceEqual(pooled.Shape) || !fc.Input.Detach().AllClose(pooled.To(fc.Input.DType), 1e-3, 1e-4))
            throw new ArgumentException($"{op}: the final linear layer's input is not the global average pool of layer '{run.Label}' (CAM needs GAP + linear after the layer; use grad_cam)");
        int n = a.Shape[0], k = a.Shape[1];
        var wAll = linear.Weight.Detach().ToDoubleArray();
        var wc = new double[n * k];
        for (int s = 0; s < n; s++) Array.Copy(wAll, (long)resolved[s] * k, wc, s * k, k);
        var cam = WeightedSum(a, Tensor.FromArray(wc, n, k).To(a.DType));
        return new(op, cam, resolved, Layer: run.Label, Upsampled: Upsample(cam, input));
    }

    /// <summary>
    /// Grad-CAM (Selvaraju et al., 2017): weights α_k = spatial mean of d target / d A_k over the layer's output A, map
    /// Σ_k α_k A_k, ReLU'd when <paramref name="relu"/>.
    /// </summary>
    public static Attribution GradCam(Module model, Tensor input, ExplainTarget target, string layer, bool relu = true)
    {
        const string op = "grad_cam";
        Check(model, input, target, op, image: true);
        var pass = GradientPass(model, input, target, op, layer: layer, needInput: false);
        var a = pass.Activation!;
        var cam = WeightedSum(a, pass.ActivationGrad!.Mean([2, 3]));
        if (relu) cam = F.Relu(cam);
        return new(op, cam, pass.Resolved, Layer: pass.Label, Upsampled: Upsample(cam, input));
    }

    /// <summary>
    /// Grad-CAM++ (Chattopadhay et al., 2018, in pytorch-grad-cam's closed form): with g = d target / d A,
    /// a = g² / (2g² + Σ_ij A · g³ + 10⁻⁷) (0 where g = 0), weights Σ_ij a·ReLU(g), map ReLU(Σ_k w_k A_k).
    /// </summary>
    public static Attribution GradCamPlusPlus(Module model, Tensor input, ExplainTarget target, string layer)
    {
        const string op = "grad_cam_plus_plus";
        Check(model, input, target, op, image: true);
        var pass = GradientPass(model, input, target, op, layer: layer, needInput: false);
        var a = pass.Activation!;
        int n = a.Shape[0], k = a.Shape[1], hw = a.Shape[2] * a.Shape[3];
        var av = a.ToDoubleArray();
        var gv = pass.ActivationGrad!.ToDoubleArray();
        var w = new double[n * k];
        for (int p = 0; p < n * k; p++)
        {
            double sumA = 0;
            for (int i = 0; i < hw; i++) sumA += av[p * hw + i];
            double acc = 0;
            for (int i = 0; i < hw; i++)
            {
                double g = gv[p * hw + i];
                if (g == 0) continue;
                double g2 = g * g;
                double alpha = g2 / (2 * g2 + sumA * g2 * g + 1e-7);
                acc += alpha * Math.Max(g, 0);
            }
            w[p] = acc;
        }
        var cam = F.Relu(WeightedSum(a, Tensor.FromArray(w, n, k).To(a.DType)));
        return new(op, cam, pass.Resolved, Layer: pass.Label, Upsampled: Upsample(cam, input));
    }

    /// <summary>
    /// Guided Grad-CAM (Selvaraju et al., 2017): guided backpropagation × the upsampled (ReLU'd) Grad-CAM map, an
    /// input-shaped (N, C, H, W) map.
    /// </summary>
    public static Attribution GuidedGradCam(Module model, Tensor input, ExplainTarget target, string layer)
    {
        const string op = "guided_grad_cam";
        Check(model, input, target, op, image: true);
        var cam = GradCam(model, input, target, layer);
        var gb = GradientPass(model, input, target, op, guided: true);
        return new(op, gb.InputGrad!.Mul(cam.Upsampled!.To(gb.InputGrad!.DType)), gb.Resolved, Layer: cam.Layer);
    }

    /// <summary>
    /// The layer CAM-style methods default to: the module path of the last module call (in completion order) whose
    /// output is a feature map (N, C, h, w) with more than one position, e.g. <c>layer4</c> of a ResNet.
    /// </summary>
    public static string DefaultLayer(Module model, Tensor input)
    {
        const string op = "default_layer";
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(input);
        var tracer = new Analysis.Tracer(model, input.Rank > 0 ? input.Shape[0] : 1);
        using (new NoGrad())
        using (tracer.Activate()) RunModel(model, input.Detach(), op);
        var last = tracer.Invocations.LastOrDefault(c => !ReferenceEquals(c.Module, model) && c.Output.Rank == 4 && c.Output.Shape[2] * c.Output.Shape[3] > 1);
        if (last.Module == null) throw new ArgumentException($"{op}: the model produces no (N, C, h, w) feature map larger than 1x1");
        return tracer.PathOf(last.Module);
    }

    // ---- shared machinery ----

    /// <summary>What one forward + backward gave.</summary>
    internal sealed record Pass(Tensor Output, int[] Resolved, Tensor? InputGrad, Tensor? Activation, Tensor? ActivationGrad, string? Label);

    /// <summary>Runs the model (forward errors are reported under the method's name).</summary>
    internal static Tensor RunModel(Module model, Tensor input, string op)
    {
        try { return model.Call(input); }
        catch (ArgumentException e) when (!e.Message.StartsWith(op + ":", StringComparison.Ordinal))
        {
            throw new ArgumentException($"{op}: the model does not accept an input of shape {ShapeUtil.Format(input.Shape)} ({e.Message})", e);
        }
    }

    /// <summary>
    /// One forward and backward of the target's sum over samples, with the model's parameters detached from the graph
    /// for the pass (their gradients are neither computed nor touched).
    /// </summary>
    internal static Pass GradientPass(Module model, Tensor input, ExplainTarget target, string op, bool guided = false, string? layer = null, bool needInput = true)
    {
        var leaf = input.Detach().ContiguousCopy();
        leaf.RequiresGrad = true;
        var frozen = model.Parameters().Where(p => p.RequiresGrad).ToList();
        foreach (var p in frozen) p.RequiresGrad = false;
        try
        {
            Tensor output; Tensor? act = null; string? label = null;
            using (GradMode.Enable())
            {
                if (layer != null)
                {
                    var run = LayerCapture.Forward(model, leaf, layer, op);
                    (output, act, label) = (run.Output, FeatureMap(run, op), run.Label);
                }
                else output = RunModel(model, leaf, op);
            }
            Tensor scores; int[] resolved;
            using (GradMode.Enable()) (scores, resolved) = target.Select(output, leaf.Shape, op);
            if (!scores.RequiresGrad) throw new ArgumentException($"{op}: the target does not depend on the input");
            Tensor?[] captured;
            using (guided ? GuidedRelu.Enter() : null)
                captured = Engine.Backward(scores.Sum(), null, false, act is { GradFn: not null } ? [act] : null, captureOnly: !needInput && act is { GradFn: not null });
            Tensor? actGrad = null;
            if (act != null)
                actGrad = act.GradFn == null ? (ReferenceEquals(act, leaf) ? leaf.Grad : null) : captured[0];
            if (act != null) actGrad ??= Tensor.Zeros(act.Shape, act.DType);
            var ig = needInput ? leaf.Grad ?? Tensor.Zeros(leaf.Shape, leaf.DType) : null;
            return new(output.Detach(), resolved, ig, act?.Detach(), actGrad, label);
        }
        finally
        {
            foreach (var p in frozen) p.RequiresGrad = true;
        }
    }

    /// <summary>The target's value per sample without gradients, and the resolved targets.</summary>
    internal static (double[] Scores, int[] Resolved) Scores(Module model, Tensor input, ExplainTarget target, string op)
    {
        using var _ = new NoGrad();
        var output = RunModel(model, input.Detach(), op);
        var (s, resolved) = target.Select(output, input.Shape, op);
        return (s.ToDoubleArray(), resolved);
    }

    private static void Check(Module model, Tensor input, ExplainTarget target, string op, bool image = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(target);
        if (!input.IsFloatingPoint || input.IsMeta) throw new ArgumentException($"{op}: input must be a float tensor with data, got {input.DType}{(input.IsMeta ? " (meta)" : "")}");
        if (input.Rank < 1 || input.Shape[0] < 1) throw new ArgumentException($"{op}: input must have a batch dimension with at least one sample, got {ShapeUtil.Format(input.Shape)}");
        if (image && (input.Rank != 4 || input.Numel == 0))
            throw new ArgumentException($"{op}: input must be an image batch (N, C, H, W), got {ShapeUtil.Format(input.Shape)}");
    }

    private static Tensor FeatureMap(LayerCapture.Result run, string op)
    {
        var a = run.Activation;
        if (a.Rank != 4)
            throw new LayerPathException($"{op}: layer '{run.Label}' outputs shape {ShapeUtil.Format(a.Shape)}, not a feature map (N, C, h, w); choose a convolutional layer", run.Label);
        return a;
    }

    /// <summary>Σ_k w[n, k]·A[n, k] → (N, 1, h, w).</summary>
    private static Tensor WeightedSum(Tensor a, Tensor w) =>
        a.Detach().Mul(w.Detach().Reshape(a.Shape[0], a.Shape[1], 1, 1)).Sum(1, keepdim: true);

    private static Tensor Upsample(Tensor cam, Tensor input)
    {
        using var _ = new NoGrad();
        return F.Interpolate(cam, size: [input.Shape[2], input.Shape[3]], mode: "bilinear", alignCorners: false);
    }

    private static (int[] Window, int[] Strides) Windows(Tensor input, int[] window, int[]? strides, string op)
    {
        ArgumentNullException.ThrowIfNull(window);
        int c = input.Shape[1];
        var win = window.Length switch { 3 => window, 2 => [c, window[0], window[1]], _ => throw new ArgumentException($"{op}: window must be (C, h, w) or (h, w), got {window.Length} sizes") };
        var str = strides == null ? [1, 1, 1] : strides.Length switch
        {
            3 => strides,
            2 => [1, strides[0], strides[1]],
            _ => throw new ArgumentException($"{op}: strides must be (C, h, w) or (h, w), got {strides.Length} sizes"),
        };
        for (int d = 0; d < 3; d++)
        {
            if (win[d] < 1 || win[d] > input.Shape[d + 1])
                throw new ArgumentException($"{op}: window {ShapeUtil.Format(win)} does not fit the input's (C, H, W) {ShapeUtil.Format(input.Shape[1..])}");
            if (str[d] < 1) throw new ArgumentException($"{op}: strides must be positive, got {ShapeUtil.Format(str)}");
        }
        return (win, str);
    }

    /// <summary>The recycler of the calling thread's last batched run (tests read its high-water mark).</summary>
    [ThreadStatic] internal static StorageRecycler? LastBatchRecycler;

    /// <summary>
    /// Runs <paramref name="body"/>(start, count) over [0, rows) in chunks of at most <paramref name="batch"/>. Each chunk
    /// is a <see cref="StorageRecycler"/> step (unless the caller has one open), so the same-sized batches reuse their
    /// storage instead of handing hundreds of megabytes per batch to the GC; bodies copy what they keep into arrays.
    /// Within a step, module calls without a graph and the backward recycle what is dead at once (see
    /// <see cref="Module.Call"/>, <see cref="Engine"/>), so the pool holds one batch's working set, not its sum.
    /// </summary>
    internal static void ForEachBatch(Module model, int rows, int batch, Action<int, int> body)
    {
        var recycler = StorageRecycler.StepOpen ? null : new StorageRecycler();
        LastBatchRecycler = recycler;
        for (int start = 0; start < rows; start += batch)
        {
            int count = Math.Min(batch, rows - start);
            // The last, smaller batch needs other sizes than the pool holds: keeping both would hold two batches.
            if (count < batch) recycler?.Trim();
            recycler?.Begin();
            try { body(start, count); }
            finally { recycler?.End(model); }
        }
    }

    /// <summary>
    /// The first <paramref name="count"/> items of <paramref name="values"/> (a buffer the caller reuses for every batch)
    /// as a batch tensor of <paramref name="dtype"/> in recycled storage: no fresh managed array per batch, which would
    /// pile up on the large-object heap until a full collection.
    /// </summary>
    internal static Tensor BatchTensor(double[] values, int count, ReadOnlySpan<int> itemShape, DType dtype)
    {
        int[] shape = [count, .. itemShape];
        var t = Tensor.Uninitialized(shape, dtype);
        int n = t.Numel;
        if (t.Storage is float[] f) for (int i = 0; i < n; i++) f[i] = (float)values[i];
        else Array.Copy(values, (double[])t.Storage, n);
        return t;
    }

    /// <summary>The values of <paramref name="t"/> into <paramref name="dest"/> (reused across batches), in row-major order.</summary>
    internal static void ReadInto(Tensor t, double[] dest)
    {
        if (!t.IsContiguous) t = t.ContiguousCopy();
        int n = t.Numel, o = t.StorageOffset;
        if (t.Storage is float[] f) for (int i = 0; i < n; i++) dest[i] = f[o + i];
        else if (t.Storage is double[] d) Array.Copy(d, o, dest, 0, n);
        else throw new ArgumentException($"explain: expected a float tensor, got {t.DType}");
    }

    /// <summary>Noise i for all samples, drawn row by row from one seeded generator (same values whatever the batch size).</summary>
    private static Action<int, double[]> SeededNoise(Tensor input, int nSamples, double stdevFraction, int seed, string op)
    {
        if (nSamples < 1) throw new ArgumentException($"{op}: n_samples must be positive, got {nSamples}");
        if (!(stdevFraction >= 0) || !double.IsFinite(stdevFraction)) throw new ArgumentException($"{op}: stdev fraction must be a non-negative number, got {stdevFraction}");
        int n = input.Shape[0], per = input.Numel / n;
        var x = input.Detach().ToDoubleArray();
        var sigma = new double[n];
        for (int s = 0; s < n; s++)
        {
            double lo = double.PositiveInfinity, hi = double.NegativeInfinity;
            for (int e = 0; e < per; e++) { lo = Math.Min(lo, x[s * per + e]); hi = Math.Max(hi, x[s * per + e]); }
            sigma[s] = stdevFraction * (hi - lo);
        }
        var g = new Generator((ulong)seed);
        int next = 0;
        return (i, dest) =>
        {
            // Rows are requested in order; the generator's stream is the noise in (i, sample, element) order.
            if (i != next) throw new InvalidOperationException($"{op}: noise rows requested out of order");
            next++;
            for (int s = 0; s < n; s++)
                for (int e = 0; e < per; e++) dest[s * per + e] = sigma[s] * g.NextNormal();
        };
    }

    /// <summary>Mean and population variance over noisy copies of the (absolute) input gradient.</summary>
    private static (Tensor Mean, Tensor Variance, int[] Resolved) NoisyGradients(Module model, Tensor input, ExplainTarget target, int samples,
        Action<int, double[]> noise, bool abs, int batchSize, string op)
    {
        if (batchSize < 1) throw new ArgumentException($"{op}: batch size must be positive, got {batchSize}");
        var (_, resolved) = Scores(model, input, target, op);
        int n = input.Shape[0], per = input.Numel / n;
        var x = input.Detach().ToDoubleArray();
        var sum = new double[x.Length];
        var sq = new double[x.Length];
        var draw = new double[x.Length];
        int drawn = -1;
        var rowTarget = new int[samples * n];
        for (int r = 0; r < rowTarget.Length; r++) rowTarget[r] = r % n;
        int rows = Math.Min(batchSize, samples * n);
        var batch = new double[rows * per];
        var g = new double[rows * per];
        ForEachBatch(model, samples * n, batchSize, (start, count) =>
        {
            for (int j = 0; j < count; j++)
            {
                int i = (start + j) / n, s = (start + j) % n;
                if (i != drawn) { noise(i, draw); drawn = i; }
                for (int e = 0; e < per; e++) batch[j * per + e] = x[s * per + e] + draw[s * per + e];
            }
            var t = BatchTensor(batch, count, input.Shape[1..], input.DType);
            ReadInto(GradientPass(model, t, target.ForRows(resolved, rowTarget.AsSpan(start, count)), op).InputGrad!, g);
            for (int j = 0; j < count; j++)
            {
                int s = (start + j) % n;
                for (int e = 0; e < per; e++)
                {
                    double v = abs ? Math.Abs(g[j * per + e]) : g[j * per + e];
                    sum[s * per + e] += v;
                    sq[s * per + e] += v * v;
                }
            }
        });
        var variance = new double[x.Length];
        for (int i = 0; i < sum.Length; i++)
        {
            sum[i] /= samples;
            variance[i] = Math.Max(sq[i] / samples - sum[i] * sum[i], 0);
        }
        var shape = input.Shape.ToArray();
        return (Tensor.FromArray(sum, shape).To(input.DType), Tensor.FromArray(variance, shape).To(input.DType), resolved);
    }
}
