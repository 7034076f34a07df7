"""A seeded subset of an archive with a chosen number of images per value of one attribute.

Why: real catalogues are uneven (hundreds of earrings, a dozen rings), and a recipe has to be measured on
such sets; the studio renders balanced sets and a shop's development photos are only mildly uneven. This
makes the uneven sets of tests and benchmarks (benchmarks/uneven_catalogue.py) from balanced ones.
Values kept at 0 images leave the label vocabulary (a model is never asked for what it never saw).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jewelgan.data.archive import Archive, ArchiveWriter
from jewelgan.data.labels import LabelSchema


def take_per_value(src: str | Path | Archive, out: str | Path, attribute: str, counts: dict[str, int], *,
                   seed: int = 0, overwrite: bool = False) -> Path:
    """Write to `out` the images of `src` with at most counts[value] images of each named value of
    `attribute` (chosen at random with `seed`) and every image of the values not named, in archive order."""
    archive = src if isinstance(src, Archive) else Archive(src)
    if attribute not in archive.schema.attributes:
        raise KeyError(f"{archive.path}: no attribute {attribute!r}; it has {', '.join(archive.schema.names) or 'none'}")
    vocab = archive.schema.attributes[attribute]
    unknown = sorted(set(counts) - set(vocab))
    if unknown:
        raise KeyError(f"{archive.path}: {attribute} has no value {', '.join(unknown)}; it has {', '.join(vocab)}")
    bad = {v: n for v, n in counts.items() if n < 0}
    if bad:
        raise ValueError(f"counts must be >= 0, got {bad}")
    col = archive.labels[:, archive.schema.names.index(attribute)]
    rng = np.random.default_rng(seed)
    keep = np.ones(len(archive), dtype=bool)
    for value, n in counts.items():
        members = np.flatnonzero(col == vocab.index(value))
        keep[members] = False
        keep[rng.permutation(members)[:n]] = True
    rows = np.flatnonzero(keep)
    # the vocabulary in the source's order, without the values that no kept image has
    used = {name: {v for v in (archive.schema.decode(archive.labels[i])[name] for i in rows) if v is not None}
            for name in archive.schema.names}
    schema = LabelSchema({name: [v for v in values if v in used[name]]
                          for name, values in archive.schema.attributes.items()})
    with ArchiveWriter(out, archive.resolution, schema, overwrite=overwrite, channels=archive.channels,
                       extra_meta={"subset_of": archive.content_hash}) as writer:
        for i in rows:
            writer.add(np.asarray(archive.images[i]), archive.label_dict(int(i)), archive.sources[i])
    return Path(out)
