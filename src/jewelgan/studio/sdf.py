"""Signed distance functions (SDFs) of the primitives jewelry is built from, vectorised in numpy.

Every function takes points as a float32 (N, 3) array in the primitive's own frame and returns (N,)
distances (negative inside). Rotationally symmetric shapes use +y as their axis. Some of these are
lower bounds of the true distance rather than exact distances (convex polyhedra near edges, scaled
shapes); sphere tracing only needs a bound that never overshoots.
"""

from __future__ import annotations

import numpy as np

F = np.float32


def length(v: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("...i,...i->...", v, v))


def rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=F)


def rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=F)


def rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=F)


def sphere(p: np.ndarray, r: float) -> np.ndarray:
    return length(p) - F(r)


def rounded_rect2(qx: np.ndarray, qy: np.ndarray, ax: float, ay: float, rr: float) -> np.ndarray:
    """2D rounded rectangle of half-sizes (ax, ay) and corner radius rr, centred at the origin."""
    dx = np.abs(qx) - F(ax - rr)
    dy = np.abs(qy) - F(ay - rr)
    outside = np.sqrt(np.maximum(dx, 0) ** 2 + np.maximum(dy, 0) ** 2)
    return outside + np.minimum(np.maximum(dx, dy), 0) - F(rr)


def band(p: np.ndarray, radius: float, half_thick: float, half_width: float, rounding: float) -> np.ndarray:
    """A ring band: a rounded-rectangle profile (radial half_thick, axial half_width) swept around +y.

    rounding = min(half_thick, half_width) gives a round/oval wire; smaller values a flat court band.
    """
    radial = np.sqrt(p[:, 0] ** 2 + p[:, 2] ** 2) - F(radius)
    return rounded_rect2(radial, p[:, 1], half_thick, half_width, rounding)


def torus(p: np.ndarray, radius: float, wire: float) -> np.ndarray:
    q = np.sqrt(p[:, 0] ** 2 + p[:, 2] ** 2) - F(radius)
    return np.sqrt(q * q + p[:, 1] ** 2) - F(wire)


def capsule(p: np.ndarray, a, b, r: float) -> np.ndarray:
    a = np.asarray(a, dtype=F)
    ba = np.asarray(b, dtype=F) - a
    pa = p - a
    h = np.clip(pa @ ba / F(ba @ ba), 0, 1)
    return length(pa - h[:, None] * ba) - F(r)


def cylinder(p: np.ndarray, r: float, half_h: float, rounding: float = 0.0) -> np.ndarray:
    """Capped cylinder along +y, optionally with rounded rims (a bezel cup, a post, a coin)."""
    radial = np.sqrt(p[:, 0] ** 2 + p[:, 2] ** 2)
    return rounded_rect2(radial, p[:, 1], r, half_h, rounding)


def heart2(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """2D heart of unit height: point at (0, 0), lobes up to y = 1 (I. Quilez's construction)."""
    x = np.abs(x)
    upper = np.sqrt((x - 0.25) ** 2 + (y - 0.75) ** 2) - np.sqrt(2) / 4
    s = np.maximum(x + y, 0) * 0.5
    lower = np.sqrt(np.minimum(x * x + (y - 1) ** 2, (x - s) ** 2 + (y - s) ** 2)) * np.sign(x - y)
    return np.where(y + x > 1, upper, lower).astype(F)


def extrude(d2: np.ndarray, z: np.ndarray, half_depth: float, rounding: float) -> np.ndarray:
    """Thicken a 2D SDF to a slab of half_depth with rounded rims (a puffed flat charm)."""
    wx = d2 + F(rounding)
    wy = np.abs(z) - F(half_depth - rounding)
    outside = np.sqrt(np.maximum(wx, 0) ** 2 + np.maximum(wy, 0) ** 2)
    return outside + np.minimum(np.maximum(wx, wy), 0) - F(rounding)


def convex(p: np.ndarray, normals: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Convex polyhedron {x : n_k . x <= h_k}: the max of plane distances, a bound the tracer trusts."""
    return (p @ normals.T - offsets).max(axis=1)


def smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    # polynomial smooth minimum: blends two shapes into one casting (prong roots, bails)
    h = np.clip(0.5 + 0.5 * (b - a) / F(k), 0, 1)
    return b + (a - b) * h - F(k) * h * (1 - h)


def repeat_angle(p: np.ndarray, count: int, phase: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Fold points around +y into the cell of `count` around the circle that they fall in.

    Returns the points rotated into the cell that sits on +x, and the cell index of each point.
    """
    ang = np.arctan2(p[:, 2], p[:, 0]) - F(phase)
    step = F(2 * np.pi / count)
    k = np.round(ang / step)
    a = -(k * step)
    c, s = np.cos(a), np.sin(a)
    q = np.empty_like(p)
    q[:, 0] = c * p[:, 0] - s * p[:, 2]
    q[:, 1] = p[:, 1]
    q[:, 2] = s * p[:, 0] + c * p[:, 2]
    # fold the phase back so the cell is centred on +x
    if phase:
        c0, s0 = np.cos(-phase), np.sin(-phase)
        x = c0 * q[:, 0] - s0 * q[:, 2]
        z = s0 * q[:, 0] + c0 * q[:, 2]
        q[:, 0], q[:, 2] = x, z
    return q, k.astype(np.int64) % count
