"""The seed's MLP GAN, made conditional and numerically stable.

G: z (100) -> 256 -> 512 -> 1024 -> 3*R*R with LeakyReLU(0.2) and tanh, as in the seed (4*R*R with alpha).
D: pixels -> 512 -> 256 -> logit with LeakyReLU(0.2). The seed ended D with a sigmoid and took
log() of it; here D returns logits and the losses use BCE-with-logits, which cannot overflow.
Conditioning: a label embedding concatenated to z in G, a projection head in D. On a CPU budget this
cheap model sees many more images per second than a conv net, which is why it stays a baseline.
"""

from __future__ import annotations

import torch
from torch import nn

from jewelgan.models.layers import LabelEmbedding, ProjectionHead, check_inputs, image_channels, schema_sizes
from jewelgan.models.registry import register_model


class MLPGenerator(nn.Module):
    def __init__(self, res: int, sizes: list[int], z_dim: int = 100, hidden=(256, 512, 1024), embed_dim: int = 32,
                 channels: int = 3):
        super().__init__()
        self.res, self.z_dim, self.sizes, self.channels = res, z_dim, list(sizes), channels
        self.embed = LabelEmbedding(sizes, embed_dim) if sizes else None
        layers: list[nn.Module] = []
        width = z_dim + (embed_dim if sizes else 0)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
            width = h
        layers += [nn.Linear(width, channels * res * res), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        labels = check_inputs(z, labels, self.z_dim, self.sizes, type(self).__name__)
        x = z if self.embed is None else torch.cat([z, self.embed(labels).to(z.dtype)], 1)
        return self.net(x).view(z.shape[0], self.channels, self.res, self.res)


class MLPDiscriminator(nn.Module):
    def __init__(self, res: int, sizes: list[int], hidden=(512, 256), classify: bool = False, channels: int = 3):
        super().__init__()
        self.res, self.sizes = res, list(sizes)
        layers: list[nn.Module] = [nn.Flatten()]
        width = channels * res * res
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
            width = h
        self.features = nn.Sequential(*layers)
        self.head = ProjectionHead(width, sizes, classify)
        self.classifies = self.head.classifier is not None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, with_classes: bool = False):
        # reshape (not view): channels_last inputs are not contiguous in NCHW order
        return self.head(self.features(x.reshape(x.shape[0], -1)), labels, with_classes)


@register_model("mlp")
def build_mlp(config, schema, discriminator: bool = True):
    args = dict(config.model_args)
    unknown = set(args) - {"hidden", "d_hidden", "embed_dim"}
    if unknown:
        raise ValueError(f"model_args for mlp: unknown option(s) {', '.join(sorted(unknown))}; known: hidden, d_hidden, embed_dim")
    sizes = schema_sizes(schema)
    channels = image_channels(config)
    G = MLPGenerator(config.res, sizes, config.z_dim, tuple(args.get("hidden", (256, 512, 1024))),
                     int(args.get("embed_dim", 32)), channels)
    D = (MLPDiscriminator(config.res, sizes, tuple(args.get("d_hidden", (512, 256))), config.cls_weight > 0,
                          channels) if discriminator else None)
    return G, D
