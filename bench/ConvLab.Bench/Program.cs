// Benchmark harness: filled in by the fast-kernels work (side-by-side timing against TorchSharp).
Console.WriteLine("ConvLab.Bench: no suites yet.");
