"""Reference (real-image) features and statistics, cached on disk.

Key: archive content hash, resolution the images are compared at, number of images, and the feature
network key (network + weights + resize mode). Stored as .npz without pickled objects (arrays and a
JSON string), written atomically, so a cache can be shared between runs and machines.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jewelgan.data.archive import Archive
from jewelgan.metrics.features import FeatureExtractor
from jewelgan.metrics.fid import feature_stats
from jewelgan.metrics.resize import downsample_uint8


@dataclass
class ReferenceStats:
    features: np.ndarray  # float32 (N, D)
    mu: np.ndarray  # float64 (D,)
    sigma: np.ndarray  # float64 (D, D)
    indices: np.ndarray  # archive index of each feature row
    path: Path | None = None  # cache file, if any


_MEMO: dict[tuple, ReferenceStats] = {}  # per process: periodic evaluation reuses it without disk reads


def default_cache_dir() -> Path:
    return Path(os.environ.get("JEWELGAN_CACHE", Path.home() / ".cache" / "jewelgan")) / "refstats"


def cache_key(content_hash: str, resolution: int, count: int, network_key: str) -> str:
    digest = content_hash.split(":", 1)[-1][:16]
    return f"{digest}-r{resolution}-n{count}-{network_key}"


def reference_indices(count: int, max_images: int | None) -> np.ndarray:
    """All images, or a seeded subset (so the same subset is used every time)."""
    if max_images is None or count <= max_images:
        return np.arange(count)
    return np.sort(np.random.default_rng(0).choice(count, max_images, replace=False))


def archive_images(archive: Archive, indices: np.ndarray, resolution: int) -> np.ndarray:
    """Selected archive images as uint8 NHWC at `resolution` (antialiased downsampling if needed)."""
    return downsample_uint8(archive.rgb(indices), resolution)


def reference_stats(archive: Archive | str | Path, extractor: FeatureExtractor, resolution: int | None = None,
                    max_images: int | None = 50_000, cache_dir: str | Path | None = None,
                    progress: bool = False, chunk: int = 512) -> ReferenceStats:
    archive = archive if isinstance(archive, Archive) else Archive(archive)
    res = resolution or archive.resolution
    if res > archive.resolution:
        raise ValueError(f"{archive.path}: images are {archive.resolution}px; cannot compare at {res}px")
    indices = reference_indices(len(archive), max_images)
    key = cache_key(archive.content_hash, res, len(indices), extractor.key)
    path = Path(cache_dir) / f"{key}.npz" if cache_dir is not None else None
    memo_key = (key, str(path))
    if memo_key in _MEMO:
        return _MEMO[memo_key]
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                stats = ReferenceStats(z["features"], z["mu"], z["sigma"], z["indices"], path)
            _MEMO[memo_key] = stats
            return stats
        except (OSError, ValueError, KeyError):
            pass  # unreadable or partial cache file: recompute and overwrite
    feats = []
    for i in range(0, len(indices), chunk):
        images = archive_images(archive, indices[i:i + chunk], res)
        feats.append(extractor.features(images, progress=progress))
    features = np.concatenate(feats)
    mu, sigma = feature_stats(features)
    stats = ReferenceStats(features, mu, sigma, indices, path)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"archive": str(archive.path), "content_hash": archive.content_hash, "resolution": res,
                "count": int(len(indices)), "network": extractor.key}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
        np.savez(tmp, features=features, mu=mu, sigma=sigma, indices=indices, meta=np.array(json.dumps(meta)))
        os.replace(tmp, path)
    _MEMO[memo_key] = stats
    return stats
