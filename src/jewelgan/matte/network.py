"""The matting network: a compact U-Net that reads a product photo at 256 px and answers, per pixel, how much of
it is the piece (alpha), how much of the backdrop's light the piece's shadow takes (the shadow layer), and the
piece's own colour where edges mix it with the backdrop (foreground).

Why a U-Net: whether a white pixel is a diamond or the sweep behind it is decided by context (is it inside the
ring's outline, does it sparkle like the stones beside it), which the coarse levels see; where exactly a chain's
edge falls is decided by the fine levels, which the skips carry. A difference key sees one pixel's colour only,
which is why it made diamonds and white metal transparent on white. The full photo's resolution is recovered
afterwards by a guided filter (predict.py), so the network itself always runs at 256 px.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.BatchNorm2d(cout),
                         nn.LeakyReLU(0.1, inplace=True))


class MatteNet(nn.Module):
    OUTPUTS = ("alpha", "shadow", "foreground_r", "foreground_g", "foreground_b")

    def __init__(self, widths: tuple[int, ...] = (8, 16, 32, 48, 64, 96)):
        super().__init__()
        self.config = {"widths": list(widths)}
        # full resolution gets one thin layer (edges, chains); the thinking happens from half size down,
        # where it costs a quarter as much per channel
        self.down = nn.ModuleList([_conv(3, widths[0])])
        cin = widths[0]
        for w in widths[1:]:
            self.down.append(nn.Sequential(_conv(cin, w, stride=2), _conv(w, w)))
            cin = w
        self.up = nn.ModuleList()
        for w_skip, w_in in zip(reversed(widths[:-1]), reversed(widths[1:])):
            self.up.append(nn.Sequential(_conv(w_in + w_skip, w_skip), _conv(w_skip, w_skip)))
        self.head = nn.Conv2d(widths[0] + 3, len(self.OUTPUTS), 3, padding=1)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """image (N, 3, H, W) in [0, 1], H and W multiples of 32 -> alpha, shadow (N, 1, H, W) in [0, 1] and
        foreground (N, 3, H, W) in [0, 1]."""
        skips, h = [], image
        for block in self.down:
            h = block(h)
            skips.append(h)
        for block, skip in zip(self.up, reversed(skips[:-1])):
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = block(torch.cat([h, skip], 1))
        out = self.head(torch.cat([h, image], 1))
        alpha = torch.sigmoid(out[:, :1])
        shadow = torch.sigmoid(out[:, 1:2])
        # the piece's colour as a correction of the photo's: zero where the pixel is all piece
        foreground = (image + out[:, 2:]).clamp(0, 1)
        return {"alpha": alpha, "shadow": shadow, "foreground": foreground}
