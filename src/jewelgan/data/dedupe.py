"""Duplicate detection: exact (same pixels) and near (perceptual hash within a Hamming distance).

A shop's catalogue repeats itself: the same photo exported twice, re-saved as PNG, cropped a
little differently, or lightly retouched. Exact copies are always dropped (they only re-weight the
data); near copies are reported and dropped on request, because catalogue "variants" can also be
genuinely different pieces that merely look alike at low frequency.
"""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image
from scipy.fft import dctn

HASH_SIZE = 8        # 8x8 low-frequency DCT coefficients -> a 64-bit hash
DCT_SIZE = 32        # the image is reduced to 32x32 grey before the DCT, as in the classic pHash
DEFAULT_NEAR_THRESHOLD = 6  # bits out of 64; see docs/prepare.md for how it was chosen


def pixel_hash(image: np.ndarray) -> str:
    """Hash of the normalised pixels: identical files, and lossless re-encodings, collide."""
    return hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16).hexdigest()


def phash(image: np.ndarray) -> int:
    """64-bit DCT perceptual hash of an HxWx3 uint8 image.

    Grey 32x32 (anti-aliased) -> 2-D DCT-II -> keep the 8x8 lowest frequencies -> one bit per
    coefficient: above or below their median (the DC term is left out of the median because it
    only measures overall brightness and would dominate). Robust to resizing, JPEG re-compression,
    small brightness changes and noise; sensitive to shape and layout.
    """
    grey = Image.fromarray(image).convert("L").resize((DCT_SIZE, DCT_SIZE), Image.Resampling.BOX)
    coeffs = dctn(np.asarray(grey, dtype=np.float64), type=2, norm="ortho")[:HASH_SIZE, :HASH_SIZE]
    flat = coeffs.ravel()
    bits = flat > np.median(flat[1:])
    return int(np.packbits(bits).view(">u8")[0])


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


class DuplicateIndex:
    """Incremental index over the images kept so far, in archive order.

    check() answers, for a new image, which earlier kept image it duplicates (if any). Near-duplicate
    search is a vectorised XOR + popcount against every kept hash: O(N) per image and ~O(N^2/2) in
    total, a few seconds for 100k images, which is simpler and exact compared with LSH schemes.
    """

    def __init__(self, near_threshold: int = DEFAULT_NEAR_THRESHOLD):
        if not 0 <= near_threshold <= 64:
            raise ValueError(f"near-duplicate threshold must be 0..64 bits, got {near_threshold}")
        self.near_threshold = near_threshold
        self._exact: dict[str, str] = {}
        self._hashes = np.zeros(1024, dtype=np.uint64)
        self._names: list[str] = []

    def exact_of(self, pixels: str) -> str | None:
        return self._exact.get(pixels)

    def near_of(self, ph: int) -> tuple[str, int] | None:
        """(name of the closest kept image, distance) if within the threshold, else None."""
        n = len(self._names)
        if n == 0:
            return None
        dist = np.bitwise_count(self._hashes[:n] ^ np.uint64(ph))
        i = int(np.argmin(dist))
        d = int(dist[i])
        return (self._names[i], d) if d <= self.near_threshold else None

    def add(self, name: str, pixels: str, ph: int) -> None:
        self._exact.setdefault(pixels, name)
        n = len(self._names)
        if n == len(self._hashes):
            self._hashes = np.concatenate([self._hashes, np.zeros_like(self._hashes)])
        self._hashes[n] = np.uint64(ph)
        self._names.append(name)
