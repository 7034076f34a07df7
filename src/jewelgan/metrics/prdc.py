"""Precision, recall, density and coverage (Kynkäänniemi et al. 2019; Naeem et al. 2020).

Each set's manifold is the union of balls around its samples, each ball reaching that sample's k-th
nearest neighbour in the same set.
- precision: share of fake samples inside the real manifold (fidelity)
- recall: share of real samples inside the fake manifold (diversity)
- density: how many real balls contain each fake sample, / k (~1 for equal distributions; robust to outliers)
- coverage: share of real samples whose ball holds at least one fake sample (~1 - 2^-k for equal ones)
"""

from __future__ import annotations

import numpy as np


def pairwise_distances(a: np.ndarray, b: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Euclidean (len(a), len(b)) distances in float64, computed in row chunks to bound memory."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    bb = (b * b).sum(1)
    out = np.empty((len(a), len(b)), dtype=np.float64)
    for i in range(0, len(a), chunk):
        x = a[i:i + chunk]
        d2 = (x * x).sum(1)[:, None] + bb[None, :] - 2.0 * x @ b.T
        out[i:i + chunk] = np.sqrt(np.maximum(d2, 0.0))
    return out


def kth_neighbour_radii(features: np.ndarray, k: int) -> np.ndarray:
    """Distance from each sample to its k-th nearest other sample in the same set."""
    if len(features) <= k:
        raise ValueError(f"need more than k={k} samples for k-NN radii, got {len(features)}")
    d = pairwise_distances(features, features)
    # index k (not k-1) because each sample's nearest "neighbour" is itself at distance 0
    return np.partition(d, k, axis=1)[:, k]


def prdc(real: np.ndarray, fake: np.ndarray, k: int = 5) -> dict[str, float]:
    real_r = kth_neighbour_radii(real, k)
    fake_r = kth_neighbour_radii(fake, k)
    d = pairwise_distances(real, fake)  # (n_real, n_fake)
    inside_real = d < real_r[:, None]  # [i, j]: fake j inside real ball i
    return {
        "precision": float(inside_real.any(axis=0).mean()),
        "recall": float((d < fake_r[None, :]).any(axis=1).mean()),
        "density": float(inside_real.sum(axis=0).mean() / k),
        "coverage": float((d.min(axis=1) < real_r).mean()),
    }
