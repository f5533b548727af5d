using ConvLab.NN;

namespace ConvLab.Models;

/// <summary>A sequence whose children carry explicit names (PyTorch's <c>nn.Sequential(OrderedDict(...))</c>), so state-dict keys read <c>features.conv0.weight</c>.</summary>
internal sealed class NamedSequential : Module
{
    private readonly List<Module> _layers = [];

    /// <summary>Appends <paramref name="layer"/> under <paramref name="name"/>.</summary>
    public NamedSequential Add(string name, Module layer)
    {
        _layers.Add(RegisterModule(name, layer));
        return this;
    }

    public override Tensor Forward(Tensor input)
    {
        foreach (var l in _layers) input = l.Call(input);
        return input;
    }
}

/// <summary>Helpers shared by the zoo models: torchvision's channel rounding and weight initialisation.</summary>
internal static class ModelParts
{
    /// <summary>torchvision's <c>_make_divisible</c>: rounds to the nearest multiple of <paramref name="divisor"/>, never dropping more than 10%.</summary>
    public static int MakeDivisible(double v, int divisor = 8)
    {
        int n = Math.Max(divisor, (int)(v + divisor / 2.0) / divisor * divisor);
        return n < 0.9 * v ? n + divisor : n;
    }

    /// <summary>Conv (no bias) → BatchNorm → activation, as torchvision's <c>Conv2dNormActivation</c> (keys .0, .1).</summary>
    public static Sequential ConvBnAct(int inCh, int outCh, int kernel, int stride, int groups, Module activation, Generator? g) =>
        new(new Conv2d(inCh, outCh, kernel, stride: stride, padding: (kernel - 1) / 2, groups: groups, bias: false, generator: g),
            new BatchNorm2d(outCh), activation);

    /// <summary>
    /// torchvision's usual re-initialisation: convolutions kaiming-normal (fan_in or fan_out, ReLU gain) with zero
    /// bias, batch norm weight 1 / bias 0, linear layers N(0, <paramref name="linearStd"/>) (null keeps PyTorch's default weight) with zero bias.
    /// </summary>
    public static void InitKaimingNormal(Module model, string convMode, double? linearStd, Generator? g)
    {
        foreach (var (_, m) in model.NamedModules())
        {
            switch (m)
            {
                case ConvBase c:
                    Init.KaimingNormal_(c.Weight, mode: convMode, nonlinearity: "relu", generator: g);
                    if (c.Bias != null) Init.Zeros_(c.Bias);
                    break;
                case BatchNorm2d bn:
                    Init.Ones_(bn.Weight!); Init.Zeros_(bn.Bias!);
                    break;
                case Linear l:
                    if (linearStd is double std) Init.Normal_(l.Weight, 0, std, g);
                    if (l.Bias != null) Init.Zeros_(l.Bias);
                    break;
            }
        }
    }
}
