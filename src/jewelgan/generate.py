"""Sampling from a trained generator: loading, seeded latents and labels, truncation, bulk generation.

Every image i of a call with seed s is drawn from its own generator seeded with s + i (its latent
first, then any attribute the caller left open), so one image can be reproduced alone from the seed
written next to it in the manifest, whatever the batch size or the number of images around it.

Truncation psi in [0, 1] (1 = off, 0 = the average image):
- a generator whose forward accepts `truncation=` (the style model: lerp toward the per-condition
  mean w) gets plain z and does it itself;
- for the others (mlp, dcgan), each component of z beyond 2.5 * psi is resampled, i.e. z comes from a
  normal truncated at 2.5 psi (BigGAN's truncation trick), drawn by inverse CDF so it stays one draw
  per component and therefore reproducible.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from jewelgan.atomic import atomic_write_json
from jewelgan.data.labels import LabelSchema

Z_TRUNCATION_SCALE = 2.5
# images per forward pass; fixed so that an image's bytes depend on its seed alone (see synthesize)
FORWARD_BATCH = 16


class GenerateError(Exception):
    """Bad generation request (unknown path, attribute or value, or a clashing output folder)."""


# ---------------------------------------------------------------------------- loading
def load_generator(path: str | Path, device: str | torch.device = "cpu", which: str = "ema",
                   noise: str | None = None):
    """Load a generator from a run directory, a checkpoint folder or an exported model folder.

    which: "ema" (the averaged weights, best for sampling) or "G" (the raw training weights).
    noise: for a generator with noise inputs (the style model), how samples take them: "const" (the
    fixed buffers learnt in training) or "none"; None keeps what the run stored. Runs trained before
    the cpu-64 preset switched to "const" stored "none"; this re-scores them the new way. Random
    noise is not offered: an image must stay reproducible from its seed alone.
    Returns (G in eval mode on device, the model's LabelSchema, info dict with model, step, kimg, res,
    z_dim, config, label_rows and path).
    """
    from jewelgan.config import TrainConfig
    from jewelgan.models import build_model
    from jewelgan.models.style_generator import EVAL_NOISE_MODES

    path = Path(path)
    if which not in ("ema", "G"):
        raise GenerateError(f"which must be 'ema' or 'G', got {which!r}")
    if noise is not None and noise not in EVAL_NOISE_MODES:
        raise GenerateError(f"noise must be one of {', '.join(EVAL_NOISE_MODES)}, got {noise!r}")
    if not path.exists():
        raise GenerateError(f"{path}: no such run, checkpoint or model folder")
    from jewelgan.config import ConfigError
    from jewelgan.model_folder import ModelFolderError, read_generator

    try:
        meta, tensors = read_generator(path, which)
        config = TrainConfig.from_dict(meta["config"], source=f"{path} config")
    except (ModelFolderError, ConfigError) as e:
        raise GenerateError(str(e)) from None
    schema = LabelSchema.from_json(meta["model_schema"])
    G, _ = build_model(config.model, config, schema, discriminator=False)
    try:
        G.load_state_dict(tensors)
    except RuntimeError as e:
        raise GenerateError(f"{path}: weights do not fit model {config.model!r}: {str(e).splitlines()[0]}") from None
    if noise is not None:
        if not hasattr(G, "eval_noise"):
            raise GenerateError(f"{path}: model {config.model!r} has no noise inputs, so noise={noise!r} does not apply")
        G.eval_noise = noise
    G.to(device).eval().requires_grad_(False)
    info = {
        "model": config.model, "step": int(meta.get("step", 0)), "kimg": float(meta.get("kimg", 0.0)),
        "res": config.res, "z_dim": int(G.z_dim), "config": config.to_dict(),
        "label_rows": meta.get("label_rows"), "path": meta.get("path", str(path)), "which": which,
        "noise": getattr(G, "eval_noise", None),
    }
    G.jewelgan_info = info  # lets sample_images find the training label distribution on its own
    return G, schema, info


# ---------------------------------------------------------------------------- latents and labels
def image_generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed) % (2**63))


def latent(z_dim: int, gen: torch.Generator, truncation: float = 1.0) -> torch.Tensor:
    """One z (z_dim,), optionally from a normal truncated at 2.5 * truncation."""
    if truncation >= 1.0:
        return torch.randn(z_dim, generator=gen)
    tau = Z_TRUNCATION_SCALE * truncation
    u = torch.rand(z_dim, generator=gen, dtype=torch.float64)
    if tau <= 0:
        return torch.zeros(z_dim)
    lo = torch.special.ndtr(torch.tensor(-tau, dtype=torch.float64))
    return torch.special.ndtri(lo + u * (1 - 2 * lo)).float()


def _label_cdf(schema: LabelSchema, fixed: np.ndarray, label_rows):
    """(rows (R, A), cumulative counts of the rows consistent with the fixed values), or None without a
    training distribution. label_rows: [[v1..vA, count], ...] or the same as an int array (no copy)."""
    a = len(schema)
    if a == 0 or label_rows is None or len(label_rows) == 0:
        return None
    table = np.asarray(label_rows, dtype=np.int64).reshape(len(label_rows), -1)
    rows, counts = table[:, :a], table[:, a].astype(np.float64)
    ok = np.all((fixed < 0) | (rows == fixed), axis=1)
    if not ok.any():  # a combination never seen: keep whatever agrees with the most fixed values
        ok = np.ones(len(rows), bool)
    return rows, np.cumsum(counts * ok)


def _choose_row(schema: LabelSchema, fixed: np.ndarray, cdf, u: float, gen: torch.Generator) -> np.ndarray:
    """A label row consistent with the fixed values, drawn from the training distribution when known."""
    a = len(schema)
    if a == 0:
        return np.zeros(0, np.int64)
    if cdf is not None:
        rows, cum = cdf
        row = rows[min(int(np.searchsorted(cum, u * cum[-1], side="right")), len(rows) - 1)].copy()
    else:
        row = np.array([int(torch.randint(schema.num_values(n), (1,), generator=gen)) for n in schema.names],
                       dtype=np.int64)
    row[fixed >= 0] = fixed[fixed >= 0]
    return row


def sample_inputs(schema: LabelSchema, z_dim: int, n: int, attrs: dict[str, str] | None = None, seed: int = 0,
                  truncation: float = 1.0, label_rows=None, truncate_z: bool = True):
    """Per-image seeded (z (n, z_dim), labels int64 (n, A), seeds list)."""
    if n < 0:
        raise GenerateError(f"n must be >= 0, got {n}")
    if not 0.0 <= truncation <= 1.0:
        raise GenerateError(f"truncation must be in [0, 1], got {truncation}")
    try:
        fixed = schema.encode(dict(attrs or {})).astype(np.int64)
    except (KeyError, ValueError) as e:
        raise GenerateError(str(e).strip("\"'")) from None
    cdf = _label_cdf(schema, fixed, label_rows)  # once per call: n = 1 requests are the server's common case
    zs, labels, seeds = [], [], []
    for i in range(n):
        s = seed + i
        gen = image_generator(s)
        zs.append(latent(z_dim, gen, truncation if truncate_z else 1.0))
        u = float(torch.rand(1, generator=gen, dtype=torch.float64))
        labels.append(_choose_row(schema, fixed, cdf, u, gen))
        seeds.append(s)
    z = torch.stack(zs) if zs else torch.zeros(0, z_dim)
    lab = torch.from_numpy(np.stack(labels)) if labels else torch.zeros(0, len(schema), dtype=torch.long)
    return z, lab, seeds


def variant_inputs(schema: LabelSchema, z_dim: int, attribute: str, seed: int = 0,
                   attrs: dict[str, str] | None = None, truncation: float = 1.0, label_rows=None,
                   truncate_z: bool = True):
    """One piece in every value of `attribute` (e.g. one ring in each metal): the latent and the other
    attributes of image `seed` (as sample_inputs draws it), that attribute stepped through its values.
    Returns (z (V, z_dim), labels (V, A), the values in order)."""
    if attribute not in schema.attributes:
        raise GenerateError(f"unknown attribute {attribute!r}; known: {', '.join(schema.names) or 'none'}")
    attrs = {k: v for k, v in dict(attrs or {}).items() if k != attribute}
    z, labels, _ = sample_inputs(schema, z_dim, 1, attrs, seed, truncation, label_rows, truncate_z)
    values = list(schema.attributes[attribute])
    labels = labels.repeat(len(values), 1)
    labels[:, schema.names.index(attribute)] = torch.arange(len(values))
    return z.repeat(len(values), 1), labels, values


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of two latents at fractions t (T,) -> (T, D); a Gaussian z lives near a
    sphere, and a straight line between two of them passes through unlikely, low-norm latents."""
    a64, b64 = a.double(), b.double()
    cos = torch.clamp((a64 @ b64) / (a64.norm() * b64.norm() + 1e-12), -1.0, 1.0)
    omega = torch.arccos(cos)
    t = t.double()[:, None]
    if float(omega) < 1e-6:
        return ((1 - t) * a64 + t * b64).float()
    return ((torch.sin((1 - t) * omega) * a64 + torch.sin(t * omega) * b64) / torch.sin(omega)).float()


def interpolation_inputs(schema: LabelSchema, z_dim: int, seed_a: int, seed_b: int, steps: int,
                         attrs: dict[str, str] | None = None, truncation: float = 1.0, label_rows=None,
                         truncate_z: bool = True):
    """`steps` latents from image seed_a's to image seed_b's (slerp), all with seed_a's attributes (or
    the ones given): the same kind of piece morphing in shape. Returns (z (steps, z_dim), labels)."""
    if steps < 2:
        raise GenerateError(f"steps must be >= 2, got {steps}")
    za, la, _ = sample_inputs(schema, z_dim, 1, attrs, seed_a, truncation, label_rows, truncate_z)
    zb, _, _ = sample_inputs(schema, z_dim, 1, attrs, seed_b, truncation, label_rows, truncate_z)
    z = slerp(za[0], zb[0], torch.linspace(0, 1, steps))
    return z, la.repeat(steps, 1)


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
    from jewelgan.cutout import to_cutout

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


# ---------------------------------------------------------------------------- bulk generation
def generate_bulk(run: str | Path, out: str | Path, n: int, attrs: dict[str, str] | list[str] | None = None,
                  seed: int = 0, truncation: float = 1.0, batch: int = FORWARD_BATCH, device: str = "cpu",
                  which: str = "ema", fmt: str = "png", progress: bool = False, noise: str | None = None,
                  transparent: bool = False, should_stop=None, on_progress=None, compile: bool = False) -> Path:
    """Write n images and OUT/manifest.jsonl (one line per image: file, seed, attributes, model, step).

    Resumable: images already listed in the manifest are skipped, so an interrupted job loses nothing.
    transparent: write RGBA cut-outs (png or webp) instead of images on the backdrop.
    attrs may be a dict or CLI-style ["metal=rose_gold", ...]; unknown names or values raise GenerateError.
    should_stop() is asked before each batch (True: return now, the job stays incomplete and resumable);
    on_progress(done, n) is told after each batch (the HTTP server's bulk jobs use both).
    compile: run G through torch.compile (faster; the same bytes as `jewelgan serve --compile`, last-bit
    different from the eager path).
    """
    from jewelgan.image_files import check_format, encode_image

    try:
        fmt = check_format(fmt, transparent)
    except ValueError as e:
        raise GenerateError(str(e)) from None
    G, schema, info = load_generator(run, device, which, noise)
    if compile:
        jewelgan_info = G.jewelgan_info
        G = torch.compile(G, dynamic=False)
        G.jewelgan_info = jewelgan_info
    if isinstance(attrs, list):
        try:
            attrs = schema.parse_attrs(attrs)
        except ValueError as e:
            raise GenerateError(str(e)) from None
    attrs = dict(attrs or {})
    label_rows = None if not info["label_rows"] else np.asarray(info["label_rows"], dtype=np.int64)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    job = {"run": str(Path(info["path"]).resolve()), "model": info["model"], "step": info["step"], "which": which,
           "seed": seed, "attributes": attrs, "truncation": truncation, "format": fmt, "noise": noise,
           **({"transparent": True} if transparent else {})}
    job_file, manifest = out / "manifest.json", out / "manifest.jsonl"
    if job_file.is_file():
        old = json.loads(job_file.read_text())
        same = {k: old.get(k) for k in job} == job
        if not same:
            raise GenerateError(f"{out} already holds a different generation job ({job_file}); choose another --out")
    atomic_write_json(job_file, {**job, "n": n, "complete": False})
    done: set[int] = set()
    if manifest.is_file():
        for line in manifest.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill: that image is simply redone
            if (out / rec["file"]).is_file():
                done.add(int(rec["seed"]))
    todo = [i for i in range(n) if seed + i not in done]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, initial=n - len(todo), unit="img", desc="generate")
    with open(manifest, "a") as mf:
        for start in range(0, len(todo), batch):
            if should_stop is not None and should_stop():
                if bar:
                    bar.close()
                return out
            idx = todo[start:start + batch]
            zs, labs, seeds = [], [], []
            for i in idx:
                z, lab, s = sample_inputs(schema, G.z_dim, 1, attrs, seed + i, truncation, label_rows,
                                          truncate_z=not takes_truncation(G))
                zs.append(z), labs.append(lab), seeds.extend(s)
            images = run_generator(G, torch.cat(zs), torch.cat(labs), truncation, batch, transparent)
            for img, lab, s in zip(images, torch.cat(labs), seeds):
                name = f"{s:08d}.{fmt}"
                (out / name).write_bytes(encode_image(img, fmt))  # listed in the manifest only once written
                rec = {"file": name, "seed": s, "attributes": schema.decode(lab.numpy()),
                       "requested": attrs, "model": info["model"], "step": info["step"], "truncation": truncation,
                       "noise": info["noise"]}
                mf.write(json.dumps(rec) + "\n")
            mf.flush()
            if bar:
                bar.update(len(idx))
            if on_progress is not None:
                on_progress(n - len(todo) + start + len(idx), n)
    if bar:
        bar.close()
    atomic_write_json(job_file, {**job, "n": n, "complete": True})
    return out


def read_manifest(out: str | Path) -> list[dict]:
    return [json.loads(line) for line in (Path(out) / "manifest.jsonl").read_text().splitlines() if line.strip()]



__all__ = ["load_generator", "sample_images", "sample_inputs", "variant_inputs", "interpolate_images",
           "mix_styles", "synthesize", "finish_images", "run_generator", "generate_bulk", "read_manifest", "latent", "GenerateError"]
