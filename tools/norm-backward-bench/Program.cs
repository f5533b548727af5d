// Layer/group norm backward timing (issue 15): run at two commits and compare medians side by side; see BENCHMARKS.md.
using System.Diagnostics;
using ConvLab;
using ConvLab.NN.Functional;
var g = new Generator(1);
var cases = new (string Name, int[] Shape, Func<Tensor, Tensor, Tensor, Tensor> F, int[] Affine)[]
{
    ("group_norm [8,64,56,56] g=32", [8, 64, 56, 56], (x, w, b) => F.GroupNorm(x, 32, w, b), [64]),
    ("layer_norm [4096,256]", [4096, 256], (x, w, b) => F.LayerNorm(x, [256], w, b), [256]),
};
foreach (var (name, shape, f, aff) in cases)
{
    var x0 = Tensor.Randn(shape, g); var w0 = Tensor.Rand(aff, g, 0.5, 2); var b0 = Tensor.Randn(aff, g); var gy = Tensor.Randn(shape, g);
    var times = new List<double>();
    for (int r = 0; r < 15; r++)
    {
        var x = x0.Detach().RequiresGrad_(); var w = w0.Detach().RequiresGrad_(); var b = b0.Detach().RequiresGrad_();
        var y = f(x, w, b);
        var sw = Stopwatch.StartNew();
        y.Backward(gy);
        times.Add(sw.Elapsed.TotalMilliseconds);
    }
    times.Sort();
    Console.WriteLine($"{name}: backward median {times[times.Count / 2]:F2} ms");
}
