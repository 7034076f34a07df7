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
from jewelgan.edit.gemstones import found_stones, nearest_stone, stone_transfer
from jewelgan.edit.network import TranslatorNet, colour_change, metal_share, tint_transfer
from jewelgan.formats import read_safetensors, read_tagged_json
from jewelgan.matte.predict import BAND, fit_to_net, guided_fit, resize_band

FORMAT = "jewelgan-translator"
VERSION = 2  # 2: the tint transfer's buffers (tint_mean, luma_mean)
FILE = "translator"
STONE_SURE = 0.6  # the stone class's probability below which a pixel is not edited as a stone
# How much of a pixel the edit changes, from the matte's alpha: none below NO_PIECE, all of it above ALL_PIECE.
# The alpha is a compositing answer and reads white metal on a white sweep as part see-through (0.75-0.85 on
# the studio's silver rings), while the tint transfer on a pixel that mixes metal with a pale backdrop moves only
# the metal's share of its colour anyway (the backdrop's part has no tint to move), so a pixel three-quarters
# piece takes the whole change; the faint alpha of a floor reflection or haze takes none. Against the plain
# alpha (docs/experiments.md 2026-12-06 · 269381e): real photos in the studio's range 64 -> 75 % (held-out) and
# 60 -> 71 % (training photos), the change on the backdrop halved, studio pairs unchanged.
NO_PIECE, ALL_PIECE = 0.25, 0.75


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
    image: np.ndarray        # uint8 (H, W, 3): the photo in the target metal (or gemstone)
    mask: np.ndarray         # float32 (H, W): how much each pixel was allowed to change (metal x matte alpha)
    source: str
    target: str
    source_read: str         # "given", "classifier (p = 0.97)" or, for a gemstone, "tint"
    seconds: float
    attribute: str = "metal"  # or "gemstone"


@dataclass
class _Maps:
    """The network's answer for one photo at its own size's stand-in (<= 256 px): what an edit needs."""
    small: np.ndarray        # the photo fitted into the network's side, float (h, w, 3)
    coef: np.ndarray         # the mask's guided-filter fit (h, w, 3) and offset (h, w): applied at any size
    offset: np.ndarray
    colour_map: np.ndarray   # (h, w, 12)
    alpha: np.ndarray        # the matte's alpha at the photo's size
    small_mask: torch.Tensor  # (1, 1, h, w): the mask at the small size (where the tint is measured)


def edit_share(alpha: np.ndarray) -> np.ndarray:
    """The share of each pixel an edit changes, from the matte's alpha (NO_PIECE, ALL_PIECE say why)."""
    return np.clip((alpha - NO_PIECE) / (ALL_PIECE - NO_PIECE), 0, 1).astype(np.float32)


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
    # The network's per-pixel colour correction on top of the tint transfer is off: with the matte's mask (not
    # the exact alpha it was trained with) it measured no better on held-out studio pairs (256 px: 30.64 dB,
    # better than colour transfer on 71 %, against 30.74 dB, 75 % without it) and worse on real photos (the
    # target metal within the studio's range on 50 % against 72 %); docs/edit.md. The network's material map,
    # its metal classifier and the measured transfer carry the edit. `correct_colour=True` turns it back on
    # (benchmarks/metal_translation.py measures both).
    def __init__(self, net: TranslatorNet, metals: list[str], confident_at: float = 0.9, meta: dict | None = None,
                 correct_colour: bool = False):
        if len(metals) != net.metals:
            raise TranslatorError(f"the translator knows {net.metals} metals but {len(metals)} are named")
        self.net = net.eval().requires_grad_(False)
        self.metals = list(metals)
        self.confident_at = float(confident_at)
        self.meta = meta or {}
        self.correct_colour = correct_colour
        # gemstone -> {"tint": [r, g, b], "luma": y}: the studio's stones (edit/gemstones.py), written at export
        self.stones: dict[str, dict] = dict(self.meta.get("gemstones") or {})

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
                 alpha: np.ndarray | None = None, tint: torch.Tensor | None = None) -> MetalEdit:
        """The photo with its metal changed to `target`, at the photo's size. alpha (float (H, W) in [0, 1]): the
        piece's matte, where the caller has it (default: the shipped matte's; all ones where it finds no piece).
        tint (3,): the target metal's tint measured on a shop's own photos (edit/reference.py) instead of the
        studio's."""
        start = time.perf_counter()
        t = self._index(target, "target")
        source, how = self.source_of(photo, source)
        s = self.metals.index(source)
        if s == t:
            return MetalEdit(photo.copy(), np.zeros(photo.shape[:2], np.float32), source, target, how,
                             time.perf_counter() - start)
        maps = self._maps(photo, s, t, alpha, "metal")
        transfer = tint_transfer(self.net, _tensor(maps.small), maps.small_mask, torch.tensor([s]), torch.tensor([t]))
        if tint is not None:
            transfer["to"] = torch.as_tensor(tint, dtype=torch.float32).reshape(1, 3)
        image, mask = self._render(photo, maps, transfer, corrected=self.correct_colour)
        return MetalEdit(image, mask, source, target, how, time.perf_counter() - start)

    def change_stone(self, photo: np.ndarray, target: str, source: str | None = None,
                     alpha: np.ndarray | None = None) -> MetalEdit:
        """The photo with its stones in `target` (a gemstone of `self.stones`), at the photo's size: the material
        map's stone pixels take the target stone's studio tint (edit/gemstones.py). The photo's own stone is
        the caller's, or the studio stone nearest in tint to the photo's stones (a diamond is grey, a ruby red:
        their tints lie far apart)."""
        start = time.perf_counter()
        if not self.stones:
            raise TranslatorError("this translator carries no gemstone colours (written before they were added); "
                                  "export it again or use --method invert")
        for name, role in ((target, "target"), (source, "source")):
            if name is not None and name not in self.stones:
                raise TranslatorError(f"unknown {role} gemstone {name!r}; known: {', '.join(self.stones)}")
        maps = self._maps(photo, None, None, alpha, "stone")  # conditioned on the metal the photo reads as
        if not found_stones(maps.small_mask):
            raise TranslatorError("no gemstone found in the photo (the translator's stone mask is empty)")
        how = "given"
        if source is None:
            source, how = nearest_stone(_tensor(maps.small), maps.small_mask, self.stones), "tint"
        if source == target:
            return MetalEdit(photo.copy(), np.zeros(photo.shape[:2], np.float32), source, target, how,
                             time.perf_counter() - start, "gemstone")
        transfer = stone_transfer(_tensor(maps.small), maps.small_mask, self.stones, source, target)
        image, mask = self._render(photo, maps, transfer, corrected=False)
        return MetalEdit(image, mask, source, target, how, time.perf_counter() - start, "gemstone")

    def _maps(self, photo: np.ndarray, s: int | None, t: int | None, alpha: np.ndarray | None, material: str
              ) -> _Maps:
        """The network's pass at 256 px for metal s -> t (None: the metal its classifier reads, both ways), and
        the mask of `material` (the metal's share of the piece, or the stone class, times the matte's alpha) as a
        guided-filter fit that lands on the photo's own edges."""
        h, w = photo.shape[:2]
        small, x = self._fit(photo)
        sh, sw = small.shape[:2]
        with torch.no_grad():
            skips = self.net.encode(x)
            if s is None:
                s = t = int(self.net.metal_logits(skips).argmax(1))
            out = self.net.decode(skips, x, torch.tensor([s]), torch.tensor([t]))
        if material == "metal":
            share = metal_share(out["material"])[0, 0].numpy()[:sh, :sw]
        else:  # the stone class outright and only where it is sure: "not metal", or a faint stone class, also
            # takes the floor's reflections of the stones where the matte keeps them (docs/edit.md, Gemstones)
            stone = out["material"].softmax(1)[0, 2].numpy()[:sh, :sw]
            share = np.clip((stone - STONE_SURE) / (1 - STONE_SURE), 0, 1)
        coef, offset = guided_fit(small, share, radius=2, eps=1e-3)
        if alpha is None:
            alpha = piece_alpha(photo)
        elif alpha.shape != (h, w):
            raise TranslatorError(f"alpha is {alpha.shape}, the photo {h}x{w}")
        alpha = edit_share(alpha)
        small_alpha = alpha if (h, w) == (sh, sw) else resize_band(alpha, (sw, sh), 0, sh)
        small_mask = np.clip((coef * small).sum(-1) + offset, 0, 1) * small_alpha
        return _Maps(small, coef, offset, out["colour_map"][0].permute(1, 2, 0).numpy()[:sh, :sw], alpha,
                     _tensor(small_mask[..., None]))

    def _render(self, photo: np.ndarray, maps: _Maps, transfer: dict, corrected: bool
                ) -> tuple[np.ndarray, np.ndarray]:
        """(the edited photo, the mask) at the photo's size, in bands of rows (a large photo's float planes never
        exist whole); corrected: add the network's colour correction (trained for metals only)."""
        h, w = photo.shape[:2]
        sh, sw = maps.small.shape[:2]
        image = np.empty_like(photo)
        mask = np.empty((h, w), np.float32)
        for y0 in range(0, h, BAND):
            y1 = min(h, y0 + BAND)
            up = lambda a: resize_band(a, (w, h), y0, y1) if (h, w) != (sh, sw) else a[y0:y1]  # noqa: E731
            full = photo[y0:y1].astype(np.float32) / 255
            m = np.clip((up(maps.coef) * full).sum(-1) + up(maps.offset), 0, 1) * maps.alpha[y0:y1]
            cmap = up(maps.colour_map) if corrected else np.zeros((y1 - y0, w, 12), np.float32)
            with torch.no_grad():
                change = colour_change(_tensor(full), _tensor(cmap), transfer)[0].permute(1, 2, 0).numpy()
            image[y0:y1] = np.round(np.clip(full + m[..., None] * change, 0, 1) * 255)
            mask[y0:y1] = m
        return image, mask


def _tensor(a: np.ndarray) -> torch.Tensor:
    """float (H, W, C) -> (1, C, H, W)."""
    return torch.from_numpy(np.ascontiguousarray(a, np.float32)).permute(2, 0, 1)[None]


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
                alpha: np.ndarray | None = None, tints: dict | None = None) -> list[MetalEdit]:
    """One edit per target metal (the source's own metal skipped); the matte and the source are found once.
    tints: metal -> its tint on the shop's own photos (edit/reference.py), used for those targets."""
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
            e = translator(photo, m, source, alpha, (tints or {}).get(m))
            e.source_read = how
            edits.append(e)
    return edits


def edit_stones(translator: Translator, photo: np.ndarray, targets: list[str], source: str | None = None,
                alpha: np.ndarray | None = None) -> list[MetalEdit]:
    """One edit per target gemstone (the photo's own stone skipped); the matte and the source are found once."""
    if not targets:
        raise TranslatorError("no target gemstone given")
    if alpha is None:
        alpha = piece_alpha(photo)
    edits, how = [], "given"
    for g in targets:
        e = translator.change_stone(photo, g, source, alpha)
        source, how = e.source, (how if source is not None else e.source_read)  # read once, kept for the rest
        e.source_read = how
        if g != source:
            edits.append(e)
    return edits


def metal_sheet(photo: np.ndarray, edits: list[MetalEdit], side: int = 256) -> np.ndarray:
    """One row: the photo | each edit, captioned, every tile fitted into side x side on white."""
    from jewelgan.grid import fit_tile, make_grid

    row = [fit_tile(photo, side)] + [fit_tile(e.image, side) for e in edits]
    captions = [f"photo ({edits[0].source})" if edits else "photo"] + [e.target for e in edits]
    return np.asarray(make_grid(np.stack(row), ncol=len(row), captions=captions))
