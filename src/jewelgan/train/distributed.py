"""Multi-process training under torchrun, without DistributedDataParallel.

GAN training alternates which network gets gradients, which is exactly what trips DDP up (unused
parameters, hooks firing on the frozen network). As in StyleGAN2-ADA, each rank here computes its
gradients locally and they are averaged with one all-reduce per optimiser step; parameters start
identical because rank 0's are broadcast. Only rank 0 writes files. A single process (no torchrun)
never touches torch.distributed, so the CPU path has no extra cost.

Launch: `torchrun --nproc_per_node N -m jewelgan.cli train ...` (gloo on CPU, nccl on CUDA). The
global batch (--batch) is split evenly across ranks, and each rank reads its own slice of it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_from_env(device_type: str) -> DistInfo:
    """Join the process group torchrun describes in the environment; a no-op for a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    if device_type == "cuda":
        torch.cuda.set_device(local)
    return DistInfo(rank, world, local)


def broadcast_module(module: nn.Module, info: DistInfo) -> None:
    if info.enabled:
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def average_gradients(module: nn.Module, info: DistInfo) -> None:
    """All-reduce the gradients of `module` as one flat buffer (one collective per step)."""
    if not info.enabled:
        return
    params = [p for p in module.parameters() if p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat)
    flat /= info.world
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
        offset += n


def reduce_scalars(values: torch.Tensor, info: DistInfo, op: str = "mean") -> torch.Tensor:
    """Average (or max) a small vector of per-rank values, so every rank takes the same decisions."""
    if not info.enabled:
        return values
    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return values if op == "max" else values / info.world


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
