"""The four categories as parametric pieces, posed the way a product photographer shows them.

Rings stand upright on their band (front = looking through the ring), pendants hang facing the
camera with the chain rising out of the shot, earrings stand as a pair side by side, bracelets
lie flat. Every builder draws its proportions from rng, so no two pieces are identical.
Units: a ring's band radius is about 1; the camera framing removes absolute scale anyway.
"""

from __future__ import annotations

import numpy as np

from jewelgan.studio import sdf
from jewelgan.studio.gems import CUTS
from jewelgan.studio.scene import Part
from jewelgan.studio.shapes import (bezel, chain_loop_sdf, chain_sdf, prong_setting, ring_points, stone,
                                    stones_around)

F = np.float32
EYE = np.eye(3, dtype=F)
UPRIGHT = sdf.rot_x(np.pi / 2)  # component axis +y -> world +z (facing the camera at the front view)


def _metal(f, R=EYE, t=(0, 0, 0), center=(0, 0, 0), radius=1.0, pts=None, shadow=True) -> Part:
    return Part(sdf=f, material="metal", R=np.asarray(R, F), t=np.asarray(t, F),
                bound_center=np.asarray(center, F), bound_radius=float(radius),
                frame_points=pts, casts_shadow=shadow)


def ring(rng, style: str, gem: str, cut: str) -> list[Part]:
    radius = 1.0
    yaw = sdf.rot_y(rng.uniform(-0.12, 0.12))
    if style == "plain_band":
        thick, width = rng.uniform(0.07, 0.12), rng.uniform(0.12, 0.3)
        rounding = rng.choice([thick, 0.5 * thick, 0.03])
    elif style == "eternity":
        thick, width, rounding = rng.uniform(0.08, 0.11), rng.uniform(0.13, 0.17), 0.03
    else:
        thick, width = rng.uniform(0.06, 0.09), rng.uniform(0.06, 0.1)
        rounding = thick * 0.9
    cy = radius + thick
    R = yaw @ UPRIGHT
    t = np.array([0, cy, 0], F)
    band_pts = ring_points(radius + thick, [-width, width], 16)
    parts = [_metal(lambda q: sdf.band(q, radius, thick, width, rounding), R, t,
                    radius=radius + thick + width, pts=band_pts)]
    if style == "solitaire":
        size = rng.uniform(0.3, 0.42) * (0.85 if cut == "oval" else 1.0)
        c = CUTS[cut]
        raise_h = rng.uniform(0.15, 0.35)
        top = cy + radius + thick
        gy = top + raise_h - c.bottom * size * 0.55
        prongs = int(rng.choice([4, 6])) if cut != "princess" else 4
        # the stone faces up; turn its long axis to run along the band like a real oval solitaire
        S = yaw @ (sdf.rot_y(np.pi / 2) if cut == "oval" else sdf.rot_y(np.pi / 4 if cut == "princess" else 0))
        gt = np.array([0, gy, 0], F)
        parts.append(stone(cut, size, gem, S, gt))
        setting = prong_setting(c, size, gy - top + 0.02, prongs, 0.07 * size + 0.012)
        parts.append(_metal(setting, S, gt, center=(0, -(gy - top) / 2, 0), radius=size * 1.35 + (gy - top) / 2,
                            pts=np.zeros((0, 3), F)))
    elif style == "eternity":
        size = width * rng.uniform(0.8, 0.95)
        count = int(2 * np.pi * (radius + thick) / (2.05 * size))
        parts.append(stones_around(cut, size, gem, count, radius + thick - 0.1 * size, 0.0, True, R, t,
                                   phase=np.pi / count * rng.integers(0, 2)))
    return parts


def pendant(rng, style: str, gem: str, cut: str) -> list[Part]:
    size = rng.uniform(0.42, 0.55) * (0.85 if cut == "oval" else 1.0)
    c = CUTS.get(cut)
    cy = rng.uniform(0.9, 1.1)
    turn = sdf.rot_y(rng.uniform(-0.15, 0.15))
    # stones: table facing the camera; ovals hang long-axis vertical
    S = turn @ UPRIGHT @ (sdf.rot_y(np.pi / 2) if cut == "oval" else (sdf.rot_y(np.pi / 4) if cut == "princess" else EYE))
    center = np.array([0, cy, 0], F)
    parts: list[Part] = []
    if style in ("solitaire_pendant", "halo_pendant"):
        parts.append(stone(cut, size, gem, S, center))
        if style == "halo_pendant":
            beads = int(rng.integers(14, 20))
            br = 0.11 * size
            rr = size * (c.width if cut == "oval" else 1.0) + br * 1.3

            def halo(q, rr=rr, br=br, beads=beads, depth=0.6 * size):
                b, _ = sdf.repeat_angle(q / np.array([1, 1, 1 / 1.0], F), beads)
                d = sdf.sphere(b - np.array([rr, 0.02 * size, 0], F), br)
                return np.minimum(d, sdf.band(q + np.array([0, 0.15 * size, 0], F), rr, br * 0.9, 0.2 * size, br * 0.8))

            parts.append(_metal(halo, S, center, radius=rr + 2 * br, pts=ring_points(rr + br, [0], 12)))
            top_y = cy + rr + br
        else:
            parts.append(_metal(prong_setting(c, size, 0.55 * size, 4, 0.07 * size), S, center,
                                center=(0, -0.3 * size, 0), radius=size * 1.4, pts=np.zeros((0, 3), F)))
            top_y = cy + size * (c.width if cut == "oval" else 1.0) * (1.0 if cut != "princess" else 0.8)
    elif style == "disc":
        r = rng.uniform(0.45, 0.6)
        th = rng.uniform(0.05, 0.08)

        def coin(q, r=r, th=th):
            d = sdf.cylinder(q, r, th, th * 0.9)
            rim = sdf.band(q - np.array([0, th * 0.9, 0], F), r * 0.86, 0.035, 0.03, 0.03)  # a raised rim
            return np.minimum(d, rim)

        parts.append(_metal(coin, S, center, radius=r + 0.05, pts=ring_points(r, [0], 12)))
        top_y = cy + r
    else:  # heart: a puffed, rounded heart outline
        r = rng.uniform(0.5, 0.62)
        th = rng.uniform(0.06, 0.1)

        def heart_sdf(q, r=r, th=th):
            d2 = sdf.heart2(q[:, 0] / F(r), q[:, 1] / F(r) + F(0.5)) * F(r)
            return sdf.extrude(d2, q[:, 2], th, 0.9 * th)

        R_heart = turn  # the heart lies in the x-y plane, facing +z
        parts.append(_metal(heart_sdf, R_heart, center, radius=r * 1.2,
                            pts=np.array([[-0.6 * r, 0.4 * r, 0], [0.6 * r, 0.4 * r, 0], [0, -0.5 * r, 0]], F)))
        top_y = cy + 0.32 * r
    # bail: a small loop the chain runs through
    bail_r, bail_w = 0.1, 0.03
    bail_c = np.array([0, top_y + bail_r + 0.005, 0], F)
    parts.append(_metal(lambda q: sdf.torus(q, bail_r, bail_w), turn @ sdf.rot_z(np.pi / 2), bail_c,
                        radius=bail_r + bail_w, pts=np.array([[0, 0, 0]], F) + [[0, bail_r, 0]]))
    # the chain rises from the bail in a V and leaves the shot
    spread = rng.uniform(0.3, 0.5)
    start = bail_c + np.array([0, bail_r * 0.7, 0], F)
    period = rng.uniform(0.075, 0.095)
    wire = period * rng.uniform(0.13, 0.17)
    shown = rng.uniform(0.45, 0.8)  # how much of the chain the shot includes before it leaves the frame
    for s in (-1, 1):
        Rc = turn @ sdf.rot_z(-s * spread)
        parts.append(_metal(chain_sdf(4.0, period, wire), Rc, start, center=(0, 2.0, 0), radius=2.05,
                            pts=np.array([[0, shown, 0]], F), shadow=False))
    return parts


def earrings(rng, style: str, gem: str, cut: str) -> list[Part]:
    size = rng.uniform(0.32, 0.4) * (0.85 if cut == "oval" else 1.0)
    gap = rng.uniform(1.15, 1.45)
    turn = sdf.rot_y(rng.uniform(-0.12, 0.12))
    ball_r = rng.uniform(0.28, 0.36)
    hoop_r, hoop_w = rng.uniform(0.5, 0.65), rng.uniform(0.05, 0.08)
    parts: list[Part] = []
    for side in (-1, 1):  # a matching pair: shared proportions, mirrored positions
        x = side * gap * (0.5 if style == "stud" else 0.9)
        if style == "stud":
            cy = 0.55
            # a slight stagger in depth keeps the pair from hiding each other in the side view
            base = np.array([x, cy, -side * 0.3], F)
            post = sdf.rot_x(np.pi / 2)
            parts.append(_metal(lambda q: np.minimum(sdf.capsule(q, (0, 0, 0), (0, 0, -0.6), 0.03),
                                                     sdf.cylinder((q - np.array([0, 0, -0.4], F)) @ post, 0.17, 0.03, 0.02)),
                                turn, base, center=(0, 0, -0.3), radius=0.4, pts=np.zeros((0, 3), F)))
            if gem == "none":
                r = ball_r
                parts.append(_metal(lambda q, r=r: sdf.sphere(q, r), turn, base, radius=r,
                                    pts=r * np.concatenate([np.eye(3, dtype=F), -np.eye(3, dtype=F)])))
            else:
                c = CUTS[cut]
                S = turn @ UPRIGHT @ (sdf.rot_y(np.pi / 2) if cut == "oval" else (sdf.rot_y(np.pi / 4) if cut == "princess" else EYE))
                parts.append(stone(cut, size, gem, S, base))
                parts.append(_metal(prong_setting(c, size, 0.45 * size, 4, 0.08 * size), S, base,
                                    center=(0, -0.3 * size, 0), radius=size * 1.4, pts=np.zeros((0, 3), F)))
        elif style == "hoop":
            r, w = hoop_r, hoop_w
            cy = r + w + 0.05
            parts.append(_metal(lambda q, r=r, w=w: sdf.band(q, r, w, w * 1.3, w * 0.95), turn @ UPRIGHT,
                                np.array([x, cy, 0], F), radius=r + 2 * w,
                                pts=ring_points(r + w, [0], 12)))
        else:  # drop: an ear wire, a small connector bead and a dangling stone in a bezel
            c = CUTS[cut]
            hang = size * (c.width if cut == "oval" else 1.0)
            cy = hang + 0.12
            S = turn @ UPRIGHT @ (sdf.rot_y(np.pi / 2) if cut == "oval" else (sdf.rot_y(np.pi / 4) if cut == "princess" else EYE))
            center = np.array([x, cy, 0], F)
            parts.append(stone(cut, size, gem, S, center))
            parts.append(_metal(bezel(c, size, 0.55 * size, 0.06 * size), S, center, radius=hang * 1.3,
                                pts=np.zeros((0, 3), F)))
            top = cy + hang + 0.05
            wire_c = np.array([x, top + 0.35, -0.12], F)

            def hook(q, top=top):
                arc = sdf.torus(q @ sdf.rot_z(np.pi / 2).T, 0.26, 0.022)  # ear wire loop in the y-z plane
                arc = np.maximum(arc, -(q[:, 1] + 0.02))
                bead = sdf.sphere(q - np.array([0, -0.33, 0.12], F), 0.06)
                stem = sdf.capsule(q, (0, -0.33, 0.12), (0, -0.02, 0.25), 0.022)
                return np.minimum(np.minimum(arc, bead), stem)

            parts.append(_metal(hook, turn, wire_c, center=(0, -0.05, 0), radius=0.45,
                                pts=np.array([[0, 0.28, 0], [0, -0.33, 0.12]], F)))
    return parts


def bracelet(rng, style: str, gem: str, cut: str) -> list[Part]:
    radius = 1.0
    turn = sdf.rot_y(rng.uniform(-np.pi, np.pi))
    parts: list[Part] = []
    if style in ("bangle", "cuff"):
        thick, width = rng.uniform(0.06, 0.11), rng.uniform(0.07, 0.16)
        rounding = rng.choice([min(thick, width) * 0.95, 0.03])
        t = np.array([0, width, 0], F)
        if style == "cuff":
            gap = rng.uniform(0.35, 0.6)

            def f(q):
                ang = np.abs(np.arctan2(q[:, 0], -q[:, 2]))  # the opening sits at the back
                cut_open = (F(gap) - ang) * F(radius)
                return np.maximum(sdf.band(q, radius, thick, width, rounding), cut_open)
            turn = sdf.rot_y(rng.uniform(-0.6, 0.6))
        else:
            def f(q):
                return sdf.band(q, radius, thick, width, rounding)
        parts.append(_metal(f, turn, t, radius=radius + thick + width,
                            pts=ring_points(radius + thick, [-width, width], 16)))
        if gem != "none":
            # one bezel-set stone on the top of the bangle, at its front
            size = rng.uniform(0.2, 0.26)
            turn = sdf.rot_y(rng.uniform(-0.3, 0.3))
            parts[0].R = turn
            gpos = np.array([0, 2 * width + 0.02, radius], F) @ turn.T
            S = turn @ (sdf.rot_y(np.pi / 2) if cut == "oval" else (sdf.rot_y(np.pi / 4) if cut == "princess" else EYE))
            parts.append(stone(cut, size, gem, S, gpos))
            parts.append(_metal(bezel(CUTS[cut], size, 0.5 * size, 0.08 * size), S, gpos, radius=size * 1.6,
                                pts=np.zeros((0, 3), F)))
    elif style == "tennis":
        size = rng.uniform(0.085, 0.11)
        count = int(2 * np.pi * radius / (2.15 * size))
        rail = 0.4 * size
        t = np.array([0, rail + 0.6 * size, 0], F)

        def rails(q):
            return np.minimum(sdf.band(q - np.array([0, -0.55 * size, 0], F), radius, rail * 0.6, rail * 0.5, rail * 0.4),
                              sdf.band(q, radius, size * 1.02, 0.12 * size, 0.05 * size))

        parts.append(_metal(rails, turn, t, radius=radius + 2 * size, pts=ring_points(radius + size, [-size, size], 16)))
        parts.append(stones_around(cut, size, gem, count, radius, 0.0, False, turn, t))
    else:  # chain bracelet
        links = int(rng.integers(26, 36))
        wire = rng.uniform(0.035, 0.05)
        link_r = np.pi * radius / links * 0.33
        t = np.array([0, link_r + wire, 0], F)
        parts.append(_metal(chain_loop_sdf(radius, links, wire), turn, t, radius=radius + 0.3,
                            pts=ring_points(radius + 0.1, [-0.05, 0.05], 16)))
    return parts


BUILDERS = {"ring": ring, "pendant": pendant, "earrings": earrings, "bracelet": bracelet}
