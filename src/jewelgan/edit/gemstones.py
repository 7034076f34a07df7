"""The same piece with another gemstone, on a shop's own photo at its own size.

A stone's look is its colour times the light its facets return (sparkle, dark facets, the metal seen through it);
the tint transfer of the metal translator (network.colour_change) keeps that pattern and moves its colour, so no
network is trained for stones: the translator's material map finds them (the piece's share that is stone, times
the matte's alpha) and the transfer moves the photo's stone tint onto the target stone's. The target tints are
the studio's: the same pieces rendered with every stone (studio_stone_tints, measured when a translator is
exported and written into translator.json). The photo's own stone is the caller's, or the studio stone nearest in
tint (nearest_stone): diamonds are grey and rubies, sapphires and emeralds far apart in colour.

    python benchmarks/edit_quality.py --stones --sizes 256   # held-out pieces against the renderer's truth
"""

from __future__ import annotations

import numpy as np
import torch

from jewelgan.edit.network import MATERIALS, measured_transfer, tint_statistics, tint_weight

STONE = MATERIALS.index("stone")


def studio_stones() -> list[str]:
    from jewelgan.studio.attributes import ATTRIBUTES

    return [g for g in ATTRIBUTES["gemstone"] if g != "none"]


def studio_stone_tints(seed: int = 505, pieces: int = 16, res: int = 128) -> dict[str, dict]:
    """Each gemstone's mean tint and luma over the fully covered stone pixels of `pieces` studio pieces that
    carry stones, each rendered with every stone (same piece, pose and light): {stone: {"tint", "luma"}}."""
    from jewelgan.studio.dataset import render_one_layers

    pixels: dict[str, list] = {g: [] for g in studio_stones()}
    index = used = 0
    while used < pieces:
        layers, labels = render_one_layers(seed, index, res)
        stone = (layers.material == STONE) & (layers.coverage >= 0.999)
        if labels["gemstone"] != "none" and stone.sum() >= 20:
            used += 1
            for g in pixels:
                pixels[g].append(render_one_layers(seed, index, res, gemstone=g)[0].foreground[stone])
        index += 1
    out = {}
    for g, px in pixels.items():
        flat = torch.from_numpy(np.concatenate(px).astype(np.float32)).T[None, :, :, None]  # (1, 3, n, 1)
        tint, luma = tint_statistics(flat, torch.ones_like(flat[:, :1]))
        out[g] = {"tint": [round(float(v), 4) for v in tint[0]], "luma": round(float(luma[0]), 4)}
    return out


def found_stones(mask: torch.Tensor) -> bool:
    """Whether the stone mask (1, 1, H, W) holds enough sure pixels to measure a stone's tint on."""
    return float(tint_weight(mask).sum()) >= 20


def nearest_stone(image: torch.Tensor, mask: torch.Tensor, stones: dict[str, dict]) -> str:
    """The studio stone whose tint is nearest the tint of the photo's stone pixels (image (1, 3, H, W), mask
    (1, 1, H, W), where found_stones)."""
    own, _ = tint_statistics(image, tint_weight(mask))
    return min(stones, key=lambda g: float(((own[0] - torch.tensor(stones[g]["tint"])) ** 2).sum()))


def stone_transfer(image: torch.Tensor, mask: torch.Tensor, stones: dict[str, dict], source: str, target: str
                   ) -> dict[str, torch.Tensor]:
    """colour_change's parameters for source stone -> target stone on this photo's stone pixels."""
    tint = lambda g: torch.tensor([stones[g]["tint"]], dtype=torch.float32)  # noqa: E731
    prior = (tint(source), torch.tensor([stones[source]["luma"]]))
    return measured_transfer(image, mask, prior, tint(target), torch.tensor([stones[target]["luma"]
                                                                            / stones[source]["luma"]]))
