"""What a training step trains on: real batches with their labels, latents, and the reals' frozen features.

Global step k makes d_steps D updates; update i reads global batch k * d_steps + i of the stream. Each
input is a pure function of (seed, batch index): the stream's order, the latents' generator, the feature
table's values (train/real_features.py), so a resumed run sees exactly the inputs it would have seen, and
N ranks together see what one process would.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from jewelgan.train.data import BatchStream
from jewelgan.train.distributed import DistInfo
from jewelgan.train.precision import Precision
from jewelgan.train.real_features import RealFeatureTable


@dataclass
class Batch:
    """One D update's inputs on the device: reals, their labels (the fakes are drawn for the same labels, so
    they follow the training label distribution) and this rank's latents."""

    x: torch.Tensor
    y: torch.Tensor
    z: torch.Tensor


class StepInputs:
    def __init__(self, stream: BatchStream, *, z_dim: int, label_cols: int, seed: int, d_steps: int,
                 precision: Precision, dist: DistInfo, real_features: RealFeatureTable | None = None):
        """label_cols: how many of the archive's label columns the model is conditioned on (0: unconditional).
        real_features: the reals' frozen features when the guidance reads them from a table."""
        self.stream, self.z_dim, self.label_cols, self.seed = stream, z_dim, label_cols, seed
        self.d_steps, self.precision, self.dist, self.real_features = d_steps, precision, dist, real_features

    def latents(self, k: int, n: int) -> torch.Tensor:
        """This rank's n latents of global batch k: the whole global batch's latents are drawn from one
        generator seeded by (seed, k) and each rank takes its slice, so N ranks see the very latents one
        process would (tests/test_distributed.py compares the two)."""
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + k * 7_919 + 99_991) % (2**63))
        z = torch.randn(n * self.dist.world, self.z_dim, generator=g)
        return z[self.dist.rank * n:(self.dist.rank + 1) * n].to(self.precision.device)

    def batch(self, k: int) -> Batch:
        x, y = self.stream.get(k)
        x = self.precision.images(x)
        return Batch(x, y[:, :self.label_cols].to(self.precision.device), self.latents(k, x.shape[0]))

    def __call__(self, step: int) -> tuple[list[Batch], list[torch.Tensor] | None]:
        """Global step `step`'s d_steps batches, and the table's features of the last one's reals (None
        without a table: the guidance then runs the reals itself)."""
        ks = [step * self.d_steps + i for i in range(self.d_steps)]
        feats = None
        if self.real_features is not None:
            feats = self.real_features(self.stream.keys(ks[-1]), self.precision.memory_format)
        return [self.batch(k) for k in ks], feats
