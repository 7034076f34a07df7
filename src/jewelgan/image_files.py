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


ANIMATION_FORMATS = ("webp", "gif")


def encode_animation(frames: np.ndarray, fmt: str = "webp", ms_per_frame: int = 120, bounce: bool = True) -> bytes:
    """uint8 (T, H, W, 3|4) -> an endlessly looping animated WebP or GIF; bounce plays it forward then back,
    so a strip from one piece to another loops without a jump."""
    if fmt not in ANIMATION_FORMATS:
        raise ValueError(f"animation format must be one of {', '.join(ANIMATION_FORMATS)}, got {fmt!r}")
    seq = list(frames) + (list(frames[-2:0:-1]) if bounce and len(frames) > 2 else [])
    images = [Image.fromarray(np.ascontiguousarray(f)) for f in seq]
    buf = io.BytesIO()
    options = {"lossless": True} if fmt == "webp" else {}
    images[0].save(buf, format=fmt.upper(), save_all=True, append_images=images[1:], duration=ms_per_frame, loop=0,
                   **options)
    return buf.getvalue()


def data_url(image: np.ndarray, fmt: str = "png") -> str:
    """uint8 (H, W, 3|4) -> a data: URL of the image file (what the API's JSON answers carry)."""
    import base64

    return f"data:{media_type(fmt)};base64," + base64.b64encode(encode_image(image, fmt)).decode()
