"""DCGAN (Radford et al. 2016), class-conditional, from 32 to 256 px.

G: z as a 1x1 map -> ConvTranspose 4x4 -> [ConvTranspose stride 2 + BatchNorm + ReLU] x n -> tanh.
D: [Conv stride 2 + (BatchNorm) + LeakyReLU 0.2] x n down to 4x4 -> logit. Weights from N(0, 0.02).
Conditioning: BatchNorm in G takes its scale and shift from the labels (conditional BN), and D ends
in a projection head, so labels cannot be silently ignored by either network.

Channel widths double as the resolution halves: the layer next to the image has `ngf` (G) or `ndf`
(D) channels, capped at `max_ch`, so 64 px gives the paper's 512-256-128-64.
BatchNorm in D is the paper's choice but makes gradient penalties (R1, WGAN-GP) ill-defined, since
each sample's output then depends on the batch; `d_norm` defaults to "none" in that case.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from jewelgan.models.layers import (ConditionalBatchNorm2d, PixelColourFeatures, ProjectionHead, check_inputs,
                                    dcgan_init, image_channels, schema_sizes)
from jewelgan.models.registry import register_model

MIN_RES, MAX_RES = 32, 256
D_NORMS = ("bn", "none", "sn")


def _widths(res: int, base: int, max_ch: int) -> dict[int, int]:
    """Channels at each feature resolution 4 .. res/2."""
    out, r, ch = {}, res // 2, base
    while r >= 4:
        out[r] = min(ch, max_ch)
        r, ch = r // 2, ch * 2
    return out


class DCGANGenerator(nn.Module):
    def __init__(self, res: int, sizes: list[int], z_dim: int = 100, ngf: int = 64, max_ch: int = 512,
                 channels: int = 3):
        super().__init__()
        if res < MIN_RES or res > MAX_RES or res & (res - 1):
            raise ValueError(f"dcgan supports power-of-two resolutions {MIN_RES}..{MAX_RES}, got {res}")
        self.res, self.z_dim, self.sizes = res, z_dim, list(sizes)
        w = _widths(res, ngf, max_ch)
        self.stem = nn.ConvTranspose2d(z_dim, w[4], 4, 1, 0, bias=False)
        self.stem_bn = ConditionalBatchNorm2d(w[4], sizes)
        self.ups = nn.ModuleList()
        self.bns = nn.ModuleList()
        r = 4
        while r < res // 2:
            self.ups.append(nn.ConvTranspose2d(w[r], w[2 * r], 4, 2, 1, bias=False))
            self.bns.append(ConditionalBatchNorm2d(w[2 * r], sizes))
            r *= 2
        self.to_rgb = nn.ConvTranspose2d(w[res // 2], channels, 4, 2, 1)
        self.act = nn.ReLU()
        dcgan_init(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        labels = check_inputs(z, labels, self.z_dim, self.sizes, type(self).__name__)
        x = z[:, :, None, None]
        if self.stem.weight.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.act(self.stem_bn(self.stem(x), labels))
        for up, bn in zip(self.ups, self.bns):
            x = self.act(bn(up(x), labels))
        return torch.tanh(self.to_rgb(x))


class DCGANDiscriminator(nn.Module):
    def __init__(self, res: int, sizes: list[int], ndf: int = 64, max_ch: int = 512, norm: str = "bn",
                 classify: bool = False, colour: int = 0, channels: int = 3):
        super().__init__()
        if res < MIN_RES or res > MAX_RES or res & (res - 1):
            raise ValueError(f"dcgan supports power-of-two resolutions {MIN_RES}..{MAX_RES}, got {res}")
        if norm not in D_NORMS:
            raise ValueError(f"dcgan d_norm must be one of {', '.join(D_NORMS)}, got {norm!r}")
        self.res, self.sizes = res, list(sizes)
        w = _widths(res, ndf, max_ch)
        layers: list[nn.Module] = [nn.Conv2d(channels, w[res // 2], 4, 2, 1), nn.LeakyReLU(0.2)]  # no BN on the input
        r = res // 2
        while r > 4:
            layers.append(nn.Conv2d(w[r], w[r // 2], 4, 2, 1, bias=norm != "bn"))
            if norm == "bn":
                layers.append(nn.BatchNorm2d(w[r // 2]))
            layers.append(nn.LeakyReLU(0.2))
            r //= 2
        self.features = nn.Sequential(*layers)
        # the paper's final 4x4 valid conv is a linear map of the flattened 4x4 features
        self.colour = PixelColourFeatures(colour) if colour > 0 else None
        extra = self.colour.out_features if self.colour is not None else 0
        self.head = ProjectionHead(w[4] * 16 + extra, sizes, classify)
        self.classifies = self.head.classifier is not None
        dcgan_init(self.features)
        dcgan_init(self.head)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)
        if norm == "sn":
            # spectral norm bounds each layer's Lipschitz constant (Miyato et al. 2018); it is applied
            # after init so the power iteration starts from the initial weights
            for m in list(self.modules()):
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    spectral_norm(m)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, with_classes: bool = False):
        h = self.features(x).reshape(x.shape[0], -1)
        if self.colour is not None:
            h = torch.cat([h, self.colour(x[:, :3]).to(h.dtype)], 1)
        return self.head(h, labels, with_classes)


def default_d_norm(config) -> str:
    """BatchNorm unless a gradient penalty (R1, WGAN-GP) is on: those need per-sample outputs."""
    return "none" if config.loss == "wgan-gp" or config.r1 > 0 else "bn"


@register_model("dcgan")
def build_dcgan(config, schema, discriminator: bool = True):
    args = dict(config.model_args)
    known = {"ngf", "ndf", "max_ch", "d_norm", "d_colour"}
    if set(args) - known:
        raise ValueError(f"model_args for dcgan: unknown option(s) {', '.join(sorted(set(args) - known))}; "
                         f"known: {', '.join(sorted(known))}")
    sizes = schema_sizes(schema)
    max_ch = int(args.get("max_ch", 512))
    channels = image_channels(config)
    G = DCGANGenerator(config.res, sizes, config.z_dim, int(args.get("ngf", 64)), max_ch, channels)
    D = None
    if discriminator:
        norm = args.get("d_norm", default_d_norm(config))
        D = DCGANDiscriminator(config.res, sizes, int(args.get("ndf", 64)), max_ch, norm, config.cls_weight > 0,
                               int(args.get("d_colour", 0)), channels)
    return G, D
