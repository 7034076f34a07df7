"""Quality per attribute value (`jewelgan evaluate --metrics values --per-value category`).

The overall figures are dominated by the values with the most images: a catalogue of 600 earrings and 18
rings can score a good FID while every ring the model draws is the same picture. Per value of the named
attributes: the perceptual spread ratio (metrics/spread.py), FID and KID of the value's samples against
the value's own images (Inception features, the reference cache's), and, with a classifier, the accuracy
of the value's samples (from `attr`'s confusion matrix).

Small-n caveat: FID is biased upward when either side has few images (its covariance is estimated from
them), so a value with 20 photos scores a far higher FID than one with 600 even when both are drawn
equally well; compare a value's FID only with the same value's in another model, at the same n. KID is
unbiased at any n but noisy (its std is given). Values with fewer than SMALL_N images are marked.
"""

from __future__ import annotations

import numpy as np

SMALL_N = 200       # below this many images a value's FID is far from its large-n value
MIN_IMAGES = 5      # fewer images than this get no figures (no covariance, no spread worth the name)


def per_value_metrics(G, schema, archive, attributes: list[str], n_per_value: int = 64, seed: int = 0,
                      device="cpu", cache_dir=None, attr_scores: dict | None = None) -> tuple[dict, dict]:
    """(flat {"spread/a=v", "fid/a=v", "kid/a=v", "attr_acc/a=v": float}, details {a: {v: {...}}})."""
    from jewelgan.inference import sample_images
    from jewelgan.metrics.cache import reference_stats
    from jewelgan.metrics.features import get_extractor
    from jewelgan.metrics.fid import fid_from_features
    from jewelgan.metrics.kid import kid
    from jewelgan.metrics.spread import archive_label_rows, value_spread, values_with

    unknown = [a for a in attributes if a not in schema.attributes or a not in archive.schema.attributes]
    if unknown:
        raise ValueError(f"--per-value: no attribute {', '.join(unknown)} in both the model and the archive; "
                         f"they share {', '.join(a for a in schema.names if a in archive.schema.attributes) or 'none'}")
    ext = get_extractor("inception", device)
    res = archive.resolution
    ref = reference_stats(archive, ext, res, 50_000, cache_dir)  # the overall metrics' cache entry
    row_of = {int(i): k for k, i in enumerate(ref.indices)}
    label_rows = archive_label_rows(archive) if archive.schema.attributes == schema.attributes else None
    flat: dict[str, float] = {}
    details: dict = {}
    for attr in attributes:
        for value, rows in values_with(archive, attr, MIN_IMAGES).items():
            rows = np.array([i for i in rows if int(i) in row_of])  # an archive over 50,000: the cached subset
            if value not in schema.attributes[attr] or len(rows) < MIN_IMAGES:
                continue
            fakes = sample_images(G, schema, n_per_value, {attr: value}, seed=seed, label_rows=label_rows)
            if fakes.shape[1] != res:
                from jewelgan.metrics.resize import downsample_uint8
                fakes = downsample_uint8(fakes, res)
            real_f = ref.features[[row_of[int(i)] for i in rows]]
            fake_f = ext.features(fakes[..., :3])
            spread = value_spread({value: fakes}, {value: archive.rgb(rows)})[value]["ratio"]
            k, k_std = kid(real_f, fake_f, subset_size=min(1000, len(real_f), len(fake_f)))
            entry = {"images": int(len(rows)), "samples": int(len(fakes)), "spread": spread,
                     "fid": fid_from_features(real_f, fake_f), "kid": k, "kid_std": k_std,
                     "small_n": bool(len(rows) < SMALL_N)}
            scores = (attr_scores or {}).get(attr)
            if scores and value in scores["values"]:
                i = scores["values"].index(value)
                row = np.asarray(scores["confusion"][i])
                entry["attr_acc"] = float(row[i] / row.sum()) if row.sum() else float("nan")
            details.setdefault(attr, {})[value] = entry
            for key in ("spread", "fid", "kid", "attr_acc"):
                if key in entry:
                    flat[f"{key}/{attr}={value}"] = float(entry[key])
    return flat, details
