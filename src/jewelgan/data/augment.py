"""Differentiable augmentation for discriminator inputs: DiffAugment policies and ADA.

Why: with a few hundred jewelry photos the discriminator memorises the reals within minutes. Both
methods augment *every* D input, real and fake, inside the graph, so G still gets gradients through
the augmentation and never learns to produce augmented-looking images.

- `DiffAugment("color,translation,cutout")`: fixed-strength policies, applied to every image (Zhao et
  al. 2020). Each call draws fresh per-sample parameters, the same distribution for real and fake.
- `ADA()`: a pipeline of flips, 90-degree rotations, translations, scaling, rotation and colour
  transforms, each applied to a sample with one probability `p` (Karras et al. 2020). `p` is a
  buffer nudged after each D step by the sign of D on reals: when D is overconfident on reals
  (mean sign above `target`) p rises, otherwise it falls, at a rate set by `speed_images`.

Both take images in [-1, 1] (B, 3, H, W), or (B, 4, H, W) with alpha (colour ops leave it alone), and an
optional torch.Generator, so a caller that wants identical parameters (tests, or paired real/fake) can
pass generators with the same seed.
Everything is plain PyTorch (grid_sample, indexing, arithmetic): gradients flow to the input.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _rand(n: int, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    """n uniform numbers in [0, 1) shaped (n, 1, 1, 1), drawn on the CPU generator for reproducibility."""
    return torch.rand(n, 1, 1, 1, generator=g).to(device=x.device, dtype=x.dtype)


def _randint(low: int, high: int, n: int, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    return torch.randint(low, high, (n, 1, 1), generator=g).to(x.device)


# ---- DiffAugment ops: each maps (x, generator) -> x, all samples augmented -------------------------

def _rgb_only(op):
    """A colour op that leaves a 4th (alpha) channel alone: coverage has no brightness or hue."""
    def apply(x, g):
        if x.shape[1] == 3:
            return op(x, g)
        return torch.cat([op(x[:, :3], g), x[:, 3:]], 1)
    apply.__name__ = op.__name__
    return apply


def _brightness(x, g):
    return x + (_rand(x.shape[0], x, g) - 0.5)


def _saturation(x, g):
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_rand(x.shape[0], x, g) * 2) + mean


def _contrast(x, g):
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(x.shape[0], x, g) + 0.5) + mean


def _translation(x, g, ratio: float = 0.125):
    """Shift each image by an integer offset up to ratio*size, filling with zeros (grey in [-1, 1])."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = _randint(-sh, sh + 1, b, x, g)
    tx = _randint(-sw, sw + 1, b, x, g)
    # index into a zero-padded copy: output pixel (i, j) reads padded pixel (i - ty + sh, j - tx + sw)
    padded = F.pad(x, [sw, sw, sh, sh])
    rows = (torch.arange(h, device=x.device).view(1, h, 1) - ty + sh).expand(b, h, w)
    cols = (torch.arange(w, device=x.device).view(1, 1, w) - tx + sw).expand(b, h, w)
    batch = torch.arange(b, device=x.device).view(b, 1, 1).expand(b, h, w)
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def _cutout(x, g, ratio: float = 0.5):
    """Zero a square of side ratio*size at a random place in each image (it may overhang the edge)."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = _randint(0, h + (1 - ch % 2), b, x, g)
    cx = _randint(0, w + (1 - cw % 2), b, x, g)
    top, left = cy - ch // 2, cx - cw // 2
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


POLICIES = {
    "color": tuple(_rgb_only(op) for op in (_brightness, _saturation, _contrast)),
    "translation": (_translation,),
    "cutout": (_cutout,),
}


class DiffAugment(nn.Module):
    """DiffAugment with a comma-separated policy, e.g. "color,translation,cutout"."""

    def __init__(self, policy: str = "color,translation,cutout"):
        super().__init__()
        names = [p.strip() for p in policy.split(",") if p.strip()]
        for name in names:
            if name not in POLICIES:
                raise ValueError(f"unknown DiffAugment policy {name!r}; known: {', '.join(POLICIES)}")
        self.policy = names

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        for name in self.policy:
            for op in POLICIES[name]:
                x = op(x, generator)
        return x.contiguous()

    def extra_repr(self) -> str:
        return f"policy={','.join(self.policy)}"


# ---- ADA --------------------------------------------------------------------------------------------

_ADA_GROUPS = {
    # blit: pixel-exact ops; geom: resampled affine ops; color: per-sample colour transforms
    "b": ("xflip", "rot90", "int_translate"),
    "g": ("scale", "rotate", "aniso", "frac_translate"),
    "c": ("brightness", "contrast", "hue", "saturation"),
}


class ADA(nn.Module):
    """Adaptive discriminator augmentation with one strength `p` (a buffer, so it is checkpointed).

    ops: any of "b", "g", "c" (blit, geometric, colour), default "bgc".
    target: the desired E[sign(D(real))]; 0.6 as in the paper.
    speed_images: images over which p can move from 0 to 1 (500k in the paper; CPU presets use less,
    since a 30-minute CPU run sees well under 500k images).
    interval: update p every this many calls of update(), accumulating signs in between.
    """

    def __init__(self, ops: str = "bgc", target: float = 0.6, speed_images: float = 500_000,
                 interval: int = 4, p: float = 0.0, p_max: float = 1.0):
        super().__init__()
        unknown = set(ops) - set(_ADA_GROUPS)
        if unknown:
            raise ValueError(f"unknown ADA op group(s) {''.join(sorted(unknown))!r}; use letters of 'bgc'")
        if not 0 < speed_images:
            raise ValueError(f"ADA speed_images must be positive, got {speed_images}")
        self.ops = [op for group in ops for op in _ADA_GROUPS[group]]
        self.target = float(target)
        self.speed_images = float(speed_images)
        self.interval = int(interval)
        self.p_max = float(p_max)
        self.register_buffer("prob", torch.tensor(float(p), dtype=torch.float64))
        self.register_buffer("sign_sum", torch.zeros((), dtype=torch.float64))
        self.register_buffer("sign_count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("calls", torch.zeros((), dtype=torch.int64))

    @property
    def p(self) -> float:
        return float(self.prob)

    @property
    def rt(self) -> float:
        """The latest overfitting heuristic E[sign(D(real))] accumulated since the last p update."""
        return float(self.sign_sum / self.sign_count) if self.sign_count > 0 else float("nan")

    @torch.no_grad()
    def update(self, real_logits: torch.Tensor) -> None:
        """Accumulate sign(D(real)); every `interval` calls move p toward keeping r_t at target."""
        signs = real_logits.detach().float().sign()
        self.sign_sum += signs.sum().double().cpu()
        self.sign_count += signs.numel()
        self.calls += 1
        if int(self.calls) % self.interval:
            return
        rt = self.sign_sum / self.sign_count
        step = torch.sign(rt - self.target) * float(self.sign_count) / self.speed_images
        self.prob.copy_((self.prob + step).clamp(0.0, self.p_max))
        self.sign_sum.zero_()
        self.sign_count.zero_()

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        p = self.p
        if p <= 0:
            return x
        b = x.shape[0]

        def chosen() -> torch.Tensor:  # (B,1,1,1) 0/1 mask: which samples get this op
            return (_rand(b, x, generator) < p).to(x.dtype)

        # blit ops (exact pixel moves, no resampling)
        if "xflip" in self.ops:
            m = chosen()
            x = x * (1 - m) + x.flip(3) * m
        if "rot90" in self.ops:
            k = _randint(0, 4, b, x, generator).view(b, 1, 1, 1)
            m = chosen()
            k = (k * m.long())
            out = x
            for r in (1, 2, 3):
                out = torch.where(k == r, torch.rot90(x, r, dims=(2, 3)), out)
            x = out
        if "int_translate" in self.ops:
            m = chosen().view(b)
            x = _int_translate(x, generator, m, ratio=0.125)
        # geometric ops composed into one affine matrix, resampled once with reflection padding
        theta = torch.eye(3, device=x.device, dtype=torch.float32).repeat(b, 1, 1)
        geom = False
        if "scale" in self.ops:
            m = chosen().view(b).float()
            s = torch.exp2(torch.randn(b, generator=generator).to(x.device) * 0.2 * m)
            theta = theta @ _diag(1 / s, 1 / s)
            geom = True
        if "rotate" in self.ops:
            m = chosen().view(b).float()
            a = (torch.rand(b, generator=generator).to(x.device) * 2 - 1) * math.pi * m
            theta = theta @ _rot(a)
            geom = True
        if "aniso" in self.ops:
            m = chosen().view(b).float()
            s = torch.exp2(torch.randn(b, generator=generator).to(x.device) * 0.2 * m)
            theta = theta @ _diag(1 / s, s)
            geom = True
        if "frac_translate" in self.ops:
            m = chosen().view(b).float()
            t = torch.randn(2, b, generator=generator).to(x.device) * 0.125 * 2 * m
            shift = torch.eye(3, device=x.device).repeat(b, 1, 1)
            shift[:, 0, 2], shift[:, 1, 2] = t[0], t[1]
            theta = theta @ shift
            geom = True
        if geom:
            grid = F.affine_grid(theta[:, :2].to(x.dtype), list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        # colour ops, on RGB only (an alpha channel is coverage, not colour)
        alpha = x[:, 3:] if x.shape[1] == 4 else None
        if alpha is not None:
            x = x[:, :3]
        if "brightness" in self.ops:
            m = chosen()
            x = x + torch.randn(b, 1, 1, 1, generator=generator).to(x) * 0.2 * m
        if "contrast" in self.ops:
            m = chosen()
            c = torch.exp2(torch.randn(b, 1, 1, 1, generator=generator).to(x) * 0.5 * m)
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * c + mean
        if "hue" in self.ops:
            m = chosen().view(b)
            a = (torch.rand(b, generator=generator).to(x) * 2 - 1) * math.pi * m
            x = _hue_rotate(x, a)
        if "saturation" in self.ops:
            m = chosen()
            s = torch.exp2(torch.randn(b, 1, 1, 1, generator=generator).to(x) * 1.0 * m)
            gray = x.mean(dim=1, keepdim=True)
            x = (x - gray) * s + gray
        if alpha is not None:
            x = torch.cat([x, alpha], 1)
        return x.contiguous()

    def extra_repr(self) -> str:
        return f"ops={self.ops}, p={self.p:.4f}, target={self.target}, speed_images={self.speed_images:g}"


def _diag(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    m = torch.eye(3, device=sx.device).repeat(len(sx), 1, 1)
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def _rot(a: torch.Tensor) -> torch.Tensor:
    m = torch.eye(3, device=a.device).repeat(len(a), 1, 1)
    m[:, 0, 0], m[:, 0, 1] = torch.cos(a), -torch.sin(a)
    m[:, 1, 0], m[:, 1, 1] = torch.sin(a), torch.cos(a)
    return m


def _int_translate(x, g, mask, ratio):
    """Integer translation with wrap-free reflection: shift by up to ratio*size where mask is 1."""
    b, _, h, w = x.shape
    ty = (torch.rand(b, generator=g) * 2 - 1).mul(ratio * h).round().long().to(x.device) * mask.long()
    tx = (torch.rand(b, generator=g) * 2 - 1).mul(ratio * w).round().long().to(x.device) * mask.long()
    rows = torch.arange(h, device=x.device).view(1, h, 1) - ty.view(b, 1, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w) - tx.view(b, 1, 1)
    rows = _reflect(rows, h).expand(b, h, w)
    cols = _reflect(cols, w).expand(b, h, w)
    batch = torch.arange(b, device=x.device).view(b, 1, 1).expand(b, h, w)
    return x.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def _reflect(i: torch.Tensor, n: int) -> torch.Tensor:
    period = 2 * n
    i = i % period
    return torch.where(i >= n, period - 1 - i, i)


def _hue_rotate(x: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotate colours around the grey axis (1,1,1)/sqrt(3) by angle (B,), per sample (Rodrigues)."""
    v = x.new_tensor([1.0, 1.0, 1.0]) / math.sqrt(3)
    k = torch.stack([
        torch.stack([x.new_zeros(()), -v[2], v[1]]),
        torch.stack([v[2], x.new_zeros(()), -v[0]]),
        torch.stack([-v[1], v[0], x.new_zeros(())]),
    ])
    eye = torch.eye(3, device=x.device, dtype=x.dtype)
    c, s = torch.cos(angle).view(-1, 1, 1), torch.sin(angle).view(-1, 1, 1)
    rot = eye + s * k + (1 - c) * (k @ k)  # (B, 3, 3)
    return torch.einsum("bij,bjhw->bihw", rot, x)


def build_augment(spec: str | None) -> nn.Module | None:
    """Parse an augmentation spec string (CLI and presets):

    "none" or "" -> None; "diffaug" or "diffaug:color,translation" -> DiffAugment;
    "ada" or "ada:bgc" with optional ",target=0.6,speed=500000" -> ADA.
    """
    if spec is None or spec.strip().lower() in ("", "none", "off"):
        return None
    kind, _, rest = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "diffaug":
        return DiffAugment(rest or "color,translation,cutout")
    if kind == "ada":
        ops, kwargs = "bgc", {}
        for part in (s.strip() for s in rest.split(",") if s.strip()):
            if "=" in part:
                key, value = part.split("=", 1)
                names = {"target": "target", "speed": "speed_images", "interval": "interval", "p": "p"}
                if key not in names:
                    raise ValueError(f"augment spec {spec!r}: unknown ADA option {key!r}; known: {', '.join(names)}")
                kwargs[names[key]] = float(value) if key != "interval" else int(value)
            else:
                ops = part
        return ADA(ops, **kwargs)
    raise ValueError(f"augment spec {spec!r}: expected none, diffaug[:policy] or ada[:ops,target=..,speed=..]")
