"""Gemstones: faceted cuts as convex polyhedra, and how light travels through them.

A cut is a set of planes {x : n_k . x <= h_k} in a frame with the table facing +y, the girdle at
y = 0 and a girdle radius of 1. Because every cut here is convex, a ray inside the stone leaves it
through the plane with the smallest positive exit distance, so tracing internal reflections is a
few small matrix products per bounce: that is what gives diamonds their brilliance and coloured
stones their dark-to-saturated facet pattern, without a general ray tracer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

F = np.float32

GIRDLE = 0.02  # half the girdle thickness, in girdle radii


@dataclass(frozen=True)
class Cut:
    name: str
    normals: np.ndarray  # (K, 3) unit outward normals
    offsets: np.ndarray  # (K,)
    top: float           # table height (for placing settings)
    bottom: float        # culet depth (negative)
    width: float         # half-extent along x (ovals are longer)
    coarse: np.ndarray   # indices of the main facets: a cheap bounding polyhedron for tracing


def _plane(incline_deg: float, azimuth: float, through, up: bool = True):
    """Outward plane normal tilted incline_deg from +y (or -y) towards `azimuth`, through a point."""
    a = np.radians(incline_deg)
    ny = np.cos(a) if up else -np.cos(a)
    n = np.array([np.sin(a) * np.cos(azimuth), ny, np.sin(a) * np.sin(azimuth)], dtype=np.float64)
    return n, float(n @ np.asarray(through, dtype=np.float64))


def _at(r: float, y: float, azimuth: float):
    return (r * np.cos(azimuth), y, r * np.sin(azimuth))


def round_brilliant() -> Cut:
    """57-facet round brilliant with textbook proportions (table 57 %, crown 34.5 deg, pavilion 40.75 deg)."""
    g = GIRDLE
    crown_h = (1 - 0.57) * np.tan(np.radians(34.5))
    table_y = g + crown_h
    culet_y = -g - np.tan(np.radians(40.75))
    planes = [((0.0, 1.0, 0.0), table_y)]
    # table, bezels and pavilion mains first: these 17 planes alone already enclose the stone
    for k in range(8):
        phi = k * np.pi / 4
        planes.append(_plane(34.5, phi, _at(1, g, phi)))                       # bezel (kite)
        planes.append(_plane(40.75, phi, (0, culet_y, 0), up=False))            # pavilion main
    for k in range(8):
        phi = k * np.pi / 4
        planes.append(_plane(22.0, phi + np.pi / 8, _at(0.57, table_y, phi + np.pi / 8)))  # star
        for s in (-1, 1):
            az = phi + s * np.pi / 16
            planes.append(_plane(42.0, az, _at(1, g, az)))                       # upper girdle
            planes.append(_plane(43.0, az, _at(1, -g, az), up=False))            # lower girdle
    for k in range(16):
        phi = k * np.pi / 8 + np.pi / 16
        planes.append(((np.cos(phi), 0.0, np.sin(phi)), 1.0))                    # girdle
    return _cut("round", planes, coarse=17)


def princess() -> Cut:
    """Square princess cut: flat square crown, steep pyramidal pavilion with chevron facets."""
    g = GIRDLE
    half = 0.78  # the square's half-side, so its corners reach the unit girdle circle
    table_y = g + 0.22
    culet_y = -g - 0.95
    planes = [((0.0, 1.0, 0.0), table_y)]
    for k in range(4):  # girdle sides, crown bezels and pavilion mains first (the coarse hull)
        phi = k * np.pi / 2
        planes.append(((np.cos(phi), 0.0, np.sin(phi)), half))                    # girdle sides
        planes.append(_plane(40.0, phi, _at(half, g, phi)))                       # crown bezel
        planes.append(_plane(50.0, phi, (0, culet_y, 0), up=False))               # pavilion main
    for k in range(4):
        phi = k * np.pi / 2
        planes.append(_plane(36.0, phi, _at(half, -g - 0.25, phi), up=False))      # chevron tier
        corner = phi + np.pi / 4
        planes.append(((np.cos(corner), 0.0, np.sin(corner)), half * 1.33))       # clipped corners
        planes.append(_plane(48.0, corner, _at(half * 1.3, g, corner)))
        planes.append(_plane(45.0, corner, (0, culet_y, 0), up=False))
    return _cut("princess", planes, coarse=13)


def _cut(name, planes, scale=(1.0, 1.0, 1.0), coarse: int = 0) -> Cut:
    n = np.array([p[0] for p in planes], dtype=np.float64)
    h = np.array([p[1] for p in planes], dtype=np.float64)
    # a non-uniform scale S maps plane (n, h) to (n / S, h); renormalise
    n = n / np.asarray(scale)
    norm = np.linalg.norm(n, axis=1)
    n, h = n / norm[:, None], h / norm
    # where the axis leaves the solid: the table on top, the culet (or the lowest facet) below
    top = min(h[i] / n[i, 1] for i in range(len(n)) if n[i, 1] > 1e-6)
    bottom = max(h[i] / n[i, 1] for i in range(len(n)) if n[i, 1] < -1e-6)
    return Cut(name, n.astype(F), h.astype(F), float(top), float(bottom), float(scale[0]),
               np.arange(coarse or len(planes)))


def oval() -> Cut:
    base = round_brilliant()
    # undo the normalisation to rebuild from the raw planes, stretched along x
    planes = [(tuple(n), float(h)) for n, h in zip(base.normals.astype(np.float64), base.offsets.astype(np.float64))]
    return _cut("oval", planes, scale=(1.35, 1.0, 0.9), coarse=len(base.coarse))


CUTS = {"round": round_brilliant(), "oval": oval(), "princess": princess()}


@dataclass(frozen=True)
class GemMaterial:
    ior: float
    absorb: tuple[float, float, float]  # Beer-Lambert coefficient per girdle radius of path, RGB
    surface_tint: tuple[float, float, float]


# Absorption is strong on the channels a stone removes: ruby passes red, sapphire blue, emerald green.
GEMS = {
    "diamond": GemMaterial(2.42, (0.02, 0.02, 0.03), (1.0, 1.0, 1.0)),
    "ruby": GemMaterial(1.77, (0.25, 3.8, 2.6), (1.0, 0.85, 0.88)),
    "sapphire": GemMaterial(1.77, (3.6, 1.9, 0.15), (0.85, 0.9, 1.0)),
    "emerald": GemMaterial(1.58, (3.2, 0.25, 1.9), (0.85, 1.0, 0.9)),
}


def _fresnel(cos_i: np.ndarray, eta: float) -> tuple[np.ndarray, np.ndarray]:
    """Unpolarised dielectric Fresnel reflectance and the cosine of the refracted ray.

    eta = n_incident / n_transmitted; where sin_t > 1 the reflectance is 1 (total internal reflection).
    """
    sin2_t = eta * eta * np.maximum(0, 1 - cos_i * cos_i)
    tir = sin2_t >= 1
    cos_t = np.sqrt(np.maximum(0, 1 - sin2_t))
    rs = (eta * cos_i - cos_t) / (eta * cos_i + cos_t + 1e-8)
    rp = (cos_i - eta * cos_t) / (cos_i + eta * cos_t + 1e-8)
    r = np.where(tir, 1.0, 0.5 * (rs * rs + rp * rp))
    return r.astype(F), cos_t.astype(F)


def _refract(d, n, eta, cos_i, cos_t):
    # d and n unit, n facing against d (cos_i = -d.n > 0)
    return eta * d + (eta * cos_i - cos_t)[:, None] * n


def _reflect(d, n):
    return d - 2 * np.einsum("ij,ij->i", d, n)[:, None] * n


def shade_gem(p: np.ndarray, d: np.ndarray, cut: Cut, size: float, gem: GemMaterial,
              look, bounces: int = 4) -> np.ndarray:
    """Radiance seen along rays d that hit the stone at p (both in the stone's frame, size applied).

    look(dirs) -> RGB radiance arriving from stone-frame directions (one per ray).
    """
    n_all, h_all = cut.normals, cut.offsets * F(size)
    k_in = np.argmax(p @ n_all.T - h_all, axis=1)
    n = n_all[k_in]
    cos_i = np.clip(-np.einsum("ij,ij->i", d, n), 0, 1)
    fr, cos_t = _fresnel(cos_i, 1.0 / gem.ior)
    out = fr[:, None] * look(_reflect(d, n)) * np.asarray(gem.surface_tint, dtype=F)
    weight = np.repeat((1 - fr)[:, None], 3, axis=1)
    d = _refract(d, n, 1.0 / gem.ior, cos_i, cos_t)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    absorb = np.asarray(gem.absorb, dtype=F) / F(size)
    for b in range(bounces):
        denom = d @ n_all.T
        num = h_all - p @ n_all.T
        t = np.where(denom > 1e-6, num / np.where(denom > 1e-6, denom, 1), np.inf)
        k = np.argmin(t, axis=1)
        tk = np.maximum(t[np.arange(len(k)), k], 0)
        tk = np.where(np.isfinite(tk), tk, 0)
        p = p + tk[:, None] * d
        weight = weight * np.exp(-absorb[None, :] * tk[:, None])
        n = n_all[k]
        cos_i = np.clip(np.einsum("ij,ij->i", d, n), 0, 1)  # n points out, d travels out
        fr, cos_t = _fresnel(cos_i, gem.ior)
        if b == bounces - 1:
            fr = np.zeros_like(fr)  # let the rest escape so no energy is lost to the cap
            cos_t = np.sqrt(np.maximum(0, 1 - (gem.ior ** 2) * np.maximum(0, 1 - cos_i ** 2))).astype(F)
        escapes = fr < 1
        if escapes.any():
            d_out = gem.ior * d + (cos_t - gem.ior * cos_i)[:, None] * n
            d_out = np.where(escapes[:, None], d_out, d)
            d_out /= np.linalg.norm(d_out, axis=1, keepdims=True) + 1e-8
            out = out + (weight * (1 - fr)[:, None]) * look(d_out)
        weight = weight * fr[:, None]
        d = _reflect(d, n)
    return out
