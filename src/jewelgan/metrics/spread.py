"""Spread per attribute value: does the model draw as many different rings as the shop has?

A model can keep its overall FID and spread while one small category collapses: when a catalogue holds
hundreds of earrings and a dozen rings, the earrings carry every batch statistic, and every ring the
model draws may be the same blended picture. Measured per value:

    spread(images) = mean perceptual distance (metrics/perceptual.py) over all pairs of the images
    ratio(value)   = spread(fakes asking for it) / spread(the archive's images of it)

~1 when the fakes of a value vary like its photos; ~0.3 for a category drawn as one picture (the floor
is not 0: the fakes still differ in noise and fringes). Copies of the training images would score ~1
too: the memorisation metric (`mem`) is the check for that. Pixel distances were tried first and
misread a category collapsed into one dark blob as varied (docs/real-photos.md).
"""

from __future__ import annotations

import numpy as np

from jewelgan.metrics.perceptual import mean_pairwise_lpips

MAX_REAL = 64       # reals per value compared (a seeded subset beyond that: the pairs grow as n^2)
MIN_IMAGES = 2      # a spread needs a pair


def value_spread(fakes: dict[str, np.ndarray], reals: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per value: {"spread_fake", "spread_real", "ratio"} from its fakes and its reals (uint8 NHWC each)."""
    out = {}
    for value, real in reals.items():
        fake = fakes.get(value)
        if fake is None or len(fake) < MIN_IMAGES or len(real) < MIN_IMAGES:
            continue
        if len(real) > MAX_REAL:
            real = real[np.sort(np.random.default_rng(0).permutation(len(real))[:MAX_REAL])]
        s_fake, s_real = mean_pairwise_lpips(fake[..., :3]), mean_pairwise_lpips(real[..., :3])
        out[value] = {"spread_fake": s_fake, "spread_real": s_real,
                      "ratio": s_fake / s_real if s_real > 0 else float("nan")}
    return out


def archive_label_rows(archive) -> np.ndarray:
    """The archive's distinct label rows with their counts ([v1..vA, count] rows, as sample_images takes them)."""
    rows, n = np.unique(archive.labels.astype(np.int64), axis=0, return_counts=True)
    return np.concatenate([rows, n[:, None]], 1)


def values_with(archive, attribute: str, min_images: int = MIN_IMAGES) -> dict[str, np.ndarray]:
    """{value: archive indices} for the values of `attribute` with at least min_images images."""
    col = archive.labels[:, archive.schema.names.index(attribute)]
    found = {v: np.flatnonzero(col == i) for i, v in enumerate(archive.schema.attributes[attribute])}
    return {v: rows for v, rows in found.items() if len(rows) >= max(min_images, MIN_IMAGES)}


def generator_value_spread(G, schema, archive, attribute: str, n_per_value: int = 32, seed: int = 0,
                           min_images: int = MIN_IMAGES) -> dict[str, dict[str, float]]:
    """value_spread of G's samples for each value of `attribute` with at least min_images images in the
    archive; the other attributes are drawn as the archive has them for that value. Each entry also gives
    the value's image count ("images")."""
    from jewelgan.inference import sample_images

    # None: the label distribution load_generator attached to G (the archive's rows index another vocabulary)
    label_rows = archive_label_rows(archive) if archive.schema.attributes == schema.attributes else None
    members = {v: rows for v, rows in values_with(archive, attribute, min_images).items()
               if v in schema.attributes.get(attribute, [])}
    reals = {v: archive.rgb(rows) for v, rows in members.items()}
    fakes = {v: sample_images(G, schema, n_per_value, {attribute: v}, seed=seed, label_rows=label_rows)
             for v in members}
    out = value_spread(fakes, reals)
    for value, entry in out.items():
        entry["images"] = len(members[value])
    return out
