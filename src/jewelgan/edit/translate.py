"""Using the metal translator on a photo of any size: the network reads the photo at 256 px, its colour map and
metal mask are brought to the photo's own size, and only the metal's pixels change.

The mask's edges are snapped to the photo's own edges by a guided filter (as the matte does), then multiplied by
the matte's alpha (the matte is trained on shop backdrops and real photos' borders, so a gold-coloured wood
backdrop is not "metal"). The colour map is smooth, so it is upsampled plainly; the photo's detail comes through
applying it to the photo's own pixels. No 64 px bottleneck: a 1,024 px photo is edited at 1,024 px.

"Ask, don't guess": the photo's own metal comes from the caller, or from the translator's classifier only when
its probability reaches `confident_at` (measured on held-out pieces when the translator is written: the
probability above which its readings were right at least 97 % of the time); otherwise SourceUnknown names the
probabilities and asks for the source.

    from jewelgan.edit.translate import Translator
    t = Translator.load(folder)
    result = t(rgb, target="rose_gold", source="yellow_gold")     # rgb: uint8 (H, W, 3) at any size
    result.image                                                   # uint8 (H, W, 3)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from jewelgan.atomic import atomic_write_json, write_durable
from jewelgan.edit.network import TranslatorNet, metal_share, metal_transfer
from jewelgan.formats import read_safetensors, read_tagged_json
from jewelgan.matte.predict import BAND, fit_to_net, guided_fit, resize_band

FORMAT = "jewelgan-translator"
VERSION = 1
FILE = "translator"


class TranslatorError(ValueError):
    """A translator file that is missing or damaged, a metal it does not know, or a photo it cannot edit."""


class SourceUnknown(TranslatorError):
    """The photo's own metal was not given and the classifier is not confident enough to say it."""

    def __init__(self, probabilities: dict[str, float], confident_at: float):
        self.probabilities = probabilities
        best = max(probabilities, key=probabilities.get)
        read = ", ".join(f"{m} {p:.0%}" for m, p in sorted(probabilities.items(), key=lambda kv: -kv[1]))
        super().__init__(f"the photo's own metal is unclear (read as {read}; {best} is below the {confident_at:.0%} "
                         f"this translator is right at); say which metal the photo shows (--from / `source`)")


@dataclass
class MetalEdit:
    image: np.ndarray        # uint8 (H, W, 3): the photo in the target metal
    mask: np.ndarray         # float32 (H, W): how much each pixel was allowed to change (metal x matte alpha)
    source: str
    target: str
    source_read: str         # "given" or "classifier (p = 0.97)"
    seconds: float


def piece_alpha(photo: np.ndarray) -> np.ndarray:
    """float32 (H, W): the shipped matte's alpha of the photo, or all ones where it finds no piece (then the
    translator's own metal mask alone decides)."""
    from jewelgan.matte.predict import photo_alpha

    return photo_alpha(photo)[0].astype(np.float32) / 255


def write_translator(folder: str | Path, net: TranslatorNet, meta: dict) -> Path:
    """Weights in fp16 (the translator's figures do not move measurably, benchmarks/edit_quality.py), then the
    JSON (metals, confident_at, training facts)."""
    from safetensors.torch import save as st_save

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in net.state_dict().items()}
    write_durable(folder / f"{FILE}.safetensors", st_save(tensors))
    atomic_write_json(folder / f"{FILE}.json", {"format": FORMAT, "version": VERSION, "network": net.config, **meta})
    return folder / f"{FILE}.json"


def has_translator(folder: str | Path) -> bool:
    return (Path(folder) / f"{FILE}.json").is_file()


class Translator:
    def __init__(self, net: TranslatorNet, metals: list[str], confident_at: float = 0.9, meta: dict | None = None):
        if len(metals) != net.metals:
            raise TranslatorError(f"the translator knows {net.metals} metals but {len(metals)} are named")
        self.net = net.eval().requires_grad_(False)
        self.metals = list(metals)
        self.confident_at = float(confident_at)
        self.meta = meta or {}

    @classmethod
    def load(cls, folder: str | Path) -> "Translator":
        folder = Path(folder)
        meta = read_tagged_json(folder / f"{FILE}.json", FORMAT, VERSION, TranslatorError)
        tensors = read_safetensors(folder / f"{FILE}.safetensors", TranslatorError)
        try:
            net = TranslatorNet(int(meta["network"]["metals"]), tuple(meta["network"]["widths"]))
            net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in tensors.items()})
            return cls(net, list(meta["metals"]), float(meta["confident_at"]), meta)
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise TranslatorError(f"{folder}: not a loadable translator ({str(e).splitlines()[0]})") from None

    @classmethod
    def from_run(cls, run: str | Path, confident_at: float = 0.9) -> "Translator":
        from jewelgan.runs import checkpoint as ckpt

        found = ckpt.open_checkpoint(run)
        net = TranslatorNet(int(found.state["network"]["metals"]), tuple(found.state["network"]["widths"]))
        found.load_module("translator", net)
        return cls(net, found.state["metals"], confident_at, {"run": str(run), "kimg": found.state.get("kimg")})

    def _index(self, metal: str, role: str) -> int:
        if metal not in self.metals:
            raise TranslatorError(f"unknown {role} metal {metal!r}; known: {', '.join(self.metals)}")
        return self.metals.index(metal)

    def _fit(self, photo: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
        if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8 or min(photo.shape[:2]) < 8:
            raise TranslatorError(f"the translator needs a uint8 HxWx3 photo of at least 8 px, got {photo.dtype} "
                                  f"{photo.shape}")
        return fit_to_net(photo)

    def read_metal(self, photo: np.ndarray) -> dict[str, float]:
        """The classifier's probability of each metal for this photo."""
        _, x = self._fit(photo)
        with torch.no_grad():
            p = self.net.metal_logits(self.net.encode(x)).softmax(1)[0]
        return {m: float(v) for m, v in zip(self.metals, p)}

    def source_of(self, photo: np.ndarray, source: str | None) -> tuple[str, str]:
        """(the photo's metal, how it was known): the caller's, or the classifier's when it is confident."""
        if source is not None:
            self._index(source, "source")
            return source, "given"
        probs = self.read_metal(photo)
        best = max(probs, key=probs.get)
        if probs[best] < self.confident_at:
            raise SourceUnknown(probs, self.confident_at)
        return best, f"classifier (p = {probs[best]:.2f})"

    def __call__(self, photo: np.ndarray, target: str, source: str | None = None,
                 alpha: np.ndarray | None = None) -> MetalEdit:
        """The photo with its metal changed to `target`, at the photo's size. alpha (float (H, W) in [0, 1]): the
        piece's matte, where the caller has it (default: the shipped matte's; all ones where it finds no piece)."""
        start = time.perf_counter()
        t = self._index(target, "target")
        source, how = self.source_of(photo, source)
        s = self.metals.index(source)
        h, w = photo.shape[:2]
        if s == t:
            return MetalEdit(photo.copy(), np.zeros((h, w), np.float32), source, target, how,
                             time.perf_counter() - start)
        small, x = self._fit(photo)
        sh, sw = small.shape[:2]
        with torch.no_grad():
            out = self.net(x, torch.tensor([s]), torch.tensor([t]))
        metal = metal_share(out["material"])[0, 0].numpy()[:sh, :sw]
        cmap = out["colour_map"][0].permute(1, 2, 0).numpy()[:sh, :sw]
        scale, shift = (v[0].numpy() for v in metal_transfer(self.net, torch.tensor([s]), torch.tensor([t])))
        # the mask as a local linear function of the photo's colour, so its edges land on the photo's edges
        coef, offset = guided_fit(small, metal, radius=2, eps=1e-3)
        if alpha is None:
            alpha = piece_alpha(photo)
        elif alpha.shape != (h, w):
            raise TranslatorError(f"alpha is {alpha.shape}, the photo {h}x{w}")
        image = np.empty_like(photo)
        mask = np.empty((h, w), np.float32)
        for y0 in range(0, h, BAND):  # bands of rows: a large photo's float planes never exist whole
            y1 = min(h, y0 + BAND)
            up = lambda a: resize_band(a, (w, h), y0, y1) if (h, w) != (sh, sw) else a[y0:y1]  # noqa: E731
            full = photo[y0:y1].astype(np.float32) / 255
            m = np.clip((up(coef) * full).sum(-1) + up(offset), 0, 1) * alpha[y0:y1]
            c = up(cmap)
            change = (full * scale + shift - full + c[..., 9:]
                      + np.einsum("hwij,hwj->hwi", c[..., :9].reshape(y1 - y0, w, 3, 3), full))
            image[y0:y1] = np.round(np.clip(full + m[..., None] * change, 0, 1) * 255)
            mask[y0:y1] = m
        return MetalEdit(image, mask, source, target, how, time.perf_counter() - start)


_shipped: dict[str, Translator] = {}


def model_translator(folder: str | Path) -> Translator | None:
    """The translator a model folder carries (loaded once per process), or None."""
    key = str(Path(folder).resolve())
    if key not in _shipped:
        if not has_translator(folder):
            return None
        _shipped[key] = Translator.load(folder)
    return _shipped[key]


def edit_metals(translator: Translator, photo: np.ndarray, targets: list[str], source: str | None = None,
                alpha: np.ndarray | None = None) -> list[MetalEdit]:
    """One edit per target metal (the source's own metal skipped); the matte and the source are found once."""
    if not targets:
        raise TranslatorError("no target metal given")
    for m in targets:
        translator._index(m, "target")
    source, how = translator.source_of(photo, source)
    if alpha is None:
        alpha = piece_alpha(photo)
    edits = []
    for m in targets:
        if m != source:
            e = translator(photo, m, source, alpha)
            e.source_read = how
            edits.append(e)
    return edits


def metal_sheet(photo: np.ndarray, edits: list[MetalEdit], side: int = 256) -> np.ndarray:
    """One row: the photo | each edit, captioned, every tile fitted into side x side on white."""
    from jewelgan.grid import fit_tile, make_grid

    row = [fit_tile(photo, side)] + [fit_tile(e.image, side) for e in edits]
    captions = [f"photo ({edits[0].source})" if edits else "photo"] + [e.target for e in edits]
    return np.asarray(make_grid(np.stack(row), ncol=len(row), captions=captions))
