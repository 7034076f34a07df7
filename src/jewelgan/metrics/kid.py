"""Kernel Inception Distance: unbiased MMD^2 with the cubic polynomial kernel (Binkowski et al. 2018).

k(x, y) = (x.y / d + 1)^3. The estimate is averaged over random subsets (default 100 subsets of up to
1000 samples, as the reference implementation and StyleGAN2-ADA do); the std over subsets says how
far to trust differences. Unbiased, so it is ~0 (and may be slightly negative) for equal distributions.
"""

from __future__ import annotations

import numpy as np


def _poly_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    m, n = len(x), len(y)
    kxx, kyy, kxy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
    # drop the diagonal k(x_i, x_i) terms: this is what makes the estimator unbiased
    sxx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(sxx + syy - 2.0 * kxy.mean())


def kid(real: np.ndarray, fake: np.ndarray, num_subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """(mean, std) of the unbiased MMD^2 over random subsets of both feature sets."""
    real = np.asarray(real, np.float64)
    fake = np.asarray(fake, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature arrays must be (N, D) with equal D, got {real.shape} and {fake.shape}")
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {len(real)} and {len(fake)}")
    rng = np.random.default_rng(seed)
    values = [
        mmd2_unbiased(real[rng.choice(len(real), m, replace=False)], fake[rng.choice(len(fake), m, replace=False)])
        for _ in range(num_subsets)
    ]
    return float(np.mean(values)), float(np.std(values))
