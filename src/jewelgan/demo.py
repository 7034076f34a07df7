"""What `make demo` shows: the shipped model's images at once, and (with --train) the whole path.

Without training, the demo loads the model shipped in the package and writes a sheet (rows:
categories, columns: metals, and a row of transparent cut-outs on a checkerboard) plus a folder of
samples with their manifest: seconds after set-up. With --train it renders a labelled studio set,
trains on it for a bounded time on this CPU and writes the same sheet from that run, so a newcomer
sees every stage work. A rendered set is reused when a later demo asks for the same one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from jewelgan.data import Archive, ArchiveError


@dataclass
class DemoResult:
    archive: Path
    run_dir: Path
    sheet: Path
    samples: Path


def _reusable_archive(path: Path, n: int, res: int, seed: int) -> bool:
    try:
        a = Archive(path)
    except ArchiveError:
        return False
    studio = a.meta.get("studio", {})
    return len(a) == n and a.resolution == res and studio.get("seed") == seed


# The demo's 10 CPU-minutes go to a half-width DCGAN in channels_last: it sees ~2.6x the images per second of
# the style preset (docs/experiments.md, 2026-11-26 · 340cf98), which shows recognisable pieces soonest; for
# 30 minutes and more the style preset is the measured best (train/recipe.py, docs/real-photos.md).
CPU_SETTINGS = {
    "dcgan": dict(model_args={"ngf": 32, "ndf": 32}, channels_last=True),
    "mlp": {},
}


@dataclass
class ShippedDemo:
    sheet: Path
    samples: Path


def model_sheet(model, path: Path, seed: int = 0, size: int | None = None) -> Path:
    """Rows: categories; columns: metals (two samples each); with alpha, a last row of cut-outs of the
    same cells composited on a checkerboard, which shows the transparency. size: one of model.sizes (cells
    are drawn at that size and shown at up to 256 px)."""
    import numpy as np

    from jewelgan.grid import save_grid
    from jewelgan.inference.cutout import checkerboard, composite

    size = size or model.resolution
    schema = model.schema
    cats = schema.attributes.get("category", [None])
    metals = schema.attributes.get("metal", [None])
    tiles, captions = [], []
    for cat in cats:
        for metal in metals:
            attrs = {k: v for k, v in (("category", cat), ("metal", metal)) if v is not None}
            tiles.append(model.generate(2, attrs, seed=seed + len(tiles) * 2, size=size))
            captions += [f"{cat}\n{metal}"] * 2
    if model.has_alpha:
        for k, metal in enumerate(metals):
            cat = cats[k % len(cats)]
            attrs = {k2: v for k2, v in (("category", cat), ("metal", metal)) if v is not None}
            cut = model.generate(2, attrs, seed=seed + 1000 + 2 * k, transparent=True, size=size)
            board = checkerboard(cut.shape[1], max(2, cut.shape[1] // 8))
            tiles.append(np.stack([composite(c, board) for c in cut]))
            captions += [f"cut-out\n{metal}"] * 2
    tile = 96 if size <= 96 else min(size, 256)
    return save_grid(np.concatenate(tiles), path, ncol=2 * len(metals), captions=captions, tile=tile)


def show_shipped(out: str | Path = "demo_out", samples: int = 64, seed: int = 0) -> ShippedDemo:
    """The shipped default model's sheet and `samples` images (with manifest.jsonl) under `out`."""
    from jewelgan.inference import BulkRequest, load_model, resolve_model

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    folder = resolve_model(None)
    print(f"[1/2] the shipped model {folder.name} ({folder})")
    model = load_model(folder)
    # the sheet at up to 256 px a cell, the samples at the largest size the model draws (its upsampling stages)
    sheet = model_sheet(model, out / "shipped_by_category_metal.png", seed, max(s for s in model.sizes if s <= 256))
    largest = max(model.sizes)
    print(f"[2/2] {samples} samples at {largest} px")
    samples_dir = model.generate_bulk(BulkRequest(samples, seed=seed, size=largest), out / "samples" / folder.name)
    print(f"done: sample sheet {sheet}, {samples} images in {samples_dir} (train your own: jewelgan demo --train)")
    return ShippedDemo(sheet, samples_dir)


def run_demo(out: str | Path = "demo_out", n: int = 2000, res: int = 64, minutes: float = 10.0,
             model: str = "dcgan", seed: int = 0, workers: int = 2, samples: int = 64,
             threads: int | None = None) -> DemoResult:
    """Render `n` studio images, train `model` for `minutes`, write a sheet and `samples` images.

    model: mlp, dcgan (CPU settings above) or style (its cpu-64 preset).
    threads: torch threads for training (1 is far faster when another job shares a 2-core CPU).
    """
    from jewelgan.inference import BulkRequest, load_model
    from jewelgan.studio import render_dataset
    from jewelgan.train import TrainConfig, train

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    archive = out / f"studio{res}.jga"
    if _reusable_archive(archive, n, res, seed):
        print(f"[1/3] reusing {archive}")
    else:
        print(f"[1/3] rendering {n} studio images at {res} px into {archive}")
        render_dataset(archive, n, res=res, seed=seed, workers=workers, overwrite=True)

    print(f"[2/3] training {model} for {minutes:g} minutes on {archive}")
    if model == "style":
        from jewelgan.models.presets import preset_config

        settings = preset_config("cpu-64")
    else:
        settings = dict(CPU_SETTINGS.get(model, {}))
    settings.update(data=str(archive), model=model, minutes=minutes, out=str(out / "runs"), seed=seed,
                    res=res, grid_every=5.0, ckpt_every=5.0, threads=threads)
    run_dir = train(TrainConfig(**settings))

    print(f"[3/3] writing samples from {run_dir}")
    model = load_model(run_dir)
    # one row per category, one column per metal: the conditioning is visible at a glance
    sheet = model_sheet(model, out / "samples_by_category_metal.png", seed)
    samples_dir = model.generate_bulk(BulkRequest(samples, seed=seed), out / "samples" / Path(run_dir).name)
    (out / "demo.json").write_text(json.dumps({"archive": str(archive), "run": str(run_dir),
                                               "sheet": str(sheet), "samples": str(samples_dir)}, indent=1))
    print(f"done: sample sheet {sheet}, {samples} images in {samples_dir}, run in {run_dir}")
    return DemoResult(archive, Path(run_dir), sheet, samples_dir)
