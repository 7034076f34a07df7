"""The metal translator's networks: a conditional U-Net generator that changes a piece's metal, and a patch
discriminator that judges (photo, edit) pairs, pix2pix-style.

The generator does not paint pixels. Per pixel it answers what the surface is (backdrop, metal, stone) and how
the metal's colour maps to the new metal's. The map starts from a statistics transfer (per channel, the source metal's studio mean
and spread moved onto the target's) and the network adds an affine correction per pixel (3x3 matrix and offset, as in bilateral-grid and HDRnet colour models). The edit
is the photo plus the metal's share of that change:

    edit = photo + p_metal * (transfer(photo) - photo + dA photo + b)

Why this shape: a metal change keeps the piece's shape, its highlights and its reflections and moves their
colour, which an affine map of the photo's own pixels does; the maps and the mask are smooth, so they can be
predicted at 256 px and upsampled to a photo of any size while the photo's full-size detail comes through the
multiplication, and a pixel the network calls backdrop or stone cannot change at all. The encoder sees the photo
only (its pooled features also say which metal the photo shows, `metal_logits`); the metals to map from and to
enter in the decoder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from jewelgan.matte.network import _conv

MATERIALS = ("backdrop", "metal", "stone")  # the studio's material map (studio/render.py BACKDROP, METAL, STONE)


def metal_planes(index: torch.Tensor, count: int, like: torch.Tensor) -> torch.Tensor:
    """One-hot planes (N, count, H, W) of metal indices (N,) at like's size."""
    onehot = F.one_hot(index.long(), count).to(like.dtype)
    return onehot[:, :, None, None].expand(-1, -1, *like.shape[-2:])


class TranslatorNet(nn.Module):
    COLOUR_MAP = 12  # dA (3x3) and b (3)

    def __init__(self, metals: int, widths: tuple[int, ...] = (12, 24, 32, 48, 64, 96)):
        super().__init__()
        self.metals = metals
        self.config = {"metals": metals, "widths": list(widths)}
        self.down = nn.ModuleList([_conv(3, widths[0])])
        cin = widths[0]
        for w in widths[1:]:
            self.down.append(nn.Sequential(_conv(cin, w, stride=2), _conv(w, w)))
            cin = w
        self.classify = nn.Linear(widths[-1], metals)
        cond = 2 * metals  # from and to, as planes at every decoder level
        self.up = nn.ModuleList()
        for w_skip, w_in in zip(reversed(widths[:-1]), reversed(widths[1:])):
            self.up.append(nn.Sequential(_conv(w_in + w_skip + cond, w_skip), _conv(w_skip, w_skip)))
        self.head = nn.Conv2d(widths[0] + 3, len(MATERIALS) + self.COLOUR_MAP, 3, padding=1)
        nn.init.zeros_(self.head.weight)  # start as the plain statistics transfer below, no correction
        nn.init.zeros_(self.head.bias)
        # each metal's colour in the studio (per-channel mean and spread of its pixels), set from the pairs
        self.register_buffer("metal_mean", torch.full((metals, 3), 0.5))
        self.register_buffer("metal_std", torch.full((metals, 3), 0.2))

    def encode(self, image: torch.Tensor) -> list[torch.Tensor]:
        skips, h = [], image
        for block in self.down:
            h = block(h)
            skips.append(h)
        return skips

    def metal_logits(self, skips: list[torch.Tensor]) -> torch.Tensor:
        return self.classify(skips[-1].mean((2, 3)))

    def forward(self, image: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """image (N, 3, H, W) in [0, 1] (H, W multiples of 32), source/target metal indices (N,) ->
        material logits (N, 3, H, W), colour map (N, 12, H, W), metal logits (N, metals) of the photo."""
        skips = self.encode(image)
        h = skips[-1]
        for block, skip in zip(self.up, reversed(skips[:-1])):
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            cond = torch.cat([metal_planes(source, self.metals, skip), metal_planes(target, self.metals, skip)], 1)
            h = block(torch.cat([h, skip, cond], 1))
        out = self.head(torch.cat([h, image], 1))
        return {"material": out[:, :len(MATERIALS)], "colour_map": out[:, len(MATERIALS):],
                "metal_logits": self.metal_logits(skips)}


def metal_share(material_logits: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W): how much of the piece at each pixel is metal rather than stone. What is piece and what is
    backdrop is the matte's answer (trained on far more backdrops), so the mask is this share times its alpha:
    white metal on a white sweep stays metal."""
    p = material_logits.softmax(1)
    return p[:, 1:2] / (p[:, 1:2] + p[:, 2:3] + 1e-6)


def metal_transfer(net: TranslatorNet, source: torch.Tensor, target: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (scale, offset) (N, 3) that move the source metal's studio mean and spread onto the target's
    (a Reinhard-style transfer; within the exact metal mask it is within a few dB of the truth in the studio).
    Global per pair of metals, not per photo: a photo's own metal statistics mix the metal with its lighting
    (a ring mostly in shadow is darker, not another metal); the network's correction adapts it to the photo."""
    scale = net.metal_std[target] / net.metal_std[source]
    return scale, net.metal_mean[target] - net.metal_mean[source] * scale


def colour_change(image: torch.Tensor, colour_map: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor
                  ) -> torch.Tensor:
    """The change a fully metal pixel takes: the statistics transfer plus the network's affine correction."""
    n, _, h, w = image.shape
    dA = colour_map[:, :9].reshape(n, 3, 3, h, w)
    moved = image * scale[..., None, None] + offset[..., None, None] - image
    return moved + torch.einsum("nijhw,njhw->nihw", dA, image) + colour_map[:, 9:]


def apply_colour_map(image: torch.Tensor, colour_map: torch.Tensor, metal: torch.Tensor, scale: torch.Tensor,
                     offset: torch.Tensor) -> torch.Tensor:
    """photo + metal * change, clamped: image (N, 3, H, W), colour_map (N, 12, H, W), metal (N, 1, H, W) in
    [0, 1], scale/offset (N, 3) from metal_transfer; all at the same size."""
    return (image + metal * colour_change(image, colour_map, scale, offset)).clamp(0, 1)


class PatchDiscriminator(nn.Module):
    """Judges 26 x 26 px patches of (photo, edit, target metal): is this edit what that metal looks like on this
    piece? Spectral norm keeps it from overpowering the reconstruction loss on a small budget."""

    def __init__(self, metals: int, width: int = 32):
        super().__init__()
        self.metals = metals
        sn = nn.utils.spectral_norm
        self.net = nn.Sequential(
            sn(nn.Conv2d(6 + metals, width, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True),
            sn(nn.Conv2d(width, 2 * width, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True),
            sn(nn.Conv2d(2 * width, 4 * width, 3, 1, 1)), nn.LeakyReLU(0.2, inplace=True),
            sn(nn.Conv2d(4 * width, 1, 3, 1, 1)))

    def forward(self, photo: torch.Tensor, edit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([photo, edit, metal_planes(target, self.metals, photo)], 1))
