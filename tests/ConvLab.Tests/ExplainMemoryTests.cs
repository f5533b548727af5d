using ConvLab.Autograd;
using ConvLab.Explain;
using ConvLab.Models;
using ConvLab.NN;
using ConvLab.NN.Functional;
using Xunit;

namespace ConvLab.Tests;

/// <summary>
/// Memory of the batched attribution methods, measured deterministically by the storage recycler's high-water mark:
/// a run over many batches holds no more than a run over one, and a step recycles what died inside it. Plus the
/// correctness of the early recycling (the same numbers inside and outside a recycler step).
/// </summary>
public class ExplainMemoryTests
{
    /// <summary>stem conv → BN → ReLU → two residual blocks (one downsampling) → GAP → linear, in eval mode.</summary>
    private static Module ResidualNet()
    {
        var g = new Generator(5);
        return new Sequential(
            new Conv2d(3, 8, 3, padding: 1, generator: g), new BatchNorm2d(8), new ReLU(),
            new BasicBlock(8, 8, generator: g),
            new BasicBlock(8, 16, stride: 2, downsample: new Sequential(new Conv2d(8, 16, 1, stride: 2, bias: false, generator: g), new BatchNorm2d(16)), generator: g),
            new AdaptiveAvgPool2d(1, 1), new Flatten(), new Linear(16, 4, generator: g)).Eval();
    }

    private static Tensor Image() => Tensor.Rand([1, 3, 16, 16], new Generator(9));

    [Fact]
    public void OcclusionOverManyBatchesHoldsNoMoreThanOneBatch()
    {
        var model = ResidualNet();
        // 2x2 = 4 windows: exactly one batch of 4.
        Attributions.Occlusion(model, Image(), ExplainTarget.Top, [4, 4], [12, 12], batchSize: 4);
        var one = Attributions.LastBatchRecycler!;
        // 7x7 = 49 windows: 12 batches of 4 and a last one of 1.
        Attributions.Occlusion(model, Image(), ExplainTarget.Top, [4, 4], [2, 2], batchSize: 4);
        var many = Attributions.LastBatchRecycler!;
        Assert.True(many.PeakHeldBytes <= one.PeakHeldBytes,
            $"49 windows held {many.PeakHeldBytes} bytes at most, one batch of the same size {one.PeakHeldBytes}");
        // Forward passes without a graph recycle each layer's temporaries inside the step, so even the first batch
        // reuses storage and holds less than it took.
        Assert.True(one.BytesReused > 0, "one no-grad batch reused nothing: every intermediate was held to the step's end");
        Assert.True(one.PeakHeldBytes < one.BytesAllocated + one.BytesReused);
    }

    [Fact]
    public void IntegratedGradientsOverManyBatchesHoldsNoMoreThanOneBatch()
    {
        var model = ResidualNet();
        var o = new IntegratedGradientsOptions { Steps = 4, InternalBatchSize = 4 };
        Attributions.IntegratedGradients(model, Image(), ExplainTarget.Top, o);
        var one = Attributions.LastBatchRecycler!;
        Attributions.IntegratedGradients(model, Image(), ExplainTarget.Top, o with { Steps = 21 });
        var many = Attributions.LastBatchRecycler!;
        Assert.True(many.PeakHeldBytes <= one.PeakHeldBytes,
            $"21 path points held {many.PeakHeldBytes} bytes at most, one batch of 4 {one.PeakHeldBytes}");
        // The backward hands each gradient back once its node has consumed it.
        Assert.True(one.BytesReused > 0, "one forward + backward reused nothing: every gradient was held to the step's end");
    }

    /// <summary>Saliency and a no-grad forward give the same numbers inside a recycler step (early recycling on) and outside.</summary>
    [Fact]
    public void EarlyRecyclingChangesNoNumber()
    {
        var model = ResidualNet();
        var x = Tensor.Randn([2, 3, 16, 16], new Generator(11));
        var want = Attributions.Saliency(model, x, ExplainTarget.Top, abs: false).Map.ToDoubleArray();
        double[] wantOut;
        using (new NoGrad()) wantOut = model.Call(x).ToDoubleArray();
        var recycler = new StorageRecycler();
        for (int round = 0; round < 3; round++)
        {
            recycler.Begin();
            try
            {
                Assert.Equal(want, Attributions.Saliency(model, x, ExplainTarget.Top, abs: false).Map.ToDoubleArray());
                using (new NoGrad()) Assert.Equal(wantOut, model.Call(x).ToDoubleArray());
            }
            finally { recycler.End(model); }
        }
        Assert.True(recycler.BytesReused > 0);
    }

    /// <summary>
    /// A tensor used twice, a module called twice and a gradient handed to a leaf and to a node at once all survive the
    /// backward's early recycling.
    /// </summary>
    [Fact]
    public void BackwardRecyclingKeepsSharedGradients()
    {
        var g = new Generator(2);
        var conv = new Conv2d(2, 2, 3, padding: 1, generator: g);
        double[] Run(bool step)
        {
            var recycler = new StorageRecycler();
            if (step) recycler.Begin();
            try
            {
                var x = Tensor.Randn([1, 2, 6, 6], new Generator(4));
                x.RequiresGrad = true;
                var y = conv.Call(F.Relu(conv.Call(x))).Add(x);
                var z = y.Mul(y).Add(x).Sum();
                z.Backward();
                var grads = x.Grad!.ToDoubleArray().Concat(conv.Weight.Grad!.ToDoubleArray()).ToArray();
                conv.ZeroGrad();
                return grads;
            }
            finally { if (step) recycler.End(conv); }
        }
        Assert.Equal(Run(false), Run(true));
    }

    /// <summary>State a module keeps from its forward (max-pooling indices) is not recycled when its call returns.</summary>
    [Fact]
    public void ForwardStateSurvivesTheCall()
    {
        var pool = new MaxPool2d(2, returnIndices: true);
        var model = new Sequential(new ReLU(), pool);
        var x = Tensor.Randn([1, 1, 8, 8], new Generator(3));
        using var _ = new NoGrad();
        model.Call(x);
        var want = pool.LastIndices!.ToDoubleArray();
        var recycler = new StorageRecycler();
        recycler.Begin();
        try
        {
            model.Call(x);
            var kept = pool.LastIndices!;
            // Later allocations in the step must not take the indices' storage.
            for (int i = 0; i < 4; i++) model.Call(Tensor.Randn([1, 1, 8, 8], new Generator((ulong)i)).Mul(Tensor.Scalar(2.0)));
            Assert.Equal(want, kept.ToDoubleArray());
        }
        finally { recycler.End(model); }
    }
}
