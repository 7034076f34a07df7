"""Alpha matte error measures: the four of the alphamatting.com benchmark plus two that jewelry photos need.

All take float alphas in [0, 1] of the same shape (pred, true) and an optional boolean `region` (for example
a trimap's unknown band) that restricts the sum or mean; by default the whole image counts.

- `sad`, `mse`: how far the alpha values are (SAD reported / 1000, as alphamatting.com does).
- `gradient_error`: how far the alpha edges are in sharpness (a blurred matte has the right values on average
  but soft edges; this measure sees it).
- `connectivity_error` (Rhemann et al. 2009): how far the matte is from the truth in what hangs together; a
  matte with holes or floating specks disconnects pixels from the main piece, which a viewer notices more than
  a small value error.
- `solid_share`: the share of truly solid metal and stone that the matte keeps solid (>= 0.9): a pale stone
  keyed see-through is the failure shoppers see first.
- `haze_share`: the share of true backdrop that the matte leaves faintly present (0 < alpha < 0.05): a haze
  invisible on white that turns into a grey veil on a coloured page.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def _check(pred: np.ndarray, true: np.ndarray, region: np.ndarray | None) -> tuple[np.ndarray, np.ndarray,
                                                                                   np.ndarray]:
    pred = np.asarray(pred, np.float64)
    true = np.asarray(true, np.float64)
    if pred.shape != true.shape:
        raise ValueError(f"pred {pred.shape} and true {true.shape} differ in shape")
    region = np.ones(true.shape, bool) if region is None else np.asarray(region, bool)
    if region.shape != true.shape:
        raise ValueError(f"region {region.shape} and alpha {true.shape} differ in shape")
    return pred, true, region


def sad(pred: np.ndarray, true: np.ndarray, region: np.ndarray | None = None) -> float:
    """Sum of absolute differences over the region, / 1000."""
    pred, true, region = _check(pred, true, region)
    return float(np.abs(pred - true)[region].sum() / 1000)


def mse(pred: np.ndarray, true: np.ndarray, region: np.ndarray | None = None) -> float:
    """Mean squared difference over the region (nan for an empty region)."""
    pred, true, region = _check(pred, true, region)
    return float(((pred - true) ** 2)[region].mean()) if region.any() else float("nan")


def _gradient_magnitude(alpha: np.ndarray, sigma: float) -> np.ndarray:
    gy = ndimage.gaussian_filter(alpha, sigma, order=(1, 0), mode="nearest")
    gx = ndimage.gaussian_filter(alpha, sigma, order=(0, 1), mode="nearest")
    return np.hypot(gx, gy)


def gradient_error(pred: np.ndarray, true: np.ndarray, sigma: float = 1.4,
                   region: np.ndarray | None = None) -> float:
    """Sum over the region of the squared difference of the alphas' gradient magnitudes (first derivatives of a
    Gaussian of `sigma` px), / 1000. The filters run over the whole image; only the sum is restricted."""
    pred, true, region = _check(pred, true, region)
    diff = _gradient_magnitude(pred, sigma) - _gradient_magnitude(true, sigma)
    return float((diff ** 2)[region].sum() / 1000)


_FOUR = ndimage.generate_binary_structure(2, 1)  # 4-connectivity


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels, n = ndimage.label(mask, structure=_FOUR)
    if n == 0:
        return np.zeros_like(mask)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(sizes.argmax())


def connectivity_error(pred: np.ndarray, true: np.ndarray, step: float = 0.1,
                       region: np.ndarray | None = None) -> float:
    """Rhemann et al. 2009 connectivity error, / 1000.

    At each level t = step, 2 step, ..., 1 the source region is the largest 4-connected component of the
    pixels where both pred and true are >= t. A pixel's l is the last level before it first falls outside the
    source region (1 if it never does). With d = alpha - l, phi = 1 - d * (d >= 0.15) says how well the
    pixel is connected in each matte; the error sums |phi_pred - phi_true| over the region.
    """
    pred, true, region = _check(pred, true, region)
    levels = np.linspace(0.0, 1.0, int(round(1 / step)) + 1)
    last = np.full(true.shape, -1.0)
    for prev, t in zip(levels[:-1], levels[1:]):
        source = _largest_component((pred >= t) & (true >= t))
        newly_out = (last == -1) & ~source
        last[newly_out] = prev
    last[last == -1] = 1.0

    def phi(alpha):
        d = alpha - last
        return 1 - d * (d >= 0.15)

    return float(np.abs(phi(pred) - phi(true))[region].sum() / 1000)


def solid_share(pred: np.ndarray, true: np.ndarray, material: np.ndarray,
                region: np.ndarray | None = None) -> float:
    """Share of the truly solid piece (true alpha >= 0.999 on metal or stone, material 1 or 2) that the
    prediction keeps solid (pred >= 0.9); nan where the image has no such pixels."""
    pred, true, region = _check(pred, true, region)
    material = np.asarray(material)
    solid = region & (true >= 0.999) & np.isin(material, (1, 2))
    return float((pred[solid] >= 0.9).mean()) if solid.any() else float("nan")


def haze_share(pred: np.ndarray, true: np.ndarray, region: np.ndarray | None = None) -> float:
    """Share of the true backdrop (true alpha == 0) that the prediction leaves faintly present
    (0 < pred < 0.05); nan where the image has no backdrop."""
    pred, true, region = _check(pred, true, region)
    backdrop = region & (true == 0)
    if not backdrop.any():
        return float("nan")
    p = pred[backdrop]
    return float(((p > 0) & (p < 0.05)).mean())
