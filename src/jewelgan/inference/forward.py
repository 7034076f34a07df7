"""Drawn inputs -> images: the fixed-shape forward pass that makes an image's bytes depend on its seed alone,
w-space strips and style mixing, and the finishing step (the picture on its backdrop, or a cut-out)."""

from __future__ import annotations

import inspect

import numpy as np
import torch
from torch import nn

from jewelgan.data.labels import LabelSchema
from jewelgan.inference.errors import GenerateError
from jewelgan.inference.inputs import interpolation_inputs, sample_inputs

# images per forward pass; fixed so that an image's bytes depend on its seed alone (see synthesize)
FORWARD_BATCH = 16


def takes_truncation(G: nn.Module) -> bool:
    """Whether G truncates itself (the style model, in w), so its z must be drawn untruncated."""
    try:  # a torch.compile'd G keeps the original module as _orig_mod
        return "truncation" in inspect.signature(getattr(G, "_orig_mod", G).forward).parameters
    except (TypeError, ValueError):
        return False


@torch.no_grad()
def synthesize(G: nn.Module, z: torch.Tensor, labels: torch.Tensor, truncation: float = 1.0,
               batch: int = FORWARD_BATCH) -> np.ndarray:
    """z and labels already drawn -> uint8 (n, R, R, C) with every channel G draws (C = 4 with alpha).

    Every forward pass holds exactly `batch` rows (the last is padded with copies of its final row):
    CPU kernels pick their blocking by batch size, so the same latent in a batch of 1 and of 64 can
    differ in the last bit, while at a fixed shape the result does not depend on the other rows or on
    the row's place. So an image depends only on its seed, labels and `batch`, whether it was drawn
    alone, in a bulk job or beside other clients' requests in the server's shared forward pass."""
    own_trunc = takes_truncation(G)
    return forward_padded(lambda zb, lb: G(zb, lb, truncation=truncation) if own_trunc else G(zb, lb),
                          [z, labels], batch, G)


def forward_padded(fn, inputs: list[torch.Tensor], batch: int, G: nn.Module) -> np.ndarray:
    """fn(*chunk) over the rows of `inputs` in chunks of exactly `batch` rows (see synthesize) -> uint8 NHWC."""
    from jewelgan.grid import to_uint8

    if batch < 1:
        raise GenerateError(f"batch must be >= 1, got {batch}")
    device = next(G.parameters()).device
    out = []
    n = len(inputs[0])
    for i in range(0, n, batch):
        chunk = [t[i:i + batch] for t in inputs]
        real = len(chunk[0])
        if real < batch:
            chunk = [torch.cat([t, t[-1:].expand(batch - real, *t.shape[1:])]) for t in chunk]
        x = fn(*[t.to(device) for t in chunk])
        out.append(to_uint8(x[:real]))
    if not out:
        r = getattr(G, "res", None) or getattr(G, "resolution", 0)
        return np.zeros((0, r, r, 3), np.uint8)
    return np.concatenate(out)


@torch.no_grad()
def interpolate_images(G: nn.Module, schema: LabelSchema, seed_a: int, seed_b: int, steps: int,
                       attrs: dict[str, str] | None = None, truncation: float = 1.0, label_rows=None,
                       batch: int = FORWARD_BATCH):
    """`steps` images from image seed_a to image seed_b, both ends included and bit-identical to those
    images. A style generator is interpolated in w (after its mapping), so both the shape and the
    attributes morph (ring to pendant, gold to silver); other generators slerp z with seed_a's labels.
    Returns (uint8 images with every channel G draws, label rows (steps, A): each frame's nearer end's)."""
    if steps < 2:
        raise GenerateError(f"steps must be >= 2, got {steps}")
    if label_rows is None:
        label_rows = getattr(G, "jewelgan_info", {}).get("label_rows")
    if not (hasattr(G, "map") and hasattr(G, "synthesis")):
        z, labels = interpolation_inputs(schema, G.z_dim, seed_a, seed_b, steps, attrs, truncation, label_rows)
        return synthesize(G, z, labels, truncation, batch), labels
    ws, rows = _map_seeds(G, schema, [seed_a, seed_b], attrs, truncation, label_rows, batch)
    t = torch.linspace(0, 1, steps, device=ws.device)[:, None, None]
    frames = torch.lerp(ws[:1].expand(steps, -1, -1), ws[1:2].expand(steps, -1, -1), t)
    images = _synthesis_padded(G, frames, batch)
    return images, torch.where(t.view(-1, 1).cpu() < 0.5, rows[0], rows[1])


@torch.no_grad()
def mix_styles(G: nn.Module, schema: LabelSchema, seed_coarse: int, seed_fine: int, cutoffs: list[int] | None = None,
               attrs: dict[str, str] | None = None, truncation: float = 1.0, label_rows=None,
               batch: int = FORWARD_BATCH):
    """Style mixing: the first `cutoff` style inputs (coarse: shape, pose) from image seed_coarse, the rest
    (fine: colour, metal, sparkle) from image seed_fine, one image per cutoff (default: every layer
    boundary). Style generators only. Returns (uint8 images with every channel, the cutoffs)."""
    if not (hasattr(G, "map") and hasattr(G, "synthesis")):
        raise GenerateError("style mixing needs a style generator (its per-layer w)")
    if label_rows is None:
        label_rows = getattr(G, "jewelgan_info", {}).get("label_rows")
    cutoffs = list(range(1, G.num_ws)) if cutoffs is None else list(cutoffs)
    bad = [c for c in cutoffs if not 0 <= c <= G.num_ws]
    if bad:
        raise GenerateError(f"cutoffs must be in 0..{G.num_ws} (the style inputs), got {bad}")
    ws, _ = _map_seeds(G, schema, [seed_coarse, seed_fine], attrs, truncation, label_rows, batch)
    layer = torch.arange(G.num_ws, device=ws.device).view(1, -1, 1)
    cut = torch.tensor(cutoffs, device=ws.device).view(-1, 1, 1)
    mixed = torch.where(layer < cut, ws[:1], ws[1:2])
    return _synthesis_padded(G, mixed, batch), cutoffs


def _map_seeds(G: nn.Module, schema: LabelSchema, seeds: list[int], attrs, truncation: float, label_rows,
               batch: int):
    """The per-layer w of the images of these seeds (mapped inside a full-size batch, as every forward
    pass is, so they match the plain images exactly) and their label rows."""
    drawn = [sample_inputs(schema, G.z_dim, 1, attrs, s, truncation, label_rows, truncate_z=False) for s in seeds]
    z, labels = torch.cat([d[0] for d in drawn]), torch.cat([d[1] for d in drawn])
    pad = max(batch - len(z), 0)
    device = next(G.parameters()).device
    was_training = G.training
    G.eval()
    try:
        ws = G.map(torch.cat([z, z[-1:].expand(pad, -1)]).to(device),
                   torch.cat([labels, labels[-1:].expand(pad, -1)]).to(device), truncation)[:len(z)]
    finally:
        G.train(was_training)
    return ws, labels


def _synthesis_padded(G: nn.Module, ws: torch.Tensor, batch: int) -> np.ndarray:
    was_training = G.training
    G.eval()
    try:
        return forward_padded(G.synthesis, [ws], batch, G)
    finally:
        G.train(was_training)


def finish_images(raw: np.ndarray, transparent: bool = False) -> np.ndarray:
    """synthesize()'s output -> (n, R, R, 3) as seen on the backdrop, or (n, R, R, 4) straight-alpha cut-outs."""
    from jewelgan.inference.cutout import to_cutout

    if not transparent:
        return np.ascontiguousarray(raw[..., :3])
    if raw.shape[-1] != 4:
        raise GenerateError("this model draws no alpha channel, so it cannot make transparent cut-outs "
                            "(train it on an archive with alpha: studio renders, or `prepare --alpha auto`)")
    if not len(raw):
        return raw
    return np.stack([to_cutout(im) for im in raw])


def run_generator(G: nn.Module, z: torch.Tensor, labels: torch.Tensor, truncation: float = 1.0,
                  batch: int = FORWARD_BATCH, transparent: bool = False) -> np.ndarray:
    """z and labels already drawn -> uint8 (n, R, R, 3) as seen on the backdrop; with transparent,
    (n, R, R, 4) straight-alpha cut-outs (G must draw alpha)."""
    return finish_images(synthesize(G, z, labels, truncation, batch), transparent)


def sample_images(G: nn.Module, schema: LabelSchema, n: int, attrs: dict[str, str] | None = None, seed: int = 0,
                  truncation: float = 1.0, batch: int = FORWARD_BATCH, label_rows=None, transparent: bool = False) -> np.ndarray:
    """n images as uint8 (n, R, R, 3), or (n, R, R, 4) cut-outs with transparent. attrs fixes some attributes
    ({"metal": "rose_gold"}); the others are drawn from the training label distribution (label_rows, or the
    one load_generator attached) or uniformly. Image i is reproducible alone from seed + i."""
    if label_rows is None:
        label_rows = getattr(G, "jewelgan_info", {}).get("label_rows")
    z, labels, _ = sample_inputs(schema, G.z_dim, n, attrs, seed, truncation, label_rows,
                                 truncate_z=not takes_truncation(G))
    was_training = G.training
    G.eval()
    try:
        return run_generator(G, z, labels, truncation, batch, transparent)
    finally:
        G.train(was_training)

