#!/usr/bin/python3
"""PyTorch side-by-side of `convlab explain` timings (dev-time only; never part of the build or tests).

Hand-written equivalents (plain autograd, no Captum) of the four methods the issue times on ResNet-18 at 224x224,
with the settings `convlab explain` uses, so one run of each side does the same arithmetic:
  saliency    |d logit_top / d input|, one forward + backward
  ig          integrated gradients, 50 Gauss-Legendre points, zero baseline, 16 path points per pass
  occlusion   16x16 window (all channels), stride 8, value 0, 16 occluded images per forward (27 x 27 = 729 windows)
  gradcam     layer4's output and its gradient from one forward + backward, ReLU(sum_k mean(dA_k) A_k)
Each method runs in its own process (so the peak resident memory is that method's): one warm-up call, then --repeat
timed calls; prints one JSON line {side, method, median_s, times_s, peak_rss_mb, base_rss_mb}.

`--prepare DIR` writes the shared inputs once: resnet18 weights (seeded init, torchvision names) as
DIR/resnet18.safetensors for `convlab explain resnet18 --weights ...`, and a seeded 224x224 RGB image DIR/image.png.

usage: /usr/bin/python3 tools/pytorch-side-by-side/explain.py --prepare /tmp/explain-bench
       /usr/bin/python3 tools/pytorch-side-by-side/explain.py --dir /tmp/explain-bench --method ig --repeat 3 [--threads 2]
(tools/pytorch-side-by-side/explain-bench.sh runs both sides alternately and prints the table for BENCHMARKS.md.)
"""
import argparse
import json
import os
import resource
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def save_safetensors(path, tensors):
    """The safetensors layout (8-byte header length, JSON header, raw little-endian data): float32 and int64."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        kind, a = ("F32", t.float().numpy().astype("<f4")) if t.dtype.is_floating_point else ("I64", t.long().numpy().astype("<i8"))
        b = a.tobytes()
        header[name] = {"dtype": kind, "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def prepare(d):
    os.makedirs(d, exist_ok=True)
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=1000)
    # BatchNorm running statistics stay 0/1 (a fresh model); eval mode uses them as ConvLab does.
    save_safetensors(os.path.join(d, "resnet18.safetensors"), model.state_dict())
    rng = np.random.default_rng(0)
    # A smooth random image (low-frequency noise upsampled), not white noise, so the maps have structure.
    small = rng.random((14, 14, 3))
    img = Image.fromarray((small * 255).astype(np.uint8)).resize((224, 224), Image.BILINEAR)
    img.save(os.path.join(d, "image.png"))


def load(d):
    model = torchvision.models.resnet18(num_classes=1000)
    state = {}
    with open(os.path.join(d, "resnet18.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    for name, e in header.items():
        b, en = e["data_offsets"]
        dtype = "<f4" if e["dtype"] == "F32" else "<i8"
        state[name] = torch.from_numpy(np.frombuffer(data[b:en], dtype=dtype).copy().reshape(e["shape"]))
    model.load_state_dict(state)
    model.eval()
    img = np.asarray(Image.open(os.path.join(d, "image.png")).convert("RGB"), dtype=np.float32) / 255
    x = torch.from_numpy(img.transpose(2, 0, 1).copy()).unsqueeze(0)
    return model, x


def top_class(model, x):
    with torch.no_grad():
        return int(model(x).argmax(1)[0])


def saliency(model, x, c):
    x = x.clone().requires_grad_()
    model(x)[:, c].sum().backward()
    return x.grad.abs()


def integrated_gradients(model, x, c, steps=50, batch=16):
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    alphas, weights = (nodes + 1) / 2, weights / 2
    total = torch.zeros_like(x)
    for s in range(0, steps, batch):
        a = torch.tensor(alphas[s:s + batch], dtype=x.dtype).view(-1, 1, 1, 1)
        w = torch.tensor(weights[s:s + batch], dtype=x.dtype).view(-1, 1, 1, 1)
        path = (a * x).requires_grad_()
        model(path)[:, c].sum().backward()
        total += (w * path.grad).sum(0, keepdim=True)
    return x * total


def occlusion(model, x, c, window=16, stride=8, batch=16):
    _, ch, h, w = x.shape
    positions = [(y, xx) for y in range(0, h - window + 1, stride) for xx in range(0, w - window + 1, stride)]
    total = torch.zeros_like(x)
    count = torch.zeros(1, 1, h, w)
    with torch.no_grad():
        fx = model(x)[0, c]
        for s in range(0, len(positions), batch):
            part = positions[s:s + batch]
            b = x.repeat(len(part), 1, 1, 1)
            for j, (y, xx) in enumerate(part):
                b[j, :, y:y + window, xx:xx + window] = 0
            d = fx - model(b)[:, c]
            for j, (y, xx) in enumerate(part):
                total[0, :, y:y + window, xx:xx + window] += d[j]
                count[0, :, y:y + window, xx:xx + window] += 1
    return total / count.clamp(min=1)


def grad_cam(model, x, c):
    feats = {}
    handle = model.layer4.register_forward_hook(lambda m, i, o: feats.__setitem__("a", o))
    out = model(x)
    handle.remove()
    a = feats["a"]
    g, = torch.autograd.grad(out[:, c].sum(), a)
    cam = F.relu((g.mean((2, 3), keepdim=True) * a).sum(1, keepdim=True))
    return F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False).detach()


METHODS = {"saliency": saliency, "ig": integrated_gradients, "occlusion": occlusion, "gradcam": grad_cam}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--prepare")
    p.add_argument("--dir")
    p.add_argument("--method", choices=sorted(METHODS))
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    if a.prepare:
        prepare(a.prepare)
        return
    torch.set_num_threads(a.threads)
    model, x = load(a.dir)
    c = top_class(model, x)
    base = rss_mb()
    f = METHODS[a.method]
    f(model, x, c)
    times = []
    for _ in range(a.repeat):
        t = time.perf_counter()
        f(model, x, c)
        times.append(time.perf_counter() - t)
    print(json.dumps({"side": "pytorch", "method": a.method, "median_s": float(np.median(times)), "times_s": times,
                      "peak_rss_mb": peak_rss_mb(), "base_rss_mb": base, "threads": a.threads, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
