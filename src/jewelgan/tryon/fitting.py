"""A piece fitted on a photo: where it goes and the photo with it, the one placement policy that `jewelgan
tryon` and the server's POST /v1/tryon share.

Anchors given win; without them the body landmarks place the piece, and where they cannot, the caller
either gets the error or (centre_if_lost, for a page where the user drags the piece) the middle of the
photo. A scale or angle given wins over the one found; with neither, the piece is DEFAULT_SCALE of the
photo's width and upright. What covers the piece (hair, fingers) is found for every placement but the
middle one, whose anchors mean nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from jewelgan.tryon.landmarks import available, find_front, find_placement
from jewelgan.tryon.placement import Placement, TryOnError, split_pair, try_on

DEFAULT_SCALE = 0.1  # the piece's width as a share of the photo's, where neither the caller nor landmarks say
DEFAULT_ANGLE = 0.0


@dataclass
class Fitting:
    composite: np.ndarray  # uint8 (H, W, 3): the photo with the piece on it
    placements: list[Placement]  # where each piece went (two for a pair of earrings)
    anchors: list[tuple[float, float]]
    scale: float
    angle: float
    source: str  # "given", "centre" (the landmarks failed: see lost), or what the landmarks anchored it to
    front: np.ndarray | None  # what covers the piece, as try_on's `front`; None without occlusion
    lost: str | None = None  # why automatic placement failed, when it fell back to the centre
    hung: bool = False  # the anchors held the pieces' attachment points (found lobes, a chain), not their middles
    cutout: np.ndarray | None = None  # the piece as placed: one earring of a pair, a pendant without its stub,
                                      # a ring wrapped round its finger


def fit_piece(photo: np.ndarray, cutout: np.ndarray, category: str | None,
              anchors: list[tuple[float, float]] | None = None, scale: float | None = None,
              angle: float | None = None, *, shadow: bool = True, match_light: bool = True, occlusion: bool = True,
              centre_if_lost: bool = False, on_found: Callable[[str], None] | None = None) -> Fitting:
    """Place `cutout` (RGBA) on `photo` (uint8 RGB) at `anchors`, or where the landmarks put a piece of
    `category`. on_found hears what the landmarks anchored it to before compositing, which may still
    refuse the placement (an anchor outside the photo), so a user learns what was found either way."""
    front, lost, hang, chain = None, None, False, None
    if anchors:
        source, found_scale, found_angle = "given", DEFAULT_SCALE, DEFAULT_ANGLE
    else:
        try:
            auto = find_placement(photo, category or "")
        except TryOnError as e:
            if not centre_if_lost:
                raise
            lost, anchors, source = str(e), _middle(photo, category), "centre"
            found_scale, found_angle = DEFAULT_SCALE, DEFAULT_ANGLE
        else:
            anchors, source, found_scale, found_angle = auto.anchors, auto.source, auto.scale, auto.angle
            hang, chain = auto.hang, auto.chain
            if scale is None or scale == auto.scale:
                front = auto.front  # found for this size; a piece of another size is covered elsewhere
            if on_found is not None:
                on_found(source)
    scale = found_scale if scale is None else scale
    angle = found_angle if angle is None else angle
    anchors = [tuple(a) for a in anchors]
    if not occlusion:
        front = None
    elif front is None and category and source != "centre" and available():
        front = find_front(photo, category, anchors, scale)  # for anchors given or dragged, or another size
    if category == "earrings" and len(anchors) == 1:
        cutout = split_pair(cutout)[0]  # one visible ear: one earring of the pair
    if category == "ring":
        from jewelgan.tryon.ring import wrap_ring

        cutout = wrap_ring(cutout)  # round the finger, not a flat "O" on it
    if chain is not None:
        photo, cutout = hang_on_chain(photo, cutout, anchors[0], chain, scale * photo.shape[1], front)
    composite, placements = try_on(photo, cutout, anchors, scale, angle, shadow, match_light, front, hang)
    return Fitting(composite, placements, anchors, scale, angle, source, front, lost, hang, cutout)


def hang_on_chain(photo: np.ndarray, cutout: np.ndarray, low, ends, width_px: float, front=None):
    """The photo with the chain drawn from the neck's sides to `low`, and the pendant without its own stub of
    chain (tryon/chain.py); the pendant then hangs from `low`."""
    from jewelgan.tryon.chain import chain_curve, draw_chain, metal_colour, trim_chain

    try:
        points = chain_curve(ends[0], ends[1], low)
    except ValueError:
        return photo, cutout  # landmarks too odd for a curve (a head lying down): the pendant alone
    thickness = max(1.2, 0.02 * width_px)
    return draw_chain(photo, points, metal_colour(cutout), thickness, front), trim_chain(cutout)


def _middle(photo: np.ndarray, category: str | None) -> list[tuple[float, float]]:
    """Where a piece waits to be dragged into place: the middle, earrings a little apart."""
    h, w = photo.shape[:2]
    return [(w * 0.4, h / 2), (w * 0.6, h / 2)] if category == "earrings" else [(w / 2, h / 2)]
