"""Blocks shared by the models: label checks and embeddings, conditional BatchNorm, projection head,
equalised-lr linear layers and channel widths.

Labels arrive as int64 (B, A) with -1 for a missing value. Every attribute gets its own embedding
table with one extra row, the learnt "unspecified" entry, so partly labelled data still trains and a
user may leave any attribute open at generation time.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from jewelgan.data.labels import LabelSchema


def schema_sizes(schema: LabelSchema | None) -> list[int]:
    """Number of values per attribute, in schema order (empty for unconditional models)."""
    return [] if schema is None else [schema.num_values(n) for n in schema.names]


class LabelEmbedding(nn.Module):
    """Sum over attributes of a per-attribute embedding; index -1 selects that attribute's "unspecified" row."""

    def __init__(self, sizes: list[int], dim: int, init_std: float = 1.0, init_mean: float = 0.0):
        super().__init__()
        self.sizes = list(sizes)
        self.dim = dim
        self.tables = nn.ModuleList(nn.Embedding(n + 1, dim) for n in self.sizes)
        for t in self.tables:
            nn.init.normal_(t.weight, init_mean, init_std)
        # where each attribute's "unspecified" row lives, as a buffer so it follows .to(device)
        self.register_buffer("_missing", torch.tensor(self.sizes, dtype=torch.long), persistent=False)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        if labels.dim() != 2 or labels.shape[1] != len(self.sizes):
            raise ValueError(f"labels must be (batch, {len(self.sizes)}), got {tuple(labels.shape)}")
        labels = labels.long()
        idx = torch.where(labels < 0, self._missing.expand_as(labels), labels)
        out = self.tables[0](idx[:, 0])
        for j in range(1, len(self.tables)):
            out = out + self.tables[j](idx[:, j])
        return out


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose scale and shift come from the labels (per attribute value, summed).

    With no attributes it is plain BatchNorm with a learnt affine; gamma starts near 1 as in DCGAN.
    """

    def __init__(self, channels: int, sizes: list[int]):
        super().__init__()
        self.conditional = len(sizes) > 0
        self.bn = nn.BatchNorm2d(channels, affine=not self.conditional)
        if self.conditional:
            # gamma = 1 + sum of small per-value offsets: starts as the DCGAN N(1, 0.02) init
            self.gamma = LabelEmbedding(sizes, channels, init_std=0.02)
            self.beta = LabelEmbedding(sizes, channels, init_std=0.0)
        else:
            nn.init.normal_(self.bn.weight, 1.0, 0.02)
            nn.init.zeros_(self.bn.bias)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        x = self.bn(x)
        if not self.conditional:
            return x
        g = self.gamma(labels).to(x.dtype)[:, :, None, None]
        b = self.beta(labels).to(x.dtype)[:, :, None, None]
        return x * (1 + g) + b


class ProjectionHead(nn.Module):
    """Discriminator output: linear(h) + sum over attributes of <embed_a(y_a), h> (Miyato & Koyama 2018).

    Missing labels project onto the learnt "unspecified" vector, which is how D learns what an
    image without that label looks like. With `classify`, the head also predicts every attribute
    from the same features (an auxiliary classifier, Odena et al. 2017): see `classes`.
    """

    def __init__(self, features: int, sizes: list[int], classify: bool = False):
        super().__init__()
        self.linear = nn.Linear(features, 1)
        self.embed = LabelEmbedding(sizes, features, init_std=0.02) if sizes else None
        self.classifier = nn.ModuleList(nn.Linear(features, n) for n in sizes) if classify and sizes else None

    def forward(self, h: torch.Tensor, labels: torch.Tensor | None, with_classes: bool = False):
        """Logits (B,); with_classes: (logits, per-attribute class logits from the same features)."""
        out = self.linear(h).squeeze(1)
        if self.embed is not None:
            if labels is None:
                labels = torch.full((h.shape[0], len(self.embed.sizes)), -1, dtype=torch.long, device=h.device)
            out = out + (self.embed(labels).to(h.dtype) * h).sum(1)
        return (out, self.classes(h)) if with_classes else out

    def classes(self, h: torch.Tensor) -> list[torch.Tensor]:
        """Per-attribute logits (B, n_values) from the features; only with classify=True."""
        if self.classifier is None:
            raise RuntimeError("this discriminator was built without an attribute classifier (cls_weight = 0)")
        return [c(h) for c in self.classifier]


class PixelColourFeatures(nn.Module):
    """Per-image colour statistics a BatchNorm discriminator cannot normalise away.

    Why: a BatchNorm D normalises the real and the fake batch separately, so a colour shift that all
    fakes share (a pink tint on every silver piece, backgrounds too white) is subtracted before D
    sees it. This branch has no normalisation: a
    per-pixel MLP (1x1 convs) on the raw image, then the spatial mean and max of each channel. The
    mean sees the overall tone, the max whether any pixel has a given colour (a small gold ring on a
    grey background). Its output joins D's features before the projection head, so the labels are
    checked against it too. Images above 32 px are averaged down to 32 px first: at 64 px the 1x1
    convs cost 40 % of the whole DCGAN D's time, at 32 px a quarter of that. Measured on `cpu-64`
    (docs/experiments.md): it did not raise metal accuracy, and with the tanh_leak output not FID either.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, channels, 1), nn.LeakyReLU(0.2), nn.Conv2d(channels, channels, 1),
                                 nn.LeakyReLU(0.2))
        self.out_features = 2 * channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] > 32:
            x = F.adaptive_avg_pool2d(x, 32)
        h = self.net(x).flatten(2)
        return torch.cat([h.mean(2), h.amax(2)], 1)


def image_channels(config) -> int:
    """Channels a model draws and judges: 4 (RGB + alpha) when the run trains on an archive's alpha
    (TrainConfig.alpha resolved to true), else 3. Runs saved before alpha existed have no such field: 3."""
    return 4 if getattr(config, "alpha", False) is True else 3


def check_inputs(z: torch.Tensor, labels: torch.Tensor | None, z_dim: int, sizes: list[int], who: str) -> torch.Tensor:
    """Validate a generator call (z and labels) and return the labels as int64 (see check_labels)."""
    if z.dim() != 2 or z.shape[1] != z_dim:
        raise ValueError(f"{who}: z must be (batch, {z_dim}), got {tuple(z.shape)}")
    return check_labels(labels, sizes, who, z.shape[0], z.device)


def dcgan_init(module: nn.Module) -> None:
    """Radford et al.: conv and linear weights from N(0, 0.02), biases zero."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


SQRT2 = math.sqrt(2.0)


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def check_labels(labels: torch.Tensor | None, sizes: list[int], who: str, batch: int | None = None,
                 device=None) -> torch.Tensor:
    """Validate (B, A) int labels against the schema sizes; -1 means unspecified.

    None means every attribute unspecified; an unconditional model (no attributes) ignores labels.
    """
    if labels is None or not sizes:
        if batch is None:
            raise ValueError(f"{who}: labels are required (use -1 for unspecified attributes)")
        return torch.full((batch, len(sizes)), -1, dtype=torch.long, device=device)
    if labels.dim() != 2 or labels.shape[1] != len(sizes):
        raise ValueError(f"{who}: labels must be (batch, {len(sizes)}), got {tuple(labels.shape)}")
    if batch is not None and labels.shape[0] != batch:
        raise ValueError(f"{who}: {labels.shape[0]} label rows for a batch of {batch}")
    if labels.numel():
        hi = torch.tensor(sizes, device=labels.device)
        bad = (labels < -1) | (labels >= hi)
        if bool(bad.any()):
            col = int(bad.nonzero()[0, 1])
            raise ValueError(f"{who}: label {int(labels[bad][0])} out of range for attribute {col} "
                             f"(valid 0..{sizes[col] - 1} or -1)")
    return labels.long()


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate: weights stored N(0, 1/lr_mul), scaled at run time."""

    def __init__(self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.weight_gain = lr_mul / math.sqrt(in_dim)
        self.bias_gain = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)
        return F.leaky_relu(x, 0.2) * SQRT2 if self.activation else x


def channel_widths(resolution: int, channel_base: int, channel_max: int, channel_min: int = 8) -> dict[int, int]:
    out = {}
    r = 4
    while r <= resolution:
        out[r] = int(max(channel_min, min(channel_base // r, channel_max)))
        r *= 2
    return out
