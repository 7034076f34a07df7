"""A perceptual distance between images, and the perceptual spread of a set of images.

`lpips_effnet`: LPIPS-style (channel-unit-normalised feature differences, averaged over the taps) on the frozen
EfficientNet-Lite0 taps at the images' own size. The upsampling stages report it against the true large image
(upsample/quality.py); metrics/spread.py takes it between the images of one attribute value to see whether a
model draws many different rings or one. Pixel distances cannot do the second: a collapsed category drawn as
one high-contrast blob, shifted by a pixel or two, differs from itself more, in RMS, than thin, faint real
rings differ from each other (docs/real-photos.md); the features see the same shape.
"""

from __future__ import annotations

import numpy as np
import torch

_NETS: dict = {}


def _effnet(res: int):
    from jewelgan.models.frozen_features import FrozenFeatures

    if ("effnet", res) not in _NETS:
        _NETS[("effnet", res)] = FrozenFeatures(input_res=res).eval()
    return _NETS[("effnet", res)]


def _unit(f: torch.Tensor) -> torch.Tensor:
    return f / (f.square().sum(1, keepdim=True).sqrt() + 1e-8)


def _batches(images: np.ndarray, size: int = 16):
    for i in range(0, len(images), size):
        yield torch.from_numpy(np.ascontiguousarray(images[i:i + size, ..., :3])).permute(0, 3, 1, 2).float()


@torch.no_grad()
def effnet_features(images: np.ndarray) -> list[list[torch.Tensor]]:
    net = _effnet(images.shape[1])
    return [[_unit(f) for f in net(x / 127.5 - 1)] for x in _batches(images)]


@torch.no_grad()
def lpips_effnet(a: np.ndarray, b: np.ndarray, b_features=None) -> np.ndarray:
    """Per-image distance of two uint8 (n, H, W, C) stacks on the EfficientNet taps (b's features may be given)."""
    fb_all = b_features if b_features is not None else effnet_features(b)
    out = []
    for fa, fb in zip(effnet_features(a), fb_all):
        out.append(sum(p.sub(q).square().sum(1).mean(dim=(1, 2)) for p, q in zip(fa, fb)) / len(fa))
    return torch.cat(out).numpy()


@torch.no_grad()
def mean_pairwise_lpips(images: np.ndarray) -> float:
    """The mean lpips_effnet over all pairs of a uint8 (n, H, W, C) stack (nan below two images)."""
    n = len(images)
    if n < 2:
        return float("nan")
    taps = [torch.cat(batch_taps) for batch_taps in zip(*effnet_features(images))]
    total = 0.0
    for i in range(n - 1):
        total += float(sum(f[i:i + 1].sub(f[i + 1:]).square().sum(1).mean(dim=(1, 2)).sum() for f in taps)) / len(taps)
    return total / (n * (n - 1) / 2)
