#!/usr/bin/env bash
# One GPU check that fits in 8 minutes on one lent GPU: throughput and memory of each GPU preset, then a
# short time-to-quality run of gpu-128 (3 minutes of training on 3,000 studio renders at 128 px, FID and
# KID at n = 2,000), printed as one table for docs/configs.md. Without a CUDA GPU it says so and exits 0.
#
#   bash scripts/gpu_check.sh            # after scripts/setup.sh; OUT=dir to keep the files elsewhere
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
JG=${JG:-.venv/bin/jewelgan}
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "gpu_check: no CUDA GPU on this machine, nothing to measure (docs/configs.md keeps its GPU table as it is)"
  exit 0
fi
OUT=${OUT:-gpu_check}
mkdir -p "$OUT"
GPU=$("$PY" -c "import torch; print(torch.cuda.get_device_name(0))")
WORKERS=$(( $(nproc) > 2 ? $(nproc) - 1 : 1 ))
echo "gpu_check on $GPU, $(date -u +%F), $(nproc) CPU cores"

# 1. throughput and peak memory of each preset with its own training settings (~2 minutes)
timeout 150 "$PY" benchmarks/train_throughput.py --device cuda --presets gpu-128,gpu-256,gpu-512 \
  --variants preset --seconds 6 --rounds 2 | tee "$OUT/throughput.txt"

# 2. time to quality for gpu-128: render (CPU workers), 3 minutes of training, FID/KID at n = 2000
timeout 120 "$JG" render --n 3000 --res 128 --seed 0 --workers "$WORKERS" --out "$OUT/studio128.jga" --overwrite
timeout 260 "$JG" train --data "$OUT/studio128.jga" --preset gpu-128 --minutes 3 --device cuda --out "$OUT/runs" \
  --name gpu128 --no-progress --ckpt-every 1000 --grid-every 0 > "$OUT/train.log" 2>&1 || true
timeout 150 "$JG" evaluate --run "$OUT/runs/gpu128" --data "$OUT/studio128.jga" --n 2000 --metrics fid,kid \
  --device cuda --out "$OUT/eval.json" > "$OUT/eval.log" 2>&1

"$PY" - "$OUT" "$GPU" <<'PY'
import json, sys
from pathlib import Path
out, gpu = Path(sys.argv[1]), sys.argv[2]
ev = json.loads((out / "eval.json").read_text())
m = ev.get("metrics", ev)
runs = [json.loads(l) for l in (out / "runs" / "gpu128" / "metrics.jsonl").read_text().splitlines()]
kimg = max((r.get("kimg", 0) for r in runs), default=0)
print(f"\n| GPU | preset | budget | kimg | FID (n=2000) | KID |")
print(f"|---|---|---|---|---|---|")
print(f"| {gpu} | gpu-128, 3,000 studio renders at 128 px | 3 min | {kimg:.0f} | {m['fid']:.1f} | {m['kid']:.4f} |")
print(f"(throughput and memory per preset: {out / 'throughput.txt'})")
PY
