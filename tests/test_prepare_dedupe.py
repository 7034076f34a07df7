"""Perceptual hash and duplicate index (jewelgan.data.dedupe)."""

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance

from jewelgan.data.dedupe import DEFAULT_NEAR_THRESHOLD, DuplicateIndex, hamming, phash, pixel_hash


def shot(kind: int, size=128) -> Image.Image:
    im = Image.new("RGB", (size, size), (238, 236, 230))
    d = ImageDraw.Draw(im)
    if kind == 0:
        d.ellipse((30, 40, 98, 90), outline=(200, 160, 40), width=10)
    elif kind == 1:
        d.rectangle((20, 20, 60, 108), fill=(60, 60, 180))
    else:
        d.polygon([(64, 10), (118, 110), (10, 110)], fill=(150, 20, 40))
    return im


def arr(im):
    return np.asarray(im.convert("RGB").resize((64, 64), Image.Resampling.LANCZOS))


def test_phash_stable_under_recompression_brightness_and_resizing():
    base = shot(0)
    h = phash(arr(base))
    buf = io.BytesIO()
    base.save(buf, "JPEG", quality=60)
    variants = [Image.open(buf), ImageEnhance.Brightness(base).enhance(1.06), base.resize((300, 300))]
    for v in variants:
        assert hamming(h, phash(arr(v))) <= DEFAULT_NEAR_THRESHOLD


def test_phash_separates_different_objects_and_is_64_bit():
    hashes = [phash(arr(shot(k))) for k in range(3)]
    assert all(0 <= h < 2 ** 64 for h in hashes)
    for i in range(3):
        for j in range(i + 1, 3):
            assert hamming(hashes[i], hashes[j]) > 2 * DEFAULT_NEAR_THRESHOLD


def test_index_finds_exact_and_nearest_within_threshold():
    idx = DuplicateIndex(near_threshold=4)
    a, b = arr(shot(0)), arr(shot(1))
    assert idx.exact_of(pixel_hash(a)) is None and idx.near_of(phash(a)) is None
    idx.add("a.png", pixel_hash(a), phash(a))
    idx.add("b.png", pixel_hash(b), phash(b))
    assert idx.exact_of(pixel_hash(a.copy())) == "a.png"
    assert idx.near_of(phash(a) ^ 0b111) == ("a.png", 3)          # 3 bits away
    assert idx.near_of(phash(a) ^ 0b11111) is None                  # 5 bits: beyond the threshold
    for i in range(2000):  # the index grows past its initial capacity
        idx.add(f"n{i}", f"x{i}", i * 0x9E3779B97F4A7C15 % 2 ** 64)
    assert idx.near_of(phash(b))[0] == "b.png"
    with pytest.raises(ValueError, match="0..64"):
        DuplicateIndex(near_threshold=65)
