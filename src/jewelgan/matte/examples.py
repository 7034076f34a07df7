"""Matte examples with exact answers: studio renders taken apart (coverage, the piece's own colour, floor shadow,
material) and put back together over shop backdrops.

`render_layer_set` renders the layers once into one .npz (uint8 planes); `compose` makes a photo from them over
a backdrop with a shadow of random strength and sometimes a floor reflection (which is backdrop: alpha 0), and
returns the answers beside it: alpha, the shadow layer (the share of the backdrop's light the shadow takes) and
the material map (0 backdrop, 1 metal, 2 stone).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jewelgan.matte.backdrops import KINDS, backdrop

PLANES = ("image", "alpha", "foreground", "shadow", "material")


def _render(args):
    from jewelgan.studio.dataset import render_one_layers

    seed, index, res = args
    layers, labels = render_one_layers(seed, index, res)
    q = lambda x: np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)  # noqa: E731
    return q(layers.image), q(layers.coverage), q(layers.foreground), q(layers.shadow), layers.material, labels


def render_layer_set(out: str | Path, n: int, res: int = 256, seed: int = 0, workers: int = 1) -> Path:
    """Render n studio pieces' layers at res px into one compressed .npz (image, alpha, foreground, shadow,
    material as uint8 arrays of n images, plus each image's labels as JSON)."""
    import json

    jobs = [(seed, i, res) for i in range(n)]
    from jewelgan.studio.dataset import render_jobs

    rows = render_jobs(_render, jobs, workers, chunksize=8)
    planes = {name: np.stack([r[i] for r in rows]) for i, name in enumerate(PLANES)}
    out = Path(out)
    np.savez_compressed(out, labels=np.array(json.dumps([r[5] for r in rows])), seed=seed, **planes)
    return out


class LayerSet:
    """The planes of a render_layer_set file, as float arrays per image."""

    def __init__(self, path: str | Path):
        with np.load(path) as f:
            self.planes = {name: f[name] for name in PLANES}
        self.res = self.planes["image"].shape[1]

    def __len__(self) -> int:
        return len(self.planes["image"])

    def get(self, i: int) -> dict[str, np.ndarray]:
        p = {k: v[i] for k, v in self.planes.items()}
        return {"alpha": p["alpha"].astype(np.float32) / 255, "foreground": p["foreground"].astype(np.float32) / 255,
                "shadow": p["shadow"].astype(np.float32) / 255, "material": p["material"]}


def _reflection(fg: np.ndarray, alpha: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The piece mirrored below its lowest point and fading: acrylic and glossy floors show one."""
    rows = np.nonzero(alpha.max(axis=1) > 0.5)[0]
    h = len(alpha)
    if not len(rows):
        return fg, np.zeros_like(alpha)
    bottom = rows[-1]
    flipped_a = np.zeros_like(alpha)
    flipped_fg = np.zeros_like(fg)
    span = min(bottom + 1, h - bottom - 1)
    if span <= 0:
        return fg, flipped_a
    flipped_a[bottom + 1:bottom + 1 + span] = alpha[bottom - span + 1:bottom + 1][::-1]
    flipped_fg[bottom + 1:bottom + 1 + span] = fg[bottom - span + 1:bottom + 1][::-1]
    fade = np.clip(1 - (np.arange(h) - bottom) / max(span * rng.uniform(0.3, 0.8), 1), 0, 1)
    return flipped_fg, flipped_a * fade[:, None] * rng.uniform(0.15, 0.4)


def compose(example: dict[str, np.ndarray], kind: str, rng: np.random.Generator, photos: list | None = None
            ) -> dict[str, np.ndarray]:
    """A photo of the example's piece on a `kind` backdrop and its answers, all float32 in [0, 1]:
    image (H, W, 3), alpha (H, W), shadow (H, W: the shadow layer of this photo), material (H, W uint8)."""
    alpha, fg = example["alpha"], example["foreground"]
    size = alpha.shape[0]
    bd = backdrop(kind, size, rng, photos)
    # the shadow falls on the backdrop; a dark backdrop hides most of it
    strength = rng.uniform(0.3, 1.0) * float(np.clip(bd.mean() * 1.5, 0.2, 1.0))
    shadow = example["shadow"] * strength
    bd = bd * (1 - shadow[..., None])
    if kind in ("white_sweep", "grey_sweep", "dark") and rng.random() < 0.3:
        rfg, ra = _reflection(fg, alpha, rng)
        bd = bd * (1 - ra[..., None]) + rfg * ra[..., None]
    a = alpha[..., None]
    image = fg * a + bd * (1 - a)
    image = image + rng.uniform(0, 0.012) * rng.standard_normal(image.shape).astype(np.float32)
    image = np.round(np.clip(image, 0, 1) * 255) / 255  # a photo is 8 bits
    return {"image": image.astype(np.float32), "alpha": alpha, "shadow": (shadow * (1 - alpha)).astype(np.float32),
            "material": example["material"]}


def kinds(photos: list | None) -> tuple[str, ...]:
    return KINDS if photos else tuple(k for k in KINDS if k != "photo")
