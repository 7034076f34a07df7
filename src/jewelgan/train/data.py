"""Training data as an endless, seeded stream of batches.

Position p in the stream is image `perm(seed, epoch)[p % N]` with epoch = p // N, so batch k is fully
determined by (seed, k): resuming needs only the step number, never a saved iterator. Each rank of a
distributed run takes its own slice of every global batch.

Batches are gathered straight from the archive's memory map with one fancy-index per batch (much
faster on a CPU than a DataLoader collating single items), mirrored by a stateless coin per
(seed, epoch, index), and downscaled with area averaging when the training
resolution is below the archive's.

With `balance` > 0 a batch is drawn instead (with replacement, from a generator seeded by (seed, k)) with each
image weighted by its category value's count to the power -balance, so a value holding 3 % of an uneven
catalogue is seen far more often than 3 % of the time; still a pure function of (seed, k).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from jewelgan.data.archive import Archive


def _coin(seed: int, epoch: int, index: int) -> bool:
    """Whether image `index` is mirrored in `epoch`: a stateless hash, so it needs no saved state."""
    h = (seed * 1_000_003 + epoch * 7_919 + index * 2_654_435_761) & 0xFFFFFFFF
    h ^= h >> 16
    h = (h * 0x45D9F3B) & 0xFFFFFFFF
    h ^= h >> 16
    return bool(h & 1)


def permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    g = torch.Generator().manual_seed((seed * 1_000_003 + epoch * 7_919 + 12_345) % (2**63))
    return torch.randperm(n, generator=g).numpy()


class BatchStream:
    def __init__(self, archive: Archive, batch: int, res: int, *, seed: int = 0, hflip: bool = True,
                 rank: int = 0, world: int = 1, alpha: bool | None = None, balance: float = 0.0):
        """alpha: yield the archive's alpha channel as a 4th channel (None: when it has one).
        balance: 0 = the archive's proportions; up to 1 = every value of the category equally often."""
        if batch % world:
            raise ValueError(f"batch {batch} must be divisible by the number of processes ({world})")
        if res > archive.resolution or archive.resolution % res:
            raise ValueError(f"training resolution {res} must divide the archive's {archive.resolution}")
        self.archive, self.batch, self.res = archive, batch, res
        self.seed, self.hflip, self.rank, self.world = seed, hflip, rank, world
        self.local = batch // world
        if alpha and not archive.has_alpha:
            raise ValueError(f"{archive.path} has no alpha channel")
        self.channels = 4 if (archive.has_alpha if alpha is None else alpha) else 3
        self._perm_cache: dict[int, np.ndarray] = {}
        self.weights = balance_weights(archive, balance) if balance > 0 else None

    def drawn_shares(self) -> str:
        """One line: how often each value of the balanced attribute is drawn, beside its share of the archive."""
        column = balanced_attribute(self.archive)
        name = self.archive.schema.names[column]
        values = np.asarray(self.archive.labels[:, column], dtype=np.int64)
        vocab = self.archive.schema.attributes[name]
        parts = []
        for v in np.unique(values):
            mine = values == v
            label = vocab[v] if 0 <= v < len(vocab) else "(none)"
            parts.append(f"{label} {float(self.weights[torch.from_numpy(mine)].sum()):.0%} (of the images: "
                         f"{mine.mean():.0%})")
        return f"balanced draws by {name}: " + ", ".join(parts)

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perm_cache:
            if len(self._perm_cache) > 4:
                self._perm_cache.pop(min(self._perm_cache))
            self._perm_cache[epoch] = permutation(self.seed, epoch, len(self.archive))
        return self._perm_cache[epoch]

    def indices(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(archive indices, epochs) of this rank's share of global batch `step`."""
        n = len(self.archive)
        if self.weights is not None:  # drawn: the whole global batch from one generator, this rank's slice
            g = torch.Generator().manual_seed((self.seed * 1_000_003 + step * 7_919 + 31_337) % (2**63))
            drawn = torch.multinomial(self.weights, self.batch, replacement=True, generator=g).numpy()
            idx = drawn[self.rank * self.local:(self.rank + 1) * self.local].astype(np.int64)
            return idx, np.full_like(idx, step)  # the mirror coin is tossed per (step, image)
        start = step * self.batch + self.rank * self.local
        pos = np.arange(start, start + self.local, dtype=np.int64)
        epochs = pos // n
        idx = np.empty_like(pos)
        for e in np.unique(epochs):
            sel = epochs == e
            idx[sel] = self._perm(int(e))[pos[sel] % n]
        return idx, epochs

    @property
    def num_views(self) -> int:
        """Distinct images the stream can yield: each archive image, and its mirror when flipping."""
        return len(self.archive) * (2 if self.hflip else 1)

    def keys(self, step: int) -> torch.Tensor:
        """View keys (int64, index * 2 + mirrored, or the index without flipping) of this rank's share of
        global batch `step`: equal keys are equal images."""
        idx, epochs = self.indices(step)
        if not self.hflip:
            return torch.from_numpy(idx)
        flip = np.array([_coin(self.seed, int(e), int(i)) for i, e in zip(idx, epochs)], dtype=np.int64)
        return torch.from_numpy(idx * 2 + flip)

    def views(self, keys: torch.Tensor) -> torch.Tensor:
        """Images float32 (B, C, res, res) in [-1, 1] for view keys (see keys())."""
        keys = keys.numpy().astype(np.int64)
        idx, flip = (keys // 2, keys % 2 == 1) if self.hflip else (keys, np.zeros(len(keys), dtype=bool))
        order = np.argsort(idx, kind="stable")  # sorted reads are kinder to the page cache
        pix = np.empty((len(idx), *self.archive.images.shape[1:3], self.channels), dtype=np.uint8)
        pix[order] = self.archive.images[idx[order]][..., :self.channels]
        x = torch.from_numpy(pix).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
        if flip.any():
            flip = torch.from_numpy(flip)
            x[flip] = x[flip].flip(-1)
        if self.res != self.archive.resolution:
            x = F.avg_pool2d(x, self.archive.resolution // self.res)
        return x.contiguous()

    def get(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Images float32 (B, C, res, res) in [-1, 1] and labels int64 (B, A) for global step `step`."""
        keys = self.keys(step)
        idx = keys.numpy() // 2 if self.hflip else keys.numpy()
        labels = torch.from_numpy(self.archive.labels[idx].astype(np.int64))
        return self.views(keys), labels


def balanced_attribute(archive: Archive) -> int | None:
    """The label column that balancing evens out: the category when the archive has one, else its first."""
    names = list(archive.schema.names)
    if not names:
        return None
    return names.index("category") if "category" in names else 0


def balance_weights(archive: Archive, balance: float) -> torch.Tensor:
    """Each image's chance of being drawn (float64, sums to 1): its category value's count ** -balance, so
    the values' shares go as count ** (1 - balance). Images without a value form a group of their own."""
    column = balanced_attribute(archive)
    if column is None:
        return torch.full((len(archive),), 1.0 / len(archive), dtype=torch.float64)
    values = np.asarray(archive.labels[:, column], dtype=np.int64)
    _, group, counts = np.unique(values, return_inverse=True, return_counts=True)
    w = counts[group].astype(np.float64) ** -balance
    return torch.from_numpy(w / w.sum())


def label_rows(archive: Archive) -> list[list[int]]:
    """Unique label rows with their counts ([*row, count]): the joint label distribution, compactly."""
    if archive.labels.shape[1] == 0:
        return [[len(archive)]]
    rows, counts = np.unique(archive.labels, axis=0, return_counts=True)
    return [[*map(int, r), int(c)] for r, c in zip(rows, counts)]
