// Loads torchvision weights exported by ../export.py into ConvLab's zoo models and compares the logits.
// Usage: dotnet run --project tools/torchvision-check/check -c Release -- OUT_DIR [model ...]
using ConvLab;
using ConvLab.Autograd;
using ConvLab.IO;
using ConvLab.Models;

string dir = args.Length > 0 ? args[0] : "/tmp/tvcheck";
var names = args.Length > 1 ? args[1..] : ["resnet18", "mobilenet_v2"];
float[] ReadFloats(string path)
{
    var bytes = File.ReadAllBytes(path);
    var f = new float[bytes.Length / 4];
    Buffer.BlockCopy(bytes, 0, f, 0, bytes.Length);
    return f;
}
var x = Tensor.FromArray(ReadFloats(Path.Combine(dir, "x.bin")), 2, 3, 64, 64);
int failures = 0;
foreach (var name in names)
{
    var model = Zoo.Create(name);
    model.LoadSafeTensors(Path.Combine(dir, name + ".safetensors"));
    model.Eval();
    Tensor y;
    using (new NoGrad()) y = model.Forward(x);
    var want = ReadFloats(Path.Combine(dir, name + "_out.bin"));
    double maxErr = y.ToArray().Zip(want, (a, b) => Math.Abs(a - (double)b)).Max();
    bool ok = maxErr <= 1e-4;
    failures += ok ? 0 : 1;
    Console.WriteLine($"{name}: logits max |diff| vs torchvision {maxErr:G3} {(ok ? "ok" : "MISMATCH")}");
}
return failures;
