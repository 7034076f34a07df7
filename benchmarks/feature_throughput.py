"""Feature extraction throughput (images/s) for each registered extractor, end to end (uint8 in,
features out: resize + normalise + network), plus the NCHW vs channels_last ablation.

    python benchmarks/feature_throughput.py [--n 64] [--res 64 256] [--threads N] [--device cpu]

Timings on shared CPUs are noisy: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from jewelgan.metrics.features import available_extractors, get_extractor


def rate(fn, n: int, repeat: int) -> float:
    fn()  # warm-up (first call of a frozen graph optimises it)
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--res", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads or len(os.sched_getaffinity(0)))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, n={args.n}")
    rng = np.random.default_rng(0)
    for name in available_extractors():
        ext = get_extractor(name, args.device)
        for res in args.res:
            images = rng.integers(0, 256, (args.n, res, res, 3), dtype=np.uint8)
            r = rate(lambda: ext.features(images), args.n, args.repeat)
            print(f"{name:20s} {res:4d}px -> {ext.input_size}px  batch {ext.batch_size:3d}  {r:7.1f} images/s")
        # layout ablation on the bare network input (no resize)
        x = torch.randn(ext.batch_size, 3, ext.input_size, ext.input_size, device=args.device)
        with torch.inference_mode():
            nchw = rate(lambda: ext._forward(x.contiguous()), len(x), args.repeat)
            nhwc = rate(lambda: ext._forward(x.contiguous(memory_format=torch.channels_last)), len(x), args.repeat)
        print(f"{name:20s} network only: NCHW {nchw:7.1f} images/s, channels_last {nhwc:7.1f} images/s")


if __name__ == "__main__":
    main()
