#!/usr/bin/env python3
"""Dev-time check that a ConvLab-exported ONNX file is what ONNX Runtime / Triton expect (not run in CI).

Usage: python3 tools/onnx-serve-check/check.py MODEL.onnx [--triton-config config.pbtxt]

- onnx.checker (Debian's python3-onnx) validates the graph at full strictness and shape inference runs through it;
- the graph input must have a symbolic batch axis (Triton's dynamic batching relies on it);
- if the Python onnxruntime package is importable, the file runs on random input and the output shape is printed
  (Debian has no python3-onnxruntime; the test suite's ONNX Runtime checks numbers: OnnxExportTests);
- with --triton-config, the config's input/output names and dims are checked against the graph.
"""
import argparse
import re
import sys

import onnx
from onnx import shape_inference


def dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--triton-config")
    a = ap.parse_args()

    m = onnx.load(a.model)
    onnx.checker.check_model(m, full_check=True)
    inferred = shape_inference.infer_shapes(m, strict_mode=True)
    ins = [i for i in m.graph.input if i.name not in {t.name for t in m.graph.initializer}]
    outs = list(inferred.graph.output)
    print(f"{a.model}: opset {m.opset_import[0].version}, {len(m.graph.node)} nodes, {len(m.graph.initializer)} initializers")
    for v in ins:
        print(f"  input  {v.name}: {dims(v)}")
    for v in outs:
        print(f"  output {v.name}: {dims(v)}")
    if not all(isinstance(dims(v)[0], str) for v in ins):
        sys.exit("the batch axis is not symbolic")

    try:
        import numpy as np
        import onnxruntime as ort
        s = ort.InferenceSession(a.model, providers=["CPUExecutionProvider"])
        shape = [2] + [d for d in dims(ins[0])[1:]]
        y = s.run(None, {ins[0].name: np.random.rand(*shape).astype(np.float32)})
        print(f"  onnxruntime {ort.__version__}: batch 2 -> output {list(y[0].shape)}")
    except ImportError:
        print("  (python onnxruntime not installed: the numbers are checked by the test suite's OnnxExportTests)")

    if a.triton_config:
        text = open(a.triton_config).read()
        names = re.findall(r'name:\s*"([^"]+)"', text)
        for v in ins + outs:
            if v.name not in names:
                sys.exit(f"{a.triton_config}: no entry named '{v.name}'")
        for v in ins + outs:
            block = re.search(r'name:\s*"' + re.escape(v.name) + r'"[^}]*?dims:\s*\[([^\]]*)\]', text, re.S)
            want = [int(x) for x in block.group(1).split(",")] if block else None
            if want != list(dims(v)[1:]):
                sys.exit(f"{a.triton_config}: dims of '{v.name}' are {want}, the graph has {dims(v)[1:]} (without batch)")
        print(f"  {a.triton_config}: names and dims match")
    print("ok")


if __name__ == "__main__":
    main()
