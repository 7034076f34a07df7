"""The whole path on the built-in studio: render a labelled set, train, write samples.

This is what `make demo` runs on a fresh machine, so a newcomer sees every stage work in a bounded
time on a CPU. A rendered set is reused when a later demo asks for the same one.
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


def run_demo(out: str | Path = "demo_out", n: int = 2000, res: int = 64, minutes: float = 10.0,
             model: str = "dcgan", seed: int = 0, workers: int = 2, samples: int = 64,
             threads: int | None = None) -> DemoResult:
    """Render `n` studio images, train `model` for `minutes`, write a sheet and `samples` images.

    model: mlp, dcgan (CPU settings above) or style (its cpu-64 preset).
    threads: torch threads for training (1 is far faster when another job shares a 2-core CPU).
    """
    from jewelgan.generate import generate_bulk, load_generator, sample_images
    from jewelgan.grid import save_grid
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
    G, schema, _ = load_generator(run_dir)
    # one row per category, one column per metal: the conditioning is visible at a glance
    cats = schema.attributes.get("category", [None])
    metals = schema.attributes.get("metal", [None])
    tiles, captions = [], []
    for cat in cats:
        for metal in metals:
            attrs = {k: v for k, v in (("category", cat), ("metal", metal)) if v is not None}
            tiles.append(sample_images(G, schema, 2, attrs, seed=seed + len(tiles) * 2))
            captions += [f"{cat}\n{metal}"] * 2
    import numpy as np

    sheet = save_grid(np.concatenate(tiles), out / "samples_by_category_metal.png", ncol=2 * len(metals),
                      captions=captions, tile=96)
    samples_dir = generate_bulk(run_dir, out / "samples" / Path(run_dir).name, samples, seed=seed)
    (out / "demo.json").write_text(json.dumps({"archive": str(archive), "run": str(run_dir),
                                               "sheet": str(sheet), "samples": str(samples_dir)}, indent=1))
    print(f"done: sample sheet {sheet}, {samples} images in {samples_dir}, run in {run_dir}")
    return DemoResult(archive, Path(run_dir), sheet, samples_dir)
