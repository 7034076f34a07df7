"""Training the matte on the studio's exact answers, in a run directory like `train`'s (run.json, metrics.jsonl,
atomic safetensors checkpoints, a lock) with exact resume.

Each step composes fresh photos: random studio pieces from a layer set (examples.py), rescaled and cropped, each
over a random shop backdrop (backdrops.py; a shop's own photos' borders with `photos`), with a shadow of random
strength and sometimes a floor reflection. Everything random in step k comes from a generator seeded with
(seed, k), so a resumed run continues exactly.

    python -m jewelgan.cli train-matte --layers train256.npz --photos PHOTOS --kimg 40
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import zoom

from jewelgan.matte.examples import LayerSet, compose, kinds
from jewelgan.matte.network import MatteNet
from jewelgan.runs import checkpoint as ckpt
from jewelgan.runs.rundir import lock_run_dir, new_run_dir, rewind_metrics
from jewelgan.runs.stepped import SteppedTrainer


class MatteConfigError(ValueError):
    """A bad training setting of the matte (names the field)."""


@dataclass
class MatteConfig:
    layers: str                    # a render_layer_set file (studio pieces with exact answers)
    photos: str | None = None      # a folder of a shop's photos whose borders serve as backdrops
    crop: int = 160                # training crop side (a multiple of 32); the network runs at 256 when used
    batch: int = 8
    lr: float = 2e-3
    lr_final: float = 0.05         # share of lr at the end of a kimg budget (cosine)
    edge_weight: float = 1.0       # alpha-gradient L1: crisp edges and thin chains, not a blur of them
    shadow_weight: float = 0.5
    foreground_weight: float = 0.5
    soft_share: float = 0.25       # share of photos shrunk 2-4x and enlarged back: a photo smaller than the
    #                                network's side arrives enlarged and soft (without it the matte's error on
    #                                64 px photos grew 3x from 48 to 96 kimg while 256 px improved)
    kimg: float | None = None
    minutes: float | None = None
    ckpt_minutes: float = 5.0
    eval_every_kimg: float = 4.0
    val: int = 32                  # the last layer-set images, held out for the figures in metrics.jsonl
    seed: int = 0
    threads: int | None = None
    out: str = "runs"
    name: str | None = None

    def check(self) -> "MatteConfig":
        rules = {"crop": self.crop >= 32 and self.crop % 32 == 0, "batch": self.batch >= 1, "lr": self.lr > 0,
                 "lr_final": 0 <= self.lr_final <= 1, "edge_weight": self.edge_weight >= 0,
                 "shadow_weight": self.shadow_weight >= 0, "foreground_weight": self.foreground_weight >= 0,
                 "soft_share": 0 <= self.soft_share <= 1,
                 "val": self.val >= 1, "ckpt_minutes": self.ckpt_minutes > 0,
                 "kimg": self.kimg is None or self.kimg > 0, "minutes": self.minutes is None or self.minutes > 0}
        bad = [k for k, ok in rules.items() if not ok]
        if bad:
            raise MatteConfigError(f"MatteConfig.{bad[0]}: bad value {getattr(self, bad[0])!r} "
                                   "(crop a multiple of 32, sizes >= 1, weights >= 0, rates in range)")
        if self.kimg is None and self.minutes is None:
            raise MatteConfigError("MatteConfig.kimg: set a budget (kimg or minutes)")
        if self.lr_final < 1 and self.kimg is None:
            raise MatteConfigError("MatteConfig.lr_final: a decaying rate needs a kimg budget")
        return self

    @classmethod
    def from_dict(cls, d: dict) -> "MatteConfig":
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise MatteConfigError(f"MatteConfig: unknown field {unknown[0]!r}")
        return cls(**({"soft_share": 0.0} | d))  # a run written before soft_share resumes on its own recipe


def load_backdrop_photos(folder: str | Path | None, limit: int = 200, side: int = 256) -> list[np.ndarray]:
    """Up to `limit` photos from a folder (recursively), shrunk to `side` px: only their borders are used."""
    if not folder:
        return []
    from PIL import Image

    paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
    if not paths:
        raise MatteConfigError(f"MatteConfig.photos: no photos under {folder}")
    step = max(1, len(paths) // limit)
    out = []
    for p in paths[::step][:limit]:
        try:
            with Image.open(p) as im:
                im.draft("RGB", (side, side))
                im = im.convert("RGBA" if im.mode == "P" else im.mode).convert("RGB")
                im.thumbnail((side, side))
                out.append(np.asarray(im))
        except OSError:
            continue  # an unreadable photo is just not a backdrop
    return out


def step_rng(seed: int, step: int) -> np.random.Generator:
    return np.random.default_rng([seed, step, 0x3A77E])


def crop_example(example: dict, crop: int, rng: np.random.Generator) -> dict:
    """Rescale the piece's planes (0.6-1.0 of the render: pieces are photographed at many sizes) and cut a crop
    that keeps most of it in view."""
    size = example["alpha"].shape[0]
    scale = max(crop / size, rng.uniform(0.6, 1.0))
    out = {}
    for k, v in example.items():
        order = 0 if k == "material" else 1
        z = (scale, scale, 1) if v.ndim == 3 else (scale, scale)
        out[k] = zoom(v, z, order=order) if scale != 1 else v
    side = out["alpha"].shape[0]
    y, x = (int(rng.integers(0, side - crop + 1)) for _ in range(2))
    out = {k: v[y:y + crop, x:x + crop] for k, v in out.items()}
    if rng.random() < 0.5:
        out = {k: v[:, ::-1] for k, v in out.items()}
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def soften(image: np.ndarray, factor: float) -> np.ndarray:
    """The photo as it reaches the network when it was `factor` times smaller: shrunk, then enlarged back
    bicubically (as predict.fit_to_net enlarges a small photo)."""
    h, w = image.shape[:2]
    im = Image.fromarray(np.round(image * 255).astype(np.uint8))
    small = im.resize((max(8, round(w / factor)), max(8, round(h / factor))), Image.LANCZOS)
    return np.asarray(small.resize((w, h), Image.BICUBIC), np.float32) / 255


def make_batch(layers: LayerSet, indices: np.ndarray, n: int, crop: int, rng: np.random.Generator,
               photos: list, soft_share: float = 0.0) -> dict[str, torch.Tensor]:
    ks = kinds(photos)
    rows = []
    for _ in range(n):
        ex = crop_example(layers.get(int(indices[rng.integers(len(indices))])), crop, rng)
        row = compose(ex, ks[int(rng.integers(len(ks)))], rng, photos) | {"foreground": ex["foreground"]}
        if soft_share and rng.random() < soft_share:  # no draw at 0: older runs resume on the same stream
            row["image"] = soften(row["image"], rng.uniform(2, 4))
        rows.append(row)
    t = lambda k, ch: torch.from_numpy(np.stack([r[k] for r in rows]).astype(np.float32)).reshape(  # noqa: E731
        n, crop, crop, ch).permute(0, 3, 1, 2).contiguous()
    return {"image": t("image", 3), "alpha": t("alpha", 1), "shadow": t("shadow", 1), "foreground": t("foreground", 3)}


def _gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def matte_losses(pred: dict, batch: dict, cfg: MatteConfig) -> dict[str, torch.Tensor]:
    alpha = (pred["alpha"] - batch["alpha"]).abs().mean()
    (pgx, pgy), (tgx, tgy) = _gradients(pred["alpha"]), _gradients(batch["alpha"])
    edges = (pgx - tgx).abs().mean() + (pgy - tgy).abs().mean()
    shadow = (pred["shadow"] - batch["shadow"]).abs().mean()
    covered = batch["alpha"] > 0  # the piece's colour is only defined where the piece is
    fg = ((pred["foreground"] - batch["foreground"]).abs() * covered).sum() / (3 * covered.sum() + 1)
    total = alpha + cfg.edge_weight * edges + cfg.shadow_weight * shadow + cfg.foreground_weight * fg
    return {"loss": total, "alpha_l1": alpha, "edges": edges, "shadow_l1": shadow, "foreground_l1": fg}


class MatteTrainer(SteppedTrainer):
    def __init__(self, config: MatteConfig | None = None, resume: str | Path | None = None,
                 overrides: dict | None = None):
        state = None
        if resume is not None:
            state, config = self.open_resume(resume, MatteConfig, MatteConfigError, overrides)
        elif config is None:
            raise MatteConfigError("MatteConfig is required to start a new run")
        self.cfg = config.check()
        try:
            self.layers = LayerSet(self.cfg.layers)
        except (OSError, KeyError, ValueError) as e:
            raise MatteConfigError(f"MatteConfig.layers: {self.cfg.layers}: not a layer set ({e})") from None
        if self.layers.res < self.cfg.crop:
            raise MatteConfigError(f"MatteConfig.crop: {self.cfg.crop} is larger than the layers' {self.layers.res} px")
        n = len(self.layers)
        val = min(self.cfg.val, max(1, n // 10))
        self.train_idx, self.val_idx = np.arange(n - val), np.arange(n - val, n)
        self.photos = load_backdrop_photos(self.cfg.photos)
        torch.manual_seed(self.cfg.seed)
        self.net = MatteNet()
        self.opt = torch.optim.Adam(self.net.parameters(), lr=self.cfg.lr)
        self.step, self.images, self.elapsed_s = 0, 0, 0.0
        if state is not None:
            self._ckpt.load_module("matte", self.net)
            self._ckpt.load_optimizer("matte", self.opt)
            self.step, self.images, self.elapsed_s = state["step"], state["images"], state["elapsed_s"]
            rewind_metrics(self.run, self.step)
        else:
            self.run = new_run_dir(self.cfg.out, "matte", self.cfg.crop, self.cfg.name)
            self._lock = lock_run_dir(self.run)
            (self.run / "run.json").write_text(json.dumps(
                {"kind": "matte", "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "layers": {"name": Path(self.cfg.layers).name, "count": n, "resolution": self.layers.res},
                 "backdrop_photos": len(self.photos), "config": asdict(self.cfg)}, indent=1) + "\n")

    def train_step(self) -> dict[str, float]:
        rng = step_rng(self.cfg.seed, self.step)
        batch = make_batch(self.layers, self.train_idx, self.cfg.batch, self.cfg.crop, rng, self.photos,
                           self.cfg.soft_share)
        for group in self.opt.param_groups:
            group["lr"] = self.cfg.lr * self.lr_share()
        self.net.train()
        losses = matte_losses(self.net(batch["image"]), batch, self.cfg)
        self.opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        self.opt.step()
        self.step += 1
        self.images += self.cfg.batch
        return {k: v.item() for k, v in losses.items()}

    def evaluate(self) -> dict[str, float]:
        """The held-out pieces over every backdrop kind (fixed draws), at 256 px as the matte is used:
        alpha MSE, and the share of the solid piece (alpha 1) predicted >= 0.9."""
        if getattr(self, "_val", None) is None:
            rng = np.random.default_rng([self.cfg.seed, 0xE7A1])
            ks = kinds(self.photos)
            rows = [compose(self.layers.get(int(i)), ks[j % len(ks)], rng, self.photos)
                    for j, i in enumerate(self.val_idx)]
            self._val = rows
        self.net.eval()
        with torch.no_grad():
            imgs = torch.from_numpy(np.stack([r["image"] for r in self._val])).permute(0, 3, 1, 2).contiguous()
            pred = torch.cat([self.net(imgs[i:i + 8])["alpha"] for i in range(0, len(imgs), 8)])[:, 0].numpy()
        true = np.stack([r["alpha"] for r in self._val])
        solid = true >= 0.999
        return {"val_alpha_mse": float(np.mean((pred - true) ** 2)),
                "val_solid_share": float((pred[solid] >= 0.9).mean()) if solid.any() else float("nan")}

    def save(self) -> Path:
        state = {"kind": "matte", "config": asdict(self.cfg), "images": self.images, "kimg": self.images / 1000,
                 "elapsed_s": self.elapsed_s, "network": self.net.config}
        return ckpt.save_checkpoint(self.run, self.step, {"matte": self.net}, {"matte": self.opt}, state, keep_last=2)

    def progress_line(self, logs: dict, rate: float) -> str:
        return f"matte: {self.images / 1000:.1f} kimg, {rate:.1f} img/s, loss {logs['loss']:.4f}"
