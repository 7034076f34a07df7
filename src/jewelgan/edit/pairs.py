"""Metal pairs with exact answers: the same studio piece, pose and light rendered in every metal, taken apart
(coverage, the piece's own colour per metal, floor shadow, material map), and put back together over shop
backdrops so that the two photos of a pair differ only where the metal is.

`render_metal_pairs` renders once into one .npz (uint8 planes); `compose_pair` draws one backdrop, shadow,
reflection and sensor noise and applies the same draw to both metals (matte/examples.compose with the same
random state), so a pair's only difference is the piece's own colour.

    python -m jewelgan.cli render-pairs pairs256.npz --n 640 --res 256 --seed 303
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np

from jewelgan.matte.examples import compose

PLANES = ("foreground", "alpha", "shadow", "material")


class PairsError(ValueError):
    """A pairs file that is missing, damaged or of another kind (names the file)."""


def _q(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


def _render(args):
    from jewelgan.studio.attributes import ATTRIBUTES
    from jewelgan.studio.dataset import render_one_layers

    seed, index, res = args
    colours, labels, first = [], None, None
    for metal in ATTRIBUTES["metal"]:
        layers, lab = render_one_layers(seed, index, res, metal=metal)
        colours.append(_q(layers.foreground))
        if first is None:
            first, labels = layers, lab
    # coverage, shadow and materials belong to the geometry, which the metal does not change
    return np.stack(colours), _q(first.coverage), _q(first.shadow), first.material, labels


def render_metal_pairs(out: str | Path, n: int, res: int = 256, seed: int = 0, workers: int = 1) -> Path:
    """Render n studio pieces in every metal at res px into one compressed .npz: foreground (n, metals, res,
    res, 3), alpha, shadow, material (n, res, res), the metals' names, and each piece's labels (as drawn, so
    its `metal` is the piece's own; every metal is there regardless)."""
    from jewelgan.studio.attributes import ATTRIBUTES

    jobs = [(seed, i, res) for i in range(n)]
    from jewelgan.studio.dataset import render_jobs

    rows = render_jobs(_render, jobs, workers, chunksize=4)
    planes = {name: np.stack([r[i] for r in rows]) for i, name in enumerate(PLANES)}
    out = Path(out)
    np.savez_compressed(out, metals=np.array(list(ATTRIBUTES["metal"])), seed=seed,
                        labels=np.array(json.dumps([r[4] for r in rows])), **planes)
    return out


class PairSet:
    """The planes of a render_metal_pairs file; `get(i, metal)` is one piece in one metal as a matte example."""

    def __init__(self, path: str | Path):
        try:
            with np.load(path) as f:
                self.planes = {name: f[name] for name in PLANES}
                self.metals = [str(m) for m in f["metals"]]
        except (OSError, KeyError, ValueError) as e:
            raise PairsError(f"{path}: not a metal pairs file from `render-pairs` ({e})") from None
        fg = self.planes["foreground"]
        if fg.ndim != 5 or fg.shape[1] != len(self.metals) or fg.shape[-1] != 3:
            raise PairsError(f"{path}: foreground has shape {fg.shape}, expected (n, {len(self.metals)}, H, W, 3)")
        self.res = fg.shape[2]

    def __len__(self) -> int:
        return len(self.planes["foreground"])

    def get(self, i: int, metal: int) -> dict[str, np.ndarray]:
        return {"alpha": self.planes["alpha"][i].astype(np.float32) / 255,
                "foreground": self.planes["foreground"][i, metal].astype(np.float32) / 255,
                "shadow": self.planes["shadow"][i].astype(np.float32) / 255,
                "material": self.planes["material"][i]}


def compose_pair(source: dict, target: dict, kind: str, rng: np.random.Generator, photos: list | None = None
                 ) -> tuple[dict, dict]:
    """The two metals of one piece over the same backdrop, shadow, reflection and noise (one random draw used
    twice); each as matte/examples.compose returns it (image, alpha, shadow, material)."""
    twin = copy.deepcopy(rng)
    a = compose(source, kind, rng, photos)
    b = compose(target, kind, twin, photos)
    return a, b
