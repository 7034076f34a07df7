"""Alpha for product photos shot on a plain backdrop: soft difference keying from the backdrop colour.

Most shop photos are a piece on a white, grey or coloured sweep. The backdrop colour is the median of
the photo's border (the same estimate `prepare` pads with). A pixel that is a share a of piece colour F
over backdrop B sits at distance a * |F - B| from B, so its alpha is its distance (above the border's
own noise) over the distance of the most distinct pixel near it, which stands for |F - B|: soft,
because anti-aliased edges and thin chains are partly covered pixels. Pieces close to the backdrop's
colour (a clear stone on white) key partly transparent: colour alone cannot tell them from it.

Where the border is not one colour (a lifestyle shot, a busy surface, a gradient), there is no
backdrop to key against: the photo keeps an opaque alpha and the reason is reported, never a cut-out
with holes punched through it. The same when the key would leave almost nothing or almost everything.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter

from jewelgan.data.imageio import border_frame

# border pixels within this distance (0-255 RGB) of the backdrop colour count as backdrop
BACKDROP_TOLERANCE = 24.0
# the share of border pixels that must be backdrop for the photo to be keyed
MIN_PLAIN_BORDER = 0.8
# the smallest colour distance that counts as fully opaque (so noise near the backdrop stays faint)
SOFTNESS = 40.0
MIN_FOREGROUND, MAX_FOREGROUND = 0.005, 0.95


def key_alpha(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """uint8 (R, R, 3) photo -> (uint8 (R, R) alpha, None) or (all-255 alpha, why it could not be keyed)."""
    opaque = np.full(image.shape[:2], 255, np.uint8)
    border = border_frame(image, max(1, image.shape[0] // 32)).astype(np.float32)
    backdrop = np.median(border, axis=0)
    border_dist = np.linalg.norm(border - backdrop, axis=1)
    plain = float((border_dist < BACKDROP_TOLERANCE).mean())
    if plain < MIN_PLAIN_BORDER:
        return opaque, f"busy background: only {plain:.0%} of the border is one colour, alpha left opaque"
    noise = float(np.percentile(border_dist[border_dist < BACKDROP_TOLERANCE], 95))
    start = max(4.0, 1.5 * noise)
    dist = np.linalg.norm(image.astype(np.float32) - backdrop, axis=2)
    window = max(3, image.shape[0] // 12) | 1
    full = np.maximum(maximum_filter(dist, size=window) - start, SOFTNESS)
    alpha = np.clip((dist - start) / full, 0.0, 1.0)
    share = float((alpha > 0.5).mean())
    if not MIN_FOREGROUND <= share <= MAX_FOREGROUND:
        return opaque, f"keying found {share:.1%} of the photo in front of the backdrop, alpha left opaque"
    return np.round(alpha * 255).astype(np.uint8), None
