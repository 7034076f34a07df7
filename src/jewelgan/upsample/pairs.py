"""Training pairs for the upsampler: (small image, large image, labels) of the same piece.

Two sources:
- exact pairs: two studio archives rendered with the same seed at two sizes (`jewelgan render --res 64` and
  `--res 256`, same --seed): image i of both is the same piece, camera and light, so the small one is exactly
  what the 64 px generator learns to draw, and the large one is what the stage must add;
- a shop's own photos, prepared large (`prepare --res 256`), each degraded to the small size the way the
  generator's images look (blur, resampling, sensor noise, JPEG), drawn afresh per step.
Crops are aligned (a low-res crop and the high-res crop it covers), so training runs on small tensors while the
network, fully convolutional, serves whole images.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image, ImageFilter

from jewelgan.data.archive import Archive


class PairError(ValueError):
    """Two archives that are not the same pieces at two sizes, or a scale that does not fit them."""


def check_pairs(high: Archive, low: Archive, scale: int) -> None:
    """Refuse archives that are not image-for-image the same pieces at a ratio of `scale`."""
    if low.resolution * scale != high.resolution:
        raise PairError(f"{low.path} is {low.resolution} px and {high.path} {high.resolution} px: not x{scale}")
    # the small set may hold more pieces than the large one (large renders cost more): image i of both must agree
    if len(low) < len(high):
        raise PairError(f"{low.path} holds {len(low)} images and {high.path} {len(high)}: not the same pieces")
    if low.channels != high.channels:
        raise PairError(f"{low.path} has {low.channels} channels and {high.path} {high.channels}")
    if low.schema.to_json() != high.schema.to_json() or not np.array_equal(low.labels[:len(high)], high.labels):
        raise PairError(f"{low.path} and {high.path} have different labels: not the same pieces "
                        "(render both with the same --seed and --n)")
    if (low.meta.get("studio") or {}).get("seed") != (high.meta.get("studio") or {}).get("seed"):
        raise PairError(f"{low.path} and {high.path} were rendered with different seeds")


def degrade(high: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
    """A large uint8 image (H, W, 3|4) -> the small one a generator would draw of it: a slight optical blur,
    a resampling filter drawn at random, faint sensor noise and sometimes JPEG. Alpha is only resampled.

    Matched to the shipped generator's sharpness (benchmarks/upsample_quality.py --degradation-check: mean
    |Laplacian| of 64 px images, generator 14.7, these degraded photos 14.6; a stronger blur gave 12.7): a stage
    trained on blurrier inputs than it is served would sharpen what is already sharp."""
    h, w = high.shape[:2]
    size = (w // scale, h // scale)
    rgb = Image.fromarray(np.ascontiguousarray(high[..., :3]))
    blur = float(rng.uniform(0.0, 0.2) * scale / 2)
    if blur > 0:
        rgb = rgb.filter(ImageFilter.GaussianBlur(blur))
    method = [Image.Resampling.BOX, Image.Resampling.BICUBIC, Image.Resampling.LANCZOS][int(rng.integers(3))]
    small = np.asarray(rgb.resize(size, method), dtype=np.float32)
    small = small + rng.normal(0, rng.uniform(0, 1.5), small.shape)
    small = np.clip(np.round(small), 0, 255).astype(np.uint8)
    if rng.random() < 0.2:
        buf = io.BytesIO()
        Image.fromarray(small).save(buf, "JPEG", quality=int(rng.integers(80, 96)))
        small = np.asarray(Image.open(buf).convert("RGB"))
    if high.shape[-1] == 4:
        alpha = np.asarray(Image.fromarray(np.ascontiguousarray(high[..., 3])).resize(size, Image.Resampling.BOX))
        small = np.concatenate([small, alpha[..., None]], axis=-1)
    return small


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1)


class PairSource:
    """Batches of aligned crops. Everything random comes from the generator handed in, so a step's batch
    depends on (seed, step) alone: a resumed run sees exactly the batches it would have seen."""

    def __init__(self, high: Archive, low: Archive | None, scale: int, indices: np.ndarray | None = None):
        if low is not None:
            check_pairs(high, low, scale)
        elif high.resolution % scale:
            raise PairError(f"{high.path}: {high.resolution} px does not divide by the scale {scale}")
        self.high, self.low, self.scale = high, low, scale
        self.indices = np.arange(len(high)) if indices is None else np.asarray(indices)
        self.low_res = high.resolution // scale

    @property
    def channels(self) -> int:
        return self.high.channels

    def pair(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        high = np.asarray(self.high.images[index])
        low = np.asarray(self.low.images[index]) if self.low is not None else degrade(high, self.scale, rng)
        return low, high

    def batch(self, n: int, crop: int, gen: np.random.Generator):
        """(low (n, C, crop, crop), high (n, C, crop*s, crop*s), labels (n, A)) in [-1, 1]."""
        crop = min(crop, self.low_res)
        lows, highs, labels = [], [], []
        for _ in range(n):
            i = int(self.indices[gen.integers(len(self.indices))])
            low, high = self.pair(i, gen)
            y, x = (int(v) for v in gen.integers(0, self.low_res - crop + 1, size=2))
            s = self.scale
            low, high = low[y:y + crop, x:x + crop], high[y * s:(y + crop) * s, x * s:(x + crop) * s]
            if gen.random() < 0.5:  # a mirrored piece is still a plausible piece
                low, high = low[:, ::-1], high[:, ::-1]
            lows.append(low), highs.append(high), labels.append(self.high.labels[i])
        return to_tensor(np.stack(lows)), to_tensor(np.stack(highs)), torch.from_numpy(np.stack(labels).astype(np.int64))

    def whole(self, indices, seed: int = 0):
        """Whole (low uint8, high uint8, labels) for evaluation; degradations fixed by the seed."""
        rng = np.random.default_rng(seed)
        pairs = [self.pair(int(i), rng) for i in indices]
        return (np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]),
                torch.from_numpy(self.high.labels[np.asarray(indices)].astype(np.int64)))
