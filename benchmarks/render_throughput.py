"""Studio rendering throughput: images/s at 64 and 256 px, rendering into a real archive.

    python benchmarks/render_throughput.py [--workers 2] [--n64 200] [--n256 40]

Wall-clock timings include process start-up and archive writing (what `jewelgan render` pays),
after a short warm-up run that is not counted. A second figure from CPU time per image (one
process) shows what idle cores would give when the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from jewelgan.studio import render_dataset, render_one


def measure(res: int, n: int, workers: int, tmp: Path) -> float:
    start = time.perf_counter()
    render_dataset(tmp / f"bench{res}.jga", n=n, res=res, seed=123, workers=workers, overwrite=True, progress=False)
    return n / (time.perf_counter() - start)


def cpu_seconds_per_image(res: int, n: int) -> float:
    """CPU time of one image in this process: robust to other jobs sharing the machine."""
    render_one(321, 0, res)
    start = time.process_time()
    for i in range(n):
        render_one(321, i, res)
    return (time.process_time() - start) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--n64", type=int, default=200)
    ap.add_argument("--n256", type=int, default=40)
    args = ap.parse_args()
    print(f"cpu cores: {os.cpu_count()}, workers: {args.workers}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        measure(64, 2 * args.workers, args.workers, tmp)  # warm-up: imports, page cache
        for res, n in ((64, args.n64), (256, args.n256)):
            rate = measure(res, n, args.workers, tmp)
            print(f"render {res:>3} px: {rate:6.2f} images/s  ({n} images, {args.workers} workers, wall clock)")
    # wall-clock rates drop when other jobs share the cores; CPU time says what idle cores would give
    for res, n in ((64, 40), (256, 8)):
        cpu = cpu_seconds_per_image(res, n)
        print(f"render {res:>3} px: {cpu:6.3f} CPU-s/image -> {args.workers / cpu:6.2f} images/s "
              f"on {args.workers} idle cores")


if __name__ == "__main__":
    main()
