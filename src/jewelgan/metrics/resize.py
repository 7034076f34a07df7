"""Resizing images to a feature network's input size, the way the reference implementations do.

Why this matters: FID moves by several points with the resize filter alone (clean-fid, Parmar et
al. 2022). Two modes are offered:

- "tf-bilinear" (default): TensorFlow 1's `resize_bilinear(align_corners=False)`, the op inside the
  original TTUR FID graph and reproduced by StyleGAN2-ADA's TorchScript Inception. Source pixel of
  output pixel j is j * in/out (no half-pixel offset), clamped at the border, computed in float
  without rounding. Numbers computed this way compare with TF FID / StyleGAN-family papers.
- "clean": clean-fid's "clean" mode: PIL bicubic (antialiased when downsampling) on each channel in
  float32, no quantisation. Numbers compare with clean-fid's published "clean" scores.

Both take and return float32 NCHW tensors in [0, 255].
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

RESIZE_MODES = ("tf-bilinear", "clean")


def _tf1_bilinear_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) weights of TF1 align_corners=False bilinear interpolation along one axis."""
    src = torch.arange(n_out, dtype=torch.float64) * (n_in / n_out)
    i0 = src.floor().long().clamp(max=n_in - 1)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    frac = src - i0.double()
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    rows = torch.arange(n_out)
    m[rows, i0] += 1.0 - frac
    m[rows, i1] += frac
    return m.float()


def resize_tf_bilinear(x: torch.Tensor, size: int) -> torch.Tensor:
    """Separable matrix form of TF1 bilinear: two small matmuls, exact and fast on CPU."""
    h, w = x.shape[-2:]
    if (h, w) == (size, size):
        return x
    my = _tf1_bilinear_matrix(h, size).to(x.device)
    mx = _tf1_bilinear_matrix(w, size).to(x.device)
    return torch.matmul(torch.matmul(my, x), mx.T)


def resize_clean(x: torch.Tensor, size: int) -> torch.Tensor:
    """PIL bicubic per channel in float32 ("F" mode), as clean-fid does."""
    if tuple(x.shape[-2:]) == (size, size):
        return x
    arr = x.detach().cpu().numpy()
    out = np.empty((arr.shape[0], arr.shape[1], size, size), dtype=np.float32)
    for i in range(arr.shape[0]):
        for c in range(arr.shape[1]):
            im = Image.fromarray(arr[i, c], mode="F")
            out[i, c] = np.asarray(im.resize((size, size), Image.BICUBIC), dtype=np.float32)
    return torch.from_numpy(out).to(x.device)


def resize(x: torch.Tensor, size: int, mode: str = "tf-bilinear") -> torch.Tensor:
    if mode == "tf-bilinear":
        return resize_tf_bilinear(x, size)
    if mode == "clean":
        return resize_clean(x, size)
    raise ValueError(f"unknown resize mode {mode!r}; choose one of {', '.join(RESIZE_MODES)}")


def downsample_uint8(images: np.ndarray, size: int) -> np.ndarray:
    """Bring real images (NHWC uint8) down to a generator's resolution with an antialiased filter,
    so that real and generated images reach the feature network through the same path."""
    if images.shape[1] == size:
        return images
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, im in enumerate(images):
        out[i] = np.asarray(Image.fromarray(np.asarray(im)).resize((size, size), Image.LANCZOS))
    return out
