"""What a model can learn from the few images of a rare attribute value, said before training starts.

Real catalogues are uneven (hundreds of earrings, a dozen rings). A conditional GAN learns a value's
colour and rough shape from a handful of photos, but to draw many different rings it needs enough of
them to see how rings vary: below FEW_IMAGES the model draws blends or near-copies of those photos, and
below VERY_FEW it cannot be expected to draw the value well at all. prepare and `dataset info` print
these warnings; train prints the counts it trains on; the training guard (train/value_guard.py) checks
the values with at least FEW_IMAGES images for collapse.
"""

from __future__ import annotations

FEW_IMAGES = 15
VERY_FEW = 5


def thin_value_warnings(counts: dict[str, dict[str, int]], total: int) -> list[str]:
    """One line per value with fewer than FEW_IMAGES images; counts: {attribute: {value: images}} (an
    archive's value_counts(), whose "(missing)" entries are not values)."""
    out = []
    for attr, values in counts.items():
        for value, n in values.items():
            if value == "(missing)" or n >= FEW_IMAGES:
                continue
            share = f"{100.0 * n / max(total, 1):.1f} %"
            if n < VERY_FEW:
                what = ("too few to learn from: expect blends or copies of these photos, or the wrong piece; "
                        f"add photos (at least {FEW_IMAGES}) or leave the value out")
            else:
                what = ("enough for its colour and rough shape, too few for variety: the model will draw few "
                        f"different pieces, close to these photos; {FEW_IMAGES} or more let it vary them")
            out.append(f"{attr}={value} has {n} image{'s' if n != 1 else ''} ({share}): {what}")
    return out


def training_summary(counts: dict[str, dict[str, int]], total: int) -> str:
    """What a run trains on, per attribute value, with the warnings above (printed when a run starts)."""
    lines = [f"training on {total} images; " + "; ".join(
        f"{attr}: " + ", ".join(f"{v} {n}" for v, n in values.items()) for attr, values in counts.items())]
    return "\n".join(lines + [f"warning: {w}" for w in thin_value_warnings(counts, total)])
