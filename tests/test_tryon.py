"""Try-on by hand: the piece lands where asked at the asked size and angle, earrings split to their sides,
EXIF-rotated photos, and bad input as one line with exit code 2."""

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from jewelgan.cli import app
from jewelgan.tryon import TryOnError, load_cutout, load_photo, place, split_pair, try_on

runner = CliRunner()


def bar_cutout(w=80, h=20, pad=(30, 5, 10, 40)) -> np.ndarray:
    """An opaque gold bar w x h with soft edges, off-centre in a transparent canvas (top, right, bottom, left)."""
    top, right, bottom, left = pad
    im = np.zeros((top + h + bottom, left + w + right, 4), np.uint8)
    im[top:top + h, left:left + w] = (210, 170, 60, 255)
    im[top, left:left + w, 3] = im[top + h - 1, left:left + w, 3] = 128
    return im


def placed_mask(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return np.abs(after.astype(int) - before.astype(int)).sum(-1) > 60  # the piece, not its faint shadow


def test_the_piece_lands_on_the_anchor_at_the_asked_size_and_angle():
    photo = np.full((300, 400, 3), 120, np.uint8)
    for angle in (0.0, 30.0):
        out, where = place(photo, bar_cutout(), (210.0, 140.0), scale=0.2, angle=angle, shadow=False,
                           match_light=False)
        ys, xs = np.nonzero(placed_mask(photo, out))
        assert abs(xs.mean() - 210) < 2 and abs(ys.mean() - 140) < 2
        assert abs(where.centroid[0] - 210) <= 0.5 and abs(where.centroid[1] - 140) <= 0.5
        # the long axis: 0.2 x 400 = 80 px, turned counter-clockwise as seen (image y points down)
        pts = np.stack([xs - xs.mean(), -(ys - ys.mean())])
        evals, evecs = np.linalg.eigh(np.cov(pts))
        axis = evecs[:, -1]
        measured = np.degrees(np.arctan2(axis[1], axis[0])) % 180
        assert min(abs(measured - angle), 180 - abs(measured - angle)) < 3
        length = np.ptp(axis @ pts)
        assert 76 <= length <= 84


def test_shadow_and_light_matching_change_only_what_they_should():
    dim = np.full((200, 200, 3), 60, np.uint8)
    lit, _ = place(dim, bar_cutout(), (100, 100), 0.4, shadow=False, match_light=True)
    raw, _ = place(dim, bar_cutout(), (100, 100), 0.4, shadow=False, match_light=False)
    assert lit[100, 100].mean() < raw[100, 100].mean()  # a dim room darkens the piece
    shaded, _ = place(dim, bar_cutout(), (100, 100), 0.4, shadow=True, match_light=False)
    below = (slice(112, 118), slice(60, 140))  # just under the bar: shadow, no piece
    assert shaded[below].mean() < raw[below].mean() and np.array_equal(shaded[0:20], raw[0:20])


def test_earrings_split_to_their_anchors():
    pair = np.zeros((40, 100, 4), np.uint8)
    pair[10:30, 5:25] = (200, 30, 30, 255)   # left earring: red
    pair[10:30, 75:95] = (30, 30, 200, 255)  # right earring: blue
    left, right = split_pair(pair)
    assert left[..., 0].max() == 200 and right[..., 2].max() == 200
    photo = np.full((200, 300, 3), 128, np.uint8)
    out, where = try_on(photo, pair, [(230, 100), (70, 100)], 0.05, shadow=False, match_light=False)
    assert out[100, 70, 0] > 150 and out[100, 230, 2] > 150  # red on the left anchor, blue on the right
    assert abs(where[1].centroid[0] - 70) <= 0.5


def test_exif_rotation_cap_and_bad_input(tmp_path):
    upright = np.zeros((30, 60, 3), np.uint8)
    upright[:, :30] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to view
    Image.fromarray(upright).save(tmp_path / "side.jpg", exif=exif, quality=95)
    assert load_photo(tmp_path / "side.jpg").shape == (60, 30, 3)
    Image.fromarray(np.zeros((100, 300, 3), np.uint8)).save(tmp_path / "big.png")
    assert load_photo(tmp_path / "big.png", max_edge=150).shape == (50, 150, 3)
    (tmp_path / "junk.jpg").write_bytes(b"not an image")
    with pytest.raises(TryOnError, match="not a readable image"):
        load_photo(tmp_path / "junk.jpg")
    Image.fromarray(np.full((64, 64, 3), 250, np.uint8)).save(tmp_path / "flat.png")
    with pytest.raises(TryOnError, match="no alpha channel.*--key-background"):
        load_cutout(tmp_path / "flat.png")
    with pytest.raises(TryOnError, match="outside the 60x30 photo"):
        place(np.zeros((30, 60, 3), np.uint8), bar_cutout(), (70, 10), 0.2)


def test_cli_tryon_places_a_generated_piece_and_refuses_bad_input(tmp_path):
    photo = tmp_path / "me.jpg"
    Image.fromarray(np.full((240, 320, 3), (190, 150, 130), np.uint8)).save(photo)
    res = runner.invoke(app, ["tryon", str(photo), "--attr", "category=pendant", "--anchor", "160,120",
                              "--scale", "0.15", "--out", str(tmp_path / "o.png")])
    assert res.exit_code == 0, res.output
    out = np.asarray(Image.open(tmp_path / "o.png"))
    assert out.shape == (240, 320, 3) and np.abs(out[100:140, 140:180].astype(int) - (190, 150, 130)).max() > 40
    cut = tmp_path / "flat.png"
    Image.fromarray(np.full((64, 64, 3), 250, np.uint8)).save(cut)
    for args, expect in [(["--item", str(cut), "--anchor", "10,10"], "--key-background"),
                         (["--item", str(cut), "--anchor", "999,10", "--key-background"], "found no piece"),
                         (["--attr", "category=crown", "--anchor", "10,10"], "unknown value 'crown'"),
                         (["--attr", "category=ring", "--anchor", "10"], "must look like X,Y")]:
        res = runner.invoke(app, ["tryon", str(photo), "--out", str(tmp_path / "x.png"), *args])
        assert res.exit_code == 2 and expect in res.output, (args, res.output)
        assert len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


def astronaut() -> np.ndarray:
    skimage = pytest.importorskip("skimage", reason="the portrait is scikit-image's astronaut.png: pip install scikit-image")
    from pathlib import Path

    return np.asarray(Image.open(Path(skimage.__file__).parent / "data" / "astronaut.png").convert("RGB"))


def test_automatic_placement_finds_ear_lobes_and_neck_on_a_real_portrait():
    pytest.importorskip("mediapipe", reason="automatic placement needs: pip install 'jewelgan[tryon]'")
    from jewelgan.tryon.landmarks import find_placement

    photo = astronaut()
    ears = find_placement(photo, "earrings")
    (lx, ly), (rx, ry) = sorted(ears.anchors)
    # hand-marked lobes of this portrait (benchmarks/tryon_placement.py): (179, 131) and (271, 136); the face
    # is ~90 px wide
    assert np.hypot(lx - 179, ly - 131) < 6 and np.hypot(rx - 271, ry - 136) < 6
    assert 0.01 < ears.scale < 0.04 and abs(ears.angle) < 10
    neck = find_placement(photo, "pendant")
    (nx, ny), = neck.anchors
    assert abs(nx - 220) < 15 and 185 < ny < 240  # under the chin, above the suit's collar ring


def test_no_face_says_so_and_asks_for_an_anchor(tmp_path):
    """Nothing to anchor to, or no landmark models installed: one line asking for --anchor, nothing written."""
    wall = np.full((240, 320, 3), 180, np.uint8)
    photo = tmp_path / "wall.png"
    Image.fromarray(wall).save(photo)
    res = runner.invoke(app, ["tryon", str(photo), "--attr", "category=earrings", "--out", str(tmp_path / "o.png")])
    assert res.exit_code == 2 and not (tmp_path / "o.png").exists()
    try:
        import mediapipe  # noqa: F401
    except ImportError:  # the core install: the message says how to get automatic placement, or to give anchors
        assert "pip install 'jewelgan[tryon]'" in res.output and "--anchor" in res.output
        return
    assert "no face found" in res.output and "--anchor" in res.output
    from jewelgan.tryon.landmarks import NoLandmarks, find_placement

    for category in ("earrings", "pendant", "ring"):
        with pytest.raises(NoLandmarks, match="give --anchor"):
            find_placement(wall, category)


def textured(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A photo-like test image: smooth shading, mid-frequency texture and hard-edged shapes."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 16, w // 16, 3), dtype=np.uint8)
    im = Image.fromarray(small).resize((w, h), Image.BICUBIC)
    for k in range(40):  # hard edges: bright bars
        x, y = int(rng.integers(0, w - 200)), int(rng.integers(0, h - 60))
        im.paste(tuple(int(c) for c in rng.integers(0, 256, 3)), (x, y, x + 200, y + 60))
    return np.asarray(im)


def full_decode(path, max_edge=2048) -> np.ndarray:
    """What reading a photo did before reduced decoding: every pixel decoded, turned upright, then resized."""
    from PIL import ImageOps

    with Image.open(path) as im:
        rgb = ImageOps.exif_transpose(im).convert("RGB")
    k = max_edge / max(rgb.size)
    return np.asarray(rgb.resize((round(rgb.width * k), round(rgb.height * k)), Image.LANCZOS) if k < 1 else rgb)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0 ** 2 / np.mean((a.astype(float) - b.astype(float)) ** 2)))


def test_a_large_jpeg_is_decoded_at_half_size_and_looks_the_same(tmp_path, monkeypatch):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways, as phones do
    Image.fromarray(textured(3300, 4401)).save(tmp_path / "big.jpg", quality=90, exif=exif)
    resized_from = []
    real_resize = Image.Image.resize
    monkeypatch.setattr(Image.Image, "resize", lambda im, *a, **k: resized_from.append(im.size) or
                        real_resize(im, *a, **k))
    photo = load_photo(tmp_path / "big.jpg")
    assert resized_from == [(2201, 1650)]  # decoded at half size (4401 x 3300 would be 44 MB), odd edge rounded up
    monkeypatch.setattr(Image.Image, "resize", real_resize)
    want = full_decode(tmp_path / "big.jpg")
    assert photo.shape == want.shape == (2048, 1536, 3)  # the same capped size, upright
    assert psnr(photo, want) > 38  # the same picture: no shift, no turn, no visible loss

    # a 12 MP phone photo (under twice the cap) is decoded in full: the same bytes as before
    Image.fromarray(textured(3024, 4032, 1)).save(tmp_path / "phone.jpg", quality=90)
    assert np.array_equal(load_photo(tmp_path / "phone.jpg"), full_decode(tmp_path / "phone.jpg"))


def test_placing_a_piece_touches_only_its_rectangle_and_stays_small_in_memory():
    import tracemalloc

    photo = np.random.default_rng(3).integers(0, 256, (1536, 2048, 3), dtype=np.uint8)
    front = np.zeros(photo.shape[:2], np.float32)
    front[:, 1000:] = 1.0  # the right half is in front of the piece: hair, say
    tracemalloc.start()
    out, where = place(photo, bar_cutout(), (1000.0, 700.0), 0.05, 10.0, front=front)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # one uint8 copy of the photo plus the piece's rectangle, not float copies of the whole photo (12 x this)
    assert peak < 1.5 * photo.nbytes
    changed = np.abs(out.astype(int) - photo).sum(-1) > 0
    ys, xs = np.nonzero(changed)
    assert 900 < xs.min() and xs.max() < 1000 and 640 < ys.min() and ys.max() < 780  # the piece and its shadow
    assert np.array_equal(out[~changed], photo[~changed]) and abs(where.centroid[0] - 1000) <= 0.5
