"""Fréchet distance between Gaussians fitted to two feature sets (FID in Inception space).

FID = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), Heusel et al. 2017. Statistics are computed in
float64 (float32 covariances of 2048-d features lose several FID digits). Covariances use the
unbiased (N-1) estimator, as the TTUR reference code (np.cov) does.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) in float64 of an (N, D) feature array; needs N >= 2."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"need an (N>=2, D) feature array for statistics, got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"statistics differ in shape: {mu1.shape}/{sigma1.shape} vs {mu2.shape}/{sigma2.shape}")
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        # singular product (fewer samples than dimensions): nudge both diagonals, as the TTUR code does
        offset = np.eye(len(sigma1)) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        # tiny imaginary parts are round-off; large ones mean the statistics are broken
        imag = np.abs(covmean.imag).max()
        if imag > 1e-3 * max(1.0, np.abs(covmean.real).max()):
            raise ValueError(f"sqrtm of the covariance product has a large imaginary part ({imag:.3g})")
        covmean = covmean.real
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)
    # a set against itself can round to a tiny negative number
    return float(max(value, 0.0))


def _trace_sqrt_low_rank(sigma: np.ndarray, features: np.ndarray) -> float:
    """Tr((sigma @ S_f)^(1/2)) where S_f is the covariance of `features` (N rows, N <= D).

    With S_f = A^T A / (N-1) (A: centred features), the non-zero eigenvalues of sigma @ S_f are those
    of the small symmetric PSD matrix A sigma A^T / (N-1), so the trace of the square root is the
    sum of their square roots. Same value as sqrtm up to round-off, but an N x N problem instead of
    D x D (seconds to milliseconds for 2048-d features) and well defined when S_f is singular.
    """
    a = np.asarray(features, np.float64)
    a = a - a.mean(axis=0)
    small = a @ sigma @ a.T / (len(a) - 1)
    ev = np.linalg.eigvalsh((small + small.T) / 2)
    return float(np.sqrt(np.clip(ev, 0.0, None)).sum())


def fid_stats_to_features(mu: np.ndarray, sigma: np.ndarray, features: np.ndarray) -> float:
    """FID between reference statistics and a feature set; exact low-rank path when N <= D."""
    f = np.asarray(features, np.float64)
    mu2, sigma2 = feature_stats(f)
    if len(f) > f.shape[1]:
        return frechet_distance(mu, sigma, mu2, sigma2)
    mu = np.asarray(mu, np.float64)
    sigma = np.asarray(sigma, np.float64)
    if mu.shape != mu2.shape or sigma.shape != sigma2.shape:
        raise ValueError(f"statistics differ in shape: {mu.shape} vs {mu2.shape}")
    diff = mu - mu2
    value = diff @ diff + np.trace(sigma) + np.trace(sigma2) - 2.0 * _trace_sqrt_low_rank(sigma, f)
    return float(max(value, 0.0))


def fid_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
    # put the smaller set on the low-rank side: the result is symmetric in the two sets
    a, b = (features1, features2) if len(features1) >= len(features2) else (features2, features1)
    return fid_stats_to_features(*feature_stats(a), b)
