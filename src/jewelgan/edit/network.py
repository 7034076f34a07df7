"""The metal translator's networks: a conditional U-Net generator that changes a piece's metal, and a patch
discriminator that judges (photo, edit) pairs, pix2pix-style.

The generator does not paint pixels. Per pixel it answers what the surface is (backdrop, metal, stone) and how
the metal's colour maps to the new metal's. The map starts from a tint transfer (below) and the network adds an
affine correction per pixel (3x3 matrix and offset, as in bilateral-grid and HDRnet colour models). The edit is
the photo plus the metal's share of that change:

    edit = photo + p_metal * (tint_transfer(photo) - photo + dA photo + b)

The tint transfer treats a metal pixel as brightness times a tint (colour / luma): a metal reflects its
surroundings multiplied by its own colour, so a pixel's tint lies along the line from grey to the metal's tint
(white in a highlight, the metal's colour on its body, deeper in a crevice) plus a little colour off that line
(coloured reflections). The photo's own metal tint is measured on this photo's metal pixels; each pixel keeps its
place along the line while the line is turned to the target metal's studio tint, and its brightness is scaled
by the metals' studio brightness ratio. Measured per photo because a shop's yellow gold photographs far more
saturated than the studio's (a global per-metal, per-channel transfer left real white-gold edits lilac and
silver edits tinted: docs/experiments.md 2026-12-06); the brightness ratio stays global because a photo's
brightness mixes the metal with its lighting.

Why this shape: a metal change keeps the piece's shape, its highlights and its reflections and moves their
colour, which a map of the photo's own pixels does; the maps and the mask are smooth, so they can be predicted at
256 px and upsampled to a photo of any size while the photo's full-size detail comes through, and a pixel the
network calls backdrop or stone cannot change at all. The encoder sees the photo only (its pooled features also
say which metal the photo shows, `metal_logits`); the metals to map from and to enter in the decoder.
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
        nn.init.zeros_(self.head.weight)  # start as the plain tint transfer below, no correction
        nn.init.zeros_(self.head.bias)
        # each metal in the studio (tint_statistics of its pixels), set from the pairs when training starts
        self.register_buffer("tint_mean", torch.ones(metals, 3))
        self.register_buffer("luma_mean", torch.full((metals,), 0.7))

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
        return self.decode(skips, image, source, target) | {"metal_logits": self.metal_logits(skips)}

    def decode(self, skips: list[torch.Tensor], image: torch.Tensor, source: torch.Tensor, target: torch.Tensor
               ) -> dict[str, torch.Tensor]:
        """The material logits and colour map from encode(image)'s features, for metal source -> target."""
        h = skips[-1]
        for block, skip in zip(self.up, reversed(skips[:-1])):
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            cond = torch.cat([metal_planes(source, self.metals, skip), metal_planes(target, self.metals, skip)], 1)
            h = block(torch.cat([h, skip, cond], 1))
        out = self.head(torch.cat([h, image], 1))
        return {"material": out[:, :len(MATERIALS)], "colour_map": out[:, len(MATERIALS):]}


def metal_share(material_logits: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W): how much of the piece at each pixel is metal rather than stone. What is piece and what is
    backdrop is the matte's answer (trained on far more backdrops), so the mask is this share times its alpha:
    white metal on a white sweep stays metal."""
    p = material_logits.softmax(1)
    return p[:, 1:2] / (p[:, 1:2] + p[:, 2:3] + 1e-6)


LUMA = (0.299, 0.587, 0.114)
DARK = 0.06          # pixels darker than this carry no reliable tint and are left out of the statistics
PRIOR_WEIGHT = 64.0  # the studio's tint counts as this many bright metal pixels: a photo with no metal found
#                      falls back to it, a photo with thousands is measured on its own
GREY_TINT = 0.05     # a tint this far from grey (RMS over channels) is half "a metal's colour", half noise
OFF_AXIS_KEPT = 0.5  # share of the colour off the metal's tint axis (coloured reflections) an edit keeps:
#                      1.0 and 0.5 measured, 0.5 better on real photos, 0.4 dB lower on the studio (experiments.md)


def luma(image: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) brightness of (N, 3, H, W) images."""
    return (image * image.new_tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)


def tint_statistics(image: torch.Tensor, weight: torch.Tensor, prior: tuple | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: the mean tint (N, 3) (colour / luma; 1, 1, 1 for grey) and the mean luma (N,) over pixels
    weighted by `weight` (N, 1, H, W) times their luma (bright pixels show the tint best; dark ones are left
    out). prior (tint (N, 3), luma (N,)) is blended in with PRIOR_WEIGHT."""
    y = luma(image)
    w = weight * y * (y > DARK)
    total = w.sum((1, 2, 3))
    tint_sum, luma_sum = (image / y.clamp_min(DARK) * w).sum((2, 3)), (y * w).sum((1, 2, 3))
    if prior is not None:
        total = total + PRIOR_WEIGHT
        tint_sum, luma_sum = tint_sum + PRIOR_WEIGHT * prior[0], luma_sum + PRIOR_WEIGHT * prior[1]
    total = total.clamp_min(1e-6)
    return tint_sum / total[:, None], luma_sum / total


def tint_weight(metal: torch.Tensor) -> torch.Tensor:
    """Which pixels measure the photo's metal: those the mask calls metal with confidence (edges mix)."""
    return ((metal - 0.5) * 2).clamp(0, 1)


def tint_transfer(net: TranslatorNet, image: torch.Tensor, metal: torch.Tensor, source: torch.Tensor,
                  target: torch.Tensor) -> dict[str, torch.Tensor]:
    """The metal transfer's parameters for each image (N, 3, H, W) whose metal mask is `metal` (N, 1, H, W): the
    photo's own tint (measured, the source metal's studio tint as the prior), the target's studio tint and the
    metals' brightness ratio."""
    return measured_transfer(image, metal, (net.tint_mean[source], net.luma_mean[source]), net.tint_mean[target],
                             net.luma_mean[target] / net.luma_mean[source])


def measured_transfer(image: torch.Tensor, mask: torch.Tensor, prior: tuple, to: torch.Tensor,
                      brightness: torch.Tensor) -> dict[str, torch.Tensor]:
    """colour_change's parameters: the tint of the masked pixels measured on the image (blended with prior, as
    tint_statistics), moved to the tint `to` (N, 3) with brightness (N,). No gradient flows through the
    measurement."""
    with torch.no_grad():
        own, _ = tint_statistics(image, tint_weight(mask), prior)
    return {"own": own, "to": to, "brightness": brightness}


def colour_change(image: torch.Tensor, colour_map: torch.Tensor, transfer: dict[str, torch.Tensor]
                  ) -> torch.Tensor:
    """The change a fully metal pixel takes: the tint transfer plus the network's affine correction.

    Each pixel's tint q (colour / luma) is 1 + s (own - 1) + e: a strength s along the photo's own metal tint
    (0 in a white highlight, 1 on the metal's body, above 1 in a saturated crevice) and a colour e off that axis
    (a coloured reflection). The edit keeps s and moves the axis: 1 + s (to - 1) + OFF_AXIS_KEPT e, times the
    pixel's luma and the metals' brightness ratio. A near-grey source (silver) has no axis to measure s along:
    there every pixel takes the whole target tint (s = 1), blended by how grey the source is. Computed on luma
    times tint, so a dark pixel's luma is never divided by."""
    n, _, h, w = image.shape
    v = {k: t.view(n, -1, 1, 1) for k, t in transfer.items()}
    y = luma(image)
    axis = v["own"] - 1
    axis2 = (axis ** 2).sum(1, keepdim=True)
    strength_y = ((image - y) * axis).sum(1, keepdim=True) / axis2.clamp_min(1e-8)  # s * luma
    colourful = axis2 ** 2 / (axis2 ** 2 + (3 * GREY_TINT ** 2) ** 2)  # 0 for a grey source, ~1 for gold
    kept_y = y + (strength_y - y) * colourful
    moved = v["brightness"] * (y + kept_y * (v["to"] - 1) + OFF_AXIS_KEPT * (image - y - strength_y * axis))
    dA = colour_map[:, :9].reshape(n, 3, 3, h, w)
    return moved - image + torch.einsum("nijhw,njhw->nihw", dA, image) + colour_map[:, 9:]


def apply_colour_map(image: torch.Tensor, colour_map: torch.Tensor, metal: torch.Tensor,
                     transfer: dict[str, torch.Tensor]) -> torch.Tensor:
    """photo + metal * change, clamped: image (N, 3, H, W), colour_map (N, 12, H, W), metal (N, 1, H, W) in
    [0, 1], transfer from tint_transfer; all at the same size."""
    return (image + metal * colour_change(image, colour_map, transfer)).clamp(0, 1)


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
