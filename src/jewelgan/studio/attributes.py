"""The studio's label vocabulary and a stratified sampler of what each image shows.

The main attributes cycle in a mixed radix over the image index (category fastest, then metal,
then view; gemstone on its own cycle of 5, coprime with 4), each through a per-seed shuffle of its
values. So any 64 consecutive images show every value of every attribute, and 320 show every
combination, while the rest (style, cut, proportions, lighting) is drawn from the image's own rng.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jewelgan.data.labels import LabelSchema

CATEGORIES = ["ring", "pendant", "earrings", "bracelet"]
METALS = ["yellow_gold", "white_gold", "rose_gold", "silver"]
GEMSTONES = ["none", "diamond", "ruby", "sapphire", "emerald"]
VIEWS = ["front", "top", "three_quarter", "side"]
CUT_NAMES = ["none", "round", "oval", "princess"]

# styles a category can take, split by whether the piece carries a stone
STYLES = {
    "ring": {"none": ["plain_band"], "gem": ["solitaire", "eternity"]},
    "pendant": {"none": ["disc", "heart"], "gem": ["solitaire_pendant", "halo_pendant"]},
    "earrings": {"none": ["stud", "hoop"], "gem": ["stud", "drop"]},
    "bracelet": {"none": ["bangle", "cuff", "chain"], "gem": ["bangle", "tennis"]},
}
STYLE_NAMES = list(dict.fromkeys(s for c in CATEGORIES for k in ("none", "gem") for s in STYLES[c][k]))
# cuts a style can show (eternity and tennis lines use calibrated round or square stones)
CUTS_FOR = {"eternity": ["round", "princess"], "tennis": ["round", "princess"], "drop": ["oval", "round"]}

ATTRIBUTES = {
    "category": CATEGORIES,
    "metal": METALS,
    "gemstone": GEMSTONES,
    "view": VIEWS,
    "style": STYLE_NAMES,
    "cut": CUT_NAMES,
}


def studio_schema() -> LabelSchema:
    """A fresh schema with every value in its fixed order (so label indices never depend on n)."""
    return LabelSchema({k: list(v) for k, v in ATTRIBUTES.items()})


@dataclass(frozen=True)
class Spec:
    category: str
    metal: str
    gemstone: str
    view: str
    style: str
    cut: str

    def labels(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in ATTRIBUTES}


def check_categories(categories) -> list[str]:
    """Validate a category subset (None = all), keeping the canonical order."""
    if categories is None:
        return list(CATEGORIES)
    cats = [c.strip() for c in categories if c.strip()]
    bad = [c for c in cats if c not in CATEGORIES]
    if bad or not cats:
        raise ValueError(f"unknown categories {', '.join(bad) or '(none given)'}; choose from {', '.join(CATEGORIES)}")
    return [c for c in CATEGORIES if c in cats]


def image_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))


def sample_spec(seed: int, index: int, categories=None) -> tuple[Spec, np.random.Generator]:
    """The attributes of image `index` of set `seed`, and that image's rng for everything else."""
    cats = check_categories(categories)
    shuffle = np.random.default_rng(np.random.SeedSequence([int(seed), 0x57D10]))
    cats = [cats[i] for i in shuffle.permutation(len(cats))]
    metals = [METALS[i] for i in shuffle.permutation(4)]
    views = [VIEWS[i] for i in shuffle.permutation(4)]
    gems = [GEMSTONES[i] for i in shuffle.permutation(5)]
    nc = len(cats)
    category = cats[index % nc]
    metal = metals[(index // nc) % 4]
    view = views[(index // (4 * nc)) % 4]
    gemstone = gems[index % 5]
    rng = image_rng(seed, index)
    style = str(rng.choice(STYLES[category]["none" if gemstone == "none" else "gem"]))
    cut = "none" if gemstone == "none" else str(rng.choice(CUTS_FOR.get(style, CUT_NAMES[1:])))
    return Spec(category, metal, gemstone, view, style, cut), rng
