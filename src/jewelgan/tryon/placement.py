"""Virtual try-on: a jewelry cut-out placed on a customer's own photo.

Any RGBA cut-out works: one the model drew (`generate --transparent`), or a shop's own. Placement by
hand: the piece's centre of mass (of its alpha) lands on the anchor, its width is `scale` times the
photo's width (for earrings: each earring's), turned by `angle` degrees (counter-clockwise, as the photo
is seen). Earrings take two
anchors: a pair cut-out is split at the widest empty gap between its columns and each earring goes to
its side. What makes it look placed rather than pasted:
- resampling in premultiplied alpha (Lanczos for the size, bicubic for the turn), so edges stay
  anti-aliased and no dark or light fringe of the studio's backdrop survives;
- the piece's brightness and colour are pulled toward the light around the anchor (a piece lit for
  a white studio is too bright in a dim room), partly: metal keeps its own colour;
- a soft contact shadow: the piece's silhouette, blurred, offset down and to the side, darkening the
  skin under it.
Photos are read like `prepare` reads them (every format, EXIF orientation) and capped at MAX_EDGE px on
their long side (bigger ones are downscaled first; the output has the capped size).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageFilter, UnidentifiedImageError

MAX_EDGE = 2048
# EXIF orientation -> the turn that shows the photo upright (as ImageOps.exif_transpose), applied after the resize
TURNS = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
         5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
         8: Image.Transpose.ROTATE_90}
STUDIO_LUMA = 200.0  # about the brightness a studio cut-out is lit for (its backdrop is near white)


class TryOnError(ValueError):
    """A photo, cut-out or placement that cannot be used (the message says which and why)."""


@dataclass
class Placement:
    """Where a piece went: its alpha centroid in the photo, its size in pixels, its angle."""

    centroid: tuple[float, float]
    width: float
    angle: float


def load_photo(path: str | Path, max_edge: int = MAX_EDGE) -> np.ndarray:
    """A customer's photo -> uint8 (H, W, 3), EXIF-rotated, downscaled to max_edge on its long side.

    A JPEG larger than twice max_edge is decoded straight at 1/2, 1/4 or 1/8 of its size (libjpeg's scaled
    inverse DCT, still at least max_edge on the long side) before the Lanczos resize: a 24 MP phone photo
    then costs 18 MB to decode instead of 72 MB, with an output of the same size and the same look. The
    resize comes before the EXIF turn, so only the small image is turned."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            target = _capped_size(im.size, max_edge)
            box = None
            if target != im.size:  # only JPEG decoders act on a draft; it never goes below target
                # box: the original's extent in the reduced image, which rounds an odd edge up
                box = (im.draft("RGB", target) or (None, None))[1]
            rgb = im if im.mode == "RGB" else im.convert("RGB")
            if rgb.size != target:
                rgb = rgb.resize(target, Image.LANCZOS, box=box)
            turn = TURNS.get(im.getexif().get(ExifTags.Base.Orientation, 1))
            return np.asarray(rgb if turn is None else rgb.transpose(turn))
    except FileNotFoundError:
        raise TryOnError(f"{path}: no such photo") from None
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise TryOnError(f"{path}: not a readable image ({e.__class__.__name__})") from None


def _capped_size(size: tuple[int, int], max_edge: int) -> tuple[int, int]:
    """(width, height) scaled so that the long side is at most max_edge (unchanged when it is already)."""
    if max(size) <= max_edge:
        return size
    k = max_edge / max(size)
    return max(1, round(size[0] * k)), max(1, round(size[1] * k))


def load_cutout(path: str | Path, key_background: bool = False) -> np.ndarray:
    """An RGBA cut-out -> uint8 (h, w, 4). Without an alpha channel: cut out of its backdrop by the jewelry
    matte (its own colour at the edges, matte/predict.py) when key_background, else refused."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
            rgba = np.asarray(im.convert("RGBA"))
    except FileNotFoundError:
        raise TryOnError(f"{path}: no such cut-out") from None
    except (UnidentifiedImageError, OSError) as e:
        raise TryOnError(f"{path}: not a readable image ({e.__class__.__name__})") from None
    if has_alpha and rgba[..., 3].min() < 255:
        return rgba
    if not key_background:
        raise TryOnError(f"{path}: has no alpha channel, so there is no piece to cut out; pass a transparent "
                         "PNG (jewelgan generate --transparent) or --key-background to key it from a plain backdrop")
    from jewelgan.matte.predict import MatteError, no_piece, shipped_matte

    try:
        cut = shipped_matte()(rgba[..., :3]).cutout()
    except MatteError as e:
        raise TryOnError(f"{path}: {e}") from None
    why = no_piece(cut[..., 3])
    if why:
        raise TryOnError(f"{path}: the matte found no piece on its backdrop ({why})")
    return cut


def split_pair(cutout: np.ndarray) -> list[np.ndarray]:
    """A pair of earrings -> [left, right] at the widest run of empty columns between them (one piece:
    [it])."""
    cols = cutout[..., 3].max(axis=0) > 8
    idx = np.flatnonzero(cols)
    if len(idx) < 2:
        return [cutout]
    gaps = np.diff(idx)
    k = int(gaps.argmax())
    if gaps[k] < max(2, cutout.shape[1] // 32):
        return [cutout]
    cut = idx[k] + gaps[k] // 2
    return [cutout[:, :cut], cutout[:, cut:]]


def crop_to_piece(cutout: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(cutout[..., 3] > 0)
    if not len(xs):
        raise TryOnError("the cut-out is fully transparent: there is no piece in it")
    return cutout[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]


def _premultiplied(rgba: np.ndarray) -> Image.Image:
    return Image.fromarray(rgba, "RGBA").convert("RGBa")


def transform(cutout: np.ndarray, width_px: float, angle: float) -> np.ndarray:
    """Crop to the piece, resize to width_px wide, turn by angle degrees -> float32 straight RGBA (0..1)."""
    piece = crop_to_piece(cutout)
    h, w = piece.shape[:2]
    new_w = max(1, round(width_px))
    new_h = max(1, round(h * width_px / w))
    im = _premultiplied(piece).resize((new_w, new_h), Image.LANCZOS)
    if angle:
        im = im.rotate(angle, resample=Image.BICUBIC, expand=True)
    out = np.asarray(im.convert("RGBA")).astype(np.float32) / 255.0
    return out


def alpha_centroid(alpha: np.ndarray) -> tuple[float, float]:
    total = float(alpha.sum())
    ys, xs = np.indices(alpha.shape)
    return float((xs * alpha).sum() / total), float((ys * alpha).sum() / total)


def attachment_point(alpha: np.ndarray) -> tuple[float, float]:
    """Where a hanging piece is held: the middle of its topmost solid rows (an earring's hook, a pendant's
    bail), as (x, y) in the layer's pixels."""
    rows = np.flatnonzero(alpha.max(axis=1) > 0.5)
    if not len(rows):
        return alpha_centroid(alpha)
    top = rows[0]
    band = alpha[top: top + max(2, len(rows) // 20)]
    xs = np.nonzero(band > 0.5)[1]
    return float(xs.mean()), float(top)


def place(photo: np.ndarray, cutout: np.ndarray, anchor: tuple[float, float], scale: float, angle: float = 0.0,
          shadow: bool = True, match_light: bool = True, front: np.ndarray | None = None,
          hang: bool = False) -> tuple[np.ndarray, Placement]:
    """Composite one piece onto the photo -> (uint8 (H, W, 3), where it went). `front` (float (H, W) in
    [0, 1], optional): how much of each photo pixel lies in front of the piece (hair, a finger), hiding
    the piece and its shadow there (tryon_occlusion builds it). `hang`: the anchor holds the piece's
    attachment point (an earring at its lobe, a pendant at the chain's lowest point), not its middle."""
    H, W = photo.shape[:2]
    x, y = anchor
    if not (0 <= x < W and 0 <= y < H):
        raise TryOnError(f"anchor {x:g},{y:g} is outside the {W}x{H} photo")
    if not 0 < scale <= 1:
        raise TryOnError(f"scale is the piece's width as a share of the photo's width: in (0, 1], got {scale:g}")
    if front is not None and front.shape[:2] != (H, W):
        raise TryOnError(f"the occlusion mask is {front.shape[1]}x{front.shape[0]}, the photo {W}x{H}")
    piece = transform(cutout, scale * W, angle)
    rgb, a = piece[..., :3], piece[..., 3]
    cx, cy = alpha_centroid(a)
    hx, hy = attachment_point(a) if hang else (cx, cy)
    x0, y0 = int(round(x - hx)), int(round(y - hy))
    if match_light:
        rgb = _match_light(rgb, a, photo, (x, y), max(piece.shape[:2]))
    cast = _shadow_layer(a) if shadow else None
    # only the rectangle the piece and its shadow touch is composited, in float: the rest of the photo keeps
    # its bytes, and a 2,048 px photo costs one uint8 copy instead of three float copies (113 MB)
    boxes = [(x0, y0, a.shape[1], a.shape[0])]
    if cast is not None:
        boxes.append((x0 + cast[1], y0 + cast[2], cast[0].shape[1], cast[0].shape[0]))
    left, top = max(0, min(b[0] for b in boxes)), max(0, min(b[1] for b in boxes))
    right, bottom = min(W, max(b[0] + b[2] for b in boxes)), min(H, max(b[1] + b[3] for b in boxes))
    out = photo.copy()
    if left < right and top < bottom:
        region = photo[top:bottom, left:right].astype(np.float32) / 255.0
        behind = None if front is None else 1.0 - np.clip(front[top:bottom, left:right].astype(np.float32), 0, 1)
        if cast is not None:
            _shade(region, cast[0], x0 + cast[1] - left, y0 + cast[2] - top, behind)
        _over(region, rgb, a, x0 - left, y0 - top, behind)
        out[top:bottom, left:right] = np.clip(region * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out, Placement((x0 + cx, y0 + cy), scale * W, angle)


def _window(shape, h: int, w: int, x0: int, y0: int):
    """The overlapping slices of a (h, w) layer at (x0, y0) and an image of `shape`, or None."""
    H, W = shape[:2]
    ys, xs = max(0, y0), max(0, x0)
    ye, xe = min(H, y0 + h), min(W, x0 + w)
    if ys >= ye or xs >= xe:
        return None
    return (slice(ys, ye), slice(xs, xe)), (slice(ys - y0, ye - y0), slice(xs - x0, xe - x0))


def _over(out: np.ndarray, rgb: np.ndarray, a: np.ndarray, x0: int, y0: int, behind=None) -> None:
    win = _window(out.shape, *a.shape, x0, y0)
    if win is None:
        return
    dst, src = win
    alpha = (a[src] if behind is None else a[src] * behind[dst])[..., None]
    out[dst] = out[dst] * (1 - alpha) + rgb[src] * alpha


def _shadow_layer(a: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The piece's soft contact shadow: (float (h, w) in [0, 1], its offset from the piece's top left)."""
    size = max(a.shape)
    blur = max(1.0, size * 0.04)
    pad = int(3 * blur) + 2
    sil = Image.fromarray(np.pad((a * 255).astype(np.uint8), pad)).filter(ImageFilter.GaussianBlur(blur))
    dx, dy = int(round(size * 0.02)), int(round(size * 0.04))  # light from above, a little to the side
    return np.asarray(sil).astype(np.float32) / 255.0, dx - pad, dy - pad


def _shade(out: np.ndarray, s: np.ndarray, x0: int, y0: int, behind=None, opacity: float = 0.35) -> None:
    win = _window(out.shape, *s.shape, x0, y0)
    if win is None:
        return
    dst, src = win
    cast = s[src] if behind is None else s[src] * behind[dst]
    out[dst] *= (1 - opacity * cast)[..., None]


def _match_light(rgb: np.ndarray, a: np.ndarray, photo: np.ndarray, anchor, size: int) -> np.ndarray:
    """Bring the piece's brightness partway toward the photo's (uint8) around the anchor, keeping its hue and
    saturation: metal is recognised by its colour (a yellow gold pulled toward a dark sweater's colour
    read as khaki), and the room's light shows in how bright the piece is."""
    H, W = photo.shape[:2]
    r = max(8, size)
    x, y = int(anchor[0]), int(anchor[1])
    patch = photo[max(0, y - r): min(H, y + r), max(0, x - r): min(W, x + r)].reshape(-1, 3)
    local_luma = float(patch.mean(0, dtype=np.float64) @ [0.299, 0.587, 0.114])
    # a quarter power and a floor: a piece in a dim room is dimmer, but its metal still reads as metal
    gain = float(np.clip((local_luma / STUDIO_LUMA) ** 0.25, 0.75, 1.05))
    return np.clip(rgb * gain, 0, 1)


def try_on(photo: np.ndarray, cutout: np.ndarray, anchors: list[tuple[float, float]], scale: float,
           angle: float = 0.0, shadow: bool = True, match_light: bool = True,
           front: np.ndarray | None = None, hang: bool = False) -> tuple[np.ndarray, list[Placement]]:
    """One anchor: the cut-out there. Two anchors (earrings): the pair split, each earring to its side
    (a single piece is used for both, mirrored on the second). `front`: what covers the pieces (see place);
    `hang`: anchors hold the pieces' attachment points (see place)."""
    if len(anchors) not in (1, 2):
        raise TryOnError(f"give one anchor, or two for earrings; got {len(anchors)}")
    if len(anchors) == 1:
        out, where = place(photo, cutout, anchors[0], scale, angle, shadow, match_light, front, hang)
        return out, [where]
    placements, out = [], photo
    for part, anchor in zip(pieces_for(cutout, anchors), anchors):
        out, where = place(out, part, anchor, scale, angle, shadow, match_light, front, hang)
        placements.append(where)
    return out, placements


def pieces_for(cutout: np.ndarray, anchors: list[tuple[float, float]]) -> list[np.ndarray]:
    """The cut-out to put at each anchor: itself for one anchor; for two, a pair split with the left
    earring at the left anchor (a single earring used for both, mirrored on the second)."""
    if len(anchors) == 1:
        return [cutout]
    parts = split_pair(cutout)
    if len(parts) == 1:
        parts = [cutout, cutout[:, ::-1]]
    left_first = anchors[0][0] <= anchors[1][0]
    return parts if left_first else parts[::-1]
