"""Editing a shop's own piece: invert a photo into the style generator, then re-synthesise it with other
attributes (this ring in rose gold, with a sapphire).

Inversion (after StyleGAN2's projector, adapted to a conditional generator) finds the w+ whose image is
the photo: w starts at the mean w of the photo's labels and is optimised alone first (one w for every
layer: a good, plausible fit), then per layer (w+: the details), with the generator's noise fixed, so
the result is deterministic. The loss is a pixel term plus a perceptual term on frozen ImageNet features
(EfficientNet-Lite0 from its PyPI package, models/frozen_features.py), both weighted toward the piece by
the photo's alpha or its keyed backdrop: a shop's backdrop is not the studio's, and the piece is what
must match. Optionally the generator is then tuned briefly around that w+ (pivotal tuning): a copy kept
in memory for this photo only, never written over the model.

An edit moves w+ by the difference between the mean w of the new labels and of the photo's own (the
mapping network is where labels enter, so attributes live in w): everything the inversion found beyond
the labels (shape, proportions, pose, lighting) is kept. Editing to the photo's own labels moves nothing
and gives back the reconstruction exactly.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from jewelgan.inference.model import Model

INVERTIBLE = ("style",)


class EditError(ValueError):
    """A photo, model or attribute that cannot be edited (the message says which and why)."""


@dataclass
class Inversion:
    """A photo mapped into a model: its w+ and the generator that draws it (a tuned copy or the model's)."""

    ws: torch.Tensor  # (1, num_ws, w_dim)
    labels: dict[str, str]
    label_source: dict[str, str]  # attribute -> "given", "classifier" or "model search"
    G: torch.nn.Module
    photo: np.ndarray  # uint8 (R, R, 3)
    mask: np.ndarray  # float (R, R), 1 = the piece
    reconstruction: np.ndarray  # uint8 (R, R, C)
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


def check_invertible(model: Model) -> None:
    G = model.G
    if not all(hasattr(G, a) for a in ("synthesis", "mean_w", "map")):
        raise EditError(f"model {model.info['model']!r} has no latent space to invert; editing needs a model of kind "
                        f"{', '.join(INVERTIBLE)} (the shipped default is one)")


# ---------------------------------------------------------------------------- the photo
def load_photo(path: str | Path, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """A product photo of any format `prepare` reads -> (uint8 (R, R, 3), mask float (R, R)): the mask is the
    photo's own alpha, or the jewelry matte's (matte/predict.py), or all ones where the matte finds no piece."""
    from jewelgan.data.imageio import LoadOptions, RejectedImage, load_image

    path = Path(path)
    if not path.is_file():
        raise EditError(f"{path}: no such photo")
    try:
        rgb = load_image(path, LoadOptions(resolution=resolution, min_size=8))
    except RejectedImage as e:
        raise EditError(f"{path}: {e}") from None
    return rgb, photo_mask(rgb)


def photo_mask(rgb: np.ndarray, alpha: np.ndarray | None = None) -> np.ndarray:
    from jewelgan.matte.predict import photo_alpha

    if alpha is None:
        alpha, _ = photo_alpha(rgb)
    return alpha.astype(np.float32) / 255.0


def _to_tensor(image: np.ndarray, device) -> torch.Tensor:
    return torch.from_numpy(np.array(image[..., :3], dtype=np.uint8)).permute(2, 0, 1)[None].float().div(127.5).sub(1).to(device)


class PhotoLoss:
    """Masked pixel + perceptual distance of generated images to one photo."""

    def __init__(self, photo: np.ndarray, mask: np.ndarray, features, device="cpu", background_weight: float = 0.1,
                 perceptual_weight: float = 1.0):
        self.target = _to_tensor(photo, device)
        self.mask = torch.from_numpy(mask)[None, None].float().to(device)
        # the backdrop still counts a little: a generated backdrop far from the photo's would look wrong
        self.weight = background_weight + (1 - background_weight) * self.mask
        self.features, self.perceptual_weight = features, perceptual_weight
        self.target_feats = [f.detach() for f in features(self._on_white(self.target))]

    def _on_white(self, x: torch.Tensor) -> torch.Tensor:
        # the piece on the same white for both images: the perceptual term compares pieces, not backdrops
        return x * self.mask + (1 - self.mask)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :3]
        pixel = (self.weight * (x - self.target).square()).mean() / self.weight.mean()
        if not self.perceptual_weight:
            return pixel
        feats = self.features(self._on_white(x))
        perceptual = sum(_unit(a).sub(_unit(b)).square().sum(1).mean() for a, b in zip(feats, self.target_feats))
        return pixel + self.perceptual_weight * perceptual / len(feats)


def _unit(f: torch.Tensor) -> torch.Tensor:
    """Unit length along channels (as LPIPS does), so every layer counts by direction, not magnitude."""
    return f / (f.square().sum(1, keepdim=True).sqrt() + 1e-8)


_FEATURES = {}


def frozen_features(resolution: int):
    """The frozen EfficientNet-Lite0 taps at this input size (built once per process)."""
    from jewelgan.models.frozen_features import FrozenFeatures

    if resolution not in _FEATURES:
        _FEATURES[resolution] = FrozenFeatures(input_res=max(resolution, 64)).eval()
    return _FEATURES[resolution]


def perceptual_distance(a: np.ndarray, b: np.ndarray) -> float:
    """LPIPS-like distance of two uint8 images on the frozen features (0 = identical; unweighted, untrained)."""
    net = frozen_features(a.shape[0])
    with torch.no_grad():
        fa, fb = net(_to_tensor(a, "cpu")), net(_to_tensor(b, "cpu"))
        return float(sum(_unit(x).sub(_unit(y)).square().sum(1).mean() for x, y in zip(fa, fb)) / len(fa))


# ---------------------------------------------------------------------------- labels
def label_row(model: Model, labels: dict[str, str]) -> torch.Tensor:
    try:
        row = model.schema.encode(labels).astype(np.int64)
    except (KeyError, ValueError) as e:
        raise EditError(str(e).strip("\"'")) from None
    if (row < 0).any():
        missing = [n for n, v in zip(model.schema.names, row) if v < 0]
        raise EditError(f"no value for {', '.join(missing)}")
    return torch.from_numpy(row)[None]


def complete_labels(model: Model, photo: np.ndarray, mask: np.ndarray, given: dict[str, str],
                    classifier: str | Path | None = None, loss: PhotoLoss | None = None
                    ) -> tuple[dict[str, str], dict[str, str]]:
    """The photo's full label set: the given values, then the classifier's reading of the others (when a
    classifier is given), else a search over the model itself: each missing attribute, in order, takes
    the value whose mean image is nearest the photo (among values seen in training with those fixed)."""
    schema = model.schema
    for name, value in given.items():
        if name not in schema.attributes:
            raise EditError(f"unknown attribute {name!r}; known: {', '.join(schema.names)}")
        if value not in schema.attributes[name]:
            raise EditError(f"unknown value {value!r} for attribute {name!r}; known: "
                            f"{', '.join(schema.attributes[name])}")
    labels, source = dict(given), {n: "given" for n in given}
    missing = [n for n in schema.names if n not in labels]
    if missing and classifier is not None:
        from jewelgan.metrics.attributes import load_classifier, predict

        clf, clf_schema, _ = load_classifier(classifier)
        pred = predict(clf, photo[None])[0]
        for k, name in enumerate(clf_schema.names):
            if name in missing and name in schema.attributes:
                value = clf_schema.attributes[name][int(pred[k])]
                if value in schema.attributes[name]:
                    labels[name], source[name] = value, "classifier"
        missing = [n for n in schema.names if n not in labels]
    if missing:
        loss = loss or PhotoLoss(photo, mask, frozen_features(model.resolution))
        rows = model.label_rows
        for name in missing:
            k = schema.names.index(name)
            candidates = list(range(schema.num_values(name)))
            if rows is not None:
                fixed = schema.encode(labels).astype(np.int64)
                ok = np.all((fixed < 0) | (rows[:, :len(schema)] == fixed), axis=1)
                seen = sorted(set(rows[ok, k].tolist()))
                candidates = seen or candidates
            best = None
            for v in candidates:
                trial = dict(labels, **{name: schema.attributes[name][v]})
                for other in schema.names:  # attributes not decided yet: the most common value with these
                    if other not in trial:
                        trial[other] = _most_common(model, trial, other)
                with torch.no_grad():
                    ws = model.G.mean_w(label_row(model, trial)).unsqueeze(1).repeat(1, model.G.num_ws, 1)
                    score = float(loss(model.G.synthesis(ws, noise_mode="const")))
                if best is None or score < best[0]:
                    best = (score, schema.attributes[name][v])
            labels[name], source[name] = best[1], "model search"
    return {n: labels[n] for n in schema.names}, {n: source[n] for n in schema.names}


def _most_common(model: Model, fixed: dict[str, str], name: str) -> str:
    schema, rows = model.schema, model.label_rows
    values = schema.attributes[name]
    if rows is None:
        return values[0]
    row = schema.encode({k: v for k, v in fixed.items() if k in schema.attributes}).astype(np.int64)
    ok = np.all((row < 0) | (rows[:, :len(schema)] == row), axis=1)
    if not ok.any():
        ok[:] = True
    k = schema.names.index(name)
    counts = np.bincount(rows[ok, k], weights=rows[ok, len(schema)], minlength=len(values))
    return values[int(counts.argmax())]


# ---------------------------------------------------------------------------- inversion
def invert(model: Model, photo: np.ndarray, mask: np.ndarray | None = None, labels: dict[str, str] | None = None,
           classifier: str | Path | None = None, w_steps: int = 150, wplus_steps: int = 100, tune_steps: int = 0,
           lr: float = 0.05, seed: int = 0, perceptual_weight: float = 1.0, tune_lr: float = 3e-4) -> Inversion:
    """Map a uint8 (R, R, 3|4) photo at the model's resolution into the model (see the module doc).
    labels: any known attributes of the photo; the rest come from the classifier or a search."""
    check_invertible(model)
    start = time.perf_counter()
    if photo.shape[:2] != (model.resolution, model.resolution):
        raise EditError(f"photo is {photo.shape[1]}x{photo.shape[0]}, the model draws {model.resolution} px "
                        "(load it with load_photo, which resizes)")
    if mask is None:
        mask = photo_mask(photo[..., :3], photo[..., 3] if photo.shape[-1] == 4 else None)
    photo = np.ascontiguousarray(photo[..., :3])
    G = model.G
    loss = PhotoLoss(photo, mask, frozen_features(model.resolution), perceptual_weight=perceptual_weight)
    labels, source = complete_labels(model, photo, mask, dict(labels or {}), classifier, loss)
    row = label_row(model, labels)
    torch.manual_seed(seed)  # nothing below draws at random today; kept so that a future jitter stays seeded
    losses: list[float] = []

    with torch.no_grad():
        w0 = G.mean_w(row).clone()
    w = w0.clone().requires_grad_(True)
    _optimise([w], lambda: loss(G.synthesis(w.unsqueeze(1).repeat(1, G.num_ws, 1), noise_mode="const")),
              w_steps, lr, losses)
    ws = w.detach().unsqueeze(1).repeat(1, G.num_ws, 1).clone().requires_grad_(True)
    # w+ may drift per layer only as far as the details need: a pull toward the layers' mean keeps the
    # result editable (a w+ far from the mapping's range does not respond to label offsets)
    _optimise([ws], lambda: loss(G.synthesis(ws, noise_mode="const"))
              + 0.01 * (ws - ws.mean(1, keepdim=True)).square().mean(), wplus_steps, lr * 0.2, losses)
    ws = ws.detach()
    if tune_steps:
        G = copy.deepcopy(G)  # pivotal tuning changes this photo's copy only
        params = [p for p in G.synthesis_parameters()] if hasattr(G, "synthesis_parameters") else \
            [p for n, p in G.named_parameters() if not n.startswith("mapping.")]
        for p in params:
            p.requires_grad_(True)
        _optimise(params, lambda: loss(G.synthesis(ws, noise_mode="const")), tune_steps, tune_lr, losses, cosine=False)
        G.requires_grad_(False).eval()
    recon = render_ws(G, ws)[0]
    return Inversion(ws, labels, source, G, photo, mask, recon, losses, time.perf_counter() - start)


def _optimise(params, closure, steps: int, lr: float, losses: list, cosine: bool = True) -> None:
    if steps <= 0:
        return
    opt = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999))
    for i in range(steps):
        if cosine:  # ramp down over the last part, as the projector does, so the fit settles
            for g in opt.param_groups:
                g["lr"] = lr * min(1.0, 0.5 * (1 + np.cos(np.pi * i / steps)) * 1.25)
        opt.zero_grad(set_to_none=True)
        value = closure()
        value.backward()
        opt.step()
        losses.append(float(value.detach()))


@torch.no_grad()
def render_ws(G, ws: torch.Tensor) -> np.ndarray:
    """w+ (T, num_ws, w_dim) -> uint8 images through the same fixed-shape forward passes as all sampling
    (generate.forward_padded), with the fixed noise the inversion used: a reconstruction, an edit and a
    strip frame of the same w+ are the same bytes."""
    from jewelgan.inference.forward import FORWARD_BATCH, forward_padded

    return forward_padded(lambda w: G.synthesis(w, noise_mode="const"), [ws], FORWARD_BATCH, G)


# ---------------------------------------------------------------------------- edits
def edit(model: Model, inv: Inversion, changes: dict[str, str], keep_detail: bool = False) -> np.ndarray:
    """The inverted piece with some attributes changed -> uint8 (R, R, C). Unknown names or values raise.

    keep_detail: add the change the generator makes (edit - reconstruction) to the photo itself instead of
    returning the generator's image, so the photo's own detail, which a 64 px inversion cannot reproduce,
    survives (on held-out studio pieces this halved the perceptual distance to the true edit,
    docs/edit.md). It trusts the reconstruction's shape: where that is off, both outlines show."""
    for name, value in changes.items():
        if name not in model.schema.attributes:
            raise EditError(f"unknown attribute {name!r}; known: {', '.join(model.schema.names)}")
        if value not in model.schema.attributes[name]:
            raise EditError(f"unknown value {value!r} for attribute {name!r}; known: "
                            f"{', '.join(model.schema.attributes[name])}")
    new = dict(inv.labels, **changes)
    with torch.no_grad():
        delta = model.G.mean_w(label_row(model, new)) - model.G.mean_w(label_row(model, inv.labels))
    out = render_ws(inv.G, inv.ws + delta[:, None, :])[0]
    if keep_detail:
        moved = inv.photo.astype(np.int16) + out[..., :3].astype(np.int16) - inv.reconstruction[..., :3]
        out = out.copy()
        out[..., :3] = np.clip(moved, 0, 255).astype(np.uint8)
    return out


def interpolate_inversions(a: Inversion, b: Inversion, steps: int = 8) -> np.ndarray:
    """`steps` images from one inverted photo to another (straight line in w+; both with the model's own
    generator, so invert without tuning) -> uint8 (steps, R, R, C)."""
    if steps < 2:
        raise EditError(f"steps must be >= 2, got {steps}")
    if a.G is not b.G:
        raise EditError("both photos must be inverted into the same generator (no --tune-steps)")
    t = torch.linspace(0, 1, steps)[:, None, None]
    frames = torch.lerp(a.ws.expand(steps, -1, -1), b.ws.expand(steps, -1, -1), t)
    return render_ws(a.G, frames)


def edit_sheet(model: Model, inv: Inversion, edits: list[dict[str, str]], keep_detail: bool = False
               ) -> tuple[np.ndarray, list[np.ndarray]]:
    """One row: original | reconstruction | each edit (captioned), and the edited images."""
    from jewelgan.grid import make_grid

    images = [edit(model, inv, e, keep_detail) for e in edits]
    row = [inv.photo, inv.reconstruction[..., :3]] + [im[..., :3] for im in images]
    captions = ["original", "reconstruction"] + ["\n".join(f"{v}" for v in e.values()) for e in edits]
    tile = max(96, model.resolution)
    return np.asarray(make_grid(np.stack(row), ncol=len(row), captions=captions, tile=tile)), images


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 images (optionally over the mask's weight)."""
    d = (a[..., :3].astype(np.float64) - b[..., :3].astype(np.float64)) ** 2
    mse = float(d.mean()) if mask is None else float((d * mask[..., None]).sum() / max(mask.sum() * 3, 1e-9))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)
