"""How sure must the translator's classifier be before it names a photo's metal? Measured on held-out pieces,
written into the translator's JSON as `confident_at` when a run is exported.

Every held-out piece is composed in every metal over several backdrop kinds; the threshold is the lowest
probability at which the classifier's readings at or above it were right at least `precision` of the time.
Below it, `edit` asks for the source metal instead of guessing (translate.SourceUnknown).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jewelgan.edit.pairs import PairSet
from jewelgan.edit.translate import Translator, write_translator
from jewelgan.matte.examples import compose, kinds
from jewelgan.upsample.stage import replace_card_section

PRECISION = 0.97


def readings(translator: Translator, pairs: PairSet, indices, photos: list | None = None, seed: int = 0
             ) -> tuple[np.ndarray, np.ndarray]:
    """(top probability, right or not) for every held-out piece x metal x backdrop kind."""
    rng = np.random.default_rng([seed, 0xCA11B])
    top, right = [], []
    for i in indices:
        for m in range(len(pairs.metals)):
            for kind in kinds(photos):
                photo = np.round(compose(pairs.get(int(i), m), kind, rng, photos)["image"] * 255).astype(np.uint8)
                probs = translator.read_metal(photo)
                best = max(probs, key=probs.get)
                top.append(probs[best])
                right.append(best == pairs.metals[m])
    return np.array(top), np.array(right)


def threshold(top: np.ndarray, right: np.ndarray, precision: float = PRECISION) -> float:
    """The lowest probability whose readings at or above it are right >= precision (1.0 if none is)."""
    for t in np.round(np.arange(0.3, 1.0, 0.01), 2):
        sure = top >= t
        if sure.any() and right[sure].mean() >= precision:
            return float(t)
    return 1.0


def export_translator(run: str | Path, into: str | Path, pairs: PairSet, val_idx, photos: list | None = None
                      ) -> tuple[Path, float]:
    """Write a run's translator into a model folder with its measured confidence threshold and the studio's
    gemstone tints (edit/gemstones.py)."""
    from jewelgan.edit.gemstones import studio_stone_tints

    translator = Translator.from_run(run)
    top, right = readings(translator, pairs, val_idx, photos)
    t = threshold(top, right)
    sure = top >= t
    meta = {"metals": translator.metals, "confident_at": t, "run": Path(run).name,
            "kimg": translator.meta.get("kimg"),
            "held_out": {"readings": int(len(top)), "right": round(float(right.mean()), 4),
                         "confident_share": round(float(sure.mean()), 4),
                         "right_when_confident": round(float(right[sure].mean()) if sure.any() else 0.0, 4)},
            "gemstones": studio_stone_tints()}
    path = write_translator(into, translator.net, meta)
    replace_card_section(into, CARD_HEADING, card_section(meta, len(pairs), pairs.res))
    return path, t


CARD_HEADING = "## Metal translator"


def card_section(meta: dict, pieces: int, res: int) -> str:
    h = meta["held_out"]
    return (f"{CARD_HEADING}\n`jewelgan edit PHOTO` changes a photo's metal at its own size with "
            f"`translator.safetensors` (docs/edit.md): run `{meta['run']}`, {meta['kimg'] or 0:.1f} kimg of the "
            f"studio's same-piece pairs ({pieces} pieces in {len(meta['metals'])} metals at {res} px, over shop "
            f"backdrops). Its metal reading is trusted at p >= {meta['confident_at']:.2f}: on {h['readings']} "
            f"held-out readings it was right {h['right']:.1%} of the time, confident on {h['confident_share']:.1%} "
            f"and right on {h['right_when_confident']:.1%} of those. Gemstones "
            f"({', '.join(meta.get('gemstones', {}))}) change to the studio's stone tints on the stones its material "
            f"map finds.\n")
