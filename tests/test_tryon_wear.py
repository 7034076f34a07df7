"""Try-on that looks worn: earrings hang from their hooks, a turned face gets one earring (never on the face), a
pendant hangs from the lowest point of a chain drawn round the neck, and the light keeps the metal's hue."""

import colorsys

import numpy as np
import pytest

from jewelgan.tryon.chain import chain_curve, draw_chain, metal_colour, trim_chain
from jewelgan.tryon.fitting import hang_on_chain
from jewelgan.tryon.landmarks import earring_anchors
from jewelgan.tryon.occlusion import FACE_OVAL
from jewelgan.tryon.placement import attachment_point, place


def drop_earring() -> np.ndarray:
    """A hook (thin, on top) over a round drop: RGBA 60 x 30."""
    im = np.zeros((60, 30, 4), np.uint8)
    im[2:20, 14:16] = (220, 180, 70, 255)             # the hook
    yy, xx = np.mgrid[0:60, 0:30]
    im[(yy - 40) ** 2 + (xx - 15) ** 2 <= 12 ** 2] = (220, 180, 70, 255)
    return im


def test_a_hanging_piece_holds_its_hook_at_the_anchor():
    photo = np.full((300, 300, 3), 90, np.uint8)
    out, _ = place(photo, drop_earring(), (150.0, 100.0), scale=0.1, shadow=False, match_light=False, hang=True)
    ys, xs = np.nonzero(np.abs(out.astype(int) - photo).sum(-1) > 60)
    assert abs(ys.min() - 100) <= 1 and abs(xs[ys == ys.min()].mean() - 150) <= 1.5
    assert ys.max() > 140  # the drop hangs below the lobe, not centred on it
    centred, _ = place(photo, drop_earring(), (150.0, 100.0), scale=0.1, shadow=False, match_light=False)
    assert np.nonzero(np.abs(centred.astype(int) - photo).sum(-1) > 60)[0].min() < 90
    assert attachment_point(drop_earring()[..., 3] / 255.0) == pytest.approx((14.5, 2.0))


def face_points(yaw: float) -> np.ndarray:
    """The face-mesh points the placement reads (N, 3), on a head 100 px wide and 160 px tall centred at (150,
    200), turned `yaw` degrees about the vertical (positive: the nose toward the image's left). The outline is an
    ellipse at the sides of the head (10 px behind the face's front), the nose tip 30 px in front."""
    face = np.zeros((478, 3))
    angle = np.linspace(0, 2 * np.pi, len(FACE_OVAL), endpoint=False)  # from the top, clockwise as seen
    face[list(FACE_OVAL)] = np.stack([50 * np.sin(angle), -80 * np.cos(angle), np.full_like(angle, 10.0)], 1)
    face[234], face[454] = (-50, 0, 10), (50, 0, 10)
    face[1] = (0, 10, -30)
    c, s = np.cos(np.radians(yaw)), np.sin(np.radians(yaw))
    x, z = face[:, 0] * c + face[:, 2] * s, -face[:, 0] * s + face[:, 2] * c
    return np.stack([x + 150, face[:, 1] + 200, z], 1)


def test_a_turned_face_gets_one_earring_on_its_visible_ear():
    both, width, roll = earring_anchors(face_points(0))
    assert len(both) == 2 and width == pytest.approx(100) and abs(roll) < 1e-6
    (lx, ly), (rx, ry) = sorted(both)
    assert lx == pytest.approx(100, abs=1) and rx == pytest.approx(200, abs=1)  # straight below the ear points
    assert ly == pytest.approx(200 + 0.2 * 160, abs=1) and ry == pytest.approx(ly)
    for yaw in (40, -40):   # the nose toward the image's left, then toward its right
        face = face_points(yaw)
        one, turned_width, _ = earring_anchors(face)
        assert len(one) == 1 and turned_width == pytest.approx(100)  # the face keeps its size when turned
        x, y = one[0]
        nose_x = face[1, 0]
        outline = face[list(FACE_OVAL), :2]
        cheek = outline[:, 0].max() if yaw > 0 else outline[:, 0].min()
        # on the ear away from the nose, out past that side's cheek, never on the face
        assert (x > cheek) if yaw > 0 else (x < cheek)
        assert abs(x - nose_x) > 0.6 * width


def test_the_chain_hangs_level_at_its_lowest_point():
    pts = chain_curve((100, 200), (200, 205), (148, 260))
    assert tuple(pts[0]) == (100, 200) and tuple(pts[-1]) == (200, 205)
    low = pts[:, 1].argmax()
    assert tuple(pts[low]) == pytest.approx((148, 260))
    assert np.all(np.diff(pts[: low + 1, 1]) >= 0) and np.all(np.diff(pts[low:, 1]) <= 0)  # down, then up
    assert abs(pts[low + 1, 1] - pts[low, 1]) < 0.5 and abs(pts[low - 1, 1] - pts[low, 1]) < 0.5  # level there
    with pytest.raises(ValueError):
        chain_curve((100, 200), (200, 200), (150, 150))  # a chain does not hang upward


def pendant_with_stub() -> np.ndarray:
    im = np.zeros((80, 40, 4), np.uint8)
    im[0:40, 19:21] = (230, 190, 80, 255)  # the straight stub of chain a cut-out holds
    yy, xx = np.mgrid[0:80, 0:40]
    im[(yy - 58) ** 2 + (xx - 20) ** 2 <= 16 ** 2] = (200, 40, 60, 255)  # a red stone
    im[40:43, 17:23] = (230, 190, 80, 255)  # the bail
    return im


def test_the_pendant_loses_its_stub_and_hangs_from_the_drawn_chain():
    cut = pendant_with_stub()
    trimmed = trim_chain(cut)
    assert trimmed[:38, :, 3].max() == 0 and trimmed[50:, :, 3].max() == 255
    assert np.array_equal(trim_chain(trimmed), trimmed)  # nothing left to trim
    assert metal_colour(cut) == (230, 190, 80)
    photo = np.full((300, 300, 3), 60, np.uint8)
    drawn, piece = hang_on_chain(photo, cut, (150.0, 220.0), ((110.0, 160.0), (190.0, 160.0)), 40.0)
    changed = np.abs(drawn.astype(int) - photo).sum(-1) > 40
    assert changed[158:163, 108:113].any() and changed[158:163, 187:192].any()  # from both sides of the neck
    assert changed[215:221, 147:154].any() and not changed[240:, :].any()       # down to the lowest point only
    golden = drawn[changed]
    assert (golden[:, 0] > golden[:, 2]).all()  # in the piece's metal
    assert np.array_equal(piece, trimmed)


def test_draw_chain_is_hidden_behind_what_is_in_front():
    photo = np.full((100, 100, 3), 50, np.uint8)
    pts = chain_curve((10, 20), (90, 20), (50, 70))
    front = np.zeros((100, 100), np.float32)
    front[:, :50] = 1
    out = draw_chain(photo, pts, (230, 190, 80), 3, front)
    assert np.array_equal(out[:, :49], photo[:, :49]) and (out[:, 52:] != photo[:, 52:]).any()


def test_light_matching_keeps_the_metal_hue_in_a_dark_coloured_room():
    bar = np.zeros((20, 60, 4), np.uint8)
    bar[5:15, 5:55] = (212, 175, 55, 255)  # yellow gold
    sweater = np.zeros((200, 200, 3), np.uint8)
    sweater[...] = (30, 60, 35)  # dark green
    lit, _ = place(sweater, bar, (100.0, 100.0), 0.3, shadow=False, match_light=True)
    raw, _ = place(sweater, bar, (100.0, 100.0), 0.3, shadow=False, match_light=False)
    hue = lambda px: colorsys.rgb_to_hsv(*(px / 255.0))  # noqa: E731
    h_lit, s_lit, v_lit = hue(lit[100, 100].astype(float))
    h_raw, s_raw, v_raw = hue(raw[100, 100].astype(float))
    assert abs(h_lit - h_raw) < 0.01 and abs(s_lit - s_raw) < 0.03  # still yellow gold
    assert 0.7 * v_raw <= v_lit < v_raw  # dimmer in a dim room, not khaki


def test_a_ring_is_wrapped_round_the_finger_not_stuck_on_flat():
    from jewelgan.tryon.fitting import fit_piece
    from jewelgan.tryon.ring import wrap_ring

    o = np.zeros((80, 80, 4), np.uint8)
    yy, xx = np.mgrid[0:80, 0:80]
    r = np.hypot(yy - 39.5, xx - 39.5)
    o[(r > 28) & (r < 36)] = (220, 180, 70, 255)  # a flat "O" seen from above
    worn = wrap_ring(o)
    cols = lambda im: np.flatnonzero(im[..., 3].max(axis=0) > 127)  # noqa: E731
    assert np.ptp(cols(worn)) == np.ptp(cols(o))  # as wide as it was
    rows = lambda im, x: np.flatnonzero(im[:, x, 3] > 127)  # noqa: E731
    assert np.ptp(rows(worn, 40)) < 0.6 * np.ptp(rows(o, 40))  # foreshortened across the finger
    assert rows(worn, 40).mean() > rows(worn, 8).mean() + 4  # its middle sags round the finger
    photo = np.full((200, 200, 3), 150, np.uint8)
    fitted = fit_piece(photo, o, "ring", [(100.0, 100.0)], 0.3, 0.0, shadow=False, match_light=False,
                       occlusion=False)
    assert np.array_equal(fitted.cutout, worn)
    changed = np.abs(fitted.composite.astype(int) - photo).sum(-1) > 60
    ys, xs = np.nonzero(changed)
    assert np.ptp(ys) < 0.7 * np.ptp(xs)  # a band across, not an "O"
    with pytest.raises(ValueError):
        wrap_ring(o, squash=0)
