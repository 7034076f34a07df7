"""Uneven catalogues: does a small category keep its variety? Trains the legs on one archive for the same
wall-clock budget (two at a time, one thread each), then prints per value of --attribute: the perceptual
spread ratio (metrics/spread.py; ~1 varied like the photos, ~0.3 one picture), FID and KID against the
value's own images (small-n caveat: metrics/per_value.py), and the overall FID/KID; and writes a sheet
per leg (per value: 6 training images, then 10 samples).

    # the uneven sets of docs/real-photos.md, from a balanced archive
    python benchmarks/uneven_catalogue.py --make-uneven studio64.jga --keep bracelet=70 --data studio_uneven64.jga
    python benchmarks/uneven_catalogue.py --make-uneven real64.jga --keep pendant=0,necklace=75,bracelet=23,ring=19 \\
        --data real_uneven64.jga
    python benchmarks/uneven_catalogue.py --data real_uneven64.jga --out uneven-real --minutes 30

Legs: style (the cpu-64 preset as shipped), style-batch (cpu-64 with guide_value_mean "batch", the recipe
before the per-value fix), dcgan-half (the half-width DCGAN of docs/real-photos.md). --reuse evaluates the
runs already in OUT/runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

LEGS = {
    "style": ["--model", "style", "--preset", "cpu-64"],
    "style-batch": ["--model", "style", "--preset", "cpu-64", "--set", "guide_value_mean=batch"],
    "style-balanced": ["--model", "style", "--preset", "cpu-64", "--set", "balance=0.5"],
    "dcgan-half": ["--model", "dcgan", "--bf16", "--channels-last", "--set", "model_args={ngf: 32, ndf: 32}"],
}


def train_legs(legs: list[str], args) -> None:
    """Two legs at a time, one thread each, the same budget."""
    for i in range(0, len(legs), 2):
        procs = []
        for leg in legs[i:i + 2]:
            if (args.out / "runs" / leg / "checkpoints").is_dir():
                print(f"[{leg}] exists, reused", flush=True)
                continue
            cmd = [sys.executable, "-m", "jewelgan.cli", "train", "--data", str(args.data), *LEGS[leg], "--minutes",
                   str(args.minutes), "--threads", "1", "--out", str(args.out / "runs"), "--name", leg, "--seed",
                   str(args.seed), "--grid-every", "10", "--ckpt-every", "20", "--no-progress"]
            log = open(args.out / f"{leg}.log", "w")
            procs.append((leg, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))))
        for leg, p in procs:
            if p.wait():
                sys.exit(f"error: leg {leg} failed (see {args.out / (leg + '.log')})")


def sheet(G, schema, archive, attribute: str, path: Path) -> None:
    import numpy as np

    from jewelgan.grid import save_grid
    from jewelgan.inference import sample_images

    tiles = []
    col = archive.labels[:, archive.schema.names.index(attribute)]
    for i, value in enumerate(archive.schema.attributes[attribute]):
        reals = archive.rgb(np.flatnonzero(col == i)[:6])
        pad = np.full((6 - len(reals), *reals.shape[1:]), 255, np.uint8)
        tiles += [*reals, *pad, *sample_images(G, schema, 10, {attribute: value}, seed=0)[..., :3]]
    save_grid(np.stack(tiles), path, ncol=16)


def evaluate(leg: str, args) -> dict:
    from jewelgan.data.archive import Archive
    from jewelgan.inference import load_generator
    from jewelgan.metrics.api import evaluate_generator

    run = args.out / "runs" / leg
    G, schema, info = load_generator(run)
    archive = Archive(args.data)
    details: dict = {}
    flat = evaluate_generator(G, schema, archive, n=args.eval_n, metrics=("fid", "kid", "values"), seed=1,
                              cache_dir=str(args.out / "metric-cache"), details=details,
                              per_value=[args.attribute], n_per_value=args.n_per_value)
    sheet(G, schema, archive, args.attribute, args.out / "sheets" / f"{leg}.png")
    return {"kimg": info["kimg"], "fid": flat["fid"], "kid": flat["kid"], "values": details["values"][args.attribute]}


def print_table(results: dict, args) -> str:
    legs = list(results)
    values = list(next(iter(results.values()))["values"])
    lines = [f"uneven catalogue: {args.data}, {args.minutes:g} min per leg, two legs at once, one thread each; "
             f"per {args.attribute} value: spread ratio / FID / KID (n = {args.n_per_value} samples per value)",
             f"{'':<22}" + "".join(f"{leg:>26}" for leg in legs)]
    for v in values:
        n = results[legs[0]]["values"][v]["images"]
        row = f"{v + f' ({n})':<22}"
        for leg in legs:
            e = results[leg]["values"].get(v)
            row += f"{e['spread']:>8.2f} {e['fid']:>8.1f} {e['kid']:>8.4f}" if e else f"{'-':>26}"
        lines.append(row)
    lines.append(f"{'overall FID / KID':<22}" + "".join(f"{results[leg]['fid']:>17.1f} {results[leg]['kid']:>8.4f}"
                                                        for leg in legs))
    lines.append(f"{'kimg':<22}" + "".join(f"{results[leg]['kimg']:>26.1f}" for leg in legs))
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--make-uneven", type=Path, default=None, help="write --data from this archive with --keep")
    p.add_argument("--keep", default="", help="value=count,... of --attribute (0 drops a value)")
    p.add_argument("--attribute", default="category")
    p.add_argument("--legs", default="style,dcgan-half")
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--out", type=Path, default=Path("uneven"))
    p.add_argument("--eval-n", type=int, default=1000)
    p.add_argument("--n-per-value", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reuse", action="store_true", help="only evaluate the runs in OUT/runs")
    p.add_argument("--train-only", action="store_true", help="train the legs, evaluate later with --reuse")
    p.add_argument("--eval-threads", type=int, default=os.cpu_count() or 1)
    args = p.parse_args(argv)
    if args.make_uneven:
        from jewelgan.data.subset import take_per_value

        counts = {k: int(v) for k, v in (item.split("=") for item in args.keep.split(",") if item)}
        take_per_value(args.make_uneven, args.data, args.attribute, counts, seed=args.seed, overwrite=True)
        print(f"wrote {args.data}")
        return
    legs = [leg.strip() for leg in args.legs.split(",") if leg.strip()]
    unknown = [leg for leg in legs if leg not in LEGS]
    if unknown:
        sys.exit(f"error: unknown leg(s) {', '.join(unknown)}; known: {', '.join(LEGS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.reuse:
        train_legs(legs, args)
    if args.train_only:
        return
    import torch

    torch.set_num_threads(args.eval_threads)
    results = {leg: evaluate(leg, args) for leg in legs}
    text = print_table(results, args)
    print(text)
    (args.out / "uneven.txt").write_text(text + "\n")
    (args.out / "uneven.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
