"""Automatic try-on placement from body landmarks, offline: the face-mesh, pose and hand models that ship
inside the mediapipe 0.10.14 wheel (its legacy `solutions` API loads them from the package; the 1.x wheels
ship none and download at run time, which cannot work here). Optional: `pip install 'jewelgan[tryon]'`.

- earrings: the ear lobes, from the face mesh in 3-D: below and behind the points by the ears (234, 454), so
  a turned head carries its far lobe out past the cheek; a lobe that would lie inside the face's outline is
  behind the head and gets no earring. Each earring 10 % of the face's width (measured in 3-D, so a turned
  face keeps its size), hanging from its hook at the lobe; turned with the head's roll.
- pendant: the neck base, 45 % of the way from the chin (face-mesh 152) to the middle of the shoulders
  (pose 11, 12); the pendant 18 % of the shoulders' width, hanging from the lowest point of a chain drawn
  from behind the neck's sides (tryon/chain.py); turned with the shoulders.
- ring: the ring finger's base segment (hand landmarks 13 to 14), a third of the way up; the ring across
  the finger, as wide as the spacing of the knuckles beside it (a finger is ~0.9 of that, and the band
  shows on both sides).
What covers the piece (`AutoPlacement.front`, see tryon_occlusion): hair near earrings and pendants
(person segmentation + hair/skin colour), fingers of any hand in the photo, and for a ring the far half
of its band behind its own finger.
Nothing found (no face, no shoulders, no hand): NoLandmarks, whose message says what is missing and to
give --anchor; a placement is never guessed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from jewelgan.tryon.placement import TryOnError
from jewelgan.tryon.occlusion import FACE_OVAL, fingers_in_front, hair_in_front, knuckle_spacing, ring_far_side

CATEGORIES = ("earrings", "pendant", "ring")


class NoLandmarks(TryOnError):
    """The photo shows nothing to anchor this piece to."""


@dataclass
class AutoPlacement:
    anchors: list[tuple[float, float]]
    scale: float  # the piece's width as a share of the photo's width
    angle: float  # degrees, counter-clockwise as seen
    source: str  # what it was anchored to, for the user
    front: np.ndarray | None = None  # float (H, W): what lies in front of the piece (tryon.place's `front`)
    hang: bool = False  # anchors hold the pieces' attachment points (earring hooks, a pendant's bail)
    chain: tuple | None = None  # a pendant's chain: (left end, right end), its lowest point is the anchor


def available() -> bool:
    """Whether the optional landmark extra (mediapipe) is installed, without importing it."""
    import importlib.util

    return importlib.util.find_spec("mediapipe") is not None


def _solutions():
    try:
        import mediapipe as mp
    except ImportError:
        raise TryOnError("automatic placement needs the optional extra: pip install 'jewelgan[tryon]' "
                         "(mediapipe 0.10.14, whose wheel ships the landmark models); or give --anchor X,Y") from None
    return mp.solutions


def _points(landmarks, W: int, H: int) -> np.ndarray:
    return np.array([[p.x * W, p.y * H] for p in landmarks.landmark], np.float64)


def _roll(a: np.ndarray, b: np.ndarray) -> float:
    """Degrees counter-clockwise (as seen) of the line from a to b (image y points down)."""
    return math.degrees(math.atan2(-(b[1] - a[1]), b[0] - a[0]))


def _face(photo: np.ndarray) -> np.ndarray | None:
    """The face mesh's points (N, 3): x, y in pixels, z (depth, larger is farther) on x's scale; None: no face."""
    with _solutions().face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1) as mesh:
        found = mesh.process(np.ascontiguousarray(photo))
    if not found.multi_face_landmarks:
        return None
    H, W = photo.shape[:2]
    return np.array([[p.x * W, p.y * H, p.z * W] for p in found.multi_face_landmarks[0].landmark], np.float64)


def _person(photo: np.ndarray) -> np.ndarray:
    with _solutions().selfie_segmentation.SelfieSegmentation(model_selection=1) as seg:
        return seg.process(np.ascontiguousarray(photo)).segmentation_mask


def _hands(photo: np.ndarray, most: int = 2) -> list[np.ndarray]:
    """Each hand's 21 points as (x, y, z) in pixels (z, relative depth, on the x scale; larger is farther)."""
    H, W = photo.shape[:2]
    with _solutions().hands.Hands(static_image_mode=True, max_num_hands=most) as hands:
        found = hands.process(np.ascontiguousarray(photo))
    return [np.array([[p.x * W, p.y * H, p.z * W] for p in hand.landmark], np.float64)
            for hand in (found.multi_hand_landmarks or [])]


def _ring_finger(hand: np.ndarray) -> tuple[np.ndarray, float]:
    """Where the ring sits on this hand (a third up its ring finger's base segment) and the knuckles' spacing."""
    return hand[13, :2] + (hand[14, :2] - hand[13, :2]) / 3, knuckle_spacing(hand)


def _front(photo: np.ndarray, category: str, anchors: list, width_px: float, face, hands) -> np.ndarray:
    """What covers pieces of this category at these anchors: hair and the fingers of any hand; for a ring
    also the far half of its band, behind the finger of the hand nearest the anchor."""
    front = np.zeros(photo.shape[:2], np.float32)
    if category in ("earrings", "pendant") and face is not None:
        reach = 2.5 * width_px if category == "earrings" else 1.0 * width_px  # an earring hangs below its lobe
        front = hair_in_front(photo, face, _person(photo), anchors, reach)
    wearing = None
    if category == "ring" and hands:
        wearing = min(hands, key=lambda h: np.linalg.norm(_ring_finger(h)[0] - np.asarray(anchors[0])))
        _, spacing = _ring_finger(wearing)
        front = ring_far_side(photo.shape, wearing[13], wearing[14], anchors[0], 0.45 * spacing)
    ring_finger = ((13, 14), (14, 15), (15, 16))
    for hand in hands:
        mine = hand is wearing  # its palm lies behind the band, its ring finger is handled above
        front = np.maximum(front, fingers_in_front(photo.shape, hand, ring_finger if mine else (), palm=not mine))
    return front


def find_front(photo: np.ndarray, category: str, anchors: list, scale: float) -> np.ndarray:
    """What covers pieces of `category` placed at `anchors` (given or dragged), `scale` wide (tryon's units):
    a float (H, W) mask for tryon.place's `front`."""
    if category not in CATEGORIES:
        return np.zeros(photo.shape[:2], np.float32)
    mesh = _face(photo) if category != "ring" else None
    face = None if mesh is None else mesh[:, :2]
    return _front(photo, category, anchors, scale * photo.shape[1], face, _hands(photo))


# Where an ear lobe is, in the face's own frame (3-D): LOBE_DOWN of the face's height below the mesh point by
# the ear (234, 454) and LOBE_BACK of its width behind it, into the head. Seen from the front that is straight
# down; on a turned head the far lobe moves out past the cheek and the near one behind it. Fitted by least
# squares on 9 hand-marked lobes of 7 portraits (benchmarks/tryon_placement.py --left-out): 6.8 % of the face's width
# left out one portrait at a time, where the old 2-D rule (jaw points moved down and out) missed by 15 %.
LOBE_DOWN, LOBE_BACK = 0.20, 0.105


def _inside(polygon: np.ndarray, point) -> bool:
    """Whether a point lies inside a closed polygon (even-odd rule), both in pixels."""
    x, y = float(point[0]), float(point[1])
    xs, ys = polygon[:, 0], polygon[:, 1]
    xn, yn = np.roll(xs, -1), np.roll(ys, -1)
    crosses = (ys > y) != (yn > y)
    at = xs + (y - ys) * (xn - xs) / np.where(yn == ys, 1e-12, yn - ys)
    return bool(np.count_nonzero(crosses & (x < at)) % 2)


def earring_anchors(face: np.ndarray, down_share: float = LOBE_DOWN,
                    back_share: float = LOBE_BACK) -> tuple[list[tuple[float, float]], float, float]:
    """Face-mesh points (N, 3) -> (the visible ear lobes, the face's width, its roll in degrees).

    A lobe whose point falls inside the face's outline is behind the head (a turned face): it gets no earring,
    so an earring never lands on a cheek or the nose."""
    across, down = face[454] - face[234], face[152] - face[10]
    width, height = float(np.linalg.norm(across)), float(np.linalg.norm(down))
    across = across / max(width, 1e-6)
    down = down - (down @ across) * across
    down /= max(float(np.linalg.norm(down)), 1e-6)
    back = np.cross(across, down)
    if back[2] < 0:  # z grows away from the camera: "back" points into the head
        back = -back
    outline = face[list(FACE_OVAL), :2]
    lobes = [face[i] + down_share * height * down + back_share * width * back for i in (234, 454)]
    seen = [p for p in lobes if not _inside(outline, p[:2])]
    if not seen:  # a mesh too flat to tell: the lobe farther from the nose
        seen = [max(lobes, key=lambda p: abs(p[0] - face[1, 0]))]
    return [(float(p[0]), float(p[1])) for p in seen], width, _roll(face[234], face[454])


def chain_ends(face: np.ndarray, low: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """Where a chain comes from behind the neck on each side: below the jaw, 0.28 of the face's width either
    side of the line from chin to the pendant's point."""
    width = np.linalg.norm(face[454] - face[234])
    chin = face[152]
    across = (face[454] - face[234]) / max(width, 1e-6)
    start = chin + 0.35 * (low - chin)
    a, b = start - 0.28 * width * across, start + 0.28 * width * across
    left, right = sorted((a, b), key=lambda p: p[0])
    return tuple(left), tuple(right)


def find_placement(photo: np.ndarray, category: str) -> AutoPlacement:
    """Where a piece of this category goes on this photo (uint8 RGB), and what covers it there."""
    if category not in CATEGORIES:
        raise TryOnError(f"automatic placement knows {', '.join(CATEGORIES)}; for a {category}, give --anchor X,Y")
    H, W = photo.shape[:2]
    if category == "earrings":
        mesh = _face(photo)
        if mesh is None:
            raise NoLandmarks("no face found in the photo, so there are no ear lobes to place earrings on; "
                              "give --anchor X,Y --anchor X,Y")
        anchors, width, roll = earring_anchors(mesh)
        seen = "ear lobes" if len(anchors) == 2 else "the visible ear lobe (a turned face)"
        return AutoPlacement(anchors, 0.10 * width / W, roll, f"{seen} (face landmarks)",
                             _front(photo, category, anchors, 0.10 * width, mesh[:, :2], _hands(photo)), hang=True)
    if category == "pendant":
        mesh = _face(photo)
        face = None if mesh is None else mesh[:, :2]
        with _solutions().pose.Pose(static_image_mode=True) as pose:
            found = pose.process(np.ascontiguousarray(photo))
        body = found.pose_landmarks
        if face is None or body is None or min(body.landmark[11].visibility, body.landmark[12].visibility) < 0.5:
            raise NoLandmarks("no face and shoulders found in the photo, so there is no neck to hang a pendant "
                              "on; give --anchor X,Y")
        pts = _points(body, W, H)
        shoulders = (pts[11] + pts[12]) / 2
        anchors = [tuple(face[152] + 0.45 * (shoulders - face[152]))]
        span = np.linalg.norm(pts[11] - pts[12])
        left, right = sorted((pts[11], pts[12]), key=lambda p: p[0])
        return AutoPlacement(anchors, 0.18 * span / W, _roll(left, right), "neck base (face and pose)",
                             _front(photo, category, anchors, 0.18 * span, face, _hands(photo)), hang=True,
                             chain=chain_ends(face, np.asarray(anchors[0])))
    hands = _hands(photo)
    if not hands:
        raise NoLandmarks("no hand found in the photo, so there is no ring finger; give --anchor X,Y "
                          "(and --angle across the finger)")
    anchor, spacing = _ring_finger(hands[0])
    anchors = [tuple(anchor)]
    return AutoPlacement(anchors, spacing / W, _roll(hands[0][13], hands[0][14]) - 90.0, "ring finger (hand landmarks)",
                         _front(photo, category, anchors, spacing, None, hands))
