"""Image grids (sample sheets, contact sheets) with optional captions under each tile."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def to_uint8(images) -> np.ndarray:
    """torch NCHW in [-1, 1] or numpy NHWC uint8 -> numpy NHWC uint8."""
    if isinstance(images, np.ndarray):
        if images.dtype != np.uint8:
            raise ValueError(f"numpy images must be uint8, got {images.dtype}")
        return images
    import torch

    x = images.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).contiguous().numpy()


def fit_tile(image: np.ndarray, side: int) -> np.ndarray:
    """An RGB photo of any shape fitted (Lanczos, aspect kept) and centred in a side x side tile on white."""
    thumb = Image.fromarray(image)
    thumb.thumbnail((side, side), Image.LANCZOS)
    tile = Image.new("RGB", (side, side), (255, 255, 255))
    tile.paste(thumb, ((side - thumb.width) // 2, (side - thumb.height) // 2))
    return np.asarray(tile)


def make_grid(images, ncol: int | None = None, captions: list[str] | None = None,
              pad: int = 2, tile: int | None = None) -> Image.Image:
    """Arrange images (NHWC uint8, or NCHW tensors in [-1, 1]) into one picture: RGB on white, or for
    RGBA images (cut-outs) RGBA on a transparent sheet.

    captions: one short text per image, drawn under its tile (lines split on "\\n").
    tile: upscale tiles to this size with nearest neighbour, so 32 px samples stay readable.
    """
    arr = to_uint8(images)
    n = len(arr)
    if n == 0:
        raise ValueError("make_grid needs at least one image")
    ncol = ncol or math.ceil(math.sqrt(n))
    nrow = math.ceil(n / ncol)
    h, w = arr.shape[1:3]
    size = tile or w
    scale = size / w
    th = int(round(h * scale))
    font = ImageFont.load_default()
    cap_lines = max((c.count("\n") + 1 for c in captions), default=0) if captions else 0
    cap_h = cap_lines * 11 + (2 if cap_lines else 0)
    mode, paper = ("RGBA", (255, 255, 255, 0)) if arr.shape[-1] == 4 else ("RGB", "white")
    sheet = Image.new(mode, (ncol * (size + pad) + pad, nrow * (th + cap_h + pad) + pad), paper)
    draw = ImageDraw.Draw(sheet)
    for i, im in enumerate(arr):
        r, c = divmod(i, ncol)
        x0, y0 = pad + c * (size + pad), pad + r * (th + cap_h + pad)
        tile_im = Image.fromarray(im)
        if scale != 1:
            tile_im = tile_im.resize((size, th), Image.NEAREST if scale > 1 else Image.LANCZOS)
        sheet.paste(tile_im, (x0, y0))
        if captions:
            draw.multiline_text((x0 + 1, y0 + th + 1), captions[i], fill=(40, 40, 40), font=font, spacing=1)
    return sheet


def save_grid(images, path: str | Path, **kwargs) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    make_grid(images, **kwargs).save(path)
    return path
