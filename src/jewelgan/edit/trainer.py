"""Training the metal translator on the studio's exact pairs, in a run directory like `train`'s (run.json,
metrics.jsonl, atomic safetensors checkpoints, a lock) with exact resume.

Each step draws pieces from a pairs file (pairs.py), a source and a different target metal for each, rescales and
crops both metals the same way, and composes them over one random shop backdrop (the same backdrop, shadow and
noise for both). Half the steps the generator reads the photo at half size and its colour map and mask are
upsampled before they are applied, which is how a photo larger than 256 px is edited. Losses (pix2pix):
L1 to the target metal's photo, the material map's cross-entropy, the photo's own metal's cross-entropy (the
classifier behind "ask, don't guess"), and a hinge adversarial loss from a patch discriminator that sees
(photo, edit, target metal). Everything random in step k comes from a generator seeded with (seed, k).

    python -m jewelgan.cli train-translator --pairs pairs256.npz --photos PHOTOS --kimg 40
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from jewelgan.edit.network import (PatchDiscriminator, TranslatorNet, apply_colour_map, metal_share,
                                   tint_statistics, tint_transfer)
from jewelgan.edit.pairs import PairSet, PairsError, compose_pair
from jewelgan.matte.examples import kinds
from jewelgan.matte.trainer import crop_example, load_backdrop_photos
from jewelgan.runs import checkpoint as ckpt
from jewelgan.runs.rundir import lock_run_dir, new_run_dir, rewind_metrics
from jewelgan.runs.stepped import SteppedTrainer

METAL, STONE = 1, 2  # the material map's metal and stone (studio/render.py)


class TranslatorConfigError(ValueError):
    """A bad training setting of the translator (names the field)."""


@dataclass
class TranslatorConfig:
    pairs: str                     # a render_metal_pairs file
    photos: str | None = None      # a folder of a shop's photos whose borders serve as backdrops
    crop: int = 128                # training crop side (a multiple of 64: half of it is run too)
    batch: int = 8
    lr: float = 2e-3
    lr_d: float = 1e-3
    lr_final: float = 0.05
    l1_weight: float = 1.0
    material_weight: float = 0.5    # the mask decides what may change: weighted as much as the pixels
    class_weight: float = 0.2
    adv_weight: float = 0.005      # small beside L1 (pix2pix's 1:100): exact pairs carry most of the answer
    half_size_share: float = 0.5   # steps where the generator reads the photo at half size
    vary_source: float = 0.7       # share of pairs whose source metal is varied as real photos vary it
    kimg: float | None = None
    minutes: float | None = None
    ckpt_minutes: float = 5.0
    eval_every_kimg: float = 4.0
    val: int = 48                  # the last pieces of the pairs file, held out
    seed: int = 0
    threads: int | None = None
    out: str = "runs"
    name: str | None = None

    def check(self) -> "TranslatorConfig":
        rules = {"crop": self.crop >= 64 and self.crop % 64 == 0, "batch": self.batch >= 1, "lr": self.lr > 0,
                 "lr_d": self.lr_d > 0, "lr_final": 0 <= self.lr_final <= 1, "l1_weight": self.l1_weight >= 0,
                 "material_weight": self.material_weight >= 0, "class_weight": self.class_weight >= 0,
                 "adv_weight": self.adv_weight >= 0, "half_size_share": 0 <= self.half_size_share <= 1,
                 "vary_source": 0 <= self.vary_source <= 1,
                 "val": self.val >= 1, "ckpt_minutes": self.ckpt_minutes > 0,
                 "kimg": self.kimg is None or self.kimg > 0, "minutes": self.minutes is None or self.minutes > 0}
        bad = [k for k, ok in rules.items() if not ok]
        if bad:
            raise TranslatorConfigError(f"TranslatorConfig.{bad[0]}: bad value {getattr(self, bad[0])!r} "
                                        "(crop a multiple of 64, sizes >= 1, weights >= 0, rates in range)")
        if self.kimg is None and self.minutes is None:
            raise TranslatorConfigError("TranslatorConfig.kimg: set a budget (kimg or minutes)")
        if self.lr_final < 1 and self.kimg is None:
            raise TranslatorConfigError("TranslatorConfig.lr_final: a decaying rate needs a kimg budget")
        return self

    @classmethod
    def from_dict(cls, d: dict) -> "TranslatorConfig":
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise TranslatorConfigError(f"TranslatorConfig: unknown field {unknown[0]!r}")
        return cls(**d)


def step_rng(seed: int, step: int) -> np.random.Generator:
    return np.random.default_rng([seed, step, 0x7A45])


def vary_metal(example: dict, rng: np.random.Generator) -> dict:
    """The source piece's metal as a shop's photo may show it: more or less saturated, brighter or darker, a
    little warmer or cooler (real yellow gold photographs far more saturated than the studio's). Only the
    source varies; the target stays the studio's metal, so one map learns to reach it from all of them."""
    fg = example["foreground"]
    luma = (fg @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    varied = luma + rng.uniform(0.7, 1.8) * (fg - luma)
    varied = np.clip(varied * (1 + rng.uniform(-0.05, 0.05, 3).astype(np.float32)), 0, 1) ** rng.uniform(0.8, 1.25)
    metal = ((example["alpha"] > 0) & (example["material"] != STONE))[..., None]
    return example | {"foreground": np.where(metal, varied, fg).astype(np.float32)}


def draw_pair(pairs: PairSet, index: int, source: int, target: int, kind: str, rng: np.random.Generator,
              photos: list, crop: int | None = None, vary: float = 0.0) -> dict[str, np.ndarray]:
    """One composed pair: photo (source metal), truth (target metal), material, alpha; cropped when crop is set,
    the source's metal varied (vary_metal) with probability `vary`."""
    a, b = pairs.get(index, source), pairs.get(index, target)
    if vary and rng.random() < vary:
        a = vary_metal(a, rng)
    if crop is not None:
        both = crop_example(a | {"foreground_b": b["foreground"]}, crop, rng)
        a = {k: both[k] for k in ("alpha", "foreground", "shadow", "material")}
        b = a | {"foreground": both["foreground_b"]}
    pa, pb = compose_pair(a, b, kind, rng, photos)
    return {"photo": pa["image"], "truth": pb["image"], "material": pa["material"], "alpha": pa["alpha"]}


def make_batch(pairs: PairSet, indices: np.ndarray, n: int, crop: int, rng: np.random.Generator, photos: list,
               vary: float = 0.0) -> dict[str, torch.Tensor]:
    ks, M = kinds(photos), len(pairs.metals)
    rows, src, tgt = [], [], []
    for _ in range(n):
        a = int(rng.integers(M))
        b = (a + 1 + int(rng.integers(M - 1))) % M  # a different metal
        rows.append(draw_pair(pairs, int(indices[rng.integers(len(indices))]), a, b, ks[int(rng.integers(len(ks)))],
                              rng, photos, crop, vary))
        src.append(a)
        tgt.append(b)
    img = lambda k: torch.from_numpy(np.stack([r[k] for r in rows])).permute(0, 3, 1, 2).contiguous()  # noqa: E731
    return {"photo": img("photo"), "truth": img("truth"),
            "alpha": torch.from_numpy(np.stack([r["alpha"] for r in rows]).astype(np.float32))[:, None],
            "material": torch.from_numpy(np.stack([r["material"] for r in rows]).astype(np.int64)),
            "source": torch.tensor(src), "target": torch.tensor(tgt)}


def translate(net: TranslatorNet, photo: torch.Tensor, source: torch.Tensor, target: torch.Tensor,
              alpha: torch.Tensor, half_size: bool = False) -> dict[str, torch.Tensor]:
    """The generator's edit of a batch at the photo's size, within the piece's alpha (N, 1, H, W); with
    half_size the network reads it at half size and its maps are upsampled (the path of a photo larger than
    the network's side)."""
    x = F.avg_pool2d(photo, 2) if half_size else photo
    out = net(x, source, target)
    if half_size:
        up = lambda t: F.interpolate(t, size=photo.shape[-2:], mode="bilinear", align_corners=False)  # noqa: E731
        out = out | {"material": up(out["material"]), "colour_map": up(out["colour_map"])}
    metal = metal_share(out["material"]) * alpha
    transfer = tint_transfer(net, photo, metal, source, target)
    return out | {"edit": apply_colour_map(photo, out["colour_map"], metal, transfer), "metal": metal}


def metal_statistics(pairs: PairSet, indices: np.ndarray, pieces: int = 200
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Each metal's mean tint (metals, 3) and mean luma (metals,) over the fully covered
    metal pixels of up to `pieces` training pieces (network.tint_statistics): what the tint transfer aims at."""
    take = indices[np.linspace(0, len(indices) - 1, min(pieces, len(indices))).astype(int)]
    solid = (pairs.planes["material"][take] == METAL) & (pairs.planes["alpha"][take] == 255)
    weight = torch.from_numpy(solid.astype(np.float32))[:, None]
    stats = []
    for k in range(len(pairs.metals)):
        fg = torch.from_numpy(pairs.planes["foreground"][take, k]).permute(0, 3, 1, 2).float() / 255
        # all pieces as one image: the statistics of the metal, not an average of per-piece ones
        pooled = fg.permute(1, 0, 2, 3).reshape(1, 3, -1, fg.shape[-1])
        stats.append(tint_statistics(pooled, weight.permute(1, 0, 2, 3).reshape(1, 1, -1, fg.shape[-1])))
    return tuple(torch.cat([s[i] for s in stats]) for i in range(2))


class TranslatorTrainer(SteppedTrainer):
    def __init__(self, config: TranslatorConfig | None = None, resume: str | Path | None = None,
                 overrides: dict | None = None):
        state = None
        if resume is not None:
            state, config = self.open_resume(resume, TranslatorConfig, TranslatorConfigError, overrides)
        elif config is None:
            raise TranslatorConfigError("TranslatorConfig is required to start a new run")
        self.cfg = config.check()
        try:
            self.pairs = PairSet(self.cfg.pairs)
        except PairsError as e:
            raise TranslatorConfigError(f"TranslatorConfig.pairs: {e}") from None
        if self.pairs.res < self.cfg.crop:
            raise TranslatorConfigError(f"TranslatorConfig.crop: {self.cfg.crop} is larger than the pairs' "
                                        f"{self.pairs.res} px")
        n = len(self.pairs)
        val = min(self.cfg.val, max(1, n // 10))
        self.train_idx, self.val_idx = np.arange(n - val), np.arange(n - val, n)
        self.photos = load_backdrop_photos(self.cfg.photos)
        torch.manual_seed(self.cfg.seed)
        M = len(self.pairs.metals)
        self.net, self.disc = TranslatorNet(M), PatchDiscriminator(M)
        self.net.tint_mean, self.net.luma_mean = metal_statistics(self.pairs, self.train_idx)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=self.cfg.lr)
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=self.cfg.lr_d, betas=(0.5, 0.99))
        self.step, self.images, self.elapsed_s = 0, 0, 0.0
        if state is not None:
            for name, module, opt in (("translator", self.net, self.opt), ("discriminator", self.disc, self.opt_d)):
                self._ckpt.load_module(name, module)
                self._ckpt.load_optimizer(name, opt)
            self.step, self.images, self.elapsed_s = state["step"], state["images"], state["elapsed_s"]
            rewind_metrics(self.run, self.step)
        else:
            self.run = new_run_dir(self.cfg.out, "translator", self.cfg.crop, self.cfg.name)
            self._lock = lock_run_dir(self.run)
            (self.run / "run.json").write_text(json.dumps(
                {"kind": "translator", "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "pairs": {"name": Path(self.cfg.pairs).name, "count": n, "resolution": self.pairs.res,
                           "metals": self.pairs.metals},
                 "backdrop_photos": len(self.photos), "config": asdict(self.cfg)}, indent=1) + "\n")

    def train_step(self) -> dict[str, float]:
        cfg = self.cfg
        rng = step_rng(cfg.seed, self.step)
        batch = make_batch(self.pairs, self.train_idx, cfg.batch, cfg.crop, rng, self.photos, cfg.vary_source)
        half = bool(rng.random() < cfg.half_size_share)
        share = self.lr_share()
        for opt, lr in ((self.opt, cfg.lr), (self.opt_d, cfg.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr * share
        self.net.train()
        out = translate(self.net, batch["photo"], batch["source"], batch["target"], batch["alpha"], half)
        logs = {}
        if cfg.adv_weight > 0:  # the discriminator first, on a detached edit
            real = self.disc(batch["photo"], batch["truth"], batch["target"])
            fake = self.disc(batch["photo"], out["edit"].detach(), batch["target"])
            d_loss = F.relu(1 - real).mean() + F.relu(1 + fake).mean()
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
            logs["d_loss"] = d_loss.item()
        l1 = (out["edit"] - batch["truth"]).abs().mean()
        material = F.cross_entropy(out["material"], batch["material"])
        metal_class = F.cross_entropy(out["metal_logits"], batch["source"])
        loss = cfg.l1_weight * l1 + cfg.material_weight * material + cfg.class_weight * metal_class
        if cfg.adv_weight > 0:
            g_adv = -self.disc(batch["photo"], out["edit"], batch["target"]).mean()
            loss = loss + cfg.adv_weight * g_adv
            logs["g_adv"] = g_adv.item()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.step += 1
        self.images += cfg.batch
        return logs | {"loss": loss.item(), "l1": l1.item(), "material_ce": material.item(),
                       "metal_ce": metal_class.item()}

    def _val_set(self) -> list[dict]:
        if getattr(self, "_val", None) is None:
            rng = np.random.default_rng([self.cfg.seed, 0xE7A2])
            ks, M = kinds(self.photos), len(self.pairs.metals)
            self._val = []
            for j, i in enumerate(self.val_idx):
                a = j % M
                b = (a + 1 + j // M % (M - 1)) % M
                self._val.append(draw_pair(self.pairs, int(i), a, b, ks[j % len(ks)], rng, self.photos)
                                 | {"source": a, "target": b})
        return self._val

    def evaluate(self) -> dict[str, float]:
        """The held-out pieces at the pairs' full size over every backdrop kind (fixed draws): PSNR of the edit and
        of the unchanged photo against the target metal's photo, the mean change (grey levels) where the piece
        is not metal, and the photo's metal read right by the classifier."""
        val = self._val_set()
        self.net.eval()
        psnr, same, outside, right = [], [], [], []
        with torch.no_grad():
            for r in val:
                x = torch.from_numpy(r["photo"]).permute(2, 0, 1)[None].contiguous()
                a = torch.from_numpy(r["alpha"])[None, None]
                out = translate(self.net, x, torch.tensor([r["source"]]), torch.tensor([r["target"]]), a)
                edit = out["edit"][0].permute(1, 2, 0).numpy()
                psnr.append(-10 * np.log10(max(np.mean((edit - r["truth"]) ** 2), 1e-10)))
                same.append(-10 * np.log10(max(np.mean((r["photo"] - r["truth"]) ** 2), 1e-10)))
                keep = r["material"] != METAL
                outside.append(float(np.abs(edit - r["photo"])[keep].mean() * 255))
                right.append(int(out["metal_logits"].argmax(1).item() == r["source"]))
        return {"val_psnr": float(np.mean(psnr)), "val_psnr_unchanged": float(np.mean(same)),
                "val_change_outside_metal": float(np.mean(outside)), "val_metal_read": float(np.mean(right))}

    def save(self) -> Path:
        state = {"kind": "translator", "config": asdict(self.cfg), "images": self.images, "kimg": self.images / 1000,
                 "elapsed_s": self.elapsed_s, "network": self.net.config, "metals": self.pairs.metals}
        return ckpt.save_checkpoint(self.run, self.step, {"translator": self.net, "discriminator": self.disc},
                                    {"translator": self.opt, "discriminator": self.opt_d}, state, keep_last=2)

    def progress_line(self, logs: dict, rate: float) -> str:
        return f"translator: {self.images / 1000:.1f} kimg, {rate:.1f} img/s, L1 {logs['l1']:.4f}"
