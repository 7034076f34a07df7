"""Backdrops a shop shoots jewelry on, for training and testing the matte on the studio's exact coverage.

A studio render is the piece over one white sweep. A shop's photos are the piece over white and grey sweeps,
black velvet, gradients, fabric, wood, acrylic that mirrors the piece, with the piece's shadow on them. Each
kind here is drawn at random (colour, light falloff, texture scale), so the matte learns what a piece looks like
against many of them instead of learning one backdrop's colour. `photo` crops a real photo's border region (a
shop's own backdrops, with their shadows and grain) when photos are given.

All images are float32 (H, W, 3) in [0, 1].
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter, zoom

KINDS = ("white_sweep", "grey_sweep", "dark", "gradient", "fabric", "wood", "photo")


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    v, u = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1) * 2 - 1
    return u, v


def _falloff(size: int, rng: np.random.Generator, depth: float) -> np.ndarray:
    """A soft light falloff: brighter where the lamp points, darker towards one corner."""
    u, v = _grid(size)
    cx, cy = rng.uniform(-0.6, 0.6, 2)
    return (1 - depth * ((u - cx) ** 2 + (v - cy) ** 2) / 4).astype(np.float32)


def _noise(size: int, rng: np.random.Generator, scale: float) -> np.ndarray:
    """Smooth noise of unit spread at a feature size of about `scale` pixels."""
    n = gaussian_filter(rng.standard_normal((size, size)).astype(np.float32), max(scale, 0.5), mode="wrap")
    return n / (n.std() + 1e-6)


def _sweep(size, rng, level):
    tint = 1 + rng.uniform(-0.04, 0.04, 3)
    return level * _falloff(size, rng, rng.uniform(0, 0.25))[..., None] * tint


def _photo_border(size: int, rng: np.random.Generator, photos: list) -> np.ndarray:
    """A corner strip of a real photo (where the piece rarely is), stretched to the size: its colour, light
    falloff and grain, which is what a shop's backdrop looks like at that size."""
    photo = photos[int(rng.integers(len(photos)))]
    h, w = photo.shape[:2]
    side = max(8, int(min(h, w) * rng.uniform(0.12, 0.2)))
    y = 0 if rng.random() < 0.5 else h - side
    x = 0 if rng.random() < 0.5 else w - side
    crop = photo[y:y + side, x:x + side].astype(np.float32) / 255
    return np.clip(zoom(crop, (size / side, size / side, 1), order=1)[:size, :size], 0, 1)


def backdrop(kind: str, size: int, rng: np.random.Generator, photos: list | None = None) -> np.ndarray:
    if kind == "white_sweep":
        img = _sweep(size, rng, rng.uniform(0.9, 1.0))
    elif kind == "grey_sweep":
        img = _sweep(size, rng, rng.uniform(0.45, 0.85))
    elif kind == "dark":  # black velvet or slate: dark, a little texture
        img = _sweep(size, rng, rng.uniform(0.02, 0.15)) + 0.015 * _noise(size, rng, 1.0)[..., None]
    elif kind == "gradient":
        u, v = _grid(size)
        a = rng.uniform(0, 2 * np.pi)
        t = ((np.cos(a) * u + np.sin(a) * v) + 1.5) / 3
        c0, c1 = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        img = c0 + (c1 - c0) * t[..., None]
    elif kind == "fabric":  # a weave: two crossed fine stripes plus a slow fold shading
        u, v = _grid(size)
        f = rng.uniform(20, 60)
        weave = 0.5 + 0.25 * np.sin(f * u * np.pi) * np.sin(f * v * np.pi)
        folds = _noise(size, rng, size / 6)
        base = rng.uniform(0.1, 0.9, 3)
        img = base * (0.85 + 0.1 * weave + 0.06 * folds)[..., None]
    elif kind == "wood":  # grain: stretched noise bent by a slow wave
        u, v = _grid(size)
        rings = np.sin((v + 0.15 * _noise(size, rng, size / 4)) * rng.uniform(15, 40) * np.pi)
        grain = 0.5 + 0.5 * rings
        light, dark = np.array([0.62, 0.45, 0.3]), np.array([0.35, 0.22, 0.12])
        img = dark + (light - dark) * grain[..., None] * rng.uniform(0.7, 1.2)
        if rng.random() < 0.5:
            img = img.transpose(1, 0, 2)
    elif kind == "photo":
        if not photos:
            raise ValueError("backdrop kind 'photo' needs photos")
        img = _photo_border(size, rng, photos)
    else:
        raise ValueError(f"unknown backdrop kind {kind!r}; known: {', '.join(KINDS)}")
    return np.clip(img, 0, 1).astype(np.float32)
