"""A shop's own metal: the tint a metal edit moves to, measured on the shop's photos of that metal.

The translator moves a photo's metal to the studio's tint for the target metal. A shop's own photos of a metal
are often far from the studio's (its rose gold photographs redder and more saturated, its white gold greyer:
docs/edit.md), and a shop wants the edit to look like the rose gold on the rest of its pages. Given a few of
its photos of that metal, the target tint is measured on their metal pixels (the translator's metal mask times
the matte, the same statistics as the photo's own tint) and replaces the studio's; the brightness ratio stays
the studio's (a photo's brightness mixes the metal with its lighting).

    reference = measure_reference(translator, "rose_gold", [rgb, ...], ["a.jpg", ...])
    edit = translator(photo, "rose_gold", "yellow_gold", tint=reference.tint)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from jewelgan.data.imageio import EXTENSIONS
from jewelgan.edit.network import tint_statistics, tint_weight
from jewelgan.edit.translate import Translator, TranslatorError, _tensor
from jewelgan.matte.predict import photo_alpha

MIN_METAL_PIXELS = 50  # at 256 px: fewer confident metal pixels than this and a photo says nothing of its metal


@dataclass
class MetalReference:
    metal: str
    tint: torch.Tensor   # (3,) colour / luma of the metal's pixels, as network.tint_statistics
    photos: list[str]    # the photos measured
    pixels: int          # confident metal pixels they had (at the translator's 256 px)

    def describe(self) -> dict:
        return {"metal": self.metal, "tint": [round(float(v), 4) for v in self.tint], "photos": self.photos,
                "pixels": self.pixels}


def measure_reference(translator: Translator, metal: str, photos: list[np.ndarray], names: list[str]
                      ) -> MetalReference:
    """The mean tint of `metal` over these photos (uint8 RGB, any size; names say which is which in errors),
    each photo weighted by its count of confident metal pixels."""
    s = translator._index(metal, "reference")
    if not photos:
        raise TranslatorError(f"no reference photos given for {metal}")
    tints, counts = [], []
    for photo, name in zip(photos, names):
        alpha, why = photo_alpha(photo)
        if why:  # an edit may go on with the whole photo as the piece; a measurement of the metal may not
            raise TranslatorError(f"{name}: the matte finds no piece to measure ({why.split(',')[0]}); leave it "
                                  "out of the references")
        maps = translator._maps(photo, s, s, alpha.astype(np.float32) / 255, "metal")
        weight = tint_weight(maps.small_mask)
        count = int((weight > 0).sum())
        if count < MIN_METAL_PIXELS:
            raise TranslatorError(f"{name}: no {metal} found to measure (the translator's metal mask has {count} "
                                  f"confident pixels at 256 px, needs {MIN_METAL_PIXELS}); leave it out of the "
                                  "references")
        tint, _ = tint_statistics(_tensor(maps.small), weight)
        tints.append(tint[0])
        counts.append(count)
    w = torch.tensor(counts, dtype=torch.float32)
    return MetalReference(metal, (torch.stack(tints) * w[:, None]).sum(0) / w.sum(), list(names), int(w.sum()))


def reference_files(path: Path) -> list[Path]:
    """The photos a reference path names: the file itself, or a folder's image files (not its sub-folders)."""
    if path.is_file():
        return [path]
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)
        if not found:
            raise TranslatorError(f"{path}: no photos ({', '.join(sorted(EXTENSIONS))}) in this folder")
        return found
    raise TranslatorError(f"{path}: no such photo or folder")
