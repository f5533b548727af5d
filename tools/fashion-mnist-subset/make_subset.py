#!/usr/bin/env python3
"""Builds the Fashion-MNIST subset embedded in the `convlab` CLI (dev-time only; not used at runtime).

Takes the first 1000 training and the first 200 test images of each class, in file order, from the full
Fashion-MNIST IDX files (default: the Debian package dataset-fashion-mnist, /usr/share/datasets/fashion-mnist)
and writes them as gzip IDX files with a fixed gzip header (mtime 0), so the output is byte-for-byte reproducible.

usage: python3 tools/fashion-mnist-subset/make_subset.py [SRC_DIR] [OUT_DIR]
"""
import gzip
import struct
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
OUT = sys.argv[2] if len(sys.argv) > 2 else "src/ConvLab.Cli/EmbeddedData"
PER_CLASS = {"train": 1000, "t10k": 200}


def read(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">i", data[:4])[0]
    rank = magic & 0xFF
    dims = struct.unpack(">" + "i" * rank, data[4:4 + 4 * rank])
    return dims, data[4 + 4 * rank:]


def write(path, magic, dims, payload):
    header = struct.pack(">i", magic) + struct.pack(">" + "i" * len(dims), *dims)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as f:
        f.write(header + payload)


for split, per_class in PER_CLASS.items():
    (n, rows, cols), pixels = read(f"{SRC}/{split}-images-idx3-ubyte.gz")
    (nl,), labels = read(f"{SRC}/{split}-labels-idx1-ubyte.gz")
    assert n == nl, (n, nl)
    taken, chosen = [0] * 10, []
    for i, label in enumerate(labels):
        if taken[label] < per_class:
            taken[label] += 1
            chosen.append(i)
    assert taken == [per_class] * 10, taken
    size = rows * cols
    write(f"{OUT}/{split}-images-idx3-ubyte.gz", 0x803, (len(chosen), rows, cols),
          b"".join(pixels[i * size:(i + 1) * size] for i in chosen))
    write(f"{OUT}/{split}-labels-idx1-ubyte.gz", 0x801, (len(chosen),), bytes(labels[i] for i in chosen))
    print(f"{split}: {len(chosen)} images ({per_class} per class)")
