"""The inputs of every image: seeded latents and labels, truncation, the inputs of variants and strips.

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

import numpy as np
import torch

from jewelgan.data.labels import LabelSchema
from jewelgan.inference.errors import GenerateError

Z_TRUNCATION_SCALE = 2.5


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

