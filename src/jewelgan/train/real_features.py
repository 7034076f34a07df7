"""The frozen guidance network's pooled features of every real training view, computed once per run.

The guidance losses (train/guidance.py) compare G's fakes with the reals in a frozen network's features
at every step. The network never changes and a real view is one of a fixed set (an archive image,
mirrored or not), so each view's features are computed the first time a batch asks for them and read
from a table afterwards: on cpu-64's 3,000-image set every view has been seen after a few epochs of a
~40-epoch run, and the reals' forward pass (~13 % of a step) disappears.

A missing entry is filled with its whole fixed chunk of neighbouring views, so its value does not depend
on which batch first asked for it: a resumed run, whose table starts empty, reads the same numbers and
resume stays exact.
"""

from __future__ import annotations

import torch

from jewelgan.models.frozen_features import TAP_CHANNELS
from jewelgan.train.data import BatchStream

# up to 256 MiB (~67,000 images with their mirrors); beyond that the reals are run every step
MAX_TABLE_BYTES = 256 << 20


class RealFeatureTable:
    def __init__(self, pooled, dims: list[int], stream: BatchStream, device: torch.device, chunk: int = 32):
        """pooled: images -> one (B, C) tensor per tap (FeatureGuidance.pooled); dims: the C of each tap."""
        self.pooled, self.dims, self.stream, self.chunk = pooled, list(dims), stream, chunk
        self.table = torch.zeros(stream.num_views, sum(dims), device=device)
        self.filled = torch.zeros(stream.num_views, dtype=torch.bool)

    @staticmethod
    def nbytes(stream: BatchStream, dims: list[int]) -> int:
        return stream.num_views * sum(dims) * 4

    @torch.no_grad()
    def __call__(self, keys: torch.Tensor, memory_format=torch.contiguous_format) -> list[torch.Tensor]:
        """Per tap, the (B, C) features of the views `keys` (BatchStream.keys)."""
        for c in torch.unique(keys[~self.filled[keys]] // self.chunk).tolist():
            views = torch.arange(c * self.chunk, min((c + 1) * self.chunk, len(self.filled)))
            x = self.stream.views(views)[:, :3].to(self.table.device).contiguous(memory_format=memory_format)
            self.table[views.to(self.table.device)] = torch.cat(self.pooled(x), 1).float()
            self.filled[views] = True
        return list(self.table[keys.to(self.table.device)].split(self.dims, 1))


def feature_table(pooled, stream: BatchStream, device: torch.device) -> RealFeatureTable | None:
    """The table of the guidance network's features of the stream's views, where it fits in MAX_TABLE_BYTES."""
    if RealFeatureTable.nbytes(stream, TAP_CHANNELS) > MAX_TABLE_BYTES:
        return None
    return RealFeatureTable(pooled, TAP_CHANNELS, stream, device)
