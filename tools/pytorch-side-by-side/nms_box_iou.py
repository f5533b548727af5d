#!/usr/bin/python3
"""torchvision vs ConvLab: nms, batched_nms and box_iou on the same boxes, single thread, side by side.

Each round runs `convlab bench nms --dump DIR` (ConvLab's medians; it also writes the boxes and its kept indices),
then times torchvision.ops on exactly those boxes in this process. Rounds alternate so both sides see the same
machine load; the ratio is ConvLab median / torchvision median per case, and the script checks that torchvision
keeps the same indices as ConvLab.

usage: /usr/bin/python3 tools/pytorch-side-by-side/nms_box_iou.py [--rounds 3] [--repeat 21] [--boxes 1000,10000]
(run from the repository root after `dotnet build ConvLab.sln -c Release`)
"""
import argparse, re, statistics, subprocess, sys, tempfile, time
import torch, torchvision

ap = argparse.ArgumentParser()
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--repeat", type=int, default=21)
ap.add_argument("--boxes", default="1000,10000")
ap.add_argument("--cli", default="src/ConvLab.Cli/bin/Release/net10.0/ConvLab.Cli.dll")
args = ap.parse_args()
torch.set_num_threads(1)
counts = [int(c) for c in args.boxes.split(",")]
row = re.compile(r"│\s*(nms|batched_nms \(20 classes\)|box_iou \(\d+ x \d+\))\s*│\s*(\d+)\s*│\s*([\d.]+)\s*│")

def raw(path, dtype):
    with open(path, "rb") as f:
        return torch.frombuffer(bytearray(f.read()), dtype=dtype)  # little-endian on every supported machine

def median_ms(f, repeat):
    f()
    t = []
    for _ in range(repeat):
        s = time.perf_counter(); f(); t.append((time.perf_counter() - s) * 1e3)
    return statistics.median(t)

ours, theirs = {}, {}
with tempfile.TemporaryDirectory() as d:
    for r in range(args.rounds):
        out = subprocess.run(["dotnet", args.cli, "bench", "nms", "--boxes", args.boxes, "--repeat", str(args.repeat), "--dump", d],
                             check=True, capture_output=True, text=True).stdout
        for m in row.finditer(out):
            ours.setdefault((m.group(1).split(" (")[0], int(m.group(2))), []).append(float(m.group(3)))
        for n in counts:
            b = raw(f"{d}/boxes_{n}.f32", torch.float32).reshape(n, 4)
            s = raw(f"{d}/scores_{n}.f32", torch.float32)
            c = raw(f"{d}/classes_{n}.i64", torch.int64)
            keep = torchvision.ops.nms(b, s, 0.5)
            keep_b = torchvision.ops.batched_nms(b, s, c, 0.5)
            assert torch.equal(keep, raw(f"{d}/kept_{n}.i64", torch.int64)), f"nms {n}: kept indices differ"
            assert torch.equal(keep_b, raw(f"{d}/kept_batched_{n}.i64", torch.int64)), f"batched_nms {n}: kept indices differ"
            first = b[: min(n, 1000)].contiguous()
            theirs.setdefault(("nms", n), []).append(median_ms(lambda: torchvision.ops.nms(b, s, 0.5), args.repeat))
            theirs.setdefault(("batched_nms", n), []).append(median_ms(lambda: torchvision.ops.batched_nms(b, s, c, 0.5), args.repeat))
            theirs.setdefault(("box_iou", n), []).append(median_ms(lambda: torchvision.ops.box_iou(first, b), args.repeat))

print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, 1 thread, {args.rounds} alternating rounds x {args.repeat} runs; same boxes, same kept indices")
print("| op | boxes | ConvLab median ms | torchvision median ms | ratio ConvLab/torchvision |")
print("|---|---|---|---|---|")
for key in sorted(theirs, key=lambda k: (k[1], k[0])):
    a, t = statistics.median(ours[key]), statistics.median(theirs[key])
    label = key[0] if key[0] != "box_iou" else f"box_iou ({min(key[1], 1000)} x {key[1]})"
    print(f"| {label} | {key[1]} | {a:.3f} | {t:.3f} | {a / t:.2f} |")
