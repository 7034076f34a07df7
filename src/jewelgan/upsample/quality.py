"""How close an upsampled image is to the true large one: PSNR, and two perceptual distances.

- `lpips_effnet`: LPIPS-style (unit-normalised feature differences, averaged over layers) on the frozen
  EfficientNet-Lite0 taps at the image's own size. The stage is TRAINED with a loss on these features, so this
  figure flatters it; it is reported beside the one below, never alone.
- `inception`: 1 - cosine similarity of FID-InceptionV3 pool features (2048-d, 299 px input), a network the
  stage never saw in training.
Both are 0 for identical images. Baselines (bicubic, Lanczos) go through the same functions.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from jewelgan.metrics.perceptual import lpips_effnet, effnet_features  # noqa: F401  (re-exported)

_NETS: dict = {}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of uint8 RGB images (alpha left out)."""
    mse = np.mean((a[..., :3].astype(np.float64) - b[..., :3].astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))


def _inception_features(images: np.ndarray) -> np.ndarray:
    from jewelgan.metrics.features import get_extractor

    if "inception" not in _NETS:
        _NETS["inception"] = get_extractor("inception")
    f = _NETS["inception"].features(np.ascontiguousarray(images[..., :3]))
    return f / (np.linalg.norm(f, axis=1, keepdims=True) + 1e-12)


def inception_distance(a: np.ndarray, b: np.ndarray, b_features: np.ndarray | None = None) -> np.ndarray:
    """Per-image 1 - cosine of FID-Inception pool features of two uint8 stacks (b's features may be given)."""
    fb = b_features if b_features is not None else _inception_features(b)
    return 1 - (_inception_features(a) * fb).sum(1)


def resample(images: np.ndarray, size: int, method: str = "bicubic") -> np.ndarray:
    """The classic baselines: PIL's bicubic or Lanczos, per image. Each channel on its own: our RGBA is the
    picture as seen plus coverage, not straight alpha, so PIL's premultiplied RGBA resize would be wrong."""
    filt = {"bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS,
            "bilinear": Image.Resampling.BILINEAR}[method]

    def one(channel: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(np.ascontiguousarray(channel)).resize((size, size), filt))

    return np.stack([np.stack([one(im[..., c]) for c in range(im.shape[-1])], axis=-1) for im in images])


def score(upsampled: np.ndarray, truth: np.ndarray, inception: bool = True, cache: dict | None = None) -> dict:
    """Mean PSNR and perceptual distances of upsampled images against the true large ones. cache: a dict kept
    per set of truths, so their features are computed once for every method compared on them."""
    cache = {} if cache is None else cache
    if "effnet" not in cache:
        cache["effnet"] = effnet_features(truth)
    out = {"psnr": float(np.mean([psnr(u, t) for u, t in zip(upsampled, truth)])),
           "lpips_effnet": float(lpips_effnet(upsampled, truth, cache["effnet"]).mean())}
    if inception:
        if "inception" not in cache:
            cache["inception"] = _inception_features(truth)
        out["inception"] = float(inception_distance(upsampled, truth, cache["inception"]).mean())
    return out


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """[-1, 1] NCHW -> uint8 NHWC, rounded as the generator's images are."""
    return x.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def upsample_with(net, low: np.ndarray, labels: torch.Tensor | None, batch: int = 16) -> np.ndarray:
    """Run a stage over uint8 images in batches (eval mode, no grad). An RGB stage on RGBA images upsamples the
    colour and resamples alpha (bicubic); an RGBA stage on RGB images is given an opaque alpha and drops it."""
    from jewelgan.upsample.pairs import to_tensor

    channels = low.shape[-1]
    x_in = low[..., :3] if net.channels == 3 else low
    if net.channels == 4 and channels == 3:
        x_in = np.concatenate([low, np.full(low.shape[:-1] + (1,), 255, np.uint8)], axis=-1)
    out = []
    with torch.no_grad():
        for i in range(0, len(x_in), batch):
            lab = None if labels is None else labels[i:i + batch]
            out.append(to_uint8(net(to_tensor(x_in[i:i + batch]), lab)))
    up = np.concatenate(out)[..., :channels]
    if channels == 4 and net.channels == 3:
        up = np.concatenate([up, resample(low[..., 3:], up.shape[1])], axis=-1)
    return up


def bilinear(x: torch.Tensor, scale: int) -> torch.Tensor:
    return F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
