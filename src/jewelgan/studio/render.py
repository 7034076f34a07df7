"""The render loop: sphere tracing, shading, the studio floor, and edge-adaptive anti-aliasing.

One image = one batch of rays traced together in numpy. Rays start where they enter the scene's
bounding sphere and step by the SDF (with a pixel-cone tolerance, so distant rays stop early).
Anti-aliasing spends samples only where they matter: after one sample per pixel, pixels on
edges or inside stones (whose facets are smaller than a pixel at 64 px) get extra sub-samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jewelgan.studio.camera import Camera
from jewelgan.studio.gems import GEMS, shade_gem
from jewelgan.studio.materials import METAL_F0, Lighting, shade_metal
from jewelgan.studio.scene import Scene

F = np.float32
MAX_STEPS = 160
# rotated-grid sub-pixel offsets (in pixels) for the second pass
SUBSAMPLES = {
    4: [(-0.125, -0.375), (0.375, -0.125), (0.125, 0.375), (-0.375, 0.125)],
    8: [(-0.4375, -0.1875), (-0.1875, 0.4375), (0.0625, -0.4375), (0.3125, 0.1875),
        (-0.3125, -0.0625), (0.4375, -0.3125), (0.1875, 0.3125), (-0.0625, 0.0625)],
}


def trace(scene: Scene, origin: np.ndarray, d: np.ndarray, cone: float, eps: float = 0.0,
          shadow_only: bool = False, t_start: np.ndarray | None = None,
          march_cone: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Distances to the first surface along each ray (inf where none) and whether it was hit.

    origin is one point (a camera) or one per ray; a ray stops when the SDF is below
    cone * t + eps (cone = the pixel's angular radius, so far rays need less precision).
    t_start: per-ray distance to start from (inf = known to miss). march_cone > 0 marches a whole
    cone of that angular radius instead of a ray: each step stays clear of every ray inside it.
    """
    n = len(d)
    c, r = scene.bounds()
    per_ray = np.ndim(origin) == 2
    oc = origin - c
    b = np.einsum("ij,ij->i", d, oc) if per_ray else d @ oc
    cc = np.einsum("ij,ij->i", oc, oc) if per_ray else oc @ oc
    disc = b * b - (cc - r * r)
    t_hit = np.full(n, np.inf, F)
    ok = disc > 0
    if t_start is not None:
        ok &= np.isfinite(t_start)
    idx = np.nonzero(ok)[0]
    sq = np.sqrt(np.maximum(disc[idx], 0))
    t = np.maximum(-b[idx] - sq, 0).astype(F)
    if t_start is not None:
        t = np.maximum(t, t_start[idx]).astype(F)
    t_end = (-b[idx] + sq).astype(F)
    for _ in range(MAX_STEPS):
        if not len(idx):
            break
        p = (origin[idx] if per_ray else origin) + t[:, None] * d[idx]
        dist = scene.distance(p, shadow_only=shadow_only)
        if march_cone:
            dist = dist - F(march_cone) * t
        hit = dist < cone * t + eps
        t_hit[idx[hit]] = t[hit]
        t = t + dist * F(0.9)  # under-relaxed: several SDFs here are bounds, not exact distances
        keep = ~hit & (t < t_end)
        idx, t, t_end = idx[keep], t[keep], t_end[keep]
    if len(idx):  # rays that ran out of steps are grazing a surface: count them as hits
        t_hit[idx] = t
    return t_hit, np.isfinite(t_hit)


def _normals(part, p: np.ndarray, h: float) -> np.ndarray:
    k = np.array([[1, -1, -1], [-1, -1, 1], [-1, 1, -1], [1, 1, 1]], F)
    g = sum(k[i][None, :] * part.distance(p + F(h) * k[i])[:, None] for i in range(4))
    return g / (np.linalg.norm(g, axis=1, keepdims=True) + F(1e-12))


def _occlusion(scene: Scene, p: np.ndarray, n: np.ndarray, scale: float) -> np.ndarray:
    # two probes along the normal: crevices (prong roots, inside of a band) get darker
    occ = np.zeros(len(p), F)
    for h, w in ((0.04, 0.6), (0.12, 0.4)):
        hh = F(h * scale)
        occ += F(w) * np.clip((hh - scene.distance(p + hh * n)) / hh, 0, 1)
    return np.clip(1 - 0.8 * occ, 0.2, 1).astype(F)


class FloorShadow:
    """A soft contact shadow: how high the piece hangs above each floor point, blurred.

    Upward rays from a coarse grid on the floor find the piece's underside; darkness falls off
    with that height (an overhead softbox), and a Gaussian blur gives the penumbra. Computed once
    per image on a small grid, then looked up bilinearly for every floor pixel.
    """

    GRID = 48

    def __init__(self, scene: Scene):
        from scipy.ndimage import gaussian_filter

        c, r = scene.bounds()
        self.lo = np.array([c[0] - 1.3 * r, c[2] - 1.3 * r], F)
        self.cell = F(2.6 * r / self.GRID)
        g = (np.arange(self.GRID) + 0.5) * self.cell
        gx, gz = np.meshgrid(self.lo[0] + g, self.lo[1] + g, indexing="ij")
        origin = np.stack([gx.ravel(), np.full(gx.size, scene.floor_y + 1e-3), gz.ravel()], axis=1).astype(F)
        up = np.array([0.12, 1.0, 0.18], F)
        up = np.broadcast_to(up / np.linalg.norm(up), origin.shape).copy()
        scale = r / 1.5
        inside = scene.distance(origin, shadow_only=True) < 0
        t, hit = trace(scene, origin, up, 0.0, eps=2e-3 * scale, shadow_only=True)
        h = np.where(inside, 0.0, np.where(hit, t, np.inf))
        soft = np.exp(-h / (0.5 * scale)).reshape(self.GRID, self.GRID)
        contact = np.exp(-h / (0.06 * scale)).reshape(self.GRID, self.GRID)
        self.map = (0.4 * gaussian_filter(soft, 2.5) + 0.45 * gaussian_filter(contact, 0.9)).astype(F)

    def __call__(self, pts: np.ndarray) -> np.ndarray:
        from scipy.ndimage import map_coordinates

        x = (pts[:, 0] - self.lo[0]) / self.cell - 0.5
        z = (pts[:, 2] - self.lo[1]) / self.cell - 0.5
        return map_coordinates(self.map, [x, z], order=1, mode="constant", cval=0.0)


def shade(scene: Scene, camera: Camera, lighting: Lighting, u: np.ndarray, v: np.ndarray, cone: float,
          floor_shadow: FloorShadow, t_start: np.ndarray | None = None):
    """Linear radiance for image coordinates (u, v), a per-ray surface key (0 = background) and the share of the
    sweep's light the floor shadow takes at rays that miss the piece (0 on the piece)."""
    d = camera.rays(u, v)
    eye = camera.eye
    t, hit = trace(scene, eye, d, cone, t_start=t_start)
    rgb = np.zeros((len(d), 3), F)
    key = np.zeros(len(d), np.int16)
    _, radius = scene.bounds()
    scale = radius / 1.5
    # background: a seamless white sweep, lightly vignetted, with the shadow on its floor part
    miss = ~hit
    level = lighting.floor * (1 - 0.05 * (u[miss] ** 2 + v[miss] ** 2))
    shadow = np.zeros(int(miss.sum()), F)
    down = d[miss, 1] < -1e-4
    if down.any():
        dm = d[miss][down]
        tf = (scene.floor_y - eye[1]) / dm[:, 1]
        pts = eye + tf[:, None] * dm
        shadow[down] = floor_shadow(pts)
    rgb[miss] = (level * (1 - shadow))[:, None] * np.asarray(lighting.tint, F)[None, :]
    shadow_all = np.zeros(len(d), F)
    shadow_all[miss] = shadow
    if not hit.any():
        return rgb, key, shadow_all
    hidx = np.nonzero(hit)[0]
    p = (eye + t[hidx, None] * d[hidx]).astype(F)
    dh = d[hidx]
    part_id, _ = scene.closest_part(p)
    key[hidx] = part_id + 1
    f0 = METAL_F0[scene.metal]
    for j, part in enumerate(scene.parts):
        sel = part_id == j
        if not sel.any():
            continue
        pj, dj = p[sel], dh[sel]
        if part.material == "gem":
            info = part.gem
            g, M = info.frame(part.to_local(pj))
            dl = part.dir_to_local(dj)
            if M.ndim == 2:
                dg = dl @ M
                to_world = np.broadcast_to(part.R @ M, (len(pj), 3, 3))
            else:
                dg = np.einsum("nji,nj->ni", M, dl)
                to_world = part.R[None] @ M
            look = lambda dirs, W=to_world: lighting.env(np.einsum("nij,nj->ni", W, dirs))  # noqa: E731
            rgb[hidx[sel]] = shade_gem(g.astype(F), dg.astype(F), info.cut, info.size, GEMS[info.stone], look)
        else:
            n = _normals(part, pj, 1e-3 * scale)
            rgb[hidx[sel]] = shade_metal(n, dj, f0, lighting, _occlusion(scene, pj, n, scale))
    return rgb, key, shadow_all


def tonemap(x: np.ndarray) -> np.ndarray:
    """Linear radiance -> display values in [0, 1]: linear up to 0.8, then a soft shoulder, then sRGB."""
    a = 0.8
    y = np.where(x <= a, x, a + (1 - a) * (1 - np.exp(-(x - a) / (1 - a))))
    y = np.clip(y, 0, 1)
    return np.where(y <= 0.0031308, 12.92 * y, 1.055 * np.power(y, 1 / 2.4) - 0.055)


BLOCK = 4
# The first pass stops a ray within half a pixel of a surface (its cone), which widens silhouettes by up to half
# a pixel; edge pixels are then resolved with sub-samples that stop within an eighth, which is what the piece's
# coverage (alpha) and edge colours come from. Against 36-sample coverage with the fine cone: mean error 0.09 on
# edge pixels (4 samples quantise in steps of 0.25), 0.004 over the image (tests/test_alpha.py).
SUB_CONE = 0.25


def _block_starts(scene: Scene, camera: Camera, res: int) -> np.ndarray:
    """Per-pixel safe starting distances from one cone per BLOCK x BLOCK pixels (inf = empty).

    Most of a ray's steps cross empty space that its neighbours cross too, so one cone per block
    walks it once; each cone is wide enough to contain the block's rays and their sub-samples.
    """
    nb = -(-res // BLOCK)
    jj, ii = np.meshgrid(np.arange(nb), np.arange(nb))
    scale = BLOCK * nb / res
    u = (((jj + 0.5) / nb * 2 - 1) * scale).astype(F).ravel()
    v = ((1 - (ii + 0.5) / nb * 2) * scale).astype(F).ravel()
    pixel = 2.0 * camera.window[2] / res
    half_diag = F((BLOCK / 2 + 1) * pixel * np.sqrt(2))
    t, hit = trace(scene, camera.eye, camera.rays(u, v), 0.0, eps=0.0, march_cone=half_diag)
    t = np.where(hit, np.maximum(t * F(0.98), 0), np.inf).astype(F).reshape(nb, nb)
    return np.repeat(np.repeat(t, BLOCK, axis=0), BLOCK, axis=1)[:res, :res]


@dataclass
class Layers:
    """One render taken apart: what a matte, a shadow layer or a material mask is trained against.

    All float32 in [0, 1] at res x res. `image` is the picture as seen (what `render` rounds); `coverage` the
    piece's share of each pixel; `foreground` the piece's own colour there (the mean of the sub-samples that hit
    it, so an edge pixel's colour without the backdrop mixed in; 0 where coverage is 0); `shadow` the share of
    the sweep's light the floor shadow takes (over the part of a pixel that misses the piece); `material` the
    surface at each pixel's centre: 0 backdrop, 1 metal, 2 stone."""
    image: np.ndarray
    coverage: np.ndarray
    foreground: np.ndarray
    shadow: np.ndarray
    material: np.ndarray


BACKDROP, METAL, STONE = 0, 1, 2


def render_layers(scene: Scene, camera: Camera, lighting: Lighting, res: int) -> Layers:
    """The render's layers (see Layers); `render` is these rounded to uint8.

    Coverage is the share of a pixel's samples that hit the piece (not the floor, its shadow or the sweep),
    so it is exact to the sub-sample grid: 0 or 1 inside, fractional along every anti-aliased edge."""
    cone = F(1.0 * camera.window[2] / res)  # half a pixel at unit distance, in tan units
    jj, ii = np.meshgrid(np.arange(res), np.arange(res))
    px = ((jj + 0.5) / res * 2 - 1).astype(F).ravel()
    py = (1 - (ii + 0.5) / res * 2).astype(F).ravel()
    floor_shadow = FloorShadow(scene)
    start = _block_starts(scene, camera, res)
    rgb, key, shadow = shade(scene, camera, lighting, px, py, cone, floor_shadow, start.ravel())
    img = tonemap(rgb).reshape(res, res, 3)
    key = key.reshape(res, res)
    coverage = (key > 0).astype(F)
    foreground = img * coverage[:, :, None]
    shadow = shadow.reshape(res, res)
    gem_keys = [j + 1 for j, part in enumerate(scene.parts) if part.material == "gem"]
    material = np.where(key > 0, METAL, BACKDROP).astype(np.uint8)
    material[np.isin(key, gem_keys)] = STONE
    lum = img.mean(axis=2)
    edge = np.zeros((res, res), bool)
    dx = (np.abs(lum[:, 1:] - lum[:, :-1]) > 0.05) | (key[:, 1:] != key[:, :-1])
    dy = (np.abs(lum[1:] - lum[:-1]) > 0.05) | (key[1:] != key[:-1])
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    edge[1:] |= dy
    edge[:-1] |= dy
    edge |= np.isin(key, gem_keys)
    e = np.nonzero(edge.ravel())[0]
    if len(e):
        offs = SUBSAMPLES[4]
        step = 2.0 / res
        us = np.concatenate([px[e] + F(ox * step) for ox, _ in offs])
        vs = np.concatenate([py[e] - F(oy * step) for _, oy in offs])
        sub, sub_key, sub_shadow = shade(scene, camera, lighting, us, vs, cone * F(SUB_CONE), floor_shadow,
                                         np.tile(start.ravel()[e], len(offs)))
        sub = tonemap(sub).reshape(len(offs), len(e), 3)
        flat = img.reshape(-1, 3)
        flat[e] = sub.mean(axis=0)
        img = flat.reshape(res, res, 3)
        hits = (sub_key.reshape(len(offs), len(e)) > 0)
        cov = coverage.reshape(-1)
        cov[e] = hits.mean(axis=0)
        n_hit, n_miss = hits.sum(axis=0), (~hits).sum(axis=0)
        fg = foreground.reshape(-1, 3)
        fg[e] = (sub * hits[:, :, None]).sum(axis=0) / np.maximum(n_hit, 1)[:, None]
        sh = shadow.reshape(-1)
        sh[e] = (sub_shadow.reshape(len(offs), len(e)) * ~hits).sum(axis=0) / np.maximum(n_miss, 1)
    material[coverage == 0] = BACKDROP  # a centre sample that hit where the sub-samples all missed
    return Layers(img, coverage, np.clip(foreground, 0, 1), shadow, material)


def render(scene: Scene, camera: Camera, lighting: Lighting, res: int, alpha: bool = False) -> np.ndarray:
    """A res x res uint8 RGB image of the scene; with alpha, RGBA whose alpha is the piece's coverage
    (see render_layers). The RGB channels stay the image as seen, on the studio backdrop."""
    layers = render_layers(scene, camera, lighting, res)
    img = layers.image
    if alpha:
        img = np.concatenate([img, layers.coverage[:, :, None]], axis=2)
    return np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
