#!/bin/sh
# Side-by-side timing of `convlab explain` and tools/pytorch-side-by-side/explain.py (dev-time only).
# Each method runs in its own process on each side, the sides alternating, on the same ResNet-18 weights and image.
# usage: tools/pytorch-side-by-side/explain-bench.sh [REPEAT] [METHODS...]   (from the repository root; builds the CLI)
set -e
repeat=${1:-3}; [ $# -gt 0 ] && shift
methods=${*:-saliency gradcam ig occlusion}
dir=${EXPLAIN_BENCH_DIR:-/tmp/explain-bench}
threads=${THREADS:-2}
[ -f "$dir/resnet18.safetensors" ] || /usr/bin/python3 tools/pytorch-side-by-side/explain.py --prepare "$dir"
# CONVLAB_CLI: a built ConvLab.Cli.dll to use instead of building this checkout.
cli=${CONVLAB_CLI:-src/ConvLab.Cli/bin/Release/net10.0/ConvLab.Cli.dll}
[ -n "$CONVLAB_CLI" ] || dotnet build src/ConvLab.Cli -c Release -v q -nologo >/dev/null
out="$dir/results.jsonl"; : > "$out"
for m in $methods; do
  /usr/bin/python3 tools/pytorch-side-by-side/explain.py --dir "$dir" --method "$m" --repeat "$repeat" --threads "$threads" >> "$out"
  dotnet "$cli" explain resnet18 --weights "$dir/resnet18.safetensors" --image "$dir/image.png" --method "$m" --layer layer4 \
    --steps 50 --window 16 --stride 8 --repeat "$repeat" --threads "$threads" --format json --out "$dir/convlab-$m" |
    /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); m=d["methods"][0]; print(json.dumps({"side":"convlab","method":m["method"],"median_s":m["median_seconds"],"peak_rss_mb":d["peak_rss_mb"],"base_rss_mb":d["base_rss_mb"],"threads":d["threads"]}))' >> "$out"
done
/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| method | PyTorch median s | ConvLab median s | ConvLab/PyTorch | PyTorch peak RSS MB (base) | ConvLab peak RSS MB (base) |")
print("|---|---|---|---|---|---|")
for m in dict.fromkeys(r["method"] for r in rows):
    p = next(r for r in rows if r["method"] == m and r["side"] == "pytorch")
    c = next(r for r in rows if r["method"] == m and r["side"] == "convlab")
    print(f"| {m} | {p['median_s']:.3f} | {c['median_s']:.3f} | {c['median_s'] / p['median_s']:.2f} | {p['peak_rss_mb']:.0f} ({p['base_rss_mb']:.0f}) | {c['peak_rss_mb']:.0f} ({c['base_rss_mb']:.0f}) |")
PY
