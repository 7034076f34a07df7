"""Encoding generated images to file bytes, shared by the CLI, the Python API and the HTTP server so
that the same image is the same bytes whichever way it was asked for."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

# name as users write it -> (Pillow format, media type, save options); quality is set explicitly
# because Pillow's defaults (JPEG 75) are too lossy for product images and may change between releases
FORMATS = {
    "png": ("PNG", "image/png", {}),
    "jpg": ("JPEG", "image/jpeg", {"quality": 95}),
    "jpeg": ("JPEG", "image/jpeg", {"quality": 95}),
    "webp": ("WEBP", "image/webp", {"quality": 90}),
}
ALPHA_FORMATS = ("png", "webp")


def check_format(fmt: str, transparent: bool = False) -> str:
    """The format's canonical extension; ValueError naming the choices for an unknown or alpha-less one."""
    if fmt not in FORMATS:
        raise ValueError(f"image format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if transparent and fmt not in ALPHA_FORMATS:
        raise ValueError(f"{fmt} has no alpha channel: use png or webp for transparent cut-outs")
    return "jpg" if fmt == "jpeg" else fmt


def media_type(fmt: str) -> str:
    return FORMATS[fmt][1]


def encode_image(image: np.ndarray, fmt: str = "png") -> bytes:
    """uint8 (H, W, 3|4) -> the bytes of an image file."""
    pil_format, _, options = FORMATS[fmt]
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format=pil_format, **options)
    return buf.getvalue()
