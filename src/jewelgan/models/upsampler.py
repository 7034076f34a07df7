"""The learned upsampling stage of the cascade: a small conditional super-resolution network.

The base generator decides the piece at 64 px; this network adds what a shop sees at 256-512 px. Its design
follows from the CPU budget: all the thinking happens at the input size (a few residual blocks whose features are
modulated by the piece's labels, FiLM-style), and the output size is reached by cheap sub-pixel convolutions
(pixel shuffle) with few channels, so a x8 stage costs little more than a x4. It predicts a residual over the
bilinear upsampling of its input, which makes the untrained network already a plain resampler and lets training
spend its steps on detail (facets, sparkle, crisp metal edges). Fully convolutional: any input size works.
Images are in [-1, 1], with alpha as a fourth channel when the base model draws one; labels are integer rows
(-1 = unknown, which the network also learns, so a photo with no labels can be upsampled).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class FiLMBlock(nn.Module):
    """conv-act-conv residual block whose features are scaled and shifted per image by the label embedding."""

    def __init__(self, width: int, embed: int):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.film = nn.Linear(embed, 2 * width)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        # the residual branch starts small, so a deep stack starts close to the identity
        nn.init.zeros_(self.conv2.bias)
        self.conv2.weight.data.mul_(0.1)

    def forward(self, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(e)[:, :, None, None].chunk(2, dim=1)
        r = F.leaky_relu(self.conv1(h), 0.2)
        r = r * (1 + scale) + shift
        return h + self.conv2(r)


class Upsampler(nn.Module):
    """x2, x4 or x8 super-resolution of RGB or RGBA images, conditioned on attribute labels."""

    def __init__(self, channels: int = 4, scale: int = 4, width: int = 32, blocks: int = 4,
                 attribute_sizes: tuple[int, ...] = (), embed: int = 32):
        super().__init__()
        if scale not in (2, 4, 8):
            raise ValueError(f"scale must be 2, 4 or 8, got {scale}")
        if channels not in (3, 4):
            raise ValueError(f"channels must be 3 or 4, got {channels}")
        self.config = {"channels": channels, "scale": scale, "width": width, "blocks": blocks,
                       "attribute_sizes": list(attribute_sizes), "embed": embed}
        self.channels, self.scale = channels, scale
        # one extra row per attribute: "unknown" (label -1)
        self.embeddings = nn.ModuleList(nn.Embedding(n + 1, embed) for n in attribute_sizes)
        self.head = nn.Conv2d(channels, width, 3, padding=1)
        self.body = nn.ModuleList(FiLMBlock(width, embed) for _ in range(blocks))
        self.body_out = nn.Conv2d(width, width, 3, padding=1)
        # every x2 halves the channels: detail is fine-grained, but there is less of it to decide per pixel
        ups, c = [], width
        for _ in range(int(math.log2(scale)) - 1):
            ups.append(nn.Conv2d(c, 4 * (c // 2), 3, padding=1))
            c //= 2
        self.ups = nn.ModuleList(ups)
        self.tail = nn.Conv2d(c, 4 * channels, 3, padding=1)  # the last x2 goes straight to pixels
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def embed(self, labels: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
        # sizes from x.shape (not len()), so an exported graph keeps a dynamic batch
        if labels is None:
            labels = torch.full((x.shape[0], len(self.embeddings)), -1, dtype=torch.long, device=x.device)
        e = x.new_zeros((x.shape[0], self.config["embed"]))
        for i, table in enumerate(self.embeddings):
            row = labels[:, i].long()
            e = e + table(torch.where(row < 0, torch.full_like(row, table.num_embeddings - 1), row))
        return e

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        e = self.embed(labels, x)
        h = self.head(x)
        skip = h
        for block in self.body:
            h = block(h, e)
        h = self.body_out(h) + skip
        for up in self.ups:
            h = F.leaky_relu(F.pixel_shuffle(up(h), 2), 0.2)
        detail = F.pixel_shuffle(self.tail(h), 2)
        base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return base + detail


class PatchDiscriminator(nn.Module):
    """A small patch discriminator for the adversarial term: real high-res crops vs upsampled ones, each
    judged with its low-res input beside it (upsampled), so it asks "is this detail plausible for that input"."""

    def __init__(self, channels: int = 4, width: int = 32, depth: int = 4):
        super().__init__()
        layers, c = [], 2 * channels
        for i in range(depth):
            out = width * min(2 ** i, 4)
            layers += [nn.utils.parametrizations.spectral_norm(nn.Conv2d(c, out, 4, stride=2, padding=1)),
                       nn.LeakyReLU(0.2)]
            c = out
        layers.append(nn.Conv2d(c, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, high: torch.Tensor, low_up: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([high, low_up], dim=1))
