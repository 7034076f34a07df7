"""Views and the camera: where the camera stands for each view, and how the piece is framed.

Views are defined relative to the piece's front (+z in its frame): a product photographer walks
around the piece, so 'side' means the camera sits 90 degrees round from the front, and 'top' looks
down from high above. The camera keeps the piece large and centred: after placing it, the image
window is fitted (an off-axis crop) to the projected frame points with a small jittered margin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

F = np.float32

# (elevation range, |azimuth| range) in degrees; azimuth sign is random for the asymmetric views
VIEW_RANGES = {
    "front": ((6.0, 16.0), (0.0, 8.0)),
    "three_quarter": ((22.0, 36.0), (35.0, 55.0)),
    "side": ((6.0, 16.0), (78.0, 90.0)),
    "top": ((72.0, 86.0), (0.0, 10.0)),
}


@dataclass
class Camera:
    eye: np.ndarray
    forward: np.ndarray
    right: np.ndarray
    up: np.ndarray
    tan_half: float
    window: tuple[float, float, float] = (0.0, 0.0, 1.0)  # centre x, centre y, half size (tan units)

    @classmethod
    def orbit(cls, target, distance: float, elevation_deg: float, azimuth_deg: float,
              fov_deg: float = 20.0, roll_deg: float = 0.0) -> "Camera":
        el, az = np.radians(elevation_deg), np.radians(azimuth_deg)
        offset = np.array([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)])
        eye = np.asarray(target, dtype=np.float64) + distance * offset
        fwd = -offset
        world_up = np.array([0.0, 1.0, 0.0]) if elevation_deg < 89 else np.array([0.0, 0.0, -1.0])
        right = np.cross(fwd, world_up)
        right /= np.linalg.norm(right)
        up = np.cross(right, fwd)
        rl = np.radians(roll_deg)
        right, up = np.cos(rl) * right + np.sin(rl) * up, -np.sin(rl) * right + np.cos(rl) * up
        return cls(eye.astype(F), fwd.astype(F), right.astype(F), up.astype(F), float(np.tan(np.radians(fov_deg) / 2)))

    def project(self, pts: np.ndarray) -> np.ndarray:
        """World points -> image-plane coordinates in tan units (x right, y up)."""
        v = pts - self.eye
        z = v @ self.forward
        return np.stack([(v @ self.right) / z, (v @ self.up) / z], axis=1)

    def fit(self, pts: np.ndarray, margin: float) -> None:
        """Centre the window on the projected points, with `margin` (e.g. 1.12) of padding."""
        xy = self.project(pts)
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        c = (lo + hi) / 2
        half = float((hi - lo).max()) / 2 * margin
        self.window = (float(c[0]), float(c[1]), half)

    def rays(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Unit ray directions for image coordinates u, v in [-1, 1] (v up)."""
        cx, cy, half = self.window
        x = (cx + u * half).astype(F)
        y = (cy + v * half).astype(F)
        d = self.forward[None, :] + x[:, None] * self.right[None, :] + y[:, None] * self.up[None, :]
        return (d / np.linalg.norm(d, axis=1, keepdims=True)).astype(F)


def sample_view(view: str, rng: np.random.Generator) -> tuple[float, float]:
    """(elevation, azimuth) in degrees for a view name, jittered within its range."""
    (e0, e1), (a0, a1) = VIEW_RANGES[view]
    el = rng.uniform(e0, e1)
    az = rng.uniform(a0, a1) * (1 if rng.random() < 0.5 else -1)
    return float(el), float(az)
