"""A ring worn on a finger, from a cut-out drawn as a product shot.

A product shot shows a ring from above its face or at three quarters: an "O", or a wide ellipse. On a hand the
band goes round the finger, which is seen from the side: the band is foreshortened to a narrow ellipse across the
finger, and its middle (where the band faces the camera) sags below its ends as it follows the finger's round
top. The near half shows; the far half is hidden by the finger (occlusion.ring_far_side).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

SQUASH = 0.45   # the band's ellipse across a finger seen from above the hand: about this flat
BEND = 0.12     # how far the band's middle sags below its ends, as a share of the ring's width


def wrap_ring(cutout: np.ndarray, squash: float = SQUASH, bend: float = BEND) -> np.ndarray:
    """uint8 RGBA ring -> the ring foreshortened to `squash` of its height and bent round a finger (each column
    moved down by a parabola, `bend` x width at the middle, 0 at the sides). Width is kept."""
    if not (0 < squash <= 1 and 0 <= bend < 1):
        raise ValueError(f"squash in (0, 1], bend in [0, 1): got {squash}, {bend}")
    h, w = cutout.shape[:2]
    new_h = max(1, round(h * squash))
    flat = np.asarray(Image.fromarray(cutout, "RGBA").convert("RGBa").resize((w, new_h), Image.LANCZOS)
                      .convert("RGBA"))
    sag = bend * w
    drop = np.round(sag * (1 - ((np.arange(w) + 0.5) / w * 2 - 1) ** 2)).astype(int)
    out = np.zeros((new_h + int(np.ceil(sag)) + 1, w, 4), np.uint8)
    for x in range(w):
        out[drop[x]: drop[x] + new_h, x] = flat[:, x]
    return out
