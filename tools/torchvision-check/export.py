"""Exports torchvision models (random weights, non-trivial BN statistics) to safetensors plus their logits
on a fixed input, for check/Program.cs. Dev-time only: needs Debian's python3-torch and python3-torchvision;
nothing in the build or tests runs it.  Usage: python3 export.py OUT_DIR [model ...]"""
import os, sys, torch, numpy as np
import torchvision.models as M
here = os.path.dirname(os.path.abspath(__file__))
ns = {}
src = open(os.path.join(here, "..", "..", "tests", "ConvLab.Tests", "Assets", "make_torch_conv_bn.py")).read()
exec(src.split("if __name__")[0], ns)  # reuse its hand-written safetensors serializer
out = sys.argv[1]
names = sys.argv[2:] or ["resnet18", "mobilenet_v2"]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
x = torch.randn(2, 3, 64, 64)
x.numpy().astype("<f4").tofile(os.path.join(out, "x.bin"))
for name in names:
    m = getattr(M, name)().eval()
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1); mod.running_var.uniform_(0.5, 1.5)
            mod.weight.data.uniform_(0.5, 1.5); mod.bias.data.uniform_(-0.1, 0.1)
    open(os.path.join(out, name + ".safetensors"), "wb").write(ns["serialize"](m.state_dict()))
    with torch.no_grad():
        m(x).numpy().astype("<f4").tofile(os.path.join(out, name + "_out.bin"))
    print("exported", name)
