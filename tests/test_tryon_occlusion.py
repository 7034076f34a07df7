"""Occlusion in try-on: what lies in front of the piece hides it (and its shadow) there and nowhere else;
hair is found where it hangs from the head, not on a shaded neck beside it; a ring's far half goes behind
its finger, on the side the finger's depth says; fingers cover what they cross."""

import numpy as np
import pytest
from PIL import Image

from jewelgan.tryon import TryOnError, place, try_on
from jewelgan.tryon.occlusion import FACE_OVAL, CHEEKS, capsule, fingers_in_front, hair_in_front, hanging, \
    ring_far_side
from tests.test_tryon import astronaut, bar_cutout


def test_what_is_in_front_hides_the_piece_and_its_shadow_there_only():
    photo = np.full((200, 240, 3), 90, np.uint8)
    photo[:, 120:] = 150
    front = np.zeros((200, 240), np.float32)
    front[:, 120:] = 1.0  # the right half of the photo lies in front of the piece
    plain, _ = place(photo, bar_cutout(), (120, 100), 0.5, shadow=True, match_light=False)
    covered, _ = place(photo, bar_cutout(), (120, 100), 0.5, shadow=True, match_light=False, front=front)
    assert not np.array_equal(plain[:, 120:], photo[:, 120:])  # without occlusion the piece reaches the right half
    assert np.array_equal(covered[:, 120:], photo[:, 120:])  # with it, nothing there changes: piece nor shadow
    assert np.array_equal(covered[:, :118], plain[:, :118])  # and the left half is as before
    half = front * 0.5
    partly, _ = place(photo, bar_cutout(), (120, 100), 0.5, shadow=False, match_light=False, front=half)
    plain_ns, _ = place(photo, bar_cutout(), (120, 100), 0.5, shadow=False, match_light=False)
    # half covered: half-way between the photo and the piece
    mid = np.abs(partly[95:105, 130:150].astype(int) - (plain_ns[95:105, 130:150].astype(int) + photo[95:105, 130:150]) / 2)
    assert mid.max() <= 1
    with pytest.raises(TryOnError, match="occlusion mask is 10x10, the photo 240x200"):
        try_on(photo, bar_cutout(), [(120, 100)], 0.5, front=np.zeros((10, 10)))


def test_hair_hangs_from_its_roots():
    hairy = np.zeros((12, 9), bool)
    hairy[0:10, 2] = True  # a lock from the head down
    hairy[6:10, 6:8] = True  # a hair-coloured patch below skin (a shaded neck)
    roots = np.zeros_like(hairy)
    roots[0, :] = True
    reached = hanging(hairy, roots & hairy)
    assert reached[:, 2].sum() == 10 and not reached[:, 6:8].any()
    for y in range(9):  # a lock drifting sideways as it falls (a pixel per row) hangs too
        hairy[y, y] = True
    assert all(hanging(hairy, roots & hairy)[y, y] for y in range(9))


def synthetic_portrait():
    """A drawn head: skin face with a hair cap, a lock of hair hanging over the left lobe, a shaded neck as dark
    as the hair under the right lobe; and the face points hair_in_front reads (outline, cheeks, eyes)."""
    rng = np.random.default_rng(0)
    H, W = 240, 240
    photo = np.full((H, W, 3), 225, np.float32)  # a light wall
    person = np.zeros((H, W), np.float32)
    ys, xs = np.mgrid[:H, :W]
    cx, cy, rx, ry = 120, 110, 45, 60
    head = ((xs - cx) / (rx * 1.45)) ** 2 + ((ys - cy + 8) / (ry * 1.3)) ** 2 <= 1
    neck = (abs(xs - cx) < 38) & (ys > cy) & (ys < H)
    face = ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1
    hair_colour, skin_colour = np.array([110, 80, 45]), np.array([215, 175, 150])
    photo[head] = hair_colour
    photo[neck] = skin_colour
    photo[face] = skin_colour
    photo[neck & (ys > cy + 62) & (xs > cx)] = skin_colour * 0.55  # shade under the right jaw, hair-dark
    lock = (xs > cx - rx - 8) & (xs < cx - rx + 8) & (ys > cy - 20) & (ys < cy + 95)
    photo[lock] = hair_colour
    person[head | neck | lock] = 1.0
    photo += rng.normal(0, 6, photo.shape)
    pts = np.zeros((478, 2))
    for k, i in enumerate(FACE_OVAL):  # the outline, clockwise from the top
        t = 2 * np.pi * k / len(FACE_OVAL)
        pts[i] = (cx + rx * np.sin(t), cy - ry * np.cos(t))
    for k, i in enumerate(CHEEKS):
        pts[i] = (cx + (-1) ** k * 25, cy + 10)
    pts[33], pts[263] = (cx - 20, cy - 15), (cx + 20, cy - 15)
    lobes = [(cx - rx - 2, cy + 45), (cx + rx + 2, cy + 70)]
    return np.clip(photo, 0, 255).astype(np.uint8), pts, person, lobes


def test_hair_in_front_finds_a_lock_over_a_lobe_but_not_a_shaded_neck():
    photo, face, person, (left, right) = synthetic_portrait()
    front = hair_in_front(photo, face, person, [left, right], radius=14)
    assert front[int(left[1]) - 4:int(left[1]) + 4, int(left[0]) - 3:int(left[0]) + 3].mean() > 0.9
    assert front[int(right[1]) - 8:int(right[1]) + 8, int(right[0]) - 8:int(right[0]) + 8].max() == 0
    assert front[:, 130:].max() == 0 and front[:60].max() == 0  # only round the lobes asked about
    # hair the colour of skin cannot be told apart: no mask at all rather than a wrong one
    blond = photo.copy()
    blond[np.all(np.abs(photo.astype(int) - [110, 80, 45]) < 30, axis=-1)] = [212, 176, 148]
    assert hair_in_front(blond, face, person, [left, right], radius=14).max() == 0


def test_a_rings_far_half_hides_behind_its_finger_on_the_side_its_depth_says():
    shape = (200, 200)
    base, anchor = np.array([100.0, 150.0, 0.0]), (100.0, 130.0)
    away = ring_far_side(shape, base, np.array([100.0, 90.0, 30.0]), anchor, 12)  # tip up and away from the camera
    toward = ring_far_side(shape, base, np.array([100.0, 90.0, -30.0]), anchor, 12)
    flat = ring_far_side(shape, base, np.array([100.0, 90.0, 0.0]), anchor, 12)
    finger = capsule(shape, base, (100, 110), 12)
    assert flat.max() == 0  # side-on: the band is a line across the finger, nothing behind it
    # tip tilted away: the band's near half shows toward the tip, the far half (toward the palm) is hidden
    assert away[140:150, 95:105].min() > 0.9 and away[115:128, 95:105].max() == 0
    assert toward[115:128, 95:105].min() > 0.9 and toward[140:150, 95:105].max() == 0
    assert away[~finger].max() < 0.5 and toward[~finger].max() < 0.5  # only where the finger is


def test_fingers_cover_what_they_cross():
    hand = np.zeros((21, 3))
    for f, x in enumerate((60, 80, 100, 120, 140)):  # five straight fingers pointing up from a palm
        base = 5 + 4 * (f - 1) if f else 1
        for j in range(4):
            hand[base + j, :2] = (x, 140 - 25 * j)
    hand[0, :2] = (100, 190)
    front = fingers_in_front((200, 200), hand)
    # on a finger; between two (fingers nearly touch: 0.9 of the knuckles' spacing wide); beside the hand
    assert front[70, 100] > 0.9 and front[70, 110] < 0.7 and front[70, 175] == 0
    assert front[165, 100] > 0.9  # the palm
    skipped = fingers_in_front((200, 200), hand, skip=((13, 14), (14, 15), (15, 16)), palm=False)
    assert skipped[100, 120] < 0.1 and skipped[100, 100] > 0.9 and skipped[165, 100] < 0.1


def portrait_with_a_lock():
    """scikit-image's astronaut with a lock of her own hair hanging from her hair over the right ear lobe;
    -> (photo, where the lobe was found before)."""
    from jewelgan.tryon.landmarks import find_placement

    photo = astronaut().copy()
    (_, _), (rx, ry) = sorted(find_placement(photo, "earrings").anchors)
    lock = photo[30:60, 205:221]  # from the top of her head
    photo[100:220, int(rx) - 8:int(rx) + 8] = np.concatenate([lock, lock[::-1], lock, lock[::-1]], 0)
    return photo, (rx, ry)


def test_real_portrait_hides_earrings_only_behind_hair():
    pytest.importorskip("mediapipe", reason="automatic placement needs: pip install 'jewelgan[tryon]'")
    from jewelgan.tryon.landmarks import find_front, find_placement

    plain = find_placement(astronaut(), "earrings")
    for x, y in plain.anchors:  # her hair ends above the lobes: nothing of the earrings is hidden
        assert plain.front[int(y):int(y) + 20, int(x) - 5:int(x) + 5].max() < 0.5
    photo, _ = portrait_with_a_lock()
    covered = find_placement(photo, "earrings")
    (lx, ly), (rx, ry) = sorted(covered.anchors)
    assert covered.front[int(ry):int(ry) + 20, int(rx) - 5:int(rx) + 5].mean() > 0.9
    assert covered.front[int(ly):int(ly) + 20, int(lx) - 5:int(lx) + 5].max() < 0.5
    # the same mask for anchors given by hand (a dragged piece)
    again = find_front(photo, "earrings", covered.anchors, covered.scale)
    assert np.abs(again - covered.front).max() < 1e-6
    assert Image.fromarray((covered.front * 255).astype(np.uint8)).size == (photo.shape[1], photo.shape[0])
