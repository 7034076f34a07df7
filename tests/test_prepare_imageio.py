"""Decoding and normalisation of single photos (jewelgan.data.imageio) on real files of every kind."""

import struct

import numpy as np
import pytest
from PIL import Image, ImageDraw

from jewelgan.data.imageio import LoadOptions, RejectedImage, border_colour, load_image, parse_background

RED, GREEN, WHITE = (255, 0, 0), (0, 255, 0), (255, 255, 255)


def opts(res=32, **kw):
    kw.setdefault("min_size", 1)
    return LoadOptions(res, **kw)


def close(a, b, tol):
    return np.abs(np.asarray(a, int) - np.asarray(b, int)).max() <= tol


def wide_object(bg=(200, 220, 240)):
    """300x150 photo: a red bar nearly edge to edge with blue ends, on a plain background."""
    im = Image.new("RGB", (300, 150), bg)
    d = ImageDraw.Draw(im)
    d.rectangle((10, 50, 290, 100), fill=RED)
    d.rectangle((10, 50, 40, 100), fill=(0, 0, 255))
    d.rectangle((260, 50, 290, 100), fill=(0, 0, 255))
    return im


def is_blue(px):
    return px[2] > 150 and px[0] < 80


def test_pad_keeps_whole_object_crop_cuts_it(tmp_path):
    wide_object().save(tmp_path / "wide.png")
    pad = load_image(tmp_path / "wide.png", opts(64, square="pad"))
    crop = load_image(tmp_path / "wide.png", opts(64, square="crop"))
    assert pad.shape == crop.shape == (64, 64, 3) and pad.dtype == np.uint8
    mid = 32
    # pad: both blue ends survive, and the added top/bottom bands are the photo's own background
    assert is_blue(pad[mid, 5]) and is_blue(pad[mid, 58])
    assert close(pad[2], np.tile([200, 220, 240], (64, 1)), 1) and close(pad[-2], np.tile([200, 220, 240], (64, 1)), 1)
    # crop: the centre 150x150 shows only the red middle running off both edges; the ends are gone
    assert not any(is_blue(p) for p in crop.reshape(-1, 3))
    assert crop[mid, 0, 0] > 200 and crop[mid, -1, 0] > 200


def test_background_white_and_hex_override_estimate(tmp_path):
    wide_object().save(tmp_path / "wide.png")
    white = load_image(tmp_path / "wide.png", opts(64, background="white"))
    hexed = load_image(tmp_path / "wide.png", opts(64, background="#102030"))
    assert (white[0] == 255).all()
    assert (hexed[0] == [16, 32, 48]).all()
    with pytest.raises(ValueError, match="#RRGGBB"):
        parse_background("#12345")


def test_auto_padding_continues_background_gradient_without_seam(tmp_path):
    # portrait shot on a vertical grey gradient, with a thin dark chain running off the left edge
    g = np.linspace(170, 245, 200).astype(np.uint8)
    arr = np.repeat(np.repeat(g[:, None, None], 100, 1), 3, 2)
    im = Image.fromarray(arr)
    d = ImageDraw.Draw(im)
    d.ellipse((30, 70, 70, 130), fill=(200, 160, 40))
    d.line((0, 60, 50, 80), fill=(20, 20, 20), width=3)
    im.save(tmp_path / "grad.png")
    out = load_image(tmp_path / "grad.png", opts(64)).astype(int)
    expected_rows = np.asarray(Image.fromarray(g[:, None]).resize((1, 64), Image.Resampling.LANCZOS)).astype(int)[:, 0]
    for band in (out[:, :14], out[:, -14:]):  # 64 - 32 = 32 px of padding, 16 each side
        assert np.abs(band - expected_rows[:, None, None]).max() <= 3
    # a single flat colour would have missed the ends of the gradient by ~35 levels
    assert abs(int(out[0, 0, 0]) - int(out[-1, 0, 0])) > 60


def test_border_estimate_ignores_object_touching_the_edge():
    rgb = np.full((100, 100, 3), 230, np.uint8)
    rgb[:, :10] = (10, 10, 10)  # a dark strap running along one edge
    assert border_colour(rgb) == (230, 230, 230)


def test_exif_orientation_applied(tmp_path):
    # stored 200x100 with the left half red; EXIF 6 = displayed rotated 90 deg clockwise -> red on top
    im = Image.new("RGB", (200, 100), (240, 240, 240))
    ImageDraw.Draw(im).rectangle((0, 0, 99, 99), fill=RED)
    exif = Image.Exif()
    exif[0x0112] = 6
    im.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    out = load_image(tmp_path / "rot.jpg", opts(32, square="crop", draft=False))
    assert out[4, 16, 0] > 200 and out[4, 16, 1] < 60      # top is red
    assert out[28, 16, 1] > 200                            # bottom is the light background


def test_colour_modes_all_end_as_rgb(tmp_path):
    files = {}
    Image.new("CMYK", (40, 40), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=95)
    files["cmyk.jpg"] = (RED, 12)
    Image.new("CMYK", (40, 40), (0, 255, 255, 0)).save(tmp_path / "cmyk.tif")
    files["cmyk.tif"] = (RED, 1)
    Image.new("RGB", (40, 40), (30, 90, 200)).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "pal.png")
    files["pal.png"] = ((30, 90, 200), 2)
    Image.new("L", (40, 40), 77).save(tmp_path / "grey.png")
    files["grey.png"] = ((77, 77, 77), 0)
    Image.fromarray(np.full((40, 40), 40000, np.uint16)).save(tmp_path / "deep.png")  # 16-bit grey
    files["deep.png"] = ((156, 156, 156), 1)                                          # 40000 / 257
    Image.fromarray(np.full((40, 40), 40000, np.uint16)).save(tmp_path / "deep.tif")
    files["deep.tif"] = ((156, 156, 156), 1)
    Image.new("RGB", (40, 40), (10, 200, 30)).save(tmp_path / "bmp.bmp")
    files["bmp.bmp"] = ((10, 200, 30), 0)
    Image.new("RGB", (40, 40), (10, 200, 30)).save(tmp_path / "web.webp", lossless=True)
    files["web.webp"] = ((10, 200, 30), 0)
    for name, (colour, tol) in files.items():
        out = load_image(tmp_path / name, opts(32))
        assert out.shape == (32, 32, 3) and out.dtype == np.uint8, name
        assert close(out[16, 16], colour, tol), (name, out[16, 16])


def test_alpha_composited_on_background(tmp_path):
    # RGBA and LA cut-outs: transparent border -> white; the opaque centre keeps its colour
    rgba = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).rectangle((10, 10, 29, 29), fill=(200, 30, 30, 255))
    rgba.save(tmp_path / "cut.png")
    la = Image.new("LA", (40, 40), (0, 0))
    ImageDraw.Draw(la).rectangle((10, 10, 29, 29), fill=(60, 255))
    la.save(tmp_path / "cut_la.png")
    for name, centre in (("cut.png", (200, 30, 30)), ("cut_la.png", (60, 60, 60))):
        out = load_image(tmp_path / name, opts(40))
        assert (out[0, 0] == WHITE).all() and (out[39, 39] == WHITE).all(), name
        assert close(out[20, 20], centre, 0), name
    # a fixed background colour is used for the transparent part instead
    out = load_image(tmp_path / "cut.png", opts(40, background="#000080"))
    assert (out[0, 0] == [0, 0, 128]).all()


def test_gif_first_frame_with_transparency(tmp_path):
    f1 = Image.new("RGB", (40, 40), RED)
    f2 = Image.new("RGB", (40, 40), GREEN)
    f1.save(tmp_path / "anim.gif", save_all=True, append_images=[f2])
    out = load_image(tmp_path / "anim.gif", opts(32))
    assert close(out[16, 16], RED, 0)
    p = Image.new("P", (40, 40), 0)
    p.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    ImageDraw.Draw(p).rectangle((10, 10, 29, 29), fill=1)
    p.save(tmp_path / "trans.gif", transparency=0)
    out = load_image(tmp_path / "trans.gif", opts(40))
    assert (out[0, 0] == WHITE).all() and close(out[20, 20], RED, 0)


def _icc_rgb(red, green, blue) -> bytes:
    """A minimal ICC v2 RGB display profile (matrix + gamma 2.2) with the given D50 colorants."""
    s15 = lambda x: struct.pack(">i", round(x * 65536))  # noqa: E731
    xyz = lambda c: b"XYZ " + b"\0" * 4 + b"".join(s15(v) for v in c)  # noqa: E731
    curv = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, round(2.2 * 256)) + b"\0\0"
    text = b"swapped\0"
    desc = b"desc" + b"\0" * 4 + struct.pack(">I", len(text)) + text + b"\0" * 8 + b"\0" * 3 + b"\0" * 67
    tags = [(b"desc", desc), (b"wtpt", xyz((0.9642, 1.0, 0.8249))), (b"rXYZ", xyz(red)), (b"gXYZ", xyz(green)),
            (b"bXYZ", xyz(blue)), (b"rTRC", curv), (b"gTRC", curv), (b"bTRC", curv),
            (b"cprt", b"text" + b"\0" * 4 + b"none\0\0\0\0")]
    offset, table, data = 128 + 4 + 12 * len(tags), b"", b""
    for sig, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    header = (struct.pack(">I", offset + len(data)) + b"lcms" + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + b"\0" * 12 + b"acsp" + b"\0" * 28 + s15(0.9642) + s15(1.0) + s15(0.8249) + b"\0" * 48)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def test_icc_profile_converted_to_srgb(tmp_path):
    # a profile whose "red" channel is sRGB's green primary: a colour-managed decode must show green
    r, g, b = (0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141)
    Image.new("RGB", (40, 40), RED).save(tmp_path / "tagged.png", icc_profile=_icc_rgb(g, r, b))
    Image.new("RGB", (40, 40), RED).save(tmp_path / "tagged.jpg", icc_profile=_icc_rgb(g, r, b), quality=98)
    assert close(load_image(tmp_path / "tagged.png", opts(32))[16, 16], GREEN, 2)
    assert close(load_image(tmp_path / "tagged.jpg", opts(32))[16, 16], GREEN, 8)
    # a broken profile falls back to the plain conversion instead of rejecting the photo
    Image.new("RGB", (40, 40), RED).save(tmp_path / "broken.png", icc_profile=b"not a profile")
    assert close(load_image(tmp_path / "broken.png", opts(32))[16, 16], RED, 0)


def test_lanczos_round_trip_and_jpeg_draft_close_to_full_decode(tmp_path):
    rng = np.random.default_rng(0)
    src = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    Image.fromarray(src).save(tmp_path / "sq.png")
    expected = np.asarray(Image.fromarray(src).resize((64, 64), Image.Resampling.LANCZOS))
    assert np.array_equal(load_image(tmp_path / "sq.png", opts(64)), expected)
    # a smooth 1000 px JPEG: the reduced-scale libjpeg decode stays within JPEG noise of a full decode
    y, x = np.mgrid[0:1000, 0:1000]
    smooth = np.stack([x * 255 // 999, y * 255 // 999, (x + y) * 255 // 1998], -1).astype(np.uint8)
    Image.fromarray(smooth).save(tmp_path / "big.jpg", quality=90)
    fast = load_image(tmp_path / "big.jpg", opts(64)).astype(int)
    full = load_image(tmp_path / "big.jpg", opts(64, draft=False)).astype(int)
    assert np.abs(fast - full).mean() < 1.0 and np.abs(fast - full).max() <= 6


def test_rejections_carry_reason_codes(tmp_path):
    Image.new("RGB", (20, 20)).save(tmp_path / "small.png")
    with pytest.raises(RejectedImage) as e:
        load_image(tmp_path / "small.png", LoadOptions(64))
    assert e.value.reason == "too_small" and "20x20" in e.value.message and "32 px" in e.value.message
    # the cap applies to width x height before any pixel is decoded
    Image.new("RGB", (300, 200)).save(tmp_path / "big.png")
    with pytest.raises(RejectedImage) as e:
        load_image(tmp_path / "big.png", opts(32, max_pixels=50_000))
    assert e.value.reason == "decompression_bomb" and "60000 pixels" in e.value.message
    assert load_image(tmp_path / "big.png", opts(32, max_pixels=60_000)).shape == (32, 32, 3)
