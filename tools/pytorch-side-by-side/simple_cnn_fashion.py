#!/usr/bin/python3
"""PyTorch side-by-side of `convlab train` (dev-time only; never part of the build or tests).

Same model as ConvLab's `simple_cnn` (same nn.Sequential layout, so the state-dict keys match), same recipe:
Adam lr 1e-3, batch 128, cross-entropy, random crop (padding 2) + horizontal flip, cosine learning-rate schedule
stepped per epoch, inputs scaled to [0, 1]. Prints each epoch's wall time (training part only, like ConvLab's
seconds_per_epoch) and the test accuracy.

usage: /usr/bin/python3 tools/pytorch-side-by-side/simple_cnn_fashion.py [--epochs 1] [--threads 2]
       [--data /usr/share/datasets/fashion-mnist] [--no-augment] [--limit-train N]
"""
import argparse
import gzip
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


class SimpleCnn(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def augment(x, g):
    """Random crop with zero padding 2 and a horizontal flip with p = 0.5, per sample."""
    n, _, h, w = x.shape
    padded = F.pad(x, (2, 2, 2, 2))
    dy = torch.randint(0, 5, (n,), generator=g)
    dx = torch.randint(0, 5, (n,), generator=g)
    flip = torch.rand(n, generator=g) < 0.5
    out = torch.empty_like(x)
    for i in range(n):
        s = padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
        out[i] = s.flip(-1) if flip[i] else s
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--no-augment", action="store_true")
    ap.add_argument("--limit-train", type=int, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)

    xtr = torch.from_numpy(read_idx(f"{args.data}/train-images-idx3-ubyte.gz").copy()).float().div_(255).unsqueeze(1)
    ytr = torch.from_numpy(read_idx(f"{args.data}/train-labels-idx1-ubyte.gz").astype(np.int64))
    xte = torch.from_numpy(read_idx(f"{args.data}/t10k-images-idx3-ubyte.gz").copy()).float().div_(255).unsqueeze(1)
    yte = torch.from_numpy(read_idx(f"{args.data}/t10k-labels-idx1-ubyte.gz").astype(np.int64))
    if args.limit_train:
        xtr, ytr = xtr[:args.limit_train], ytr[:args.limit_train]

    model = SimpleCnn()
    print(f"simple_cnn: {sum(p.numel() for p in model.parameters()):,} parameters; {len(xtr):,} train / {len(xte):,} test; "
          f"{args.threads} threads; torch {torch.__version__}")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    for epoch in range(1, args.epochs + 1):
        model.train()
        perm = torch.randperm(len(xtr), generator=g)
        t0 = time.perf_counter()
        seen = correct = 0
        loss_sum = 0.0
        for b in range(0, len(xtr), 128):
            idx = perm[b:b + 128]
            x, y = xtr[idx], ytr[idx]
            if not args.no_augment:
                x = augment(x, g)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += len(y)
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
        seconds = time.perf_counter() - t0
        sched.step()
        model.eval()
        with torch.no_grad():
            logits = torch.cat([model(xte[i:i + 1000]) for i in range(0, len(xte), 1000)])
        test_acc = (logits.argmax(1) == yte).float().mean().item()
        test_loss = F.cross_entropy(logits, yte).item()
        print(f"epoch {epoch}/{args.epochs}: train loss {loss_sum / seen:.4f} acc {correct / seen:.2%} | "
              f"test loss {test_loss:.4f} acc {test_acc:.2%} | {seconds:.1f} s, {seen / seconds:,.0f} img/s", flush=True)


if __name__ == "__main__":
    main()
