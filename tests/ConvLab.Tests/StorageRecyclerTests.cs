using ConvLab.NN;
using ConvLab.NN.Functional;
using ConvLab.Training;
using Xunit;

namespace ConvLab.Tests;

public class StorageRecyclerTests
{
    private static (Module Model, Optimizer Opt) Make()
    {
        var gen = new Generator(7);
        var model = new Sequential(
            new Conv2d(1, 4, 3, padding: 1, generator: gen), new BatchNorm2d(4), new ReLU(), new MaxPool2d(2),
            new Flatten(), new Linear(4 * 4 * 4, 3, generator: gen));
        return (model, new Adam(model.Parameters(), lr: 1e-2));
    }

    /// <summary>Runs a few Adam steps; returns the final state and the recycler (when used).</summary>
    private static (double[][] State, StorageRecycler? Recycler, double[] Losses) Train(bool recycle, int steps)
    {
        var (model, opt) = Make();
        var data = new Generator(3);
        var recycler = recycle ? new StorageRecycler() : null;
        var losses = new double[steps];
        for (int s = 0; s < steps; s++)
        {
            var x = Tensor.Randn([5, 1, 8, 8], data);
            var y = Tensor.RandInt(0, 3, [5], data);
            recycler?.Begin();
            try
            {
                opt.ZeroGrad(setToNone: !recycle);
                var loss = F.CrossEntropy(model.Forward(x), y);
                loss.Backward();
                opt.Step();
                losses[s] = loss.Item();
            }
            finally { recycler?.End(model); }
        }
        var state = model.StateDict().Values.Select(t => t.To(DType.Float64).Read<double>().ToArray()).ToArray();
        return (state, recycler, losses);
    }

    [Fact]
    public void RecycledTrainingIsBitIdenticalAndStopsAllocatingAfterTheSecondStep()
    {
        var plain = Train(recycle: false, steps: 6);
        var recycled = Train(recycle: true, steps: 6);
        Assert.Equal(plain.Losses, recycled.Losses);
        Assert.Equal(plain.State.Length, recycled.State.Length);
        for (int i = 0; i < plain.State.Length; i++) Assert.Equal(plain.State[i], recycled.State[i]);

        var r = recycled.Recycler!;
        long afterOneStep = Train(recycle: true, steps: 1).Recycler!.BytesAllocated;
        long afterTwoSteps = Train(recycle: true, steps: 2).Recycler!.BytesAllocated;
        // The first step's fresh weight gradients become the parameters' Grad (kept), so the second step allocates
        // their per-step buffers once; every step allocates the same shapes, so steps 3..6 are served entirely from
        // recycled arrays.
        Assert.True(afterTwoSteps - afterOneStep < afterOneStep / 10, $"second step allocated {afterTwoSteps - afterOneStep} bytes, first {afterOneStep}");
        Assert.Equal(afterTwoSteps, r.BytesAllocated);
        Assert.True(r.BytesReused >= 5 * (afterOneStep - LivesOnBytes()), $"reused {r.BytesReused}, first step {afterOneStep}");
    }

    private static long LivesOnBytes()
    {
        var (model, _) = Make();
        return model.Parameters().Sum(p => (long)p.Numel * 4);
    }

    [Fact]
    public void GradientsAccumulateInPlaceAcrossBackwardCalls()
    {
        var w = Tensor.FromArray([1f, 2f, 3f], 3).RequiresGrad_();
        w.Mul(w).Sum().Backward();
        var first = w.Grad!;
        w.MulScalar(3).Sum().Backward();
        Assert.Same(first, w.Grad);
        Assert.Equal([5f, 7f, 9f], w.Grad!.Read<float>().ToArray());
    }

    [Fact]
    public void ZeroGradInPlaceKeepsTheGradientTensor()
    {
        var (model, opt) = Make();
        var x = Tensor.Randn([2, 1, 8, 8], new Generator(1));
        F.CrossEntropy(model.Forward(x), Tensor.FromArray([0L, 2L], 2)).Backward();
        var grads = model.Parameters().Select(p => p.Grad!).ToArray();
        opt.ZeroGrad(setToNone: false);
        Assert.All(model.Parameters().Zip(grads), pg => { Assert.Same(pg.Second, pg.First.Grad); Assert.All(pg.Second.Read<float>().ToArray(), v => Assert.Equal(0f, v)); });
        model.ZeroGrad();
        Assert.All(model.Parameters(), p => Assert.Null(p.Grad));
    }

    [Fact]
    public void MisuseIsReported()
    {
        var r = new StorageRecycler();
        Assert.Throws<InvalidOperationException>(() => r.End([]));
        r.Begin();
        Assert.Throws<InvalidOperationException>(() => new StorageRecycler().Begin());
        r.End([]);
    }
}
