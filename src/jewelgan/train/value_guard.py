"""The collapse guard per attribute value: notice a run that draws one picture for a small category.

The collapse guard (train/collapse.py) watches the whole batch, and on an uneven catalogue (hundreds of
earrings, a dozen rings) the earrings keep its spread healthy while every ring is the same picture. So,
every `value_check_every` kimg, the EMA generator draws N_PER_VALUE images for each value (of every
attribute) that has at least MIN_IMAGES training images, and their perceptual spread is divided by that
of the value's training images (metrics/spread.py). metrics.jsonl gets every ratio (kind "value_spread");
a value below COLLAPSED that also spreads less than BEHIND times as much as the best value of its
attribute, at two checks in a row, is reported (a warning, and an event "value_collapse" naming it). The second condition
keeps the start of a run, where every value is still one blur, from being reported; the third, the noise of
16 samples (the same model's ratio for one value read 0.44 and 0.72 from two sets of samples).

It warns rather than acts: a restore would not help (a small category collapses slowly, from the start),
and what does is in the recipe (guide_value_mean "running", docs/training.md).
"""

from __future__ import annotations

import warnings

import numpy as np

from jewelgan.data.label_balance import FEW_IMAGES
from jewelgan.metrics.perceptual import mean_pairwise_lpips
from jewelgan.metrics.spread import MAX_REAL, values_with

MIN_IMAGES = FEW_IMAGES  # fewer images than this: the model cannot be expected to vary the value (prepare warns)
N_PER_VALUE = 16     # fakes per value at a check (120 pairs)
COLLAPSED = 0.45     # a ratio below this is what a category drawn as one picture scores (0.1-0.4)
BEHIND = 0.6         # ... when another value of the attribute spreads at least 1/BEHIND times as much


class ValueSpreadGuard:
    def __init__(self, archive, schema, label_rows, seed: int = 0):
        """archive: the training archive; schema/label_rows: the model's (what sample_images takes)."""
        self.archive, self.schema, self.label_rows, self.seed = archive, schema, label_rows, seed
        self.values = {attr: [v for v in values_with(archive, attr, MIN_IMAGES) if v in schema.attributes[attr]]
                       for attr in schema.names if attr in archive.schema.attributes}
        self.real_spread: dict[tuple[str, str], float] = {}
        self.reported: set[tuple[str, str]] = set()
        self.low_before: set[tuple[str, str]] = set()  # the values that looked collapsed at the last check

    @property
    def active(self) -> bool:
        return any(self.values.values())

    def _real(self, attr: str, value: str) -> float:
        if (attr, value) not in self.real_spread:
            rows = values_with(self.archive, attr, MIN_IMAGES)[value]
            if len(rows) > MAX_REAL:
                rows = np.sort(np.random.default_rng(0).permutation(rows)[:MAX_REAL])
            self.real_spread[(attr, value)] = mean_pairwise_lpips(self.archive.rgb(rows))
        return self.real_spread[(attr, value)]

    def ratios(self, G) -> dict[str, dict[str, float]]:
        """{attribute: {value: fakes' spread / reals' spread}} for G now."""
        from jewelgan.inference import sample_images

        out: dict[str, dict[str, float]] = {}
        for attr, values in self.values.items():
            for value in values:
                fakes = sample_images(G, self.schema, N_PER_VALUE, {attr: value}, seed=self.seed,
                                      label_rows=self.label_rows)
                real = self._real(attr, value)
                out.setdefault(attr, {})[value] = mean_pairwise_lpips(fakes[..., :3]) / real if real > 0 else float("nan")
        return out

    def check(self, G, step: int, kimg: float) -> list[dict]:
        """metrics.jsonl records for G now: its ratios, and an event for values newly found collapsed."""
        ratios = self.ratios(G)
        records = [{"kind": "value_spread", "step": step, "kimg": kimg,
                    **{f"{a}={v}": round(r, 4) for a, vs in ratios.items() for v, r in vs.items()}}]
        low = {(a, v): r for a, vs in ratios.items() for v, r in vs.items()
               if r < COLLAPSED and r < BEHIND * max(vs.values())}
        new = {k: r for k, r in low.items() if k in self.low_before and k not in self.reported}
        self.low_before = set(low)
        if new:
            self.reported |= set(new)
            names = ", ".join(f"{a}={v} ({r:.2f})" for (a, v), r in new.items())
            detail = (f"the model draws about one picture for {names}: its samples of each vary that share of what "
                      f"its training images do, where another value of the attribute varies far more")
            warnings.warn(f"at {kimg:.1f} kimg {detail} (docs/training.md, uneven catalogues)", stacklevel=2)
            records.append({"kind": "event", "event": "value_collapse", "step": step, "kimg": kimg,
                            "values": {f"{a}={v}": round(r, 4) for (a, v), r in new.items()}, "detail": detail})
        return records
