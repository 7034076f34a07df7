"""Exponential moving average of the generator's weights, used for sampling and evaluation.

The decay is given as a half-life in images (StyleGAN2's ema_kimg), so it does not depend on the
batch size, with a ramp-up that keeps the half-life below a share of the images seen so far: early in
training the average follows G closely instead of averaging in the random initialisation.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def make_ema(G: nn.Module) -> nn.Module:
    ema = copy.deepcopy(G).eval()
    ema.requires_grad_(False)
    return ema


def ema_beta(batch: int, images_seen: int, ema_kimg: float, rampup: float | None) -> float:
    """Per-step decay for a half-life of ema_kimg thousand images (0 = copy G)."""
    half_life = ema_kimg * 1000.0
    if rampup:
        half_life = min(half_life, images_seen * rampup)
    if half_life <= 0:
        return 0.0
    return 0.5 ** (batch / half_life)


@torch.no_grad()
def update_ema(ema: nn.Module, G: nn.Module, beta: float) -> None:
    """ema = G + beta * (ema - G) for parameters; buffers (BatchNorm statistics) are copied from G."""
    e_params = [p for p in ema.parameters()]
    g_params = [p.detach() for p in G.parameters()]
    if beta == 0.0:
        torch._foreach_copy_(e_params, g_params)
    else:
        torch._foreach_lerp_(e_params, g_params, 1.0 - beta)
    for e_buf, g_buf in zip(ema.buffers(), G.buffers()):
        e_buf.copy_(g_buf)
