"""Conventional residual discriminator with projection conditioning (StyleGAN2's D family).

Meant to be trained with an R1 penalty (the trainer's `r1_gamma`) and ADA. Layers use equalised
learning rate, matching the generator, so one learning rate suits both. Conditioning is the
projection form (Miyato & Koyama 2018): logit = w.phi(x) + <embed(labels), phi(x)>, where each
attribute has a learnt "unspecified" row for label -1.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from jewelgan.models.layers import LabelEmbedding
from jewelgan.models.layers import EqualLinear, channel_widths, check_labels

SQRT2 = math.sqrt(2.0)


class EqualConv2d(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernel: int, bias: bool = True, activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.gain = 1 / math.sqrt(in_ch * kernel * kernel)
        self.padding = kernel // 2
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        x = F.conv2d(x, (self.weight * self.gain).to(x.dtype), bias, padding=self.padding)
        return F.leaky_relu(x, 0.2) * SQRT2 if self.activation else x


class ResBlock(nn.Module):
    """conv, 2x average-pool, conv; skip: pool then 1x1 conv; sum scaled by 1/sqrt(2).

    Pooling before the second conv (instead of after it, as StyleGAN2's blur + stride-2 conv
    effectively does) runs that conv at a quarter of the pixels: the residual D's forward+backward
    became about 2x faster at 64 px on CPU. For the 1x1 skip, pool-then-conv is exactly conv-then-pool.
    """

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv0 = EqualConv2d(in_ch, in_ch, 3, activation=True)
        self.conv1 = EqualConv2d(in_ch, out_ch, 3, activation=True)
        self.skip = EqualConv2d(in_ch, out_ch, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.skip(F.avg_pool2d(x, 2))
        x = self.conv1(F.avg_pool2d(self.conv0(x), 2))
        return (x + y) / SQRT2


class ResNetDiscriminator(nn.Module):
    """D(x (B,C,R,R) in [-1,1], C = 3 or 4 (with alpha), labels (B,A) with -1 = missing) -> logits (B,)."""

    def __init__(self, sizes: list[int], resolution: int = 64, channel_base: int = 8192,
                 channel_max: int = 256, mbstd_group: int = 4, channels: int = 3):
        super().__init__()
        if resolution < 8 or resolution & (resolution - 1):
            raise ValueError(f"ResNetDiscriminator resolution must be a power of two >= 8, got {resolution}")
        self.sizes = list(sizes)
        self.resolution = resolution
        self.mbstd_group, self.channels = mbstd_group, channels
        self.config = dict(sizes=self.sizes, resolution=resolution, channel_base=channel_base,
                           channel_max=channel_max, mbstd_group=mbstd_group, channels=channels)
        widths = channel_widths(resolution, channel_base, channel_max)
        self.from_rgb = EqualConv2d(channels, widths[resolution], 1, activation=True)
        blocks = []
        r = resolution
        while r > 4:
            blocks.append(ResBlock(widths[r], widths[r // 2]))
            r //= 2
        self.blocks = nn.Sequential(*blocks)
        c4 = widths[4]
        self.conv = EqualConv2d(c4 + 1, c4, 3, activation=True)
        self.fc = EqualLinear(c4 * 16, c4, activation=True)
        self.out = EqualLinear(c4, 1)
        self.embed = LabelEmbedding(self.sizes, c4) if self.sizes else None
        self.feat_dim = c4

    def _minibatch_std(self, x: torch.Tensor) -> torch.Tensor:
        # one extra channel: std of features across a small group, so D can see a lack of variety
        b, c, h, w = x.shape
        g = min(self.mbstd_group, b)
        while b % g:
            g -= 1
        y = x.float().reshape(g, -1, c, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt().mean(dim=(1, 2, 3))
        y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w).to(x.dtype)
        return torch.cat([x, y], dim=1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels or x.shape[-1] != self.resolution:
            raise ValueError(f"ResNetDiscriminator: images must be (B, {self.channels}, {self.resolution}, "
                             f"{self.resolution}), "
                             f"got {tuple(x.shape)}")
        h = self.blocks(self.from_rgb(x))
        h = self.conv(self._minibatch_std(h))
        phi = self.fc(h.flatten(1))
        logit = self.out(phi).squeeze(1)
        if self.embed is not None:
            e = self.embed(check_labels(labels, self.sizes, "ResNetDiscriminator", x.shape[0], x.device)).to(phi.dtype)
            logit = logit + (phi * e).sum(dim=1) / math.sqrt(self.feat_dim)
        return logit.float()
