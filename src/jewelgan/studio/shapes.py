"""Reusable jewelry components built from SDF primitives: stones, settings, chains, beads.

Each builder returns Parts in a component frame; pieces.py places them. Stones use the cut's
own frame (table +y, girdle radius = size).
"""

from __future__ import annotations

import numpy as np

from jewelgan.studio import sdf
from jewelgan.studio.gems import CUTS, Cut
from jewelgan.studio.scene import GemInfo, Part

F = np.float32
EYE = np.eye(3, dtype=F)


def ring_points(radius: float, ys, n: int = 16, axis_y: bool = True) -> np.ndarray:
    """Points on circles around +y (radius, each height in ys): frame points for round things."""
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    pts = [np.stack([radius * np.cos(a), np.full(n, y), radius * np.sin(a)], axis=1) for y in ys]
    return np.concatenate(pts).astype(F)


def stone(cut_name: str, size: float, stone_name: str, R=EYE, t=(0, 0, 0)) -> Part:
    cut = CUTS[cut_name]
    n, h = cut.normals, cut.offsets * F(size)
    top, bottom = cut.top * size, cut.bottom * size
    pts = np.concatenate([ring_points(size * cut.width, [0.0], 12) * np.array([1, 1, 1 / cut.width * 0.9 if cut.width > 1 else 1], dtype=F),
                          np.array([[0, top, 0], [0, bottom, 0]], dtype=F)])
    return Part(sdf=convex_sdf(n, h, cut.coarse), material="gem", R=np.asarray(R, F), t=np.asarray(t, F),
                bound_center=np.array([0, (top + bottom) / 2, 0], F),
                bound_radius=float(max(size * cut.width * 1.02, (top - bottom) / 2 * 1.05)),
                gem=GemInfo(cut, size, stone_name, lambda q: (q, EYE)), frame_points=pts)


def convex_sdf(n: np.ndarray, h: np.ndarray, coarse: np.ndarray) -> callable:
    """SDF of a cut stone that first tries only its main facets.

    Any subset of a convex cut's planes bounds a larger polyhedron, so its distance is a valid
    lower bound: points clearly outside it (most tracer steps) skip the other ~40 planes.
    """
    nb, hb = n[coarse], h[coarse]
    margin = F(0.1 * float(np.max(np.abs(h))))

    def f(q):
        d = sdf.convex(q, nb, hb)
        near = d < margin
        if near.any():
            d[near] = sdf.convex(q[near], n, h)
        return d

    return f


def prong_setting(cut: Cut, size: float, drop: float, prongs: int, wire: float) -> callable:
    """Prongs gripping a stone's girdle, rising from `drop` below it, plus a gallery ring.

    Returns an SDF in the stone's frame; the claws rest on the crown so they read at 64 px. The
    prongs are identical round the axis, so only the nearest one is evaluated (angular
    repetition); for ovals this happens in a space squashed to round, scaled back conservatively.
    """
    stretch = np.array([cut.width, 1.0, 0.9 if cut.width > 1 else 1.0], F)
    shrink = F(stretch.min())
    tip = np.array([size, 0.14 * size, 0], F)
    root = np.array([0.35 * size, -drop, 0], F)
    mid = np.array([0.85 * size, -0.55 * size, 0], F)
    r = F(wire)
    gallery = np.array([0, -0.45 * size, 0], F)

    def f(q):
        qs = q / stretch
        c, _ = sdf.repeat_angle(qs, prongs, phase=np.pi / prongs)
        d = sdf.torus(qs - gallery, 0.72 * size, 0.55 * wire)
        d = np.minimum(d, sdf.capsule(c, root, mid, r))
        d = np.minimum(d, sdf.capsule(c, mid, tip, r))
        d = np.minimum(d, sdf.sphere(c - tip, 1.25 * r))
        return d * shrink

    return f


def bezel(cut: Cut, size: float, depth: float, wall: float) -> callable:
    """A metal cup around the girdle (for pendants, drops, bangle stones)."""
    w = cut.width

    def f(q):
        qs = q / np.array([w, 1, 0.9 if w > 1 else 1], F)
        rim = sdf.band(qs - np.array([0, -depth / 2 + 0.05 * size, 0], F), size + wall * 0.5, wall, depth / 2, wall * 0.9)
        back = sdf.cylinder(qs - np.array([0, -depth + 0.05 * size, 0], F), size * 0.95, wall * 0.6, wall * 0.5)
        return np.minimum(rim, back) * F(min(1.0, 1 / w))

    return f


def chain_sdf(length: float, period: float, wire: float) -> callable:
    """A cable chain along +y from 0 to length: alternating perpendicular oval links.

    Domain repetition: each point only evaluates the nearest even and the nearest odd link.
    """
    n = max(1, int(length / period))
    half = F(0.28 * period)
    ring_r = F(0.32 * period)
    w = F(wire)

    def f(q):
        d = np.full(len(q), np.inf, F)
        for parity in (0, 1):
            k = 2 * np.round((q[:, 1] - parity * period) / (2 * period)) + parity
            k = np.clip(k, parity, n - 1 - ((n - 1 - parity) % 2))
            y = q[:, 1] - k * F(period)
            a, b = (q[:, 0], q[:, 2]) if parity == 0 else (q[:, 2], q[:, 0])
            along = np.maximum(np.abs(y) - half, 0)
            loop = np.sqrt(along * along + a * a) - ring_r
            d = np.minimum(d, np.sqrt(loop * loop + b * b) - w)
        return d

    return f


def chain_loop_sdf(radius: float, links: int, wire: float) -> callable:
    """A cable chain closed into a circle around +y (a chain bracelet lying flat)."""
    links += links % 2
    period = 2 * np.pi * radius / links
    half = F(0.27 * period)
    ring_r = F(0.33 * period)
    w = F(wire)

    def f(q):
        d = np.full(len(q), np.inf, F)
        for parity in (0, 1):
            c, _ = sdf.repeat_angle(q, links // 2, phase=parity * 2 * np.pi / links)
            # the link is tangent (along z) at x = radius; even links lie flat, odd ones stand up
            x = c[:, 0] - F(radius)
            a, b = (x, c[:, 1]) if parity == 0 else (c[:, 1], x)
            along = np.maximum(np.abs(c[:, 2]) - half, 0)
            loop = np.sqrt(along * along + a * a) - ring_r
            d = np.minimum(d, np.sqrt(loop * loop + b * b) - w)
        return d

    return f


def stones_around(cut_name: str, size: float, stone_name: str, count: int, radius: float, y: float,
                  outward: bool, R=EYE, t=(0, 0, 0), phase: float = 0.0) -> Part:
    """`count` identical stones around +y at `radius`: tables facing out (eternity) or up (tennis)."""
    cut = CUTS[cut_name]
    n, h = cut.normals, cut.offsets * F(size)
    # stone frame -> cell frame: table (+y) turned to face +x for an eternity band
    cell_rot = sdf.rot_z(-np.pi / 2) if outward else EYE
    center = np.array([radius, y, 0], F)

    def to_stone(q):
        c, k = sdf.repeat_angle(q, count, phase)
        return (c - center) @ cell_rot, k

    stone_sdf = convex_sdf(n, h, cut.coarse)

    def f(q):
        g, _ = to_stone(q)
        return stone_sdf(g)

    def frame(q):
        g, k = to_stone(q)
        ang = k * (2 * np.pi / count) + phase
        # repeat_angle rotated the point by -ang about +y; undo it for the stone-to-local rotation
        c, s = np.cos(-ang).astype(F), np.sin(-ang).astype(F)
        rots = np.zeros((len(ang), 3, 3), F)  # rot_y(-ang) for every point at once
        rots[:, 0, 0], rots[:, 0, 2], rots[:, 1, 1], rots[:, 2, 0], rots[:, 2, 2] = c, s, 1, -s, c
        return g, rots @ cell_rot

    reach = radius + size * (1.0 if outward else 1.05)
    pts = ring_points(reach, [y - size, y + size], 16)
    return Part(sdf=f, material="gem", R=np.asarray(R, F), t=np.asarray(t, F),
                bound_center=np.array([0, y, 0], F), bound_radius=float(reach + size),
                gem=GemInfo(cut, size, stone_name, frame), frame_points=pts)
