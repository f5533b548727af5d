using ConvLab.NN;
using Xunit;

namespace ConvLab.Tests;

public class ModuleTests
{
    private sealed class Block : Module
    {
        public readonly Linear Fc1, Fc2;
        public Block()
        {
            Fc1 = RegisterModule("fc1", new Linear(4, 3, generator: new Generator(1)));
            Fc2 = RegisterModule("fc2", new Linear(3, 2, bias: false, generator: new Generator(2)));
            RegisterBuffer("running_mean", Tensor.Zeros(2));
        }
        public override Tensor Forward(Tensor input) => Fc2.Forward(Fc1.Forward(input));
    }

    [Fact]
    public void StateDictUsesPyTorchDottedKeysInRegistrationOrder()
    {
        var net = new Sequential(new Block(), new Flatten(), new Sequential(new Linear(2, 2)));
        // As PyTorch: a module's own parameters and buffers come before its children's.
        Assert.Equal(["0.running_mean", "0.fc1.weight", "0.fc1.bias", "0.fc2.weight", "2.0.weight", "2.0.bias"], net.StateDict().Keys.ToArray());
        Assert.Equal(["0.fc1.weight", "0.fc1.bias", "0.fc2.weight", "2.0.weight", "2.0.bias"], net.NamedParameters().Select(p => p.Name).ToArray());
        Assert.Equal(4 * 3 + 3 + 3 * 2 + 2 * 2 + 2, net.ParameterCount());
        Assert.Equal(["", "0", "0.fc1", "0.fc2", "1", "2", "2.0"], net.NamedModules().Select(m => m.Name).ToArray());
    }

    [Fact]
    public void LoadStateDictCopiesValuesAndReportsProblems()
    {
        var a = new Block(); var b = new Block();
        using (new Autograd.NoGrad()) b.Fc1.Weight.Fill_(0.5);
        a.LoadStateDict(b.StateDict());
        Assert.All(a.Fc1.Weight.ToArray(), v => Assert.Equal(0.5f, v));
        Assert.True(a.Fc1.Weight.RequiresGrad);
        Assert.NotSame(a.Fc1.Weight.Storage, b.Fc1.Weight.Storage);

        var partial = b.StateDict().Where(kv => kv.Key != "fc2.weight").ToDictionary(kv => kv.Key, kv => kv.Value);
        partial["extra.weight"] = Tensor.Zeros(1);
        var e = Assert.Throws<ArgumentException>(() => a.LoadStateDict(partial));
        Assert.Contains("missing keys: fc2.weight", e.Message);
        Assert.Contains("unexpected keys: extra.weight", e.Message);
        var (missing, unexpected) = a.LoadStateDict(partial, strict: false);
        Assert.Equal(["fc2.weight"], missing);
        Assert.Equal(["extra.weight"], unexpected);

        var wrong = b.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value);
        wrong["fc1.bias"] = Tensor.Zeros(4);
        var e2 = Assert.Throws<ArgumentException>(() => a.LoadStateDict(wrong));
        Assert.Contains("size mismatch for fc1.bias", e2.Message);
    }

    [Fact]
    public void FreezingASubModuleStopsItsGradients()
    {
        var net = new Block();
        net.Fc1.RequiresGrad(false);
        Assert.Equal(3 * 2, net.ParameterCount(trainableOnly: true));
        net.Forward(Tensor.Randn([5, 4], new Generator(3))).Sum().Backward();
        Assert.Null(net.Fc1.Weight.Grad);
        Assert.NotNull(net.Fc2.Weight.Grad);
        net.ZeroGrad();
        Assert.Null(net.Fc2.Weight.Grad);
    }

    [Fact]
    public void TrainEvalPropagatesToChildren()
    {
        var net = new Sequential(new Block(), new Sequential(new Identity()));
        net.Eval();
        Assert.All(net.NamedModules(), m => Assert.False(m.Module.Training));
        net.Train();
        Assert.All(net.NamedModules(), m => Assert.True(m.Module.Training));
    }

    [Fact]
    public void ResidualAndDenseCompositionAddAndConcatenate()
    {
        var x = Tensor.Randn([2, 3], new Generator(5)).RequiresGrad_();
        var res = new Residual(new Linear(3, 3, generator: new Generator(1)));
        var y = res.Forward(x);
        var inner = (Linear)res.NamedChildren().First().Module;
        Assert.True(y.AllClose(inner.Forward(x) + x, 1e-6, 1e-6));
        Assert.Equal(["body.weight", "body.bias"], res.StateDict().Keys.ToArray());
        var dense = new DenseConcat(new Linear(3, 2));
        Assert.Equal([2, 5], dense.Forward(x).Shape.ToArray());
        Assert.Throws<ArgumentException>(() => new Residual(new Linear(3, 4)).Forward(x));
    }

    [Fact]
    public void LinearMatchesPyTorchInitAndValidatesInput()
    {
        var fc = new Linear(100, 10, generator: new Generator(9));
        Assert.All(fc.Weight.ToArray(), v => Assert.InRange(v, -0.1f, 0.1f));
        Assert.All(fc.Bias!.ToArray(), v => Assert.InRange(v, -0.1f, 0.1f));
        TestUtil.AssertOpError("linear", () => fc.Forward(Tensor.Zeros(2, 99)));
        Assert.Contains("Linear(in_features=100, out_features=10, bias=True)", fc.ToString());
    }
}
