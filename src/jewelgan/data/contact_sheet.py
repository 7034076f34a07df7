"""A contact sheet: a seeded sample of an archive's images in a grid, each captioned with its labels."""

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


def contact_sheet(archive: Archive | str, n: int = 64, seed: int = 0) -> Image.Image:
    """Up to n distinct images drawn with `seed`, shown in archive order with their labels."""
    archive = archive if isinstance(archive, Archive) else Archive(archive)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if len(archive) == 0:
        raise ValueError(f"{archive.path}: archive has no images")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(archive), size=min(n, len(archive)), replace=False))
    images = np.stack([archive.rgb(i) for i in idx])
    return make_grid(images, captions=[caption(archive, int(i)) for i in idx], tile=TILE)
