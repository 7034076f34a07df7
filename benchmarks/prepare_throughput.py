"""Throughput of `jewelgan prepare` on realistic ~1000 px JPEG product photos into a 128 px archive.

    python benchmarks/prepare_throughput.py [--n 300] [--res 128] [--workers 2] [--compare]

Makes N synthetic product shots (a gold ring or pendant with a gem, soft shadow and sensor noise on
a light, slightly graded background; sizes around 1000 px, some portrait or landscape; JPEG q90) in
a temporary folder, then times prepare() end to end (scan, decode, normalise, hash, write, report)
and prints photos/s, plus the CPU time per photo (a load-independent figure: the throughput on
idle cores). --compare also times single-file decoding with and without the libjpeg draft
so the effect of the resize choice is visible in the same run. Timings depend on machine load.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

METALS = [(212, 175, 55), (200, 200, 205), (183, 110, 121)]
GEMS = [(20, 60, 200), (200, 20, 40), (30, 160, 80), (235, 240, 250)]


_NOISE: dict[int, np.ndarray] = {}


def _sensor_noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    # one 1300 px noise field per seed, cropped at a random offset: drawing fresh Gaussian noise for
    # every photo made generating the benchmark data slower than the benchmark itself
    if "field" not in _NOISE:
        _NOISE["field"] = rng.normal(0, 2.5, (1300, 1300, 1)).astype(np.int16)
    y, x = rng.integers(0, 1300 - h + 1), rng.integers(0, 1300 - w + 1)
    return _NOISE["field"][y:y + h, x:x + w]


def make_photo(rng: np.random.Generator, size: tuple[int, int], kind: str = "ring") -> Image.Image:
    w, h = size
    base = np.array([rng.integers(225, 250)] * 3, dtype=np.float32) + rng.normal(0, 3, 3)
    column = np.clip(base + np.linspace(-8, 8, h, dtype=np.float32)[:, None], 0, 255).astype(np.uint8)
    im = Image.fromarray(np.ascontiguousarray(np.broadcast_to(column[:, None], (h, w, 3))))
    metal = tuple(int(c) for c in np.clip(np.array(METALS[rng.integers(3)]) + rng.normal(0, 10, 3), 0, 255))
    gem = GEMS[rng.integers(len(GEMS))]
    cx, cy, r = w / 2 + rng.normal(0, w * 0.03), h / 2 + rng.normal(0, h * 0.03), min(w, h) * rng.uniform(0.22, 0.33)
    shadow = Image.new("L", (w // 4, h // 4), 0)  # soft shadow: blurred at 1/4 size, then enlarged
    ImageDraw.Draw(shadow).ellipse([v / 4 for v in (cx - r, cy + r * 0.7, cx + r, cy + r * 1.05)], fill=90)
    shadow = shadow.filter(ImageFilter.GaussianBlur(r * 0.04)).resize((w, h), Image.Resampling.BILINEAR)
    im.paste((150, 150, 150), mask=shadow)
    d = ImageDraw.Draw(im)
    if kind == "ring":  # a thick band seen slightly from above, gem on top
        d.ellipse((cx - r, cy - r * 0.6, cx + r, cy + r * 0.6), outline=metal, width=int(r * 0.18))
        g = r * 0.22
        d.ellipse((cx - g, cy - r * 0.6 - g * 1.6, cx + g, cy - r * 0.6 + g * 0.4), fill=gem, outline=metal, width=6)
    else:  # pendant: chain and a drop
        d.line((cx - r * 1.4, cy - r * 1.6, cx, cy - r * 0.4, cx + r * 1.4, cy - r * 1.6), fill=metal, width=5)
        d.ellipse((cx - r * 0.35, cy - r * 0.45, cx + r * 0.35, cy + r * 0.45), fill=gem, outline=metal, width=12)
    hl = Image.new("L", (w, h), 0)
    ImageDraw.Draw(hl).ellipse((cx - r * 0.5, cy - r * 0.5, cx - r * 0.2, cy - r * 0.3), fill=120)
    im.paste((255, 255, 255), mask=hl.filter(ImageFilter.GaussianBlur(6)))
    arr = np.asarray(im).astype(np.int16)
    arr += _sensor_noise(rng, h, w)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def make_photos(folder: Path, n: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        long = int(rng.integers(900, 1200))
        short = int(long * rng.choice([1.0, 1.0, 0.75]))
        size = (long, short) if rng.random() < 0.5 else (short, long)
        kind = "ring" if i % 2 else "pendant"
        (folder / kind).mkdir(parents=True, exist_ok=True)
        p = folder / kind / f"photo_{i:04d}.jpg"
        make_photo(rng, size, kind).save(p, quality=90)
        paths.append(p)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--res", type=int, default=128)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--compare", action="store_true", help="also time one-process decode with/without draft")
    args = ap.parse_args()

    from jewelgan.data.imageio import LoadOptions, load_image
    from jewelgan.data.prepare import prepare

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "photos"
        t = time.perf_counter()
        paths = make_photos(src, args.n)
        mb = sum(p.stat().st_size for p in paths) / 1e6
        print(f"made {args.n} JPEG photos (~1000 px, q90, {mb:.0f} MB) in {time.perf_counter() - t:.1f} s")
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        t = time.perf_counter()
        rep = prepare(src, Path(tmp) / "bench.jga", args.res, workers=args.workers, progress=False, log=None)
        dt = time.perf_counter() - t
        print(f"prepare: {rep.written}/{rep.found} photos -> {args.res} px with {args.workers} workers in "
              f"{dt:.2f} s = {rep.found / dt:.0f} photos/s (cpus={os.cpu_count()}, load avg before={load:.2f})")
        # CPU time per photo in one process is far less sensitive to other jobs on the machine than
        # wall time: it gives the throughput the same code reaches on otherwise idle cores
        cpu = time.process_time()
        prepare(src, Path(tmp) / "one.jga", args.res, workers=1, progress=False, log=None)
        per_photo = (time.process_time() - cpu) / args.n
        print(f"CPU time: {per_photo * 1000:.1f} ms per photo in one process -> "
              f"~{args.workers / per_photo:.0f} photos/s on {args.workers} idle cores")
        if args.compare:
            for draft in (True, False):
                opts = LoadOptions(args.res, draft=draft)
                k = min(60, len(paths))
                t = time.perf_counter()
                for p in paths[:k]:
                    load_image(p, opts)
                dt = time.perf_counter() - t
                print(f"one process, draft={'on ' if draft else 'off'}: {k / dt:.0f} photos/s")


if __name__ == "__main__":
    main()
