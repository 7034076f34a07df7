"""Memorisation check: is a generated image a near-copy of a training image?

Rule (documented in docs/evaluation.md): compute, in a feature space, each training image's distance
to its nearest *other* training image (leave-one-out). A generated image is flagged as a near-copy
when its distance to the nearest training image is below the q-th percentile (default q = 1) of
those training distances, i.e. it sits closer to a training photo than 99% of training photos sit to
their closest neighbour. A fresh sample from the training distribution is flagged with probability
about q/100, so the flagged share of an honest generator is ~q%; a share far above that is a
memorisation signal. Distances below 1e-4 x the median training distance are always flagged, so an
exact copy is caught even when the training set itself holds duplicates (which would make the
percentile 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from jewelgan.metrics.prdc import pairwise_distances


@dataclass
class MemorizationResult:
    percentile: float
    threshold: float
    nn_index: np.ndarray  # (n_gen,) nearest training image of each generated image
    nn_distance: np.ndarray  # (n_gen,)
    flagged: np.ndarray  # (n_gen,) bool
    train_nn_median: float
    worst: list[tuple[int, int, float]] = field(default_factory=list)  # (gen, train, distance), closest first

    @property
    def flagged_share(self) -> float:
        return float(self.flagged.mean()) if len(self.flagged) else 0.0

    def summary(self) -> dict:
        return {
            "flagged_share": self.flagged_share,
            "flagged": int(self.flagged.sum()),
            "n": int(len(self.flagged)),
            "percentile": self.percentile,
            "threshold": self.threshold,
            "train_nn_median": self.train_nn_median,
            # distance relative to the typical training spacing: < 1 means "closer than usual"
            "worst": [{"generated": g, "train": t, "distance": d, "ratio": d / max(self.train_nn_median, 1e-12)}
                      for g, t, d in self.worst],
        }


def nearest(query: np.ndarray, ref: np.ndarray, chunk: int = 1024,
            exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(index, distance) of each query row's nearest ref row; with exclude_self, query is ref."""
    idx = np.empty(len(query), dtype=np.int64)
    dist = np.empty(len(query), dtype=np.float64)
    for i in range(0, len(query), chunk):
        d = pairwise_distances(query[i:i + chunk], ref)
        if exclude_self:
            rows = np.arange(len(d))
            d[rows, rows + i] = np.inf
        j = d.argmin(axis=1)
        idx[i:i + chunk] = j
        # the expanded form |x|^2 + |y|^2 - 2xy is off by ~sqrt(eps)*|x| near zero (2e-7 for two identical
        # Inception vectors, depending on the CPU's BLAS): the chosen pair's distance is taken directly, so an
        # exact copy is at exactly 0
        q = np.asarray(query[i:i + chunk], np.float64)
        dist[i:i + chunk] = np.linalg.norm(q - np.asarray(ref[j], np.float64), axis=1)
    return idx, dist


def check_memorization(generated: np.ndarray, train: np.ndarray, percentile: float = 1.0,
                       top: int = 8) -> MemorizationResult:
    if len(train) < 2:
        raise ValueError(f"the memorisation check needs at least 2 training images, got {len(train)}")
    if not 0 < percentile < 100:
        raise ValueError(f"percentile must be in (0, 100), got {percentile}")
    _, train_nn = nearest(train, train, exclude_self=True)
    median = float(np.median(train_nn))
    threshold = float(np.percentile(train_nn, percentile))
    idx, dist = nearest(generated, train)
    flagged = (dist < threshold) | (dist <= 1e-4 * median)
    order = np.argsort(dist, kind="stable")[:top]
    worst = [(int(g), int(idx[g]), float(dist[g])) for g in order]
    return MemorizationResult(percentile, threshold, idx, dist, flagged, median, worst)
