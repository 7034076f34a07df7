"""One entry point per use: evaluate_generator (periodic evaluation inside training, flat floats) and
evaluate_run (the `jewelgan evaluate` command: richer details, JSON out).

Metric names (request any subset):
  fid     Fréchet distance, Inception features            -> fid
  kid     kernel Inception distance                       -> kid, kid_std
  pr      precision/recall/density/coverage, Inception    -> precision, recall, density, coverage
  effnet  FD and KID in EfficientNet-Lite0 features       -> fd_effnet, kid_effnet, kid_effnet_std
  mem     near-copies of training images, Inception space -> mem_flagged_share, mem_min_ratio
  attr    attribute accuracy with a trained classifier    -> attr_acc/<attribute>
  is      Inception Score (official weights only)         -> is, is_std
  values  per value of the per_value attributes: spread,  -> spread/<a>=<v>, fid/<a>=<v>, kid/<a>=<v>
          FID, KID, accuracy (metrics/per_value.py)          (+ attr_acc/<a>=<v> with attr)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from jewelgan.data.archive import Archive
from jewelgan.data.labels import LabelSchema

METRICS = ("fid", "kid", "pr", "effnet", "mem", "attr", "is", "is_effnet", "values")
INCEPTION_METRICS = {"fid", "kid", "pr", "mem", "is"}


def parse_metrics(spec: str | list[str] | tuple[str, ...]) -> list[str]:
    names = [s.strip().lower() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    if not names:
        raise ValueError("no metrics requested")
    return list(dict.fromkeys(names))


def compute_metrics(images: np.ndarray, archive: Archive, metrics: list[str], *, device="cpu",
                    cache_dir=None, inception_weights=None, resize_mode="tf-bilinear", max_real=50_000,
                    k: int = 5, mem_percentile: float = 1.0, progress: bool = False) -> tuple[dict, dict]:
    """Distribution metrics of generated uint8 images against the archive -> (flat floats, details)."""
    from jewelgan.metrics.cache import reference_stats
    from jewelgan.metrics.features import get_extractor
    from jewelgan.metrics.fid import fid_stats_to_features
    from jewelgan.metrics.kid import kid
    from jewelgan.metrics.memorization import check_memorization
    from jewelgan.metrics.prdc import prdc

    flat: dict[str, float] = {}
    details: dict = {}
    res = images.shape[1]
    wanted = set(metrics)
    if wanted & INCEPTION_METRICS:
        ext = get_extractor("inception", device, inception_weights, resize_mode)
        if "is" in wanted and not ext.has_classifier:
            raise ValueError("Inception Score unavailable: it needs the official Inception weights with the "
                             "classifier (pass inception-2015-12-05.pt or pt_inception-2015-12-05-6726825d.pth)")
        ref = reference_stats(archive, ext, res, max_real, cache_dir, progress)
        fake = ext.features(images, progress=progress)
        details["inception"] = {"network": ext.key, "n_real": int(len(ref.features)), "n_fake": int(len(fake))}
        if "fid" in wanted:
            flat["fid"] = fid_stats_to_features(ref.mu, ref.sigma, fake)
        if "kid" in wanted:
            flat["kid"], flat["kid_std"] = kid(ref.features, fake)
        if "pr" in wanted:
            # equal set sizes, as in Naeem et al.: a seeded real subset the size of the fake set
            sub = np.random.default_rng(0).permutation(len(ref.features))[:len(fake)]
            flat.update(prdc(ref.features[sub], fake, k=k))
        if "mem" in wanted:
            mem = check_memorization(fake, ref.features, percentile=mem_percentile)
            summary = mem.summary()
            for w in summary["worst"]:
                w["train"] = int(ref.indices[w["train"]])  # feature row -> archive index
            flat["mem_flagged_share"] = summary["flagged_share"]
            flat["mem_min_ratio"] = summary["worst"][0]["ratio"] if summary["worst"] else float("nan")
            details["mem"] = summary
        if "is" in wanted:
            from jewelgan.metrics.inception_score import inception_score
            flat["is"], flat["is_std"] = inception_score(ext.class_probs(images))
    if wanted & {"effnet", "is_effnet"}:
        ext = get_extractor("efficientnet-lite0", device, None, resize_mode)
    if "effnet" in wanted:
        ref = reference_stats(archive, ext, res, max_real, cache_dir, progress)
        fake = ext.features(images, progress=progress)
        flat["fd_effnet"] = fid_stats_to_features(ref.mu, ref.sigma, fake)
        flat["kid_effnet"], flat["kid_effnet_std"] = kid(ref.features, fake)
    if "is_effnet" in wanted:
        # the Inception Score's formula on EfficientNet-Lite0's ImageNet classifier: no registry package
        # ships Inception-v3 with its head (docs/evaluation.md), so this is NOT comparable with papers' IS
        from jewelgan.metrics.inception_score import inception_score
        flat["is_effnet"], flat["is_effnet_std"] = inception_score(ext.class_probs(images))
    return flat, details


def _generate(G, schema: LabelSchema, n: int, seed: int, batch: int) -> np.ndarray:
    from jewelgan.inference import sample_images

    return sample_images(G, schema, n, seed=seed, batch=batch)


def evaluate_generator(G, schema: LabelSchema, archive_path, n: int = 2000,
                       metrics=("fid", "kid"), device="cpu", cache_dir=None, *, classifier=None,
                       inception_weights=None, seed: int = 0, batch: int = 64, n_per_value: int = 32,
                       details: dict | None = None, progress: bool = False,
                       per_value: list[str] | None = None) -> dict[str, float]:
    """Sample n images from G and score them against the archive; returns flat {name: float}.

    Reference features are computed once per archive/resolution/network and kept in cache_dir
    (default: $JEWELGAN_CACHE/refstats or ~/.cache/jewelgan/refstats) and in memory, so only the
    first evaluation of a training run pays for the real images. Pass a dict as
    `details` to receive the non-scalar results (confusion matrices, worst near-copy pairs).
    per_value: the attributes the "values" metric reports on (default: the model's first).
    """
    from jewelgan.metrics.cache import default_cache_dir

    names = parse_metrics(metrics)
    cache_dir = default_cache_dir() if cache_dir is None else cache_dir
    archive = archive_path if isinstance(archive_path, Archive) else Archive(archive_path)
    flat: dict[str, float] = {}
    extra: dict = {}
    dist = [m for m in names if m not in ("attr", "values")]
    if dist:
        images = _generate(G, schema, n, seed, batch)
        f, d = compute_metrics(images, archive, dist, device=device, cache_dir=cache_dir,
                               inception_weights=inception_weights, progress=progress)
        flat.update(f)
        extra.update(d)
    if "attr" in names:
        if classifier is None:
            raise ValueError("the attr metric needs a trained classifier (jewelgan classifier train)")
        from jewelgan.metrics.attributes import score_generator
        scores = score_generator(G, schema, classifier, n_per_value=n_per_value, seed=seed, device=device)
        for name, s in scores.items():
            flat[f"attr_acc/{name}"] = s["accuracy"]
        extra["attr"] = scores
    if "values" in names:
        from jewelgan.metrics.per_value import per_value_metrics
        f, extra["values"] = per_value_metrics(G, schema, archive, list(per_value or schema.names[:1]),
                                               n_per_value=max(n_per_value, 64), seed=seed, device=device,
                                               cache_dir=cache_dir, attr_scores=extra.get("attr"))
        flat.update(f)
    if details is not None:
        details.update(extra)
    return flat


def evaluate_run(path, archive_path, n: int = 10_000, metrics=("fid", "kid", "pr", "mem"), device="cpu",
                 cache_dir=None, classifier=None, inception_weights=None, which: str = "ema", seed: int = 0,
                 out=None, progress: bool = True, noise: str | None = None, per_value: list[str] | None = None) -> dict:
    """Load a run dir or exported model dir, evaluate it, and optionally write a JSON file.

    noise: override how a style model's samples take noise ("const" or "none"; see load_generator).
    """
    from jewelgan.inference import load_generator

    G, schema, info = load_generator(path, device=device, which=which, noise=noise)
    archive = Archive(archive_path)
    t0 = time.time()
    details: dict = {}
    flat = evaluate_generator(G, schema, archive, n=n, metrics=metrics, device=device,
                              cache_dir=cache_dir, classifier=classifier,
                              inception_weights=inception_weights, seed=seed, details=details, progress=progress,
                              per_value=per_value)
    result = {
        "model": str(path), "which": which, "archive": str(archive.path), "content_hash": archive.content_hash,
        "n": n, "seed": seed, "metrics": flat, "details": details, "seconds": round(time.time() - t0, 1),
        "model_info": {k: v for k, v in info.items() if isinstance(v, (str, int, float, bool))},
    }
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=1, default=_json_default))
    return result


def _json_default(obj):
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
