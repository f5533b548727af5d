using ConvLab; using ConvLab.IO; using ConvLab.Models; using ConvLab.NN; using ConvLab.NN.Functional; using ConvLab.Kernels;
string mode = args.Length > 0 ? args[0] : "auto";
var g = new Generator(1);
var model = (ResNet)Zoo.Create("cifar_resnet18", 10, g);
if (mode == "im2col") foreach (var (_, m) in model.NamedModules()) if (m is Conv2d c) c.Algorithm = ConvAlgorithm.Im2colGemm;
var x = Tensor.Randn([32, 3, 32, 32], g);
var y = Tensor.RandInt(0, 10, [32], g);
model.Train();
Tensor a, a30, a1, a2;
using (new ConvLab.Autograd.NoGrad())
{
    a = F.Relu(model.Bn1.Call(model.Conv1.Call(x)));
    a = model.Layers[0].Call(a); a1 = a;
    a = model.Layers[1].Call(a); a2 = a;
    a30 = model.Layers[2][0].Call(a);
    a = model.Layers[2][1].Call(a30);
}
model.ZeroGrad();
var leafD = a30.Detach().RequiresGrad_();
var a31 = model.Layers[2][1].Call(leafD);
var copy31 = a31.Detach().Clone();
var lg = model.Fc.Call(model.AvgPool.Call(model.Layers[3].Call(a31)).Flatten(1));
Console.WriteLine("a31 modified by layer4 forward: " + (copy31.Sub(a31.Detach()).Abs().Max().Item()));
F.CrossEntropy(lg, y).Backward();
var gradD = leafD.Grad!; var dBw = model.Layers[2][1].NamedParameters().First(p => p.Name == "bn2.bias").Parameter.Grad!.Clone();
var dC2 = model.Layers[2][1].NamedParameters().First(p => p.Name == "conv2.weight").Parameter.Grad!.Clone();
model.ZeroGrad();
var leafC = a30.Detach().RequiresGrad_();
var outC = model.Layers[2][1].Call(leafC);
var upC = Tensor.Randn(outC.Shape.ToArray(), new Generator(6));
outC.Backward(upC);
// A: layer4 + head from a leaf
var leaf = a.Detach().RequiresGrad_();
var logits = model.Fc.Call(model.AvgPool.Call(model.Layers[3].Call(leaf)).Flatten(1));
F.CrossEntropy(logits, y).Backward();
// B: block layer4.0 alone with a fixed upstream
var leafB = a.Detach().RequiresGrad_();
var outB = model.Layers[3][0].Call(leafB);
var up = Tensor.Randn(outB.Shape.ToArray(), new Generator(5));
outB.Backward(up);
SafeTensors.Save($"./probe_{mode}.safetensors", new Dictionary<string, Tensor> { ["a"] = a, ["grad_a"] = leaf.Grad!, ["up"] = up, ["grad_b"] = leafB.Grad!, ["out_b"] = outB.Detach(), ["a30"] = a30, ["grad_d"] = gradD, ["d_bn2_b"] = dBw, ["d_conv2_w"] = dC2, ["a1"] = a1, ["a2"] = a2, ["up_c"] = upC, ["grad_c"] = leafC.Grad!, ["l31_bn2_w"] = model.Layers[2][1].NamedParameters().First(p => p.Name == "bn2.weight").Parameter.Grad!, ["l31_bn2_b"] = model.Layers[2][1].NamedParameters().First(p => p.Name == "bn2.bias").Parameter.Grad! });
