"""Dev-time check of ConvLab's box ops against torchvision on random shapes (not part of the build or the tests).

usage: /usr/bin/python3 tools/torchvision-check/detection_cases.py OUT_DIR && convlab check-reference OUT_DIR
Writes reference cases (schema of ../shared/reference/README.md) for the IoU family and losses, focal loss, roi_align,
nms/batched_nms (with tied scores), box_convert, clip, remove_small_boxes and masks_to_boxes.
"""
import json, os, sys, torch, torchvision.ops as ops
out_dir = os.path.join(sys.argv[1], "box_ops")
os.makedirs(out_dir, exist_ok=True)
torch.manual_seed(0)
def T(t):
    t = t.detach()
    return {"shape": list(t.shape), "dtype": "int64" if t.dtype == torch.int64 else "float32", "data": t.reshape(-1).tolist()}
cases = []
def boxes(n, scale=20.0):
    xy = torch.rand(n, 2) * scale; wh = torch.rand(n, 2) * scale * 0.6 + 0.3
    return torch.cat([xy, xy + wh], 1)
def add(name, op, attrs, inputs, outputs, grads_of=None, tol=1e-4):
    c = {"name": f"gen/{name}", "family": "box_ops", "op": op, "attrs": attrs, "inputs": {k: T(v) if v is not None else None for k, v in inputs.items()},
         "outputs": {k: T(v) for k, v in outputs.items()}, "upstream": {}, "grads": {}, "tolerance": {"rtol": tol, "atol": tol}}
    if grads_of:
        outname, out, wrt = grads_of
        up = torch.randn_like(out)
        g = torch.autograd.grad((out * up).sum(), [inputs[k] for k in wrt])
        c["upstream"] = {outname: T(up)}; c["grads"] = {k: T(v) for k, v in zip(wrt, g)}
    cases.append(c)
for i, (n, m) in enumerate([(1, 1), (7, 3), (12, 9), (0, 4)]):
    b1, b2 = boxes(n), boxes(m)
    add(f"iou{i}", "box_iou", {}, {"boxes1": b1, "boxes2": b2}, {"output": ops.box_iou(b1, b2)})
    add(f"giou{i}", "generalized_box_iou", {}, {"boxes1": b1, "boxes2": b2}, {"output": ops.generalized_box_iou(b1, b2)})
    add(f"diou{i}", "distance_box_iou", {"eps": 1e-7}, {"boxes1": b1, "boxes2": b2}, {"output": ops.distance_box_iou(b1, b2, 1e-7)})
    add(f"ciou{i}", "complete_box_iou", {"eps": 1e-7}, {"boxes1": b1, "boxes2": b2}, {"output": ops.complete_box_iou(b1, b2, 1e-7)})
for i, (n, red) in enumerate([(1, "none"), (5, "sum"), (9, "mean"), (4, "none")]):
    for op, f in [("generalized_box_iou_loss", ops.generalized_box_iou_loss), ("distance_box_iou_loss", ops.distance_box_iou_loss), ("complete_box_iou_loss", ops.complete_box_iou_loss)]:
        b1 = boxes(n).requires_grad_(); b2 = boxes(n)
        out = f(b1, b2, reduction=red, eps=1e-7)
        add(f"{op}{i}", op, {"reduction": red, "eps": 1e-7}, {"boxes1": b1, "boxes2": b2}, {"output": out}, ("output", out, ["boxes1"]))
for i, (shape, a, g, red) in enumerate([((3, 7), 0.25, 2.0, "none"), ((2, 3, 4), -1.0, 0.5, "mean"), ((10,), 0.9, 3.0, "sum")]):
    x = (torch.randn(shape) * 3).requires_grad_(); t = (torch.rand(shape) > 0.6).float()
    out = ops.sigmoid_focal_loss(x, t, a, g, red)
    add(f"focal{i}", "sigmoid_focal_loss", {"alpha": a, "gamma": g, "reduction": red}, {"inputs": x, "targets": t}, {"output": out}, ("output", out, ["inputs"]))
for i, (n, c, h, w, k, osz, sc, sr, al) in enumerate([(1, 2, 9, 11, 4, [3, 3], 1.0, -1, False), (2, 1, 16, 8, 5, [2, 4], 0.25, -1, True), (2, 3, 7, 7, 6, [5, 5], 0.5, 3, False), (1, 1, 5, 6, 3, [1, 1], 2.0, -1, True)]):
    x = torch.randn(n, c, h, w).requires_grad_()
    bx = torch.cat([torch.randint(0, n, (k, 1)).float(), boxes(k, scale=max(h, w) / sc * 1.2) - 2], 1)
    out = ops.roi_align(x, bx, osz, sc, sr, al)
    add(f"roi{i}", "roi_align", {"output_size": osz, "spatial_scale": sc, "sampling_ratio": sr, "aligned": al}, {"input": x, "boxes": bx}, {"output": out}, ("output", out, ["input"]))
for i, (n, t) in enumerate([(1, 0.5), (50, 0.3), (300, 0.6), (2000, 0.5)]):
    b = boxes(n, 100.0); s = torch.rand(n)
    if n > 10: s[:n // 5] = s[n // 5: 2 * (n // 5)]  # ties
    add(f"nms{i}", "nms", {"iou_threshold": t}, {"boxes": b, "scores": s}, {"output": ops.nms(b, s, t)})
    idx = torch.randint(0, 4, (n,))
    add(f"bnms{i}", "batched_nms", {"iou_threshold": t}, {"boxes": b, "scores": s, "idxs": idx}, {"output": ops.batched_nms(b, s, idx, t)})
for i, (fi, fo) in enumerate([("xyxy", "cxcywh"), ("cxcywh", "xywh"), ("xywh", "cxcywh")]):
    b = boxes(6)
    add(f"conv{i}", "box_convert", {"in_fmt": fi, "out_fmt": fo}, {"boxes": b}, {"output": ops.box_convert(b, fi, fo)})
b = boxes(9, 40.0) - 8
add("clip", "clip_boxes_to_image", {"size": [17, 23]}, {"boxes": b}, {"output": ops.clip_boxes_to_image(b, (17, 23))})
b = boxes(20)
add("small", "remove_small_boxes", {"min_size": 4.0}, {"boxes": b}, {"output": ops.remove_small_boxes(b, 4.0)})
m = (torch.rand(4, 8, 9) > 0.7).float(); m[:, 0, 0] = 1
add("masks", "masks_to_boxes", {}, {"masks": m}, {"output": ops.masks_to_boxes(m)})
for c in cases:
    json.dump(c, open(os.path.join(out_dir, c["name"].split("/")[1] + ".json"), "w"))
print(len(cases))
