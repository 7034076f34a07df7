"""Training the upsampling stage: pixel + perceptual + adversarial loss on aligned crops, in a run directory like
`train`'s (run.json, metrics.jsonl, atomic safetensors checkpoints, a lock), with exact resume.

Everything random in step k (which pairs, crops, flips, degradations, label dropout) comes from a generator
seeded with (seed, k), and the models' initial weights from the seed, so a run resumed from any checkpoint
continues exactly as if it had never stopped.

    from jewelgan.upsample import UpsampleConfig, train_upsampler
    run = train_upsampler(UpsampleConfig(data="studio256.jga", low="studio64.jga", scale=4, minutes=30))
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from jewelgan.data.archive import Archive
from jewelgan.models.layers import schema_sizes
from jewelgan.models.upsampler import PatchDiscriminator, Upsampler
from jewelgan.runs import checkpoint as ckpt
from jewelgan.runs.rundir import lock_run_dir, new_run_dir, rewind_metrics
from jewelgan.runs.stepped import SteppedTrainer
from jewelgan.upsample.pairs import PairSource
from jewelgan.upsample.quality import bilinear, score, upsample_with


class UpsampleConfigError(ValueError):
    """A bad training setting of the upsampler (names the field)."""


@dataclass
class UpsampleConfig:
    data: str                      # the large images: a studio render or a shop's archive prepared large
    low: str | None = None         # exact small renders of the same pieces (studio); None = degrade `data`
    scale: int = 4
    width: int = 32
    blocks: int = 4
    batch: int = 8
    crop: int = 32                 # low-res crop side; the high-res crop is crop * scale
    lr: float = 2e-4
    lr_d: float = 2e-4
    lr_final: float = 1.0          # both rates at the end of a kimg budget, as a share (cosine; 1 = constant)
    init_from: str | None = None   # start from this upsampler run's latest weights (a new run, fresh optimisers)
    pixel: float = 1.0
    perceptual: float = 1.0        # as much as the pixel term: at 0.2, val LPIPS-EffNet stayed at 0.65x bicubic (docs/upsampling.md)
    perceptual_taps: int = 4       # all four EfficientNet taps (strides 4-32): the pieces' shapes as well as their detail
    adversarial: float = 0.02
    adversarial_from_kimg: float = 2.0   # pixel + perceptual first: D has nothing to say about a blur
    label_dropout: float = 0.2     # learn "unknown" too: photos and edits may come without labels
    ema_beta: float = 0.995
    kimg: float | None = None
    minutes: float | None = None
    ckpt_minutes: float = 5.0
    eval_every_kimg: float = 5.0
    val: int = 48                  # last images (at most 10 %), held out for the evaluation in metrics.jsonl
    seed: int = 0
    threads: int | None = None
    out: str = "runs"
    name: str | None = None

    def check(self) -> "UpsampleConfig":
        rules = {"scale": self.scale in (2, 4, 8), "width": self.width >= 4, "blocks": self.blocks >= 0,
                 "batch": self.batch >= 1, "crop": self.crop >= 4, "lr": self.lr > 0, "lr_d": self.lr_d > 0,
                 "pixel": self.pixel >= 0, "perceptual": self.perceptual >= 0, "adversarial": self.adversarial >= 0,
                 "lr_final": 0 <= self.lr_final <= 1, "label_dropout": 0 <= self.label_dropout <= 1, "perceptual_taps": 1 <= self.perceptual_taps <= 4, "ema_beta": 0 <= self.ema_beta < 1,
                 "val": self.val >= 1, "ckpt_minutes": self.ckpt_minutes > 0,
                 "kimg": self.kimg is None or self.kimg > 0, "minutes": self.minutes is None or self.minutes > 0}
        bad = [k for k, ok in rules.items() if not ok]
        if bad:
            raise UpsampleConfigError(f"UpsampleConfig.{bad[0]}: bad value {getattr(self, bad[0])!r} "
                                      "(scale 2/4/8, sizes >= 1, weights >= 0, rates in range)")
        if self.kimg is None and self.minutes is None:
            raise UpsampleConfigError("UpsampleConfig.kimg: set a budget (kimg or minutes)")
        if self.lr_final < 1 and self.kimg is None:  # a decay needs to know where the run ends
            raise UpsampleConfigError("UpsampleConfig.lr_final: a decaying rate needs a kimg budget")
        return self

    @classmethod
    def from_dict(cls, d: dict) -> "UpsampleConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UpsampleConfigError(f"UpsampleConfig: unknown field {unknown[0]!r}")
        return cls(**d)


def init_summary(source: Path, state: dict) -> dict:
    """What a warm start began from, without this machine's paths: the run's name, its kimg and hours (and
    what that run itself began from)."""
    return {"run": Path(source).name, "kimg": state.get("kimg"), "hours": round(state.get("elapsed_s", 0) / 3600, 2),
            "init": state.get("init")}


def step_rng(seed: int, step: int) -> np.random.Generator:
    return np.random.default_rng([seed, step, 0x5CA1E])


class UpsamplerTrainer(SteppedTrainer):
    def __init__(self, config: UpsampleConfig | None = None, resume: str | Path | None = None,
                 overrides: dict | None = None):
        state = None
        if resume is not None:
            state, config = self.open_resume(resume, UpsampleConfig, UpsampleConfigError, overrides)
        elif config is None:
            raise UpsampleConfigError("UpsampleConfig is required to start a new run")
        self.cfg = config.check()
        high = Archive(self.cfg.data)
        low = Archive(self.cfg.low) if self.cfg.low else None
        n = len(high)
        val = min(self.cfg.val, max(1, n // 10))  # a small shop keeps 90 % of its photos to train on
        self.train_pairs = PairSource(high, low, self.cfg.scale, np.arange(n - val))
        self.val_pairs = PairSource(high, low, self.cfg.scale, np.arange(n - val, n))
        self.schema = high.schema
        torch.manual_seed(self.cfg.seed)
        self.U = Upsampler(high.channels, self.cfg.scale, self.cfg.width, self.cfg.blocks, schema_sizes(self.schema))
        self.U_ema = copy.deepcopy(self.U).eval().requires_grad_(False)
        self.D = PatchDiscriminator(high.channels)
        self.opt_u = torch.optim.Adam(self.U.parameters(), lr=self.cfg.lr, betas=(0.9, 0.99))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=self.cfg.lr_d, betas=(0.5, 0.99))
        self.features = None
        self.init = None if state is None else state.get("init")  # what a warm start began from
        self.step, self.images, self.elapsed_s = 0, 0, 0.0
        if state is not None:
            for name, module in (("U", self.U), ("U_ema", self.U_ema), ("D", self.D)):
                self._ckpt.load_module(name, module)
            self._ckpt.load_optimizer("U", self.opt_u)
            self._ckpt.load_optimizer("D", self.opt_d)
            self.step, self.images, self.elapsed_s = state["step"], state["images"], state["elapsed_s"]
            rewind_metrics(self.run, self.step)  # lines written after the checkpoint are written again
        else:
            if self.cfg.init_from:
                self._warm_start(Path(self.cfg.init_from))
            self.run = new_run_dir(self.cfg.out, "upsampler", high.resolution, self.cfg.name)
            self._lock = lock_run_dir(self.run)
            self._write_provenance(high, low)

    def _warm_start(self, source: Path) -> None:
        """The stage and its critic from another run's latest checkpoint: a longer or decaying schedule can go
        on from a run that has plateaued, without repeating its steps. The shapes must match this config."""
        try:
            found = ckpt.open_checkpoint(source)
            for name, module in (("U", self.U), ("U_ema", self.U_ema), ("D", self.D)):
                found.load_module(name, module)
        except ckpt.CheckpointError as e:
            raise UpsampleConfigError(f"UpsampleConfig.init_from: {source}: {e}") from None
        self.init = init_summary(source, found.state)

    def _write_provenance(self, high: Archive, low: Archive | None) -> None:
        archives = {"high": {"name": high.path.name, "content_hash": high.content_hash, "count": len(high),
                             "resolution": high.resolution}}
        if low is not None:
            archives["low"] = {"name": low.path.name, "content_hash": low.content_hash, "resolution": low.resolution}
        info = {"kind": "upsampler", "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "archives": archives, "config": asdict(self.cfg)}
        (self.run / "run.json").write_text(json.dumps(info, indent=1) + "\n")

    # ------------------------------------------------------------------ one step
    def _perceptual(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        if self.features is None:
            from jewelgan.models.frozen_features import FrozenFeatures

            self.features = FrozenFeatures(input_res=real.shape[-1])
        unit = lambda f: f / (f.square().sum(1, keepdim=True).sqrt() + 1e-8)  # noqa: E731 - LPIPS-style
        taps = self.cfg.perceptual_taps
        ff, fr = self.features(fake[:, :3], taps), self.features(real[:, :3], taps)
        return sum(unit(a).sub(unit(b)).square().sum(1).mean() for a, b in zip(ff, fr)) / len(ff)

    def train_step(self) -> dict[str, float]:
        cfg = self.cfg
        rng = step_rng(cfg.seed, self.step)
        low, high, labels = self.train_pairs.batch(cfg.batch, cfg.crop, rng)
        drop = torch.from_numpy(rng.random(labels.shape) < cfg.label_dropout)
        labels = labels.masked_fill(drop, -1)
        torch.manual_seed(int(rng.integers(2**62)))  # anything torch draws in this step (none today) is seeded too
        # a warm start's critic is trained already: no pixel-only start
        adversarial = cfg.adversarial > 0 and (bool(cfg.init_from) or self.images >= cfg.adversarial_from_kimg * 1000)
        rate = self.lr_share()
        for opt, base in ((self.opt_u, cfg.lr), (self.opt_d, cfg.lr_d)):
            for group in opt.param_groups:
                group["lr"] = base * rate
        low_up = bilinear(low, cfg.scale)
        fake = self.U(low, labels)
        logs = {}
        if adversarial:  # D first, on a detached fake
            d_real, d_fake = self.D(high, low_up), self.D(fake.detach(), low_up)
            loss_d = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            logs["loss_d"] = loss_d.item()
        pixel = (fake - high).abs().mean()
        loss = cfg.pixel * pixel
        logs["pixel"] = pixel.item()
        if cfg.perceptual > 0:
            perceptual = self._perceptual(fake, high)
            loss = loss + cfg.perceptual * perceptual
            logs["perceptual"] = perceptual.item()
        if adversarial:
            adv = F.softplus(-self.D(fake, low_up)).mean()
            loss = loss + cfg.adversarial * adv
            logs["adversarial"] = adv.item()
        self.opt_u.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_u.step()
        with torch.no_grad():
            for e, p in zip(self.U_ema.parameters(), self.U.parameters()):
                e.lerp_(p, 1 - cfg.ema_beta)
        self.step += 1
        self.images += cfg.batch
        return logs

    # ------------------------------------------------------------------ evaluation and checkpoints
    def evaluate(self, inception: bool = False) -> dict[str, float]:
        """The EMA stage on the held-out pairs, beside bicubic. The pairs, their truths' features and bicubic's
        figures do not change during a run, so they are made once and only the stage is scored again."""
        from jewelgan.upsample.quality import resample

        if getattr(self, "_val", None) is None or (inception and "inception" not in self._val["cache"]):
            low, high, labels = self.val_pairs.whole(self.val_pairs.indices, seed=self.cfg.seed)
            cache = {}
            bicubic = score(resample(low, high.shape[1]), high, inception, cache)
            self._val = {"pairs": (low, high, labels), "cache": cache,
                         "bicubic": {f"val_bicubic_{k}": v for k, v in bicubic.items()}}
        low, high, labels = self._val["pairs"]
        ours = score(upsample_with(self.U_ema, low, labels), high, inception, self._val["cache"])
        bicubic = {k: v for k, v in self._val["bicubic"].items() if inception or not k.endswith("inception")}
        return {**{f"val_{k}": v for k, v in ours.items()}, **bicubic}

    def save(self) -> Path:
        state = {"kind": "upsampler", "config": asdict(self.cfg), "images": self.images, "kimg": self.images / 1000,
                 "elapsed_s": self.elapsed_s, "schema": self.schema.to_json(), "channels": self.U.channels,
                 "size_in": self.train_pairs.low_res, "init": self.init}
        return ckpt.save_checkpoint(self.run, self.step, {"U": self.U, "U_ema": self.U_ema, "D": self.D},
                                    {"U": self.opt_u, "D": self.opt_d}, state, keep_last=2)

    def progress_line(self, logs: dict, rate: float) -> str:
        return f"upsampler x{self.cfg.scale}: {self.images / 1000:.1f} kimg, {rate:.1f} img/s, pixel {logs['pixel']:.4f}"


def train_upsampler(config: UpsampleConfig | None = None, resume: str | Path | None = None,
                    overrides: dict | None = None, progress: bool = True) -> Path:
    return UpsamplerTrainer(config, resume, overrides).run_loop(progress)
