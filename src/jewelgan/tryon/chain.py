"""A pendant's chain drawn round the neck: the curve it hangs in, the stub a cut-out's own chain leaves, and the
line itself.

A cut-out of a pendant holds a few millimetres of chain going straight up out of the frame; pasted at the neck
that reads as a disc on a stick. Worn, the chain comes from behind the neck on both sides and hangs in a curve
whose lowest point holds the pendant. So the cut-out's straight stub is cut off, the chain is drawn through the
neck's sides and the pendant's point (two half-parabolas meeting level at the bottom, the shape a light chain
takes under a small weight), and the pendant hangs from that lowest point.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

SUPERSAMPLE = 4


def chain_curve(left, right, low, n: int = 48) -> np.ndarray:
    """(2n - 1, 2) points from `left` down to `low` (the lowest, where the slope is level) and up to `right`."""
    lx, ly = map(float, left)
    rx, ry = map(float, right)
    bx, by = map(float, low)
    if not (lx < bx < rx) or by <= max(ly, ry):
        raise ValueError("the chain's lowest point must lie between and below its ends")
    t = np.linspace(0.0, 1.0, n)
    down = np.stack([lx + (bx - lx) * t, ly + (by - ly) * (2 * t - t * t)], 1)    # level at t = 1
    up = np.stack([bx + (rx - bx) * t, by + (ry - by) * t * t], 1)               # level at t = 0
    return np.concatenate([down, up[1:]])


def trim_chain(cutout: np.ndarray, thin: float = 0.08) -> np.ndarray:
    """An RGBA pendant without the chain above it. A chain is thin: an opening with a disc `thin` of the
    piece's width wipes it out and leaves the pendant's body; everything above the body's top (one strand or
    the two of a V) is dropped, a few rows of bail kept for the drawn chain to meet. Unchanged when the
    opening leaves nothing (a piece that is all chain) or there is nothing above the body."""
    from scipy.ndimage import binary_opening, label

    solid = cutout[..., 3] > 127
    cols = np.flatnonzero(solid.any(axis=0))
    if not len(cols):
        return cutout
    r = max(1, round(thin * (cols[-1] - cols[0] + 1) / 2))
    body = binary_opening(solid, structure=np.ones((3, 3), bool), iterations=r)
    parts, n = label(body)
    if n == 0:
        return cutout
    biggest = 1 + int(np.argmax(np.bincount(parts.ravel())[1:]))
    top = int(np.flatnonzero((parts == biggest).any(axis=1))[0])
    first = int(np.flatnonzero(solid.any(axis=1))[0])
    if top - first <= r:
        return cutout
    out = cutout.copy()
    out[:max(0, top - r), :, 3] = 0  # the body's top less the opening's reach: the bail stays
    return out


def draw_chain(photo: np.ndarray, points: np.ndarray, colour, width: float,
               front: np.ndarray | None = None) -> np.ndarray:
    """uint8 (H, W, 3) photo with an anti-aliased chain along `points`, `width` px thick, in `colour` (RGB 0-255)
    with a brighter line along its middle (a metal catches the light); `front` hides it (hair over the neck)."""
    H, W = photo.shape[:2]
    pad = int(np.ceil(width)) + 2
    x0, y0 = np.floor(points.min(0)).astype(int) - pad
    x1, y1 = np.ceil(points.max(0)).astype(int) + pad
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
    if x0 >= x1 or y0 >= y1:
        return photo
    k = SUPERSAMPLE
    size = ((x1 - x0) * k, (y1 - y0) * k)
    local = [((x - x0) * k, (y - y0) * k) for x, y in points]
    body, shine = Image.new("L", size), Image.new("L", size)
    ImageDraw.Draw(body).line(local, fill=255, width=max(1, round(width * k)), joint="curve")
    ImageDraw.Draw(shine).line(local, fill=255, width=max(1, round(0.35 * width * k)), joint="curve")
    shrink = lambda im: np.asarray(im.resize((x1 - x0, y1 - y0), Image.BOX)).astype(np.float32) / 255  # noqa: E731
    a, s = shrink(body), shrink(shine)
    if front is not None:
        a, s = a * (1 - front[y0:y1, x0:x1]), s * (1 - front[y0:y1, x0:x1])
    base = np.asarray(colour, np.float32) / 255
    metal = base * 0.8 * (1 - s[..., None]) + np.minimum(1, base * 1.25 + 0.1) * s[..., None]
    out = photo.copy()
    region = out[y0:y1, x0:x1].astype(np.float32) / 255
    region = region * (1 - a[..., None]) + metal * a[..., None]
    out[y0:y1, x0:x1] = np.clip(region * 255 + 0.5, 0, 255).astype(np.uint8)
    return out


def metal_colour(cutout: np.ndarray) -> tuple[int, int, int]:
    """The piece's metal as seen near its top (the bail and chain): the median of its solid top pixels."""
    solid = cutout[..., 3] > 200
    rows = np.flatnonzero(solid.any(axis=1))
    if not len(rows):
        return (200, 170, 90)
    top = cutout[rows[0]: rows[0] + max(3, len(rows) // 6)]
    px = top[..., :3][top[..., 3] > 200]
    return tuple(int(v) for v in np.median(px, axis=0))
