"""A contact sheet: a seeded sample of an archive's images in a grid, each captioned with its labels; for an
archive with alpha, a second sheet of the same images as cut-outs on a dark and on a checked backdrop (a
matte's haze, fringes and holes hide on the white a product photo is shown on)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from jewelgan.data.archive import Archive
from jewelgan.grid import make_grid

TILE = 128  # big enough to judge a jewel, small enough for 64 tiles on one screen


def caption(archive: Archive, index: int) -> str:
    """'#index' then one line per attribute value ('-' where missing)."""
    values = archive.label_dict(index)
    return "\n".join([f"#{index}"] + [v if v is not None else "-" for v in values.values()])


DARK = (24, 24, 28)


def _sample(archive: Archive, n: int, seed: int) -> np.ndarray:
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if len(archive) == 0:
        raise ValueError(f"{archive.path}: archive has no images")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(len(archive), size=min(n, len(archive)), replace=False))


def contact_sheet(archive: Archive | str, n: int = 64, seed: int = 0) -> Image.Image:
    """Up to n distinct images drawn with `seed`, shown in archive order with their labels."""
    archive = archive if isinstance(archive, Archive) else Archive(archive)
    idx = _sample(archive, n, seed)
    images = np.stack([archive.rgb(i) for i in idx])
    return make_grid(images, captions=[caption(archive, int(i)) for i in idx], tile=TILE)


def cutout_sheet(archive: Archive | str, n: int = 64, seed: int = 0) -> Image.Image:
    """The contact sheet's images (same n and seed) as cut-outs: each on a dark backdrop, then on checks."""
    from jewelgan.inference.cutout import checkerboard, composite, to_cutout

    archive = archive if isinstance(archive, Archive) else Archive(archive)
    if not archive.has_alpha:
        raise ValueError(f"{archive.path}: no alpha channel, so no cut-outs (prepare --alpha auto keys one)")
    tiles, captions = [], []
    for i in _sample(archive, n, seed):
        cut = to_cutout(np.asarray(archive.images[i]))
        tiles += [composite(cut, DARK), composite(cut, checkerboard(cut.shape[0], max(2, cut.shape[0] // 8)))]
        captions += [f"#{i} dark", f"#{i} checks"]
    return make_grid(np.stack(tiles), ncol=16, captions=captions, tile=TILE)
