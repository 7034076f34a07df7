"""Render one labelled image, or a whole dataset archive in parallel, deterministically.

Image i of a set depends only on (seed, i): its attributes come from the stratified sampler and
every other choice from a numpy Generator seeded with (seed, i). Workers render images in any
order but the archive is written in index order, so the worker count never changes the result.
"""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import numpy as np

from jewelgan.data.archive import RESOLUTIONS, ArchiveWriter
from jewelgan.studio.attributes import Spec, check_categories, sample_spec, studio_schema
from jewelgan.studio.camera import Camera, sample_view
from jewelgan.studio.materials import Lighting
from jewelgan.studio.pieces import BUILDERS
from jewelgan.studio.render import render
from jewelgan.studio.scene import Scene
from jewelgan.studio.sdf import rot_x


def lay_flat(scene: Scene) -> None:
    """Turn a piece that faces the camera (+z) face up, resting on the floor (a flat-lay).

    Used for pendants and earrings seen from the top, which is how they are shot from above;
    the chain then runs away from the camera instead of up.
    """
    from jewelgan.studio.render import trace

    Q = rot_x(-np.pi / 2)
    for part in scene.parts:
        part.R = (Q @ part.R).astype(np.float32)
        part.t = (Q @ part.t).astype(np.float32)
    # find the lowest surface point with upward rays from below, and set it on the floor
    c, r = scene.bounds()
    g = np.linspace(-r, r, 24, dtype=np.float32)
    gx, gz = np.meshgrid(c[0] + g, c[2] + g)
    origin = np.stack([gx.ravel(), np.full(gx.size, c[1] - 2 * r), gz.ravel()], axis=1).astype(np.float32)
    up = np.tile(np.array([0, 1, 0], np.float32), (len(origin), 1))
    t, hit = trace(scene, origin, up, 0.0, eps=1e-3 * r, shadow_only=True)
    lowest = float(origin[0, 1] + t[hit].min()) if hit.any() else 0.0
    for part in scene.parts:
        part.t = part.t - np.array([0, lowest - scene.floor_y, 0], np.float32)


def compose(spec: Spec, rng: np.random.Generator) -> tuple[Scene, Camera, Lighting]:
    """Build the piece, place the camera for the view, and light the studio."""
    parts = BUILDERS[spec.category](rng, spec.style, spec.gemstone, spec.cut)
    scene = Scene(parts, spec.metal)
    if spec.view == "top" and spec.category in ("pendant", "earrings"):
        lay_flat(scene)
    el, az = sample_view(spec.view, rng)
    if spec.category == "bracelet" and spec.view in ("front", "side"):
        el += 12.0  # a bracelet lies flat: from 10 degrees it would be a sliver at 64 px
    pts = scene.frame_points()
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    target = (lo + hi) / 2
    size = float(np.linalg.norm(hi - lo))
    fov = rng.uniform(16, 24)
    camera = Camera.orbit(target, 1.4 * size / np.tan(np.radians(fov) / 2), el, az, fov,
                          roll_deg=rng.uniform(-3, 3))
    camera.fit(pts, margin=rng.uniform(1.12, 1.28))
    # small off-centre jitter, as a photographer never centres twice the same way
    cx, cy, half = camera.window
    camera.window = (cx + rng.uniform(-0.04, 0.04) * half, cy + rng.uniform(-0.04, 0.04) * half, half)
    lighting = Lighting.sample(rng, yaw=np.radians(az))
    return scene, camera, lighting


def render_one(seed: int, index: int, res: int = 64, categories=None, alpha: bool = False
               ) -> tuple[np.ndarray, dict[str, str]]:
    """(res x res x 3 uint8 image, or x 4 with the piece's coverage as alpha, labels) for image `index` of
    the set with this seed. The RGB channels are the same with or without alpha."""
    spec, rng = sample_spec(seed, index, categories)
    scene, camera, lighting = compose(spec, rng)
    return render(scene, camera, lighting, res, alpha=alpha), spec.labels()


# attributes that can change while the piece stays the same: the category and style decide which piece is
# built (and draw from the image's rng), the view where the camera goes; the metal is only a material, and so is
# the gemstone between stones (a piece with no stone is built otherwise: "none" never changes either way)
VARIANT_ATTRIBUTES = ("metal", "gemstone")


def _variant_scene(seed: int, index: int, categories, changes: dict[str, str]):
    """The scene of image `index` of set `seed` with `changes` applied (only attributes that leave the piece,
    pose and light as they are), and its labels."""
    from dataclasses import replace

    from jewelgan.studio.attributes import ATTRIBUTES

    for name, value in changes.items():
        if name not in VARIANT_ATTRIBUTES:
            raise ValueError(f"{name!r} cannot change while the piece stays the same; only {', '.join(VARIANT_ATTRIBUTES)}")
        if value not in ATTRIBUTES[name]:
            raise ValueError(f"unknown {name} {value!r}; known: {', '.join(ATTRIBUTES[name])}")
    spec, rng = sample_spec(seed, index, categories)
    stone = changes.get("gemstone", spec.gemstone)
    if stone != spec.gemstone and "none" in (stone, spec.gemstone):
        raise ValueError(f"image {index} of set {seed} ({spec.gemstone}): a gemstone changes only between stones")
    spec = replace(spec, **changes)
    return compose(spec, rng), spec.labels()


def render_variant(seed: int, index: int, res: int = 64, categories=None, alpha: bool = False, **changes: str
                   ) -> tuple[np.ndarray, dict[str, str]]:
    """Image `index` of set `seed` with attributes changed and everything else kept: the same piece, pose
    and light in another metal. The ground truth of an edit (benchmarks/edit_quality.py)."""
    (scene, camera, lighting), labels = _variant_scene(seed, index, categories, changes)
    return render(scene, camera, lighting, res, alpha=alpha), labels


def render_one_layers(seed: int, index: int, res: int = 64, categories=None, **changes: str):
    """(Layers, labels) for image `index` of set `seed`, optionally in another metal (as render_variant): the
    piece's exact coverage, own colour, floor shadow and material map, for mattes and material masks."""
    from jewelgan.studio.render import render_layers

    (scene, camera, lighting), labels = _variant_scene(seed, index, categories, changes)
    return render_layers(scene, camera, lighting, res), labels


def _work(args):
    seed, index, res, categories = args
    return render_one(seed, index, res, categories, alpha=True)


def render_jobs(work, jobs: list, workers: int = 1, chunksize: int = 4) -> list:
    """work(job) for every job, in order, on `workers` processes (spawned, not forked: callers may hold torch's
    threads); what the layer sets and metal pairs render with."""
    if workers <= 1:
        return [work(j) for j in jobs]
    with mp.get_context("spawn").Pool(workers) as pool:
        return pool.map(work, jobs, chunksize=chunksize)


def render_dataset(out, n: int, res: int = 64, seed: int = 0, categories=None, workers: int = 2,
                   overwrite: bool = False, progress: bool = True) -> Path:
    """Render n images into a dataset archive at `out` (images in index order); returns its path.

    Studio archives are RGBA: the renderer knows each pixel's exact coverage, which is what transparent
    cut-outs are trained from."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if res not in RESOLUTIONS:
        raise ValueError(f"res must be one of {RESOLUTIONS}, got {res}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    cats = check_categories(categories)
    out = Path(out)
    meta = {"studio": {"seed": seed, "categories": cats, "renderer": "jewelgan.studio/2"}}
    jobs = [(seed, i, res, cats) for i in range(n)]
    from tqdm import tqdm

    bar = tqdm(total=n, unit="img", desc=f"render {res}px", disable=not progress)
    with ArchiveWriter(out, res, studio_schema(), overwrite=overwrite, extra_meta=meta,
                                          channels=4) as writer:
        if workers == 1:
            results = map(_work, jobs)
            pool = None
        else:
            # spawn, not fork: callers (the demo, the trainer) may hold threads from torch
            pool = mp.get_context("spawn").Pool(workers)
            results = pool.imap(_work, jobs, chunksize=max(1, min(16, n // (workers * 8))))
        try:
            for i, (image, labels) in enumerate(results):
                writer.add(image, labels, f"studio:seed={seed}:index={i}")
                bar.update(1)
        finally:
            if pool is not None:
                pool.terminate()
            bar.close()
    return out
