"""What a run shows while it trains: fixed-seed sample grids, the progress bar and the averaged stats."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from jewelgan.data.labels import LabelSchema


def grid_inputs(schema: LabelSchema, z_dim: int, seed: int, label_rows=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed latents and labels: one row per value of the first attribute (up to 8), the same 8 latents
    in every row, so a grid shows what the label changes and successive grids are comparable."""
    from jewelgan.inference import sample_inputs

    if not schema.names:
        z, y, _ = sample_inputs(schema, z_dim, 64, seed=seed)
        return z, y
    first = schema.names[0]
    zs, ys = [], []
    for value in schema.attributes[first][:8]:
        z, y, _ = sample_inputs(schema, z_dim, 8, {first: value}, seed=seed, label_rows=label_rows)
        zs.append(z)
        ys.append(y)
    return torch.cat(zs), torch.cat(ys)


@torch.no_grad()
def save_sample_grid(G: nn.Module, schema: LabelSchema, path: Path, seed: int, label_rows=None, tile: int = 64) -> Path:
    from jewelgan.inference import run_generator
    from jewelgan.grid import save_grid

    z, y = grid_inputs(schema, G.z_dim, seed, label_rows)
    return save_grid(run_generator(G, z, y), path, ncol=8, tile=tile)


def progress_bar(total_steps: int | None, batch: int, step: int, minutes: float | None, elapsed_s: float):
    """tqdm bar in kimg (with images/s and ETA) for a kimg budget, or in seconds for a time budget."""
    from tqdm import tqdm

    if total_steps:  # counted in images, shown in kimg
        return tqdm(total=total_steps * batch, initial=step * batch, unit="kimg", unit_scale=1e-3,
                    dynamic_ncols=True, smoothing=0.1,
                    bar_format="{l_bar}{bar}| {n:.2f}/{total:.2f} kimg [{elapsed}<{remaining}{postfix}]")
    return tqdm(total=int(minutes * 60), initial=int(elapsed_s), unit="s", dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s{postfix}")


class StatsMeter:
    """The step stats averaged over the steps between two metrics.jsonl lines, and those steps' speed."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, float] = {}
        self.steps, self.seconds = 0, 0.0

    def add(self, stats: dict[str, float], seconds: float) -> None:
        for k, v in stats.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.steps += 1
        self.seconds += seconds

    def means(self) -> dict[str, float]:
        return {k: v / self.steps for k, v in self.sums.items()}

    def images_per_s(self, batch: int) -> float:
        return self.steps * batch / max(self.seconds, 1e-9)
