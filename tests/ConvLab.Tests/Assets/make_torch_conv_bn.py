"""Writes torch_conv_bn.safetensors from a real PyTorch state_dict, and checks files against the format.

The `safetensors` package is not installed here, so the format is written by hand exactly as the reference
implementation lays it out: 8-byte little-endian header length, compact JSON header with "__metadata__"
first, tensors sorted by dtype (I64, F64, F32) then name, padded with spaces to a multiple of 8.
Not run by the tests. Usage:
  python3 make_torch_conv_bn.py                 # regenerate the asset
  python3 make_torch_conv_bn.py check FILE ...  # re-read files written by ConvLab and verify their layout
"""
import json, struct, sys
import torch

DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}
RANK = {"I64": 2, "F64": 1, "F32": 0}
NP = {"F32": "float32", "F64": "float64", "I64": "int64"}


def serialize(tensors, metadata=None):
    items = sorted(tensors.items(), key=lambda kv: (-RANK[DTYPES[kv[1].dtype]], kv[0]))
    header, offset, data = {}, 0, b""
    if metadata is not None:
        header["__metadata__"] = dict(sorted(metadata.items()))
    for name, t in items:
        b = t.detach().contiguous().numpy().astype("<" + t.numpy().dtype.str[1:]).tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        data += b
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def load(path):
    import numpy as np
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", None)
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[b:e], dtype="<" + NP[info["dtype"]][0] + str(np.dtype(NP[info["dtype"]]).itemsize)).copy()).reshape(info["shape"])
    return out, meta


def check(path):
    raw = open(path, "rb").read()
    tensors, meta = load(path)
    again = serialize(tensors, meta)
    assert again == raw, f"{path}: layout differs from the reference layout"
    print(f"{path}: OK, {len(raw)} bytes, byte-identical to reference serialization; keys {list(tensors)}; metadata {meta}")
    return tensors


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "check":
        for p in sys.argv[2:]:
            check(p)
        sys.exit(0)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    with torch.no_grad():  # non-default affine parameters so every key carries distinct values
        model[1].weight.uniform_(0.5, 1.5)
        model[1].bias.uniform_(-0.5, 0.5)
    model.train()
    for _ in range(3):  # non-trivial running stats and num_batches_tracked = 3
        model(torch.randn(4, 1, 5, 5))
    sd = model.state_dict()
    blob = serialize(sd, {"format": "pt"})
    with open("torch_conv_bn.safetensors", "wb") as f:
        f.write(blob)
    print(len(blob), {k: (DTYPES[v.dtype], list(v.shape)) for k, v in sd.items()})
    print(json.dumps({k: v.flatten().tolist() for k, v in sd.items()}))
