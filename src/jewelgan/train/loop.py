"""The Trainer: one loop for every model, on CPU, one GPU or many (torchrun).

It builds the run (models, optimisers, data, guidance), repeats the adversarial step (train/step.py)
within the budget, and writes checkpoints, sample grids, metrics and evaluations; non-finite losses
restore the last good snapshot at a lower learning rate, and so does a collapse (train/collapse.py). Everything random in step k is seeded from (seed, k) and the data order from (seed, epoch), so a run
resumed from any checkpoint continues exactly as if it had never stopped.
"""

from __future__ import annotations

import json
import os
import math
import signal
import threading
import time
import warnings
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from jewelgan.runs import checkpoint as ckpt_mod
from jewelgan.config import RESUME_OVERRIDABLE, ConfigError, TrainConfig
from jewelgan.data.archive import Archive
from jewelgan.data.labels import LabelSchema
from jewelgan.models.layers import schema_sizes
from jewelgan.train import distributed as dist_mod
from jewelgan.train.collapse import CollapseMonitor, keep_for_lookback
from jewelgan.train.data import BatchStream, label_rows
from jewelgan.train.ema import make_ema
from jewelgan.train.guidance import HEADS_LR, TERMS, FeatureGuidance, guidance_weights
from jewelgan.runs.rundir import (MetricsLog, lock_run_dir, new_run_dir, package_versions, rewind_metrics,
                                   write_provenance)
from jewelgan.train.samples import progress_bar, save_sample_grid
from jewelgan.train.state import Snapshot, all_finite, rng_state, set_rng_state
from jewelgan.train.step import AdversarialStep, NonFiniteStep


class DivergenceError(RuntimeError):
    """Training produced NaN/inf and the guard was told to stop (or ran out of recoveries)."""


def _crossed(prev_images: int, images: int, every_kimg: float) -> bool:
    if every_kimg <= 0:
        return False
    every = every_kimg * 1000
    return math.floor(prev_images / every) != math.floor(images / every)


class Trainer(AdversarialStep):
    def __init__(self, config: TrainConfig | None = None, *, resume: str | Path | None = None,
                 overrides: dict | None = None, augment: nn.Module | None = None):
        self.callbacks: list[Callable[["Trainer", int], None]] = []
        self._ckpt = None
        self._lock = None
        if resume is not None:
            self.run_dir = Path(resume)
            if os.environ.get("RANK", "0") == "0" and self.run_dir.is_dir():  # only rank 0 writes the run
                self._lock = lock_run_dir(self.run_dir)  # before reading: nobody else may be pruning it
            try:
                self._ckpt = ckpt_mod.open_checkpoint(self.run_dir)
            except ckpt_mod.CheckpointError as e:
                self.release()
                raise ConfigError(f"--resume: {e}") from None
            try:
                cfg = self._merge_resume(TrainConfig.from_dict(self._ckpt.state["config"]), config, overrides or {})
            except ConfigError:
                self.release()
                raise
        else:
            if config is None:
                raise ConfigError("TrainConfig is required to start a new run")
            cfg = config.replace(**(overrides or {}))
            self.run_dir = None
        cfg.require_data()
        if cfg.kimg is None and cfg.minutes is None:
            raise ConfigError("TrainConfig.kimg: set a training budget (kimg or minutes)")
        self._setup(cfg, augment)

    # ------------------------------------------------------------------ setup
    def _merge_resume(self, saved: TrainConfig, given: TrainConfig | None, overrides: dict) -> TrainConfig:
        changes = dict(overrides)
        if given is not None:
            from jewelgan.models import resolved_model_args

            if given.model == saved.model:  # a preset name and its written-out settings are the same config
                given = given.replace(model_args=resolved_model_args(given.model, given.replace(res=saved.res)))
            base = saved.to_dict()
            # a field left to be resolved at start (res None = the archive's, "auto") matches what it resolved to
            changes.update({k: v for k, v in given.to_dict().items()
                            if v != base[k] and k not in changes and v is not None and v != "auto"})
            if not given.data:
                changes.pop("data", None)
        for key in ("bf16", "alpha"):  # "auto" and what it resolved to are the same config too
            if changes.get(key) == "auto":
                changes[key] = getattr(saved, key)
        for k, v in changes.items():
            if k not in RESUME_OVERRIDABLE and k != "data" and v != getattr(saved, k):
                raise ConfigError(f"TrainConfig.{k}: cannot change from {getattr(saved, k)!r} to {v!r} when resuming "
                                  f"(only budgets and bookkeeping may change: {', '.join(sorted(RESUME_OVERRIDABLE))})")
        return saved.replace(**changes)

    def _setup(self, cfg: TrainConfig, augment: nn.Module | None) -> None:
        if cfg.deterministic:
            import os

            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        self._prev_threads = torch.get_num_threads()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        dev = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        if dev.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"TrainConfig.device: {dev!r} requested but CUDA is not available")
        self.dist = dist_mod.init_from_env(torch.device(dev).type)
        if self.dist.enabled and dev == "cuda":
            dev = f"cuda:{self.dist.local_rank}"
        self.device = torch.device(dev)

        self.archive = Archive(cfg.data)
        res = cfg.res or self.archive.resolution
        if res > self.archive.resolution or self.archive.resolution % res:
            raise ConfigError(f"TrainConfig.res: {res} px cannot be made from the archive's {self.archive.resolution} px")
        from jewelgan.models import build_model, resolved_model_args

        # presets written out: the run rebuilds the same network even after a preset changes
        self.cfg = cfg = cfg.replace(res=res, model_args=resolved_model_args(cfg.model, cfg.replace(res=res)))
        if cfg.bf16 == "auto":  # decided once and stored, so a resume elsewhere keeps this run's maths
            from jewelgan.train.precision import resolve_bf16

            self.cfg = cfg = cfg.replace(bf16=resolve_bf16("auto", self.device))
        self.cfg = cfg = self._resolve_alpha(cfg)
        if self._ckpt is not None:
            saved_hash = self._ckpt.state.get("archive", {}).get("content_hash")
            if saved_hash and saved_hash != self.archive.content_hash:
                raise ConfigError(f"TrainConfig.data: {cfg.data} is not the archive this run was trained on "
                                  f"(content hash {self.archive.content_hash} != {saved_hash})")
        conditional = cfg.conditional and len(self.archive.schema) > 0
        self.model_schema = self.archive.schema if conditional else LabelSchema()
        self.n_label_cols = len(self.model_schema)

        if cfg.cls_weight > 0 and self.n_label_cols == 0:
            raise ConfigError("TrainConfig.cls_weight: needs a labelled, conditional run (the archive has no labels "
                              "or conditional is off)")
        torch.manual_seed(cfg.seed)  # identical initial weights for identical configs
        G, D = build_model(cfg.model, cfg, self.model_schema)
        self.init_origin = None
        if cfg.init_from and self._ckpt is None:  # a resumed run has its own weights
            from jewelgan.train.warm_start import load_generator_weights

            copied, fresh, self.init_origin = load_generator_weights(G, cfg.init_from, cfg.model)
            if self.dist.rank == 0:
                left = f"; fresh: {', '.join(fresh)}" if fresh else ""
                print(f"G starts from {cfg.init_from}: {copied} tensors copied{left}", flush=True)
        G, D = G.to(self.device), D.to(self.device)
        if cfg.channels_last:
            G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
        if cfg.cls_weight > 0 and not getattr(D, "classifies", False):
            raise ConfigError(f"TrainConfig.cls_weight: the {cfg.model} model's discriminator has no attribute "
                              "classifier (supported: mlp, dcgan, style with model_args.d = dcgan)")
        self.G, self.D, self.G_ema = G, D, make_ema(G)
        if augment is None and cfg.augment:
            from jewelgan.data.augment import build_augment

            try:
                augment = build_augment(cfg.augment)
            except ValueError as e:
                raise ConfigError(f"TrainConfig.augment: {e}") from None
        self.augment = augment.to(self.device) if augment is not None else None
        adam = dict(betas=(cfg.beta1, cfg.beta2))
        if self.device.type in ("cpu", "cuda"):
            adam["fused"] = True  # one kernel per tensor list: measurably faster on a 2-core CPU
        self.opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, **adam)
        self.opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, **adam)
        self.guide, self.opt_guide, self.opt_critic = None, None, None
        weights = guidance_weights(cfg)
        if weights:
            for term in weights:
                if TERMS[term][1] and self.n_label_cols == 0:
                    raise ConfigError(f"TrainConfig.{TERMS[term][0]}: needs a labelled, conditional run")
            self.guide = FeatureGuidance(schema_sizes(self.model_schema), weights, cfg.guide_res,
                                         loss=cfg.loss).to(self.device)
            if self.guide.heads is not None:
                self.opt_guide = torch.optim.Adam(self.guide.heads.parameters(), lr=HEADS_LR)
            if self.guide.critic is not None:  # trained like D
                self.opt_critic = torch.optim.Adam([*self.guide.critic.parameters(),
                                                    *self.guide.critic_head.parameters()], lr=cfg.lr_d, **adam)
        self.stream = BatchStream(self.archive, cfg.batch, res, seed=cfg.seed, hflip=cfg.hflip,
                                  rank=self.dist.rank, world=self.dist.world, alpha=cfg.alpha)
        self.real_features = None
        if self.guide is not None:
            from jewelgan.models.frozen_features import TAP_CHANNELS
            from jewelgan.train.real_features import RealFeatureTable

            # up to 256 MiB (~67,000 images with their mirrors); beyond that the reals are run every step
            if RealFeatureTable.nbytes(self.stream, TAP_CHANNELS) <= 256 << 20:
                self.real_features = RealFeatureTable(self.guide.pooled, TAP_CHANNELS, self.stream, self.device)
        self.label_rows = label_rows(self.archive) if conditional else [[len(self.archive)]]
        self.step, self.elapsed_s, self.lr_scale, self.recoveries = 0, 0.0, 1.0, 0
        self.collapse_recoveries = 0
        self.collapse = CollapseMonitor(cfg.collapse_patience) if cfg.on_collapse != "off" else None
        self.progress = 0.0  # share of the budget used (set by _should_stop; drives lr_rampdown)
        self.best: dict | None = None
        if self._ckpt is not None:
            self._load(self._ckpt)
        elif self.dist.enabled:
            for m in (self.G, self.D, self.G_ema):
                dist_mod.broadcast_module(m, self.dist)
        self.stop_reason: str | None = None

    def _resolve_alpha(self, cfg: TrainConfig) -> TrainConfig:
        from jewelgan.models import sees_alpha

        if cfg.alpha == "auto":  # decided once and stored: the saved config rebuilds the same network
            return cfg.replace(alpha=self.archive.has_alpha and sees_alpha(cfg.model, cfg))
        if cfg.alpha and not self.archive.has_alpha:
            raise ConfigError(f"TrainConfig.alpha: {cfg.data} has no alpha channel (studio renders have one; "
                              "`jewelgan prepare --alpha auto` keys it from a plain backdrop), or set alpha: false")
        if cfg.alpha and not sees_alpha(cfg.model, cfg):
            raise ConfigError(f"TrainConfig.alpha: this {cfg.model} configuration cannot learn alpha (its discriminator "
                              "sees RGB only); set alpha: false")
        return cfg

    @property
    def modules(self) -> dict[str, nn.Module | None]:
        return {"G": self.G, "G_ema": self.G_ema, "D": self.D, "augment": self.augment, "guide": self.guide}

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_g, "D": self.opt_d, **({"guide": self.opt_guide} if self.opt_guide else {}),
                **({"critic": self.opt_critic} if self.opt_critic else {})}

    def _load(self, ck: ckpt_mod.Checkpoint) -> None:
        for name, m in self.modules.items():
            if m is not None and ck.has(name):
                ck.load_module(name, m)
        for name, opt in self.optimizers.items():
            ck.load_optimizer(name, opt)
        st = ck.state
        self.step = int(st["step"])
        self.elapsed_s = float(st.get("elapsed_s", 0.0))
        self.lr_scale = float(st.get("guard", {}).get("lr_scale", 1.0))
        self.recoveries = int(st.get("guard", {}).get("recoveries", 0))
        self.collapse_recoveries = int(st.get("guard", {}).get("collapse_recoveries", 0))
        self.best = st.get("best")
        set_rng_state(st["rng"])

    def release(self) -> None:
        """Give up the run directory's lock (train() does it when the run ends, however it ends)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    # ------------------------------------------------------------------ the loop
    def total_steps(self) -> int | None:
        return math.ceil(self.cfg.kimg * 1000 / self.cfg.batch) if self.cfg.kimg else None

    def run(self) -> Path:
        """Train to the budget; returns the run directory. The run's lock is given up however it ends."""
        try:
            return self._run()
        finally:
            self.release()

    def _run(self) -> Path:
        cfg, main = self.cfg, self.dist.is_main
        if main:
            if self.run_dir is None:
                self.run_dir = new_run_dir(cfg.out, cfg.model, cfg.res, cfg.name)
                self._lock = lock_run_dir(self.run_dir)
                write_provenance(self.run_dir, cfg, self.archive, self.init_origin)
            else:
                rewind_metrics(self.run_dir, self.step)
        if self.dist.enabled:  # every rank returns the run directory rank 0 chose
            box = [str(self.run_dir) if main else None]
            torch.distributed.broadcast_object_list(box, src=0)
            self.run_dir = Path(box[0])
        self.log = MetricsLog(self.run_dir, enabled=main, tensorboard=cfg.tensorboard)
        self._last_grid_step = self._last_eval_step = -1
        if main and self.step == 0:
            self._save_reals()
            self._save_grid()
        total = self.total_steps()
        snapshot = Snapshot(self.step, self.modules, self.optimizers)
        healthy = [snapshot]  # snapshots taken while the run looked healthy, for the collapse guard
        bar = progress_bar(total, self.cfg.batch, self.step, self.cfg.minutes, self.elapsed_s) \
            if cfg.progress and main else None
        restore_signals = self._install_signal_handlers()
        acc: dict[str, float] = {}
        n_acc, step_time, t_loop = 0, 0.0, time.perf_counter()
        try:
            while True:
                stop = self._should_stop(total)
                if stop:
                    self.stop_reason = stop
                    break
                self._set_lr()
                step, prev_images = self.step, self.step * cfg.batch
                t0 = time.perf_counter()
                try:
                    stats = self.train_step(step)
                    for cb in self.callbacks:
                        cb(self, step)
                    if (step + 1) % cfg.guard_every == 0 and not all_finite(self.G, self.D, self.augment, optimizers=self.optimizers.values()):
                        raise NonFiniteStep("weights hold NaN or inf")
                except NonFiniteStep as e:
                    snapshot = self._recover(step, str(e), snapshot)
                    continue
                dt = time.perf_counter() - t0
                self.step = step + 1
                images = self.step * cfg.batch
                now = time.perf_counter()
                self.elapsed_s += now - t_loop
                t_loop = now
                step_time += dt
                for k, v in stats.items():
                    acc[k] = acc.get(k, 0.0) + v
                n_acc += 1
                if bar is not None:
                    bar.update(cfg.batch if total else max(0, min(int(self.elapsed_s), bar.total) - bar.n))
                    bar.set_postfix_str(f"{n_acc * cfg.batch / max(step_time, 1e-9):.0f} img/s, {images / 1000:.2f} kimg",
                                        refresh=False)
                if self.step % cfg.log_every == 0:
                    self.log.write({"kind": "train", "step": self.step, "kimg": images / 1000, "time_s": round(self.elapsed_s, 3),
                                    **{k: v / n_acc for k, v in acc.items()},
                                    "img_s": n_acc * cfg.batch / max(step_time, 1e-9), "lr_g": self.opt_g.param_groups[0]["lr"],
                                    "lr_d": self.opt_d.param_groups[0]["lr"],
                                    **({"aug_p": float(self.augment.p)} if hasattr(self.augment, "p") else {})})
                    acc, n_acc, step_time = {}, 0, 0.0
                if self.step % cfg.guard_every == 0:
                    snapshot = Snapshot(self.step, self.modules, self.optimizers)
                    if self.collapse is not None and self.collapse.healthy:
                        healthy = keep_for_lookback([*healthy, snapshot], self.step, self.collapse.lookback)
                if self.collapse is not None:
                    self.collapse.observe(self.step, stats)
                    if self.collapse.collapsed:
                        safe = [h for h in healthy if h.step <= self.collapse.safe_step()]
                        snapshot = self._on_collapse(safe[-1] if safe else healthy[0])
                        healthy = [snapshot]
                        if self.stop_reason:
                            break
                        continue
                if main and _crossed(prev_images, images, cfg.grid_every):
                    self._save_grid()
                if _crossed(prev_images, images, cfg.eval_every):
                    self._evaluate()
                if _crossed(prev_images, images, cfg.ckpt_every):
                    self.save()
        finally:
            restore_signals()
            if bar is not None:
                bar.close()
            torch.set_num_threads(self._prev_threads)
        if self.stop_reason == "budget":
            if main and self._last_grid_step != self.step:
                self._save_grid()
            if cfg.eval_every > 0 and self._last_eval_step != self.step:
                self._evaluate()
        self.save()
        if main:
            self.log.write({"kind": "event", "event": "stopped", "reason": self.stop_reason, "step": self.step,
                            "kimg": self.step * cfg.batch / 1000})
            if self.stop_reason == "interrupted":
                print(f"interrupted at step {self.step}: checkpoint saved; continue with --resume {self.run_dir}")
        self.log.close()
        dist_mod.barrier(self.dist)
        return self.run_dir

    def _should_stop(self, total: int | None) -> str | None:
        progress = self.step / total if total else 0.0
        if self.cfg.minutes is not None:
            progress = max(progress, self.elapsed_s / (self.cfg.minutes * 60))
        flags = torch.tensor([
            float(total is not None and self.step >= total),
            float(self.cfg.minutes is not None and self.elapsed_s >= self.cfg.minutes * 60),
            float(getattr(self, "_interrupted", False)),
            progress,
        ])
        flags = dist_mod.reduce_scalars(flags, self.dist, "max")
        self.progress = float(flags[3])  # share of the budget used, the same on every rank
        if flags[2] > 0:
            return "interrupted"
        if flags[0] > 0 or flags[1] > 0:
            return "budget"
        return None

    # ------------------------------------------------------------------ divergence guard
    def _recover(self, step: int, why: str, snapshot: Snapshot) -> Snapshot:
        self.recoveries += 1
        msg = f"non-finite values at step {step} ({why})"
        self.log.write({"kind": "event", "event": "divergence", "step": step, "detail": why,
                        "restored_step": snapshot.step, "recoveries": self.recoveries})
        if self.cfg.on_nan == "stop" or self.recoveries > self.cfg.max_recoveries:
            self.log.close()
            last = ckpt_mod.latest_checkpoint(self.run_dir) if self.run_dir else None
            hint = f"; the last good checkpoint is {last}" if last else ""
            limit = "" if self.cfg.on_nan == "stop" else f" after {self.cfg.max_recoveries} recoveries"
            raise DivergenceError(f"training diverged: {msg}; stopped{limit}{hint}. "
                                  f"Try a lower learning rate (lr_g/lr_d), another loss or R1.")
        self.step = snapshot.restore(self.modules, self.optimizers)
        self.lr_scale *= self.cfg.nan_lr_factor
        self._set_lr()
        warnings.warn(f"{msg}: restored step {snapshot.step} and lowered the learning rate to x{self.lr_scale:g}",
                      stacklevel=2)
        return Snapshot(self.step, self.modules, self.optimizers)

    # ------------------------------------------------------------------ collapse guard
    def _on_collapse(self, healthy: Snapshot) -> Snapshot:
        """Restore the last snapshot taken while the run looked healthy; then stop, or continue with half
        the learning rate and, under ADA, stronger augmentation (on_collapse)."""
        cfg, why = self.cfg, self.collapse.describe()
        self.collapse_recoveries += 1
        at = self.step
        self.step = healthy.restore(self.modules, self.optimizers)
        stop = cfg.on_collapse == "stop" or self.collapse_recoveries > cfg.max_recoveries
        action = "stopped"
        if not stop:
            self.lr_scale *= 0.5
            self._set_lr()
            action = f"learning rate x{self.lr_scale:g}"
            if hasattr(self.augment, "prob"):
                with torch.no_grad():
                    self.augment.prob.copy_((self.augment.prob + 0.2).clamp(max=self.augment.p_max))
                action += f", ADA p {self.augment.p:.2f}"
        self.collapse.reset()
        if self.dist.is_main and self.run_dir is not None:
            ckpt_mod.set_aside_after(self.run_dir, self.step)
        self.log.write({"kind": "event", "event": "collapse", "step": at, "detail": why, "restored_step": self.step,
                        "action": action, "collapse_recoveries": self.collapse_recoveries})
        if self.dist.is_main:
            print(f"\ncollapse at step {at}: {why}; restored step {self.step} ({action})", flush=True)
        if stop:
            self.stop_reason = "collapse"
        else:
            self.save()  # a crash from here resumes the healthy state with the new settings
        return Snapshot(self.step, self.modules, self.optimizers)

    def _set_lr(self) -> None:
        """Base lrs times the divergence guard's scale, times the ramp-down over the budget's end."""
        factor = self.lr_scale
        if self.cfg.lr_rampdown > 0:
            factor *= min(1.0, (1.0 - self.progress) / self.cfg.lr_rampdown)
        for opt, base in ((self.opt_g, self.cfg.lr_g), (self.opt_d, self.cfg.lr_d)):
            for group in opt.param_groups:
                group["lr"] = base * factor

    # ------------------------------------------------------------------ outputs
    def state_json(self) -> dict:
        return {
            "kimg": self.step * self.cfg.batch / 1000, "images": self.step * self.cfg.batch,
            "config": self.cfg.to_dict(), "model_schema": self.model_schema.to_json(),
            "archive_schema": self.archive.schema.to_json(), "label_rows": self.label_rows,
            "archive": {"path": str(Path(self.archive.path).resolve()), "content_hash": self.archive.content_hash,
                        "resolution": self.archive.resolution, "count": len(self.archive)},
            "sampler": {"seed": self.cfg.seed, "position": self.step * self.cfg.batch * self.cfg.d_steps,
                        "epoch": self.step * self.cfg.batch * self.cfg.d_steps // len(self.archive)},
            "rng": rng_state(), "elapsed_s": self.elapsed_s, "world": self.dist.world,
            "guard": {"lr_scale": self.lr_scale, "recoveries": self.recoveries,
                      "collapse_recoveries": self.collapse_recoveries},
            "best": self.best, "versions": package_versions(),
        }

    def save(self) -> Path | None:
        """Checkpoint the current state (rank 0); a non-finite state is refused, never written."""
        if not self.dist.is_main:
            return None
        existing = self.run_dir / "checkpoints" / f"step-{self.step:09d}"
        if existing.is_dir() and (existing / "state.json").is_file():
            return existing
        try:
            return ckpt_mod.save_checkpoint(self.run_dir, self.step, self.modules, self.optimizers, self.state_json(),
                                            keep_last=self.cfg.keep_last,
                                            best_step=self.best["step"] if self.best else None)
        except ckpt_mod.CheckpointError as e:
            warnings.warn(f"checkpoint at step {self.step} skipped: {e}", stacklevel=2)
            self.log.write({"kind": "event", "event": "checkpoint_skipped", "step": self.step, "detail": str(e)})
            return None

    def _save_grid(self) -> None:
        self._last_grid_step = self.step
        path = self.run_dir / "samples" / f"grid-{self.step * self.cfg.batch / 1000:09.3f}kimg.png"
        save_sample_grid(self.G_ema, self.model_schema, path, seed=10_000 + self.cfg.seed,
                         label_rows=self.label_rows, tile=max(64, self.cfg.res))

    def _save_reals(self) -> None:
        from jewelgan.grid import save_grid

        x, _ = self.stream.get(0)
        save_grid(x[:64], self.run_dir / "samples" / "reals.png", ncol=8, tile=max(64, self.cfg.res))

    def _evaluate(self) -> None:
        if not self.dist.is_main:
            return
        from jewelgan.metrics.api import evaluate_generator

        self._last_eval_step = self.step
        t0 = time.perf_counter()
        results = evaluate_generator(self.G_ema, self.model_schema, self.cfg.data, n=self.cfg.eval_n,
                                     metrics=tuple(self.cfg.eval_metrics), device=str(self.device))
        self.G_ema.eval()
        record = {k: float(v) for k, v in results.items() if isinstance(v, (int, float))}
        self.log.write({"kind": "eval", "step": self.step, "kimg": self.step * self.cfg.batch / 1000,
                        "eval_s": round(time.perf_counter() - t0, 2), **record})
        metric = next((m for m in ("fid", "kid") if m in record), None)
        if metric and (self.best is None or record[metric] < self.best["value"]):
            self.best = {"step": self.step, "metric": metric, "value": record[metric]}
            if self.save() is not None:
                (self.run_dir / "checkpoints" / "best.json").write_text(json.dumps(self.best) + "\n")

    def _install_signal_handlers(self) -> Callable[[], None]:
        """Ctrl-C (or SIGTERM) finishes the current step, saves a checkpoint and returns; a second Ctrl-C aborts."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum, frame):
            if getattr(self, "_interrupted", False):
                raise KeyboardInterrupt
            self._interrupted = True
            if self.dist.is_main:
                print("\nstopping after this step and saving a checkpoint (Ctrl-C again to abort)", flush=True)

        for s in old:
            signal.signal(s, handler)
        return lambda: [signal.signal(s, h) for s, h in old.items()]


def train(config: TrainConfig | None = None, *, resume: str | Path | None = None, overrides: dict | None = None,
          augment: nn.Module | None = None) -> Path:
    """Train and return the run directory. `resume` continues a run exactly from its latest checkpoint."""
    trainer = Trainer(config, resume=resume, overrides=overrides, augment=augment)
    try:
        return trainer.run()
    finally:
        trainer.release()
        dist_mod.shutdown(trainer.dist)
