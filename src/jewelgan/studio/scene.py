"""A scene: rigidly placed parts, each an SDF with a material, plus what frames the shot.

Parts are evaluated in their own frames (world = R @ local + t). Each part also carries a bounding
sphere so the tracer can skip its (possibly costly) SDF for points that are far from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from jewelgan.studio.gems import Cut

F = np.float32


@dataclass
class GemInfo:
    """What shading needs to trace light inside a stone hit at a local point."""

    cut: Cut
    size: float
    stone: str
    # local point -> (point in the stone's frame, (N,3,3) or (3,3) rotation stone-frame -> local)
    frame: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass
class Part:
    sdf: Callable[[np.ndarray], np.ndarray]
    material: str                      # "metal" or "gem"
    R: np.ndarray = field(default_factory=lambda: np.eye(3, dtype=F))
    t: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=F))
    bound_center: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=F))  # local
    bound_radius: float = 10.0
    gem: GemInfo | None = None
    frame_points: np.ndarray | None = None  # local points the camera must keep in the shot
    casts_shadow: bool = True

    def to_local(self, p: np.ndarray) -> np.ndarray:
        return ((p - self.t) @ self.R).astype(F)

    def dir_to_local(self, d: np.ndarray) -> np.ndarray:
        return (d @ self.R).astype(F)

    def distance(self, p_world: np.ndarray) -> np.ndarray:
        """SDF at world points, replaced by the distance to the bounding sphere when far away."""
        q = self.to_local(p_world)
        rel = q - self.bound_center
        far = np.sqrt(np.einsum("ij,ij->i", rel, rel)) - F(self.bound_radius)
        near = far < F(0.05 * self.bound_radius + 0.02)
        if near.all():
            return self.sdf(q)
        out = far
        if near.any():
            out = far.copy()
            out[near] = self.sdf(q[near])
        return out

    def world_frame_points(self) -> np.ndarray:
        pts = self.frame_points
        if pts is None:
            c, r = self.bound_center, self.bound_radius
            pts = c + r * np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=F)
        return pts @ self.R.T + self.t


@dataclass
class Scene:
    parts: list[Part]
    metal: str
    floor_y: float = 0.0

    def distance(self, p: np.ndarray, shadow_only: bool = False) -> np.ndarray:
        d = np.full(len(p), np.inf, dtype=F)
        for part in self.parts:
            if shadow_only and not part.casts_shadow:
                continue
            np.minimum(d, part.distance(p), out=d)
        return d

    def closest_part(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ds = np.stack([part.distance(p) for part in self.parts], axis=1)
        return ds.argmin(axis=1), ds.min(axis=1)

    def bounds(self) -> tuple[np.ndarray, float]:
        """A world bounding sphere of everything (for the ray's starting distance)."""
        centers = np.array([pt.bound_center @ pt.R.T + pt.t for pt in self.parts])
        lo = (centers - np.array([[pt.bound_radius] * 3 for pt in self.parts])).min(axis=0)
        hi = (centers + np.array([[pt.bound_radius] * 3 for pt in self.parts])).max(axis=0)
        c = (lo + hi) / 2
        r = max(float(np.linalg.norm(cc - c)) + pt.bound_radius for cc, pt in zip(centers, self.parts))
        return c.astype(F), r

    def frame_points(self) -> np.ndarray:
        # parts that leave the shot on purpose (a pendant's chain) set frame_points to an empty array
        return np.concatenate([p.world_frame_points() for p in self.parts])
