#!/usr/bin/env python3
"""Dev-time check of the .pth hand-off with Debian's PyTorch (python3-torch, python3-torchvision); not run in CI.

For each model: ConvLab writes fresh weights as .pth (`convlab convert MODEL FILE.pth`); PyTorch must load them with
torch.load(weights_only=True) into the torchvision model with load_state_dict(strict=True). Then the reverse trip:
PyTorch saves that model's state_dict, ConvLab reads it and writes it again, and PyTorch finds every tensor equal.

usage: tools/pth-check/check.py [--cli PATH/TO/ConvLab.Cli.dll] [MODEL ...]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import torch
import torchvision

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_CLI = os.path.join(ROOT, "src", "ConvLab.Cli", "bin", "Release", "net10.0", "ConvLab.Cli.dll")


def convlab(cli, *args):
    r = subprocess.run(["dotnet", cli, *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"convlab {' '.join(args)} failed:\n{r.stdout}{r.stderr}")
    return r.stdout


def check(cli, name, work):
    written = os.path.join(work, f"{name}.convlab.pth")
    convlab(cli, "convert", name, written, "--seed", "1")
    sd = torch.load(written, weights_only=True)
    model = getattr(torchvision.models, name)()
    model.load_state_dict(sd, strict=True)  # raises on a missing/unexpected key or a shape mismatch

    model.eval()
    with torch.no_grad():
        y = model(torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)))
    assert torch.isfinite(y).all(), f"{name}: non-finite output with ConvLab's weights"

    torch_saved = os.path.join(work, f"{name}.torch.pth")
    torch.save(model.state_dict(), torch_saved)
    rewritten = os.path.join(work, f"{name}.rewritten.pth")
    convlab(cli, "convert", torch_saved, rewritten)
    back = torch.load(rewritten, weights_only=True)
    original = model.state_dict()
    assert list(back.keys()) == list(original.keys()), f"{name}: keys differ after the round trip"
    for k, v in original.items():
        assert back[k].dtype == v.dtype, f"{name}: {k} dtype {back[k].dtype} != {v.dtype}"
        assert torch.equal(back[k], v), f"{name}: {k} differs after PyTorch -> ConvLab -> PyTorch"
    print(f"ok  {name}: {len(sd)} tensors; torch.load(weights_only=True) + load_state_dict(strict=True); "
          f"PyTorch -> ConvLab -> PyTorch identical")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cli", default=DEFAULT_CLI)
    p.add_argument("models", nargs="*", default=["squeezenet1_1", "mobilenet_v2", "resnet18", "vgg11_bn", "densenet121"])
    a = p.parse_args()
    if not os.path.exists(a.cli):
        sys.exit(f"{a.cli} not found: build with `dotnet build src/ConvLab.Cli -c Release` first")
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}")
    with tempfile.TemporaryDirectory() as work:
        for name in a.models:
            check(a.cli, name, work)


if __name__ == "__main__":
    main()
