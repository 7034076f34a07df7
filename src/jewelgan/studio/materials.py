"""Materials and the studio light they reflect: metals and the procedural environment.

Metals are conductors: almost all of what we see is specular reflection of the surroundings,
tinted by a wavelength-dependent reflectance at normal incidence (F0) that rises to white at
grazing angles (Fresnel, Schlick's approximation). So a metal only looks like metal when the
surroundings have contrast, which is why a jewelry studio uses big softboxes and dark flags:
the environment below is exactly that, in a frame that turns with the camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

F = np.float32

# Linear-RGB reflectance at normal incidence, from measured spectral data (rounded), with white
# gold taken as the unplated warm-grey alloy so it stays distinguishable from silver at 64 px.
METAL_F0 = {
    "yellow_gold": (1.00, 0.71, 0.29),
    "rose_gold": (0.97, 0.58, 0.47),
    "white_gold": (0.70, 0.67, 0.60),
    "silver": (0.95, 0.95, 0.96),
}


def schlick(f0: np.ndarray, cos_theta: np.ndarray) -> np.ndarray:
    m = (1 - np.clip(cos_theta, 0, 1)) ** 5
    return f0[None, :] + (1 - f0[None, :]) * m[:, None]


def _box(az, el, az0, el0, half_az, half_el, soft):
    """Smooth rectangular light in (azimuth, elevation) angles; soft = edge width in radians."""
    daz = np.abs(np.angle(np.exp(1j * (az - az0))))
    t = np.clip((half_az - daz) / soft + 0.5, 0, 1) * np.clip((half_el - np.abs(el - el0)) / soft + 0.5, 0, 1)
    return (t * t * (3 - 2 * t)).astype(F)


@dataclass
class Lighting:
    """A jittered studio: key and fill strip softboxes, an overhead box, a white sweep, dark flags."""

    yaw: float              # camera azimuth: the studio turns with the camera
    key_az: float = -0.9
    key_el: float = 0.35
    key_power: float = 5.0
    fill_az: float = 1.0
    fill_el: float = 0.25
    fill_power: float = 2.5
    top_power: float = 3.0
    ambient: float = 0.18   # the grey of the unlit studio between the lights
    floor: float = 0.95
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)

    @classmethod
    def sample(cls, rng: np.random.Generator, yaw: float) -> "Lighting":
        warm = rng.uniform(-0.03, 0.03)
        return cls(
            yaw=yaw,
            key_az=-0.9 + rng.uniform(-0.25, 0.25), key_el=0.35 + rng.uniform(-0.15, 0.15),
            key_power=rng.uniform(4.0, 6.0),
            fill_az=1.0 + rng.uniform(-0.25, 0.25), fill_el=0.25 + rng.uniform(-0.1, 0.15),
            fill_power=rng.uniform(1.8, 3.0),
            top_power=rng.uniform(2.2, 3.6), ambient=rng.uniform(0.12, 0.24),
            floor=rng.uniform(0.9, 0.98), tint=(1 + warm, 1.0, 1 - warm),
        )

    def env(self, d: np.ndarray) -> np.ndarray:
        """Radiance (linear RGB, unbounded) arriving from world directions d (N, 3)."""
        c, s = np.cos(-self.yaw), np.sin(-self.yaw)
        x = c * d[:, 0] + s * d[:, 2]
        z = -s * d[:, 0] + c * d[:, 2]
        y = np.clip(d[:, 1], -1, 1)
        az = np.arctan2(x, z)  # 0 = towards the camera
        el = np.arcsin(y)
        up = np.clip(y, 0, 1)
        # the white sweep below and behind, fading into a grey studio overhead
        sweep = self.floor * np.clip(1.0 - 1.6 * up, 0, 1) ** 1.5
        behind = np.clip(-z, 0, 1) * np.clip(1 - 2.5 * up, 0, 1)
        base = np.maximum(sweep, 0.9 * self.floor * behind) + self.ambient * up
        # dark flags beside the camera give metals their black edges
        flag = _box(az, el, 0.0, 0.25, 0.45, 0.35, 0.25)
        base = base * (1 - 0.75 * flag)
        light = (self.key_power * _box(az, el, self.key_az, self.key_el, 0.22, 0.4, 0.08)
                 + self.fill_power * _box(az, el, self.fill_az, self.fill_el, 0.15, 0.3, 0.08)
                 + self.top_power * np.clip((el - 0.95) / 0.15, 0, 1))
        rad = (base + light).astype(F)
        return rad[:, None] * np.asarray(self.tint, dtype=F)[None, :]


def shade_metal(n: np.ndarray, d: np.ndarray, f0, lighting: Lighting, occlusion: np.ndarray) -> np.ndarray:
    """Mirror-like conductor: Fresnel-weighted environment along the reflected ray."""
    cos = -np.einsum("ij,ij->i", d, n)
    r = d + 2 * cos[:, None] * n
    f = schlick(np.asarray(f0, dtype=F), cos)
    # a slightly brushed look: blend the sharp reflection with a nudged, softer one
    r2 = r + np.array([0.0, 0.12, 0.0], dtype=F)
    r2 /= np.linalg.norm(r2, axis=1, keepdims=True)
    rad = 0.75 * lighting.env(r) + 0.25 * lighting.env(r2)
    return f * rad * occlusion[:, None]
