using System.Globalization;

namespace ConvLab.Analysis;

/// <summary>
/// One computed quantity with its worked explanation: the general formula, the same formula with the numbers
/// substituted, and the result — e.g. <c>O = floor((227 - 11 + 2*0) / 4) + 1 = 55</c>.
/// </summary>
/// <param name="Symbol">Short name of the quantity (<c>O</c>, <c>MACs</c>, <c>RF</c>).</param>
/// <param name="Formula">The general formula's right-hand side (<c>floor((I - K + 2P) / S) + 1</c>).</param>
/// <param name="Substituted">The right-hand side with numbers substituted (<c>floor((227 - 11 + 2*0) / 4) + 1</c>).</param>
/// <param name="Value">The result.</param>
public sealed record Quantity(string Symbol, string Formula, string Substituted, double Value)
{
    /// <summary>The result as an integer (for counts and sizes; throws when the value is not integral).</summary>
    public long Int => Value == Math.Floor(Value) && Math.Abs(Value) < 9.0e15
        ? (long)Value
        : throw new InvalidOperationException($"{Symbol}: value {Value} is not an integer");

    /// <summary>The worked line: <c>Symbol = substituted = result</c>.</summary>
    public string Explain() => $"{Symbol} = {Substituted} = {Formulas.Num(Value)}";

    /// <summary>The general line: <c>Symbol = formula</c>.</summary>
    public string General() => $"{Symbol} = {Formula}";

    /// <inheritdoc/>
    public override string ToString() => Explain();
}

/// <summary>
/// The single home of every quantity the architecture calculator reports: output sizes of convolution and pooling,
/// parameter counts, MACs/FLOPs per layer type, the receptive-field / jump / start recurrences, activation bytes
/// and the training-memory components. Each method returns a <see cref="Quantity"/> carrying the value and its
/// worked explanation. Conventions: one MAC is one multiply-add; FLOPs = 2·MACs for conv/linear plus one add per
/// output element for a bias; pooling, activations, normalisation and residual adds count operations per element
/// (MACs 0). Everything here is per sample (batch 1) unless a batch is an argument.
/// </summary>
public static class Formulas
{
    /// <summary>Formats a number invariantly: integers without separators, other values with up to 6 significant digits.</summary>
    public static string Num(double v) =>
        v == Math.Floor(v) && Math.Abs(v) < 1e18 ? ((long)v).ToString(CultureInfo.InvariantCulture) : v.ToString("G6", CultureInfo.InvariantCulture);

    private static string N(double v) => Num(v);

    // ------------------------------------------------------------------ output sizes

    /// <summary>Output size of a convolution along one dimension: floor((I + 2P - D·(K-1) - 1) / S) + 1 (the D = 1 form is shown as floor((I - K + 2P) / S) + 1).</summary>
    public static Quantity ConvOutput(int input, int kernel, int stride = 1, int padding = 0, int dilation = 1, bool ceilMode = false)
    {
        string fl = ceilMode ? "ceil" : "floor";
        long num = input + 2L * padding - (long)dilation * (kernel - 1) - 1;
        if (num < 0)
            throw new ArgumentException($"output size: kernel {kernel} (dilation {dilation}) does not fit input {input} with padding {padding}");
        long o = (ceilMode ? (num + stride - 1) / stride : num / stride) + 1;
        // PyTorch drops a last ceil-mode window that would start in the right padding.
        if (ceilMode && (o - 1) * stride >= input + (long)padding) o--;
        return dilation == 1
            ? new("O", $"{fl}((I - K + 2P) / S) + 1", $"{fl}(({input} - {kernel} + 2*{padding}) / {stride}) + 1", o)
            : new("O", $"{fl}((I + 2P - D*(K - 1) - 1) / S) + 1", $"{fl}(({input} + 2*{padding} - {dilation}*({kernel} - 1) - 1) / {stride}) + 1", o);
    }

    /// <summary>Output size of pooling along one dimension (the convolution formula, optionally with ceil mode).</summary>
    public static Quantity PoolOutput(int input, int kernel, int stride, int padding = 0, int dilation = 1, bool ceilMode = false) =>
        ConvOutput(input, kernel, stride, padding, dilation, ceilMode);

    /// <summary>Output size of a transposed convolution: (I - 1)·S - 2P + D·(K - 1) + OP + 1.</summary>
    public static Quantity ConvTransposeOutput(int input, int kernel, int stride = 1, int padding = 0, int outputPadding = 0, int dilation = 1) =>
        new("O", "(I - 1)*S - 2P + D*(K - 1) + OP + 1",
            $"({input} - 1)*{stride} - 2*{padding} + {dilation}*({kernel} - 1) + {outputPadding} + 1",
            (input - 1L) * stride - 2L * padding + (long)dilation * (kernel - 1) + outputPadding + 1);

    // ------------------------------------------------------------------ parameters

    /// <summary>Parameters of a convolution: C_out·(C_in/g)·K_h·K_w (+ C_out for the bias).</summary>
    public static Quantity ConvParams(int inChannels, int outChannels, int kernelH, int kernelW, int groups = 1, bool bias = true)
    {
        long w = (long)outChannels * (inChannels / groups) * kernelH * kernelW;
        string g = groups == 1 ? $"{inChannels}" : $"({inChannels}/{groups})";
        return new("P", "C_out*(C_in/g)*K_h*K_w" + (bias ? " + C_out" : ""),
            $"{outChannels}*{g}*{kernelH}*{kernelW}" + (bias ? $" + {outChannels}" : ""), w + (bias ? outChannels : 0));
    }

    /// <summary>Parameters of a fully connected layer: in·out (+ out for the bias).</summary>
    public static Quantity LinearParams(int inFeatures, int outFeatures, bool bias = true) =>
        new("P", "in*out" + (bias ? " + out" : ""), $"{inFeatures}*{outFeatures}" + (bias ? $" + {outFeatures}" : ""),
            (long)inFeatures * outFeatures + (bias ? outFeatures : 0));

    /// <summary>Parameters of an affine normalisation layer: 2·C (weight and bias).</summary>
    public static Quantity NormParams(int channels, bool affine = true) =>
        new("P", affine ? "2*C" : "0", affine ? $"2*{channels}" : "0", affine ? 2L * channels : 0);

    // ------------------------------------------------------------------ MACs and FLOPs

    /// <summary>MACs of a convolution for one sample: H_out·W_out·C_out·(C_in/g)·K_h·K_w (any spatial rank: the product of all output and kernel sizes).</summary>
    public static Quantity ConvMacs(ReadOnlySpan<int> outSize, int outChannels, int inChannels, int groups, ReadOnlySpan<int> kernel)
    {
        long m = (long)outChannels * (inChannels / groups);
        foreach (var o in outSize) m *= o;
        foreach (var k in kernel) m *= k;
        string sym = outSize.Length == 2 ? "H_out*W_out*C_out*(C_in/g)*K_h*K_w" : "prod(O)*C_out*(C_in/g)*prod(K)";
        string g = groups == 1 ? $"{inChannels}" : $"({inChannels}/{groups})";
        return new("MACs", sym, $"{string.Join("*", outSize.ToArray())}*{outChannels}*{g}*{string.Join("*", kernel.ToArray())}", m);
    }

    /// <summary>MACs of a transposed convolution for one sample: every input pixel scatters C_out/g·prod(K) products, so H_in·W_in·C_in·(C_out/g)·K_h·K_w.</summary>
    public static Quantity ConvTransposeMacs(ReadOnlySpan<int> inSize, int inChannels, int outChannels, int groups, ReadOnlySpan<int> kernel)
    {
        long m = (long)inChannels * (outChannels / groups);
        foreach (var i in inSize) m *= i;
        foreach (var k in kernel) m *= k;
        string g = groups == 1 ? $"{outChannels}" : $"({outChannels}/{groups})";
        return new("MACs", "H_in*W_in*C_in*(C_out/g)*K_h*K_w", $"{string.Join("*", inSize.ToArray())}*{inChannels}*{g}*{string.Join("*", kernel.ToArray())}", m);
    }

    /// <summary>MACs of a fully connected layer for one sample: rows·in·out (rows = product of the leading non-batch dims, usually 1).</summary>
    public static Quantity LinearMacs(int inFeatures, int outFeatures, long rows = 1) =>
        new("MACs", rows == 1 ? "in*out" : "rows*in*out", rows == 1 ? $"{inFeatures}*{outFeatures}" : $"{rows}*{inFeatures}*{outFeatures}", rows * inFeatures * outFeatures);

    /// <summary>MACs of a deformable convolution: the regular conv's plus bilinear sampling, 4 weighted corners per sampled value (C_in·K_h·K_w·H_out·W_out samples).</summary>
    public static Quantity DeformConvMacs(long convMacs, int inChannels, int kernelH, int kernelW, int outH, int outW) =>
        new("MACs", "MACs_conv + 4*C_in*K_h*K_w*H_out*W_out", $"{convMacs} + 4*{inChannels}*{kernelH}*{kernelW}*{outH}*{outW}",
            convMacs + 4L * inChannels * kernelH * kernelW * outH * outW);

    /// <summary>FLOPs of conv/linear: 2·MACs, plus one add per output element when there is a bias.</summary>
    public static Quantity ConvFlops(long macs, long biasAdds) =>
        biasAdds > 0 ? new("FLOPs", "2*MACs + bias adds", $"2*{macs} + {biasAdds}", 2 * macs + biasAdds) : new("FLOPs", "2*MACs", $"2*{macs}", 2 * macs);

    /// <summary>Comparisons of max pooling: (window − 1) per output, summed: Σwindows − outputs.</summary>
    public static Quantity MaxPoolFlops(long windowElements, long outputs) =>
        new("FLOPs", "sum(window) - outputs (comparisons)", $"{windowElements} - {outputs}", windowElements - outputs);

    /// <summary>Operations of average pooling: (window − 1) adds and one divide per output = Σwindows.</summary>
    public static Quantity AvgPoolFlops(long windowElements) =>
        new("FLOPs", "sum(window) (adds + one divide per output)", $"{windowElements}", windowElements);

    /// <summary>Per-element operations (activation: 1, normalisation: 2 as x·scale + shift, residual add: 1 per input beyond the first).</summary>
    public static Quantity ElementwiseFlops(long elements, int opsPerElement, string what) =>
        new("FLOPs", $"N*{opsPerElement} ({what})", $"{elements}*{opsPerElement}", elements * opsPerElement);

    // ------------------------------------------------------------------ receptive field

    /// <summary>Receptive field after a layer: RF_l = RF_{l-1} + (K - 1)·D·j_{l-1}.</summary>
    public static Quantity ReceptiveField(double rfIn, double jumpIn, int kernel, int dilation = 1) =>
        new("RF", "RF_in + (K - 1)*D*j_in", $"{N(rfIn)} + ({kernel} - 1)*{dilation}*{N(jumpIn)}", rfIn + (kernel - 1.0) * dilation * jumpIn);

    /// <summary>Jump (effective stride, input pixels between adjacent outputs): j_l = j_{l-1}·S.</summary>
    public static Quantity Jump(double jumpIn, double stride) =>
        new("j", "j_in*S", $"{N(jumpIn)}*{N(stride)}", jumpIn * stride);

    /// <summary>Centre of the first output's receptive field, in input pixel coordinates: start_l = start_{l-1} + ((K - 1)·D/2 − P)·j_{l-1}.</summary>
    public static Quantity Start(double startIn, double jumpIn, int kernel, int padding, int dilation = 1) =>
        new("start", "start_in + ((K - 1)*D/2 - P)*j_in", $"{N(startIn)} + (({kernel} - 1)*{dilation}/2 - {padding})*{N(jumpIn)}",
            startIn + ((kernel - 1.0) * dilation / 2 - padding) * jumpIn);

    /// <summary>Receptive field after a transposed convolution (stride S upsamples): each output gathers at most floor(D·(K−1)/S)+1 neighbouring inputs.</summary>
    public static Quantity ReceptiveFieldTransposed(double rfIn, double jumpIn, int kernel, int stride, int dilation = 1) =>
        new("RF", "RF_in + floor(D*(K - 1)/S)*j_in", $"{N(rfIn)} + floor({dilation}*({kernel} - 1)/{stride})*{N(jumpIn)}",
            rfIn + Math.Floor((double)dilation * (kernel - 1) / stride) * jumpIn);

    /// <summary>Jump after a transposed convolution: j_l = j_{l-1}/S.</summary>
    public static Quantity JumpTransposed(double jumpIn, int stride) =>
        new("j", "j_in/S", $"{N(jumpIn)}/{stride}", jumpIn / stride);

    /// <summary>Start after a transposed convolution: output 0 sits at input coordinate (P − D·(K−1)/2)/S.</summary>
    public static Quantity StartTransposed(double startIn, double jumpIn, int kernel, int stride, int padding, int dilation = 1) =>
        new("start", "start_in + (P - D*(K - 1)/2)/S*j_in", $"{N(startIn)} + ({padding} - {dilation}*({kernel} - 1)/2)/{stride}*{N(jumpIn)}",
            startIn + (padding - dilation * (kernel - 1.0) / 2) / stride * jumpIn);

    /// <summary>Receptive field when a layer sees the whole extent of a dimension (fully connected, global pooling): RF_in + (I − 1)·j_in.</summary>
    public static Quantity ReceptiveFieldGlobal(double rfIn, double jumpIn, int inputSize) =>
        new("RF", "RF_in + (I - 1)*j_in", $"{N(rfIn)} + ({inputSize} - 1)*{N(jumpIn)}", rfIn + (inputSize - 1.0) * jumpIn);

    // ------------------------------------------------------------------ memory

    /// <summary>Bytes of a tensor: elements · bytes per element.</summary>
    public static Quantity Bytes(long elements, int bytesPerElement = 4, string symbol = "bytes") =>
        new(symbol, "N*bytes", $"{elements}*{bytesPerElement}", elements * (double)bytesPerElement);

    /// <summary>Optimizer state slots per trainable parameter: SGD 0, SGD with momentum 1, RMSprop 1, Adam/AdamW 2.</summary>
    public static int OptimizerSlots(string optimizer) => optimizer.ToLowerInvariant() switch
    {
        "sgd" or "none" => 0,
        "momentum" or "sgd-momentum" or "sgd_momentum" or "rmsprop" => 1,
        "adam" or "adamw" => 2,
        _ => throw new ArgumentException($"optimizer: unknown optimizer '{optimizer}'; expected sgd, momentum, rmsprop, adam or adamw"),
    };

    /// <summary>Optimizer state bytes: slots · trainable parameters · bytes.</summary>
    public static Quantity OptimizerBytes(string optimizer, long trainableParams, int bytesPerElement = 4)
    {
        int slots = OptimizerSlots(optimizer);
        return new("optimizer", $"slots({optimizer})*P_trainable*bytes", $"{slots}*{trainableParams}*{bytesPerElement}", (double)slots * trainableParams * bytesPerElement);
    }

    /// <summary>Total training memory: parameters + gradients + optimizer state + batch·activations kept for backward + workspace.</summary>
    public static Quantity TrainingMemory(double paramBytes, double gradBytes, double optimizerBytes, int batch, double savedBytesPerSample, double workspaceBytes) =>
        new("M_train", "params + grads + optimizer + B*saved_activations + workspace",
            $"{N(paramBytes)} + {N(gradBytes)} + {N(optimizerBytes)} + {batch}*{N(savedBytesPerSample)} + {N(workspaceBytes)}",
            paramBytes + gradBytes + optimizerBytes + batch * savedBytesPerSample + workspaceBytes);

    /// <summary>A ratio of two quantities (for comparisons), explained as a/b.</summary>
    public static Quantity Ratio(string symbol, Quantity a, Quantity b) =>
        new(symbol, $"{a.Symbol}_a / {b.Symbol}_b", $"{N(a.Value)} / {N(b.Value)}", a.Value / b.Value);
}
