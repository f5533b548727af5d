using ConvLab.NN;
using ConvLab.NN.Functional;

namespace ConvLab.Models;

/// <summary>
/// Scale-pyramid network: the input is turned into an image pyramid x_0 = x, x_{s+1} = avg_pool2d(x_s, 2)
/// (2x2 averaging, S scales), a shared 3x3 stem maps every scale to
/// w channels, and each of L layers updates every scale from
/// the same scale and the next coarser one:
/// <c>f_s' = relu(same(f_s) + coarser(upsample(f_{s+1})))</c> (the coarsest scale has only the first term), with
/// nearest upsampling to the finer scale's exact size. The 3x3 convolutions <c>same</c> and <c>coarser</c> of a
/// layer are shared by all scales, so the parameter count does not depend on the number of scales except through
/// the head: global average pooling of every scale, concatenated (scale 0 first), then <c>fc</c>.
/// After L layers the finest scale has seen information from up to L coarser scales.
/// Keys: <c>stem.weight</c>, <c>layers.{l}.same.weight</c>, <c>layers.{l}.same.bias</c>,
/// <c>layers.{l}.coarser.weight</c> (no bias: <c>same</c> has one), <c>fc.weight</c>, <c>fc.bias</c>.
/// Parameters: (C_in·w·9 + w) + L·(2·w²·9 + w) + (S·w·classes + classes).
/// </summary>
public sealed class ScalePyramid : Module
{
    private readonly Conv2d _stem;
    private readonly (Conv2d Same, Conv2d Coarser)[] _layers;
    private readonly Linear _fc;

    /// <summary>Creates the network (default: 3 scales, 3 layers, width 32).</summary>
    public ScalePyramid(int numClasses = 10, int inChannels = 3, int width = 32, int numScales = 3, int numLayers = 3, Generator? generator = null)
    {
        if (numScales < 1 || numLayers < 0 || width < 1 || inChannels < 1 || numClasses < 1)
            throw new ArgumentException($"scale_pyramid: scales ({numScales}), width ({width}), in_channels ({inChannels}) and classes ({numClasses}) must be positive and layers ({numLayers}) non-negative");
        InChannels = inChannels; NumScales = numScales;
        _stem = RegisterModule("stem", new Conv2d(inChannels, width, 3, padding: 1, generator: generator));
        var layers = RegisterModule("layers", new Sequential());
        _layers = new (Conv2d, Conv2d)[numLayers];
        for (int l = 0; l < numLayers; l++)
        {
            var layer = new PyramidLayer(width, generator);
            layers.Append(layer);
            _layers[l] = (layer.Same, layer.Coarser);
        }
        _fc = RegisterModule("fc", new Linear(numScales * width, numClasses, generator: generator));
    }

    /// <summary>Input channels.</summary>
    public int InChannels { get; }
    /// <summary>Number of pyramid scales (1 = the input only).</summary>
    public int NumScales { get; }

    /// <summary>The image pyramid of <paramref name="input"/> (N, C, H, W): scale 0 is the input, each next scale its 2x2 average.</summary>
    public Tensor[] Pyramid(Tensor input)
    {
        if (input.Rank != 4 || input.Shape[1] != InChannels)
            throw new ArgumentException($"scale_pyramid: expected input (N, {InChannels}, H, W), got {ShapeUtil.Format(input.Shape)}");
        int min = 1 << (NumScales - 1);
        if (input.Shape[2] < min || input.Shape[3] < min)
            throw new ArgumentException($"scale_pyramid: {NumScales} scales need H and W of at least {min}, got {ShapeUtil.Format(input.Shape)}");
        var p = new Tensor[NumScales];
        p[0] = input;
        for (int s = 1; s < NumScales; s++) p[s] = F.AvgPool2d(p[s - 1], [2]);
        return p;
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        var pooled = ScaleFeatures(input).Select(x => F.GlobalAvgPool2d(x).Flatten(1)).ToArray();
        return _fc.Call(Tensor.Cat(pooled, 1));
    }

    /// <summary>The feature map of every scale after the last layer (scale 0 first): what the head pools.</summary>
    public Tensor[] ScaleFeatures(Tensor input)
    {
        var f = Pyramid(input).Select(x => F.Relu(_stem.Call(x))).ToArray();
        foreach (var (same, coarser) in _layers)
        {
            var next = new Tensor[f.Length];
            for (int s = 0; s < f.Length; s++)
            {
                var y = same.Call(f[s]);
                if (s + 1 < f.Length)
                    y = y.Add(coarser.Call(F.Interpolate(f[s + 1], size: [f[s].Shape[2], f[s].Shape[3]])));
                next[s] = F.Relu(y);
            }
            f = next;
        }
        return f;
    }

    /// <summary>One pyramid layer: the shared same-scale and coarser-scale convolutions (applied by <see cref="ScalePyramid.Forward"/>).</summary>
    private sealed class PyramidLayer : Module
    {
        public PyramidLayer(int width, Generator? g)
        {
            Same = RegisterModule("same", new Conv2d(width, width, 3, padding: 1, generator: g));
            Coarser = RegisterModule("coarser", new Conv2d(width, width, 3, padding: 1, bias: false, generator: g));
        }

        public Conv2d Same { get; }
        public Conv2d Coarser { get; }

        public override Tensor Forward(Tensor input) =>
            throw new InvalidOperationException("scale_pyramid: a pyramid layer needs two scales; it is run by ScalePyramid.Forward");
    }
}
