"""Automatic try-on placement from body landmarks, offline: the face-mesh, pose and hand models that ship
inside the mediapipe 0.10.14 wheel (its legacy `solutions` API loads them from the package; the 1.x wheels
ship none and download at run time, which cannot work here). Optional: `pip install 'jewelgan[tryon]'`.

- earrings: the ear lobes, from the face mesh's jaw points next to the ears (177 and 401) moved down by
  12 % and outward by 3 % of the face's height and width; each earring 10 % of the face's width; turned
  with the head's roll.
- pendant: the neck base, 45 % of the way from the chin (face-mesh 152) to the middle of the shoulders
  (pose 11, 12); the pendant 18 % of the shoulders' width; turned with the shoulders.
- ring: the ring finger's base segment (hand landmarks 13 to 14), a third of the way up; the ring across
  the finger, as wide as a quarter of that segment's length.
Nothing found (no face, no shoulders, no hand): NoLandmarks, whose message says what is missing and to
give --anchor; a placement is never guessed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from jewelgan.tryon import TryOnError

CATEGORIES = ("earrings", "pendant", "ring")


class NoLandmarks(TryOnError):
    """The photo shows nothing to anchor this piece to."""


@dataclass
class AutoPlacement:
    anchors: list[tuple[float, float]]
    scale: float  # the piece's width as a share of the photo's width
    angle: float  # degrees, counter-clockwise as seen
    source: str  # what it was anchored to, for the user


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
    with _solutions().face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1) as mesh:
        found = mesh.process(np.ascontiguousarray(photo))
    if not found.multi_face_landmarks:
        return None
    return _points(found.multi_face_landmarks[0], photo.shape[1], photo.shape[0])


def find_placement(photo: np.ndarray, category: str) -> AutoPlacement:
    """Where a piece of this category goes on this photo (uint8 RGB)."""
    if category not in CATEGORIES:
        raise TryOnError(f"automatic placement knows {', '.join(CATEGORIES)}; for a {category}, give --anchor X,Y")
    H, W = photo.shape[:2]
    if category == "earrings":
        face = _face(photo)
        if face is None:
            raise NoLandmarks("no face found in the photo, so there are no ear lobes to place earrings on; "
                              "give --anchor X,Y --anchor X,Y")
        width = np.linalg.norm(face[454] - face[234])
        height = np.linalg.norm(face[152] - face[10])
        down = (face[152] - face[10]) / max(height, 1e-6)
        across = (face[454] - face[234]) / max(width, 1e-6)
        left = face[177] + 0.12 * height * down - 0.03 * width * across
        right = face[401] + 0.12 * height * down + 0.03 * width * across
        return AutoPlacement([tuple(left), tuple(right)], 0.10 * width / W, _roll(face[234], face[454]),
                             "ear lobes (face landmarks)")
    if category == "pendant":
        face = _face(photo)
        with _solutions().pose.Pose(static_image_mode=True) as pose:
            found = pose.process(np.ascontiguousarray(photo))
        body = found.pose_landmarks
        if face is None or body is None or min(body.landmark[11].visibility, body.landmark[12].visibility) < 0.5:
            raise NoLandmarks("no face and shoulders found in the photo, so there is no neck to hang a pendant "
                              "on; give --anchor X,Y")
        pts = _points(body, W, H)
        shoulders = (pts[11] + pts[12]) / 2
        anchor = face[152] + 0.45 * (shoulders - face[152])
        span = np.linalg.norm(pts[11] - pts[12])
        left, right = sorted((pts[11], pts[12]), key=lambda p: p[0])
        return AutoPlacement([tuple(anchor)], 0.18 * span / W, _roll(left, right), "neck base (face and pose)")
    with _solutions().hands.Hands(static_image_mode=True, max_num_hands=1) as hands:
        found = hands.process(np.ascontiguousarray(photo))
    if not found.multi_hand_landmarks:
        raise NoLandmarks("no hand found in the photo, so there is no ring finger; give --anchor X,Y "
                          "(and --angle across the finger)")
    pts = _points(found.multi_hand_landmarks[0], W, H)
    base, knuckle = pts[13], pts[14]
    length = np.linalg.norm(knuckle - base)
    anchor = base + (knuckle - base) / 3
    return AutoPlacement([tuple(anchor)], 0.25 * length / W, _roll(base, knuckle) - 90.0,
                         "ring finger (hand landmarks)")
