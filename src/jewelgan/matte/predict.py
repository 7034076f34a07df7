"""Using the matte on a photo of any size: the network at 256 px, then a guided filter at the photo's own size.

The network decides what is piece and what is backdrop at 256 px (NET_SIDE). The photo's own detail comes back
through a fast guided filter (He & Sun): per 256 px pixel, alpha is fitted as a linear function of the photo's
colour in a small window; those fits are upsampled and applied to the full-size photo, so an edge lands where
the photo's edge is, at the photo's resolution, and a thin chain stays as thin as it is in the photo. The piece's
inside is then made solid, the faint ripple round it cleared, and faint alpha far from the piece cleared as for
the generator's cut-outs (inference/cutout.clean_alpha).

    from jewelgan.matte.predict import Matte
    result = Matte.load()(rgb)            # rgb: uint8 (H, W, 3)
    rgba = result.cutout()                # straight RGBA at the photo's size; result.shadow_layer() beside it
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import binary_erosion, uniform_filter

from jewelgan.atomic import atomic_write_json, write_durable
from jewelgan.formats import read_safetensors, read_tagged_json
from jewelgan.matte.network import MatteNet

FORMAT = "jewelgan-matte"
VERSION = 1
NET_SIDE = 256
FAINT = 10 / 255  # alpha below this is set to 0
BAND = 256        # rows of a large photo worked on at a time
SHIPPED = Path(__file__).resolve().parent.parent / "pretrained" / "matte"


class MatteError(ValueError):
    """A matte file that is missing or damaged, or a photo the matte cannot read."""


def write_matte(folder: str | Path, net: MatteNet, meta: dict) -> Path:
    """Weights (fp16: the matte loses nothing measurable, benchmarks/matte_quality.py) then the JSON."""
    from safetensors.torch import save as st_save

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in net.state_dict().items()}
    write_durable(folder / "matte.safetensors", st_save(tensors))
    atomic_write_json(folder / "matte.json", {"format": FORMAT, "version": VERSION, "network": net.config, **meta})
    return folder / "matte.json"


def guided_fit(guide: np.ndarray, p: np.ndarray, radius: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Colour guided filter coefficients: p ~ A . guide + B per window (guide (H, W, 3), p (H, W))."""
    size = 2 * radius + 1
    box = lambda x: uniform_filter(x, size=size, mode="reflect")  # noqa: E731
    mean_i = np.stack([box(guide[..., c]) for c in range(3)], -1)
    mean_p = box(p)
    cov_ip = np.stack([box(guide[..., c] * p) for c in range(3)], -1) - mean_i * mean_p[..., None]
    var = np.empty(guide.shape[:2] + (3, 3), np.float32)
    for a in range(3):
        for b in range(a, 3):
            var[..., a, b] = var[..., b, a] = box(guide[..., a] * guide[..., b]) - mean_i[..., a] * mean_i[..., b]
    var += eps * np.eye(3, dtype=np.float32)
    coef = np.linalg.solve(var, cov_ip[..., None])[..., 0]
    offset = mean_p - (coef * mean_i).sum(-1)
    return (np.stack([box(coef[..., c]) for c in range(3)], -1), box(offset))


def fit_to_net(photo: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
    """A uint8 photo fitted into NET_SIDE (long side) as float32 (h, w, 3) in [0, 1], and the same padded to
    NET_SIDE x NET_SIDE by repeating its edges (which reads as more backdrop) as a (1, 3, S, S) tensor."""
    h, w = photo.shape[:2]
    scale = NET_SIDE / max(h, w)
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    small = np.asarray(Image.fromarray(photo).resize((sw, sh), Image.LANCZOS if scale < 1 else Image.BICUBIC))
    small = small.astype(np.float32) / 255
    padded = np.pad(small, ((0, NET_SIDE - sh), (0, NET_SIDE - sw), (0, 0)), mode="edge")
    return small, torch.from_numpy(padded).permute(2, 0, 1)[None].contiguous()


def resize_band(x: np.ndarray, size: tuple[int, int], y0: int, y1: int) -> np.ndarray:
    """Rows y0:y1 of the float map x (h, w[, c]) resized bilinearly to size (W, H), without the rest: PIL samples
    the matching box of the source (its F mode keeps floats)."""
    W, H = size
    h, w = x.shape[:2]
    box = (0.0, y0 * h / H, float(w), y1 * h / H)
    if x.ndim == 2:
        return np.asarray(Image.fromarray(x.astype(np.float32), "F").resize((W, y1 - y0), Image.BILINEAR, box=box))
    return np.stack([resize_band(x[..., c], size, y0, y1) for c in range(x.shape[2])], -1)


@dataclass
class MatteResult:
    photo: np.ndarray        # uint8 (H, W, 3)
    alpha: np.ndarray        # float32 (H, W) in [0, 1]
    shadow: np.ndarray       # float32 (H, W): the share of the backdrop's light the piece's shadow takes
    foreground: np.ndarray   # uint8 (H, W, 3): the piece's own colour (the photo's where it is all piece)

    def cutout(self) -> np.ndarray:
        """uint8 (H, W, 4) straight RGBA: the piece's own colour, its alpha."""
        out = np.empty(self.alpha.shape + (4,), np.uint8)
        out[..., :3] = self.foreground
        out[..., 3] = np.round(self.alpha * 255)
        return out

    def shadow_layer(self) -> np.ndarray:
        """uint8 (H, W, 4): black, as opaque as the shadow is dark; put it under the cut-out to keep the
        shadow, leave it out to drop it."""
        out = np.zeros(self.alpha.shape + (4,), np.uint8)
        out[..., 3] = np.round(np.clip(self.shadow, 0, 1) * 255)
        return out


class Matte:
    def __init__(self, net: MatteNet, meta: dict | None = None):
        self.net = net.eval().requires_grad_(False)
        self.meta = meta or {}

    @classmethod
    def load(cls, folder: str | Path | None = None) -> "Matte":
        folder = Path(folder) if folder else SHIPPED
        meta = read_tagged_json(folder / "matte.json", FORMAT, VERSION, MatteError)
        tensors = read_safetensors(folder / "matte.safetensors", MatteError)
        try:
            net = MatteNet(tuple(meta["network"]["widths"]))
            net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in tensors.items()})
        except (KeyError, TypeError, RuntimeError) as e:
            raise MatteError(f"{folder}: not a loadable matte ({str(e).splitlines()[0]})") from None
        return cls(net, meta)

    @classmethod
    def from_run(cls, run: str | Path) -> "Matte":
        from jewelgan.runs import checkpoint as ckpt

        found = ckpt.open_checkpoint(run)
        net = MatteNet(tuple(found.state["network"]["widths"]))
        found.load_module("matte", net)
        return cls(net, {"run": str(run), "kimg": found.state.get("kimg")})

    def _net_pass(self, photo: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The network on the photo fitted into NET_SIDE; returns the fitted photo and the outputs cropped to it."""
        small, x = fit_to_net(photo)
        sh, sw = small.shape[:2]
        with torch.no_grad():
            out = self.net(x)
        cut = lambda t: t[0].permute(1, 2, 0).numpy()[:sh, :sw]  # noqa: E731
        return small, {"alpha": cut(out["alpha"])[..., 0], "shadow": cut(out["shadow"])[..., 0],
                       "foreground": cut(out["foreground"])}

    def __call__(self, photo: np.ndarray) -> MatteResult:
        from jewelgan.inference.cutout import clean_alpha

        if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8 or min(photo.shape[:2]) < 8:
            raise MatteError(f"the matte needs a uint8 HxWx3 photo of at least 8 px, got {photo.dtype} {photo.shape}")
        h, w = photo.shape[:2]
        small, out = self._net_pass(photo)
        sh, sw = small.shape[:2]
        # the guided filter's fit at the network's size, applied at the photo's size
        coef, offset = guided_fit(small, out["alpha"], radius=2, eps=1e-3)
        # the piece's colour: the photo plus the network's correction (zero inside the piece), so its detail is
        # the photo's own
        correction = out["foreground"] - small
        alpha = np.empty((h, w), np.float32)
        shadow = np.empty((h, w), np.float32)
        foreground = np.empty((h, w, 3), np.uint8)
        # a band of rows at a time: a 24 MP photo's float planes would take 1.5 GB at once, its bands ~40 MB
        for y0 in range(0, h, BAND):
            y1 = min(h, y0 + BAND)
            up = lambda x: resize_band(x, (w, h), y0, y1) if (h, w) != (sh, sw) else x[y0:y1]  # noqa: E731
            full = photo[y0:y1].astype(np.float32) / 255
            alpha[y0:y1] = np.clip((up(coef) * full).sum(-1) + up(offset), 0, 1)
            shadow[y0:y1] = np.clip(up(out["shadow"]), 0, 1)
            foreground[y0:y1] = np.round(np.clip(full + up(correction), 0, 1) * 255)
        # jewelry is opaque: a pixel whose neighbours are all more than half piece is inside it (the fit leaves
        # a stone's sparkle or a chain's links a little translucent); and below FAINT there is no piece, only
        # the fit's ripple round it (benchmarks/matte_quality.py: solid 0.93 -> 0.96, haze 3.6 % -> 0.2 %)
        inside = binary_erosion(alpha >= 0.5, iterations=max(1, round(max(h, w) / NET_SIDE)))
        alpha[inside] = 1.0
        alpha[alpha < FAINT] = 0.0
        del inside
        alpha = clean_alpha(np.round(alpha * 255).astype(np.uint8)).astype(np.float32) / 255
        shadow *= 1 - alpha
        return MatteResult(photo, alpha, shadow, foreground)


_shipped: Matte | None = None


def shipped_matte() -> Matte:
    """The matte shipped in the package, loaded once per process."""
    global _shipped
    if _shipped is None:
        _shipped = Matte.load()
    return _shipped


def predict_alpha(rgb: np.ndarray) -> np.ndarray:
    """float32 (H, W) alpha of a uint8 photo with the shipped matte."""
    return shipped_matte()(rgb).alpha


# a matte that finds almost nothing or almost everything in front of the backdrop has not found a piece
MIN_PIECE, MAX_PIECE = 0.002, 0.97


def no_piece(alpha: np.ndarray) -> str | None:
    """Why a uint8 alpha holds no piece (almost nothing or almost everything in front of the backdrop), or None."""
    share = float((alpha > 127).mean())
    if MIN_PIECE <= share <= MAX_PIECE:
        return None
    return f"the matte found {share:.1%} of the photo in front of the backdrop"


def photo_alpha(rgb: np.ndarray) -> tuple[np.ndarray, str | None]:
    """uint8 (H, W) alpha of a product photo with the shipped matte, and None; or an all-opaque alpha and why,
    when the matte finds no piece (a photo that is all piece, or none). What prepare --alpha auto, try-on's
    --key-background and the edit's mask all use."""
    alpha = np.round(predict_alpha(rgb) * 255).astype(np.uint8)
    why = no_piece(alpha)
    if why:
        return np.full(alpha.shape, 255, np.uint8), f"{why}, alpha left opaque"
    return alpha, None
