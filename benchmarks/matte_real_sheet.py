"""Cut-outs of real product photos, looked at: each photo beside its cut-out on a dark and on a checked backdrop.

Real photos have no true alpha, so the figures of benchmarks/matte_quality.py cannot be computed on them; this
sheet is how the matte is judged on them (white and dark backdrops, diamonds, pearls, white metal, chains).
Photos are taken evenly across the folder's categories, in sorted order (the same photos every run).

    python benchmarks/matte_real_sheet.py --photos /work/data/real/photos/holdout --n 48 \\
        --out docs/images/matte_real_cutouts.png [--method keying]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from jewelgan.data.imageio import load_full_size
from jewelgan.grid import fit_tile
from jewelgan.inference.cutout import checkerboard, composite

CELL = 128


def pick(folder: Path, n: int) -> list[Path]:
    """n photos taken in turn from each category folder (a small category gives what it has)."""
    groups = sorted(p for p in folder.iterdir() if p.is_dir()) or [folder]
    files = [sorted(p for p in g.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp")) for g in groups]
    out, k = [], 0
    while len(out) < n and any(k < len(f) for f in files):
        out += [f[k] for f in files if k < len(f)][: n - len(out)]
        k += 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, required=True)
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--method", choices=("jewelgan", "keying"), default="jewelgan")
    ap.add_argument("--matte", type=Path, default=None, help="a matte folder or run (default: the shipped one)")
    args = ap.parse_args()
    if args.method == "jewelgan":
        from jewelgan.matte.predict import Matte

        m = Matte.load(args.matte) if args.matte is None or (args.matte / "matte.json").is_file() \
            else Matte.from_run(args.matte)
        cut = lambda rgb: m(rgb).cutout()  # noqa: E731
    else:
        from jewelgan.data.keying import key_alpha

        cut = lambda rgb: np.dstack([rgb, key_alpha(rgb)[0]])  # noqa: E731
    dark = np.full((CELL, CELL, 3), 24, np.uint8)
    checks = checkerboard(CELL, 8)
    rows, solid = [], []
    for path in pick(args.photos, args.n):
        rgb = load_full_size(path)
        rgba = cut(rgb)
        small = Image.fromarray(rgba, "RGBA")
        small.thumbnail((CELL, CELL), Image.LANCZOS)
        padded = np.zeros((CELL, CELL, 4), np.uint8)
        y, x = (CELL - small.height) // 2, (CELL - small.width) // 2
        padded[y:y + small.height, x:x + small.width] = np.asarray(small)
        rows.append(np.concatenate([fit_tile(rgb, CELL), composite(padded, dark), composite(padded, checks)], 1))
        solid.append(float((rgba[..., 3] > 229).mean()))
    per_row = 4
    while len(rows) % per_row:
        rows.append(np.zeros_like(rows[0]))
    sheet = np.concatenate([np.concatenate(rows[i:i + per_row], 1) for i in range(0, len(rows), per_row)], 0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(args.out)
    print(f"{len(solid)} photos; share of pixels >= 0.9 opaque: median {np.median(solid):.3f}; sheet {args.out}")


if __name__ == "__main__":
    sys.exit(main())
