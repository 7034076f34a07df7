"""What lies in front of a tried-on piece: a mask over the photo (float32, 1 = this pixel covers the piece).

`tryon.place(..., front=mask)` hides the piece and its shadow behind it. Three occluders, each built
from what the landmark models see (`tryon_landmarks` feeds them; here is only geometry and colour, so it
is testable without mediapipe):
- **hair** over an earring or a pendant: the person-segmentation mask tells the person from the room but
  not hair from skin, so hair is told by colour: a colour model of the hair (sampled above the forehead,
  inside the person, outside the face oval) against one of the skin (sampled on the cheeks). Person
  pixels outside the face that are likelier hair than skin, in one piece with the hair above the
  forehead, are hair (hair over an ear or a neck hangs from the head; a shaded neck under the chin
  is as dark as brown hair, but not joined to it).
  When the two models cannot tell their own samples apart (bald, a hat, a crop at the forehead, hair
  the colour of skin), no hair mask is made: a piece over hair is a lesser fault than one cut by a
  wrong mask.
- **fingers** (any hand found) over any piece: each finger bone a capsule, as wide as the finger.
- **the ring's own finger**: a ring goes round its finger, so the half of its band on the far side of
  the finger is hidden where it crosses the finger. Which half is far comes from the landmarks' depth:
  the band's near half lies toward where the finger's top surface faces the camera.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage

# the face mesh's outline, in order round the face (forehead top 10, chin 152, sides 234 and 454)
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148,
             176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
CHEEKS = (50, 280, 101, 330, 117, 346, 123, 352, 187, 411, 205, 425)
# the hand model's bones from each finger's base to its tip (0 = wrist)
FINGER_BONES = ((1, 2), (2, 3), (3, 4), (5, 6), (6, 7), (7, 8), (9, 10), (10, 11), (11, 12),
                (13, 14), (14, 15), (15, 16), (17, 18), (18, 19), (19, 20))
PALM = (0, 1, 5, 9, 13, 17)
MIN_SAMPLE = 40  # pixels a colour model needs
TRUST = 0.8  # the colour models must tell at least this share of their own samples apart to be used
# (freckles and shade keep skin from 1.0; blond hair on fair skin scores near 0.5)


def _polygon(shape, points: np.ndarray) -> np.ndarray:
    canvas = Image.new("L", (shape[1], shape[0]), 0)
    ImageDraw.Draw(canvas).polygon([tuple(map(float, p)) for p in points], fill=255)
    return np.asarray(canvas) > 127


def _disc(shape, centre, radius: float) -> np.ndarray:
    ys, xs = np.ogrid[:shape[0], :shape[1]]
    return (xs - centre[0]) ** 2 + (ys - centre[1]) ** 2 <= radius ** 2


def capsule(shape, a, b, radius: float) -> np.ndarray:
    """Pixels within `radius` of the segment a-b (bool (H, W))."""
    ys, xs = np.mgrid[:shape[0], :shape[1]].astype(np.float32)
    a, b = np.asarray(a, np.float32)[:2], np.asarray(b, np.float32)[:2]
    ab = b - a
    t = np.clip(((xs - a[0]) * ab[0] + (ys - a[1]) * ab[1]) / max(float(ab @ ab), 1e-6), 0, 1)
    return (xs - a[0] - t * ab[0]) ** 2 + (ys - a[1] - t * ab[1]) ** 2 <= radius ** 2


def soften(mask: np.ndarray, radius: float = 1.0) -> np.ndarray:
    """A hard mask with anti-aliased edges (float32 in [0, 1])."""
    image = Image.fromarray((mask.astype(np.float32) * 255).astype(np.uint8))
    return np.asarray(image.filter(ImageFilter.GaussianBlur(radius)), np.float32) / 255.0


class _Colour:
    """A Gaussian colour model (RGB in [0, 1]); `cost` is the negative log-likelihood up to a shared constant,
    so the lower of two models' costs is the likelier class."""

    def __init__(self, pixels: np.ndarray):
        self.mean = pixels.mean(0)
        cov = np.cov(pixels.T) + np.eye(3) * 1e-4  # the ridge keeps a flat patch invertible
        self.inv = np.linalg.inv(cov)
        self.logdet = float(np.linalg.slogdet(cov)[1])

    def cost(self, pixels: np.ndarray) -> np.ndarray:
        d = pixels - self.mean
        return 0.5 * np.einsum("...i,ij,...j->...", d, self.inv, d) + 0.5 * self.logdet


def _face_outline(shape, face: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Inside the face's outline, grown or shrunk by `scale` about the face's middle (bool (H, W))."""
    oval, centre = face[list(FACE_OVAL)], (face[152] + face[10]) / 2
    return _polygon(shape, centre + scale * (oval - centre))


def _around_head(shape, face: np.ndarray) -> np.ndarray:
    """A band round the top half of the face, just outside its outline: where hair is if there is any
    (the crown and the temples, highlights and shade)."""
    band = _face_outline(shape, face, 1.4) & ~_face_outline(shape, face, 1.08)
    ys = np.arange(shape[0])[:, None]
    eyes = (face[33, 1] + face[263, 1]) / 2  # above the eyes' line only: below it the band is ears and neck
    return band & (ys < eyes)


def hair_in_front(photo: np.ndarray, face: np.ndarray, person: np.ndarray, around: list, radius: float) -> np.ndarray:
    """Hair over the discs of `radius` round the points `around` (float32 (H, W)); zeros when the photo
    gives no trustworthy hair colour. `face`: the face mesh's points (N, 2) in pixels; `person`: the
    segmentation's probability of each pixel being the person."""
    H, W = photo.shape[:2]
    # classify a lightly blurred photo: single strands and freckles would split hair into specks
    rgb = np.asarray(Image.fromarray(photo).filter(ImageFilter.GaussianBlur(1.0)), np.float32) / 255.0
    inside_face = _face_outline(photo.shape, face)
    is_person = person > 0.5
    height = float(np.linalg.norm(face[152] - face[10]))
    above = _around_head(photo.shape, face) & is_person & ~inside_face
    cheeks = np.zeros((H, W), bool)
    for i in CHEEKS:
        cheeks |= _disc(photo.shape, face[i], 0.05 * height)
    cheeks &= inside_face
    if above.sum() < MIN_SAMPLE or cheeks.sum() < MIN_SAMPLE:
        return np.zeros((H, W), np.float32)
    hair, skin = _Colour(rgb[above]), _Colour(rgb[cheeks])
    told_apart = min(np.mean(hair.cost(rgb[above]) < skin.cost(rgb[above])),
                     np.mean(skin.cost(rgb[cheeks]) < hair.cost(rgb[cheeks])))
    if told_apart < TRUST:
        return np.zeros((H, W), np.float32)
    # hair falling from the head crosses the face's outline: its rim may be hair, its middle is skin
    candidates = is_person & ~_face_outline(photo.shape, face, 0.85)
    hairy = np.zeros((H, W), bool)
    hairy[candidates] = hair.cost(rgb[candidates]) < skin.cost(rgb[candidates])
    hairy = ndimage.binary_opening(hairy)  # drop single specks of hair-coloured skin
    near = np.zeros((H, W), bool)
    for p in around:
        near |= _disc(photo.shape, p, radius)
    return soften(hanging(hairy, above & hairy) & near)


def hanging(hairy: np.ndarray, roots: np.ndarray) -> np.ndarray:
    """The hairy pixels that hang from a root: reached from one by going down (or a pixel aside) through hairy
    pixels only. Hair falls from the head; a shaded neck or ear next to the hair's end is hair-coloured
    too but has skin above it, so it is not reached."""
    reached = np.zeros_like(hairy)
    above = np.zeros(hairy.shape[1], bool)
    for y in range(hairy.shape[0]):
        spread = above | np.r_[above[1:], False] | np.r_[False, above[:-1]]
        reached[y] = hairy[y] & (roots[y] | spread)
        above = reached[y]
    return reached


def knuckle_spacing(hand: np.ndarray) -> float:
    """The mean distance between neighbouring knuckles (hand landmarks 5, 9, 13, 17) in pixels: about one
    finger's width, the scale of a ring and of the capsules that stand for fingers."""
    return float(np.mean([np.linalg.norm(hand[a, :2] - hand[b, :2]) for a, b in ((5, 9), (9, 13), (13, 17))]))


def fingers_in_front(shape, hand: np.ndarray, skip: tuple = (), palm: bool = True) -> np.ndarray:
    """Every finger bone of one hand (points (21, 2+) in pixels) as a capsule, and the palm (float32 (H, W)).
    Bones listed in `skip` are left out; so is the palm without `palm` (for the hand wearing the ring, whose
    own finger ring_far_side handles and whose palm lies behind the band)."""
    radius = 0.45 * knuckle_spacing(hand)
    found = _polygon(shape, hand[list(PALM), :2]) if palm else np.zeros(shape[:2], bool)
    for a, b in FINGER_BONES:
        if (a, b) not in skip:
            found |= capsule(shape, hand[a], hand[b], radius)
    return soften(found)


def ring_far_side(shape, base: np.ndarray, knuckle: np.ndarray, anchor, finger_radius: float) -> np.ndarray:
    """The part of the ring finger that covers the far half of a ring worn at `anchor` (float32 (H, W)).

    base, knuckle: the finger's base and middle joint as (x, y, z) in pixels, z growing away from the
    camera. The ring lies in the plane across the finger; its near half is the one whose depth is less
    than the centre's, and in the image it lies toward that half's offset; the far half, the other way,
    is hidden where the finger covers it. A finger seen side-on (its axis in the image plane) hides
    nothing: the band then projects to a line across it."""
    d = np.asarray(knuckle, np.float64) - np.asarray(base, np.float64)
    across = np.array([-d[1], d[0], 0.0])
    across /= max(np.linalg.norm(across), 1e-9)
    ring_axis = np.cross(d, across)
    ring_axis /= max(np.linalg.norm(ring_axis), 1e-9)
    if ring_axis[2] > 0:
        ring_axis = -ring_axis  # the near half's direction
    far = -ring_axis[:2]
    if np.linalg.norm(far) < 0.15:  # the finger points at (or away from) the camera: no far half to hide
        return np.zeros(shape[:2], np.float32)
    far /= np.linalg.norm(far)
    ys, xs = np.mgrid[:shape[0], :shape[1]].astype(np.float32)
    beyond = (xs - anchor[0]) * far[0] + (ys - anchor[1]) * far[1] > 0
    reach = base[:2] + 2.0 * (np.asarray(anchor) - base[:2])  # the finger round the anchor, both ways
    finger = capsule(shape, base, reach, finger_radius)
    return soften(finger & beyond)
