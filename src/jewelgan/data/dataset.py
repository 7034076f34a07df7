"""torch Dataset over an archive, and a sampler that balances classes."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from jewelgan.data.archive import Archive


class ArchiveDataset(Dataset):
    """Yields (image float32 CxHxW in [-1, 1], label indices int64 with -1 for missing).

    hflip: mirror each image with probability 0.5 (jewelry product shots are mostly symmetric;
    the flip is decided per index and epoch by the sampler's seed, so it stays reproducible).
    """

    def __init__(self, archive: Archive | str, hflip: bool = False, seed: int = 0):
        self.archive = archive if isinstance(archive, Archive) else Archive(archive)
        self.hflip = hflip
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.archive)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, labels = self.archive[index]
        x = torch.from_numpy(np.array(image)).permute(2, 0, 1).float().div_(127.5).sub_(1.0)
        if self.hflip and _coin(self.seed, self.epoch, index):
            x = x.flip(-1)
        return x, torch.from_numpy(labels.astype(np.int64))


def _coin(seed: int, epoch: int, index: int) -> bool:
    # a stateless hash, so flips do not depend on which worker loads the item
    h = (seed * 1_000_003 + epoch * 7_919 + index * 2_654_435_761) & 0xFFFFFFFF
    h ^= h >> 16
    h = (h * 0x45D9F3B) & 0xFFFFFFFF
    h ^= h >> 16
    return bool(h & 1)


def balanced_weights(archive: Archive, attribute: str) -> np.ndarray:
    """Per-image sampling weights that make every value of `attribute` equally likely.

    Images with a missing value get the average weight so they are neither dropped nor favoured.
    """
    j = archive.schema.names.index(attribute)
    col = archive.labels[:, j].astype(np.int64)
    known = col >= 0
    counts = np.bincount(col[known], minlength=archive.schema.num_values(attribute)).astype(np.float64)
    weights = np.ones(len(col), dtype=np.float64)
    weights[known] = 1.0 / np.maximum(counts[col[known]], 1)
    if known.any():
        weights[~known] = weights[known].mean()
    return weights / weights.sum()


class BalancedSampler(Sampler[int]):
    """Draws indices with replacement so each value of one attribute appears equally often.

    Seeded and stateless per epoch: the same (seed, epoch) always yields the same order.
    """

    def __init__(self, archive: Archive, attribute: str, num_samples: int | None = None, seed: int = 0):
        self.weights = torch.from_numpy(balanced_weights(archive, attribute))
        self.num_samples = num_samples or len(archive)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.multinomial(self.weights, self.num_samples, replacement=True, generator=g).tolist())
