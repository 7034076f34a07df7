"""Transparent cut-outs: from an image as seen on its backdrop plus coverage (alpha) to RGBA, and back.

Archives and generators hold RGB as it looks on the backdrop, with alpha beside it: every RGB consumer
(metrics, guidance, grids) reads them unchanged. A cut-out needs the piece's own colour where it only
partly covers a pixel, so the backdrop's share is taken out: seen = a * F + (1 - a) * B  =>
F = (seen - (1 - a) * B) / a. The backdrop colour B is each image's own, the median of its uncovered
pixels, which is right for the studio's white sweep and for a photo's own backdrop alike.
"""

from __future__ import annotations

import numpy as np

UNCOVERED = 8 / 255  # alpha below this counts as backdrop when estimating its colour
FAINT = 13           # alpha below this (0.05) away from the piece is haze, not coverage
SOLID = 128          # alpha from this up is the piece itself


def clean_alpha(alpha: np.ndarray) -> np.ndarray:
    """uint8 (H, W) alpha with the faint haze away from the piece set to 0.

    A generator's alpha is never exactly 0: a quarter of the default model's pixels carried alpha 1-12 far
    from any piece, a veil that shows on a dark page. Faint alpha within reach of the piece (1/32 of the
    side, at least 2 px) is its soft edge and stays."""
    from scipy.ndimage import binary_dilation

    faint = (alpha > 0) & (alpha < FAINT)
    if not faint.any():
        return alpha
    reach = max(2, round(alpha.shape[0] / 32))
    near = binary_dilation(alpha >= SOLID, iterations=reach)
    return np.where(faint & ~near, 0, alpha).astype(alpha.dtype)


def backdrop_colour(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """(3,) float in [0, 1]: the median colour of the uncovered pixels (the border's when all are covered)."""
    rgb = rgb.astype(np.float32) / 255
    a = alpha.astype(np.float32) / 255
    free = a < UNCOVERED
    if free.sum() < 8:
        free = np.zeros_like(free)
        free[0, :] = free[-1, :] = free[:, 0] = free[:, -1] = True
    return np.median(rgb[free], axis=0)


def to_cutout(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 4) seen-on-backdrop RGB + alpha -> uint8 (H, W, 4) straight (unpremultiplied) RGBA, the
    haze away from the piece cleared (clean_alpha)."""
    if image.ndim != 3 or image.shape[2] != 4 or image.dtype != np.uint8:
        raise ValueError(f"to_cutout needs a uint8 HxWx4 image, got {image.dtype} {image.shape}")
    rgb, alpha = image[..., :3], clean_alpha(image[..., 3])
    b = backdrop_colour(rgb, alpha)
    a = alpha.astype(np.float32)[..., None] / 255
    seen = rgb.astype(np.float32) / 255
    fg = np.where(a > 1 / 255, (seen - (1 - a) * b) / np.maximum(a, 1 / 255), seen)
    out = np.empty_like(image)
    out[..., :3] = np.round(np.clip(fg, 0, 1) * 255)
    out[..., 3] = alpha
    return out


def composite(cutout: np.ndarray, background) -> np.ndarray:
    """uint8 (H, W, 4) straight RGBA over a background colour (3,) or image (H, W, 3) -> uint8 (H, W, 3)."""
    a = cutout[..., 3:].astype(np.float32) / 255
    bg = np.broadcast_to(np.asarray(background, np.float32), cutout.shape[:2] + (3,))
    out = cutout[..., :3].astype(np.float32) * a + bg * (1 - a)
    return np.round(np.clip(out, 0, 255)).astype(np.uint8)


def checkerboard(size: int, square: int = 8) -> np.ndarray:
    """uint8 (size, size, 3) light/dark grey checks: the usual backdrop that shows transparency."""
    i = (np.arange(size) // square)
    checks = (i[:, None] + i[None, :]) % 2
    return np.where(checks[..., None] == 1, 204, 245).astype(np.uint8).repeat(3, axis=2)


def silhouette_iou(image: np.ndarray, threshold: float = 8.0, against: str = "cutout") -> float:
    """How well an image's alpha agrees with what it shows: IoU of the alpha > 0.5 silhouette and the
    silhouette of pixels that differ from the image's backdrop colour by more than `threshold` levels (any
    channel), holes filled in both. image: uint8 (H, W, 4), seen RGB + alpha, as archives and generators
    hold it.

    against="cutout": the cut-out composited back over the backdrop is compared. Where alpha is 0 that
    composite is the backdrop exactly, so what lies outside the alpha by design (the studio's contact
    shadow) stays out, and a small threshold only has to clear uint8 rounding; it catches alpha spread
    over bare backdrop (a fringe the cut-out would carry) but not alpha missing from the piece (the
    composite drops that part). against="picture": the seen RGB itself, which catches both but also
    counts the shadow against the alpha. Each level the threshold rises counts more of a pale piece as not
    shown (silver on the studio's white sweep differs from it by a few levels in its highlights); the
    benchmark (benchmarks/cutout_consistency.py) prints both kinds at 4, 8 and 16 levels, for a model and
    for its training renders. Filling holes keeps white stones and highlights enclosed by the piece from
    counting against the alpha, and treats a ring's opening the same way on both sides."""
    from scipy.ndimage import binary_fill_holes

    if against not in ("cutout", "picture"):
        raise ValueError(f"against must be 'cutout' or 'picture', got {against!r}")
    rgb, alpha = image[..., :3], image[..., 3]
    backdrop = backdrop_colour(rgb, alpha) * 255
    shown_rgb = composite(to_cutout(image), backdrop) if against == "cutout" else rgb
    shown = binary_fill_holes(np.abs(shown_rgb.astype(np.float32) - backdrop).max(axis=2) > threshold)
    covered = binary_fill_holes(alpha > 127)
    union = (shown | covered).sum()
    return float((shown & covered).sum() / union) if union else 1.0
