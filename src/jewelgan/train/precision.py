"""How the networks compute: the device, bf16 autocast and the channels_last layout (Precision), and
`bf16: auto`: train under bf16 autocast only where this machine runs bf16 faster than fp32.

Whether bf16 pays on a CPU depends on the chip, not on a flag torch reports: of two machines with
`avx512_bf16`, one ran a bf16 matmul at 2.4x the fp32 rate (cpu-64 then trained ~25 % faster in bf16,
dcgan ~60 %) and the other at half of it (both ~0.7x in bf16). So on a CPU this times both and picks
bf16 only when it is clearly faster; on CUDA it asks the device. The run stores the answer in its
config, so a resumed run keeps the maths it started with wherever it resumes.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import torch
from torch import nn

# bf16 must beat fp32 by this factor: a small gain in matmuls is eaten by the casts autocast adds
CPU_BF16_MIN_SPEEDUP = 1.5


def matmul_rate(dtype: torch.dtype, n: int = 512, seconds: float = 0.15) -> float:
    """Multiply-adds per second of an n x n matmul in `dtype` on this CPU's current thread setting."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b  # first call: allocation and kernel selection
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    return n**3 * reps / (time.perf_counter() - t0)


def resolve_bf16(setting: bool | str, device: torch.device) -> bool:
    if setting != "auto":
        return bool(setting)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    return matmul_rate(torch.bfloat16) >= CPU_BF16_MIN_SPEEDUP * matmul_rate(torch.float32)


@dataclass(frozen=True)
class Precision:
    """Where the networks run and in which number format and memory layout (TrainConfig's speed section,
    bf16 resolved)."""

    device: torch.device
    bf16: bool = False
    channels_last: bool = False

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def autocast(self):
        if self.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """A batch moved to the device in the networks' layout."""
        x = x.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def module(self, m: nn.Module) -> nn.Module:
        m = m.to(self.device)
        return m.to(memory_format=torch.channels_last) if self.channels_last else m
