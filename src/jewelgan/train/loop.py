"""The Trainer: one loop for every model, on CPU, one GPU or many (torchrun).

It builds the run from its resolved config (train/resolve.py): the networks, their optimisers, the data
and the step's inputs (train/inputs.py), the guidance (train/guidance.py) and the adversarial step
(train/step.py). It repeats the step within the budget and writes checkpoints, sample grids, metrics and
evaluations; non-finite losses and a collapse send the run back to a good snapshot at a lower learning
rate (train/guards.py). Everything random in step k is seeded from (seed, k) and the data order from
(seed, epoch), so a run resumed from any checkpoint continues exactly as if it had never stopped.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from jewelgan.config import ConfigError, TrainConfig
from jewelgan.data.archive import Archive
from jewelgan.data.label_balance import training_summary
from jewelgan.data.labels import LabelSchema
from jewelgan.models.layers import schema_sizes
from jewelgan.runs import checkpoint as ckpt_mod
from jewelgan.runs.rundir import (MetricsLog, lock_run_dir, new_run_dir, package_versions, rewind_metrics,
                                  write_provenance)
from jewelgan.train import distributed as dist_mod
from jewelgan.train.budget import Budget
from jewelgan.train.data import BatchStream, label_rows
from jewelgan.train.ema import ema_beta, update_ema
from jewelgan.train.guards import DivergenceError, Guards, NonFiniteStep
from jewelgan.train.guidance import build_guidance
from jewelgan.train.inputs import StepInputs
from jewelgan.train.networks import build_networks
from jewelgan.train.precision import Precision
from jewelgan.train.real_features import feature_table
from jewelgan.train.resolve import check_same_archive, open_resume, resolve_config, start_runtime
from jewelgan.train.samples import StatsMeter, progress_bar, save_sample_grid
from jewelgan.train.state import Snapshot, match_param_layouts, rng_state, seed_step, set_rng_state
from jewelgan.train.step import AdversarialStep, Objective, reduce_stats
from jewelgan.train.value_guard import ValueSpreadGuard

__all__ = ["DivergenceError", "Trainer", "train"]


def _crossed(prev_images: int, images: int, every_kimg: float) -> bool:
    if every_kimg <= 0:
        return False
    every = every_kimg * 1000
    return math.floor(prev_images / every) != math.floor(images / every)


class Trainer:
    def __init__(self, config: TrainConfig | None = None, *, resume: str | Path | None = None,
                 overrides: dict | None = None, augment: nn.Module | None = None):
        self.callbacks: list[Callable[["Trainer", int], None]] = []
        self._ckpt = None
        self._lock = None
        if resume is not None:
            self.run_dir = Path(resume)
            self._ckpt, cfg, self._lock = open_resume(self.run_dir, config, overrides or {})
        else:
            if config is None:
                raise ConfigError("TrainConfig is required to start a new run")
            cfg = config.replace(**(overrides or {}))
            self.run_dir = None
        cfg.require_data()
        if cfg.schedule.kimg is None and cfg.schedule.minutes is None:
            raise ConfigError("TrainConfig.kimg: set a training budget (kimg or minutes)")
        self._setup(cfg, augment)

    # ------------------------------------------------------------------ setup
    def _setup(self, cfg: TrainConfig, augment: nn.Module | None) -> None:
        self._prev_threads = torch.get_num_threads()
        self.device, self.dist = start_runtime(cfg.run)
        self.archive = Archive(cfg.run.data)
        self.cfg = cfg = resolve_config(cfg, self.archive, self.device)
        if self._ckpt is not None:
            check_same_archive(self._ckpt.state, self.archive, cfg.run.data)
        conditional = cfg.network.conditional and len(self.archive.schema) > 0
        self.model_schema = self.archive.schema if conditional else LabelSchema()
        self.n_label_cols = len(self.model_schema)
        self.precision = Precision(self.device, bool(cfg.speed.bf16), cfg.speed.channels_last)
        self.G, self.D, self.G_ema, self.augment, self.init_origin = build_networks(
            cfg, self.model_schema, self.precision, warm_start=self._ckpt is None, augment=augment,
            announce=self.dist.is_main)
        opt = cfg.optimiser
        adam = dict(betas=(opt.beta1, opt.beta2))
        if self.device.type in ("cpu", "cuda"):
            adam["fused"] = True  # one kernel per tensor list: measurably faster on a 2-core CPU
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=opt.lr_g, **adam)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=opt.lr_d, **adam)
        self.guide = build_guidance(cfg, schema_sizes(self.model_schema), self.device, adam, self.dist)
        self.stream = BatchStream(self.archive, opt.batch, cfg.network.res, seed=cfg.run.seed,
                                  hflip=cfg.augmentation.hflip, rank=self.dist.rank, world=self.dist.world,
                                  alpha=cfg.network.alpha, balance=cfg.augmentation.balance)
        self.real_features = feature_table(self.guide.pooled, self.stream, self.device) \
            if self.guide is not None else None
        self.inputs = StepInputs(self.stream, z_dim=self.G.z_dim, label_cols=self.n_label_cols, seed=cfg.run.seed,
                                 d_steps=opt.d_steps, precision=self.precision, dist=self.dist,
                                 real_features=self.real_features)
        self.adversarial = AdversarialStep(self.G, self.D, opt_g=self.opt_g, opt_d=self.opt_d,
                                           objective=Objective.from_config(cfg), precision=self.precision,
                                           augment=self.augment, guidance=self.guide, dist=self.dist,
                                           collapse_signals=cfg.guards.on_collapse != "off")
        self.guards = Guards(cfg.guards, self.modules, self.optimizers, (self.G, self.D, self.augment))
        self.label_rows = label_rows(self.archive) if conditional else [[len(self.archive)]]
        guard = ValueSpreadGuard(self.archive, self.model_schema, self.label_rows, cfg.run.seed)
        self.value_guard = guard if guard.active and self.dist.is_main and cfg.guards.value_check_every > 0 else None
        self.budget = Budget(cfg.schedule, opt.batch, self.dist)
        self.step, self.elapsed_s = 0, 0.0
        self.progress = 0.0  # share of the budget used (drives lr_rampdown)
        self.best: dict | None = None
        if self._ckpt is not None:
            self._load(self._ckpt)
        elif self.dist.enabled:
            for m in (self.G, self.D, self.G_ema):
                dist_mod.broadcast_module(m, self.dist)
        self.stop_reason: str | None = None

    @property
    def modules(self) -> dict[str, nn.Module | None]:
        return {"G": self.G, "G_ema": self.G_ema, "D": self.D, "augment": self.augment, "guide": self.guide}

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_g, "D": self.opt_d, **(self.guide.optimizers if self.guide is not None else {})}

    def _load(self, ck: ckpt_mod.Checkpoint) -> None:
        for name, m in self.modules.items():
            if m is not None and ck.has(name):
                ck.load_module(name, m)
        for name, opt in self.optimizers.items():
            ck.load_optimizer(name, opt)
            match_param_layouts(opt)
        st = ck.state
        self.step = int(st["step"])
        self.elapsed_s = float(st.get("elapsed_s", 0.0))
        self.guards.load(st.get("guard", {}))
        self.best = st.get("best")
        set_rng_state(st["rng"])

    def release(self) -> None:
        """Give up the run directory's lock (train() does it when the run ends, however it ends)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    # ------------------------------------------------------------------ the step
    def train_step(self, step: int) -> dict[str, float]:
        """One G update (d_steps D updates) and the EMA's; the stats averaged over ranks. Raises NonFiniteStep
        before any update that would take NaN."""
        seed_step(self.cfg.run.seed, step, self.dist.rank)
        stats = self.adversarial(step, *self.inputs(step))
        opt = self.cfg.optimiser
        update_ema(self.G_ema, self.G, ema_beta(opt.batch, (step + 1) * opt.batch, opt.ema_kimg, opt.ema_rampup))
        return reduce_stats(stats, self.dist)

    def _set_lr(self) -> None:
        """Base lrs times the guards' scale, times the ramp-down over the budget's end."""
        opt = self.cfg.optimiser
        factor = self.guards.lr_scale
        if opt.lr_rampdown > 0:
            factor *= min(1.0, (1.0 - self.progress) / opt.lr_rampdown)
        for optimizer, base in ((self.opt_g, opt.lr_g), (self.opt_d, opt.lr_d)):
            for group in optimizer.param_groups:
                group["lr"] = base * factor

    # ------------------------------------------------------------------ the loop
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
                self.run_dir = new_run_dir(cfg.run.out, cfg.network.model, cfg.network.res, cfg.run.name)
                self._lock = lock_run_dir(self.run_dir)
                write_provenance(self.run_dir, cfg, self.archive, self.init_origin)
            else:
                rewind_metrics(self.run_dir, self.step)
        if self.dist.enabled:  # every rank returns the run directory rank 0 chose
            box = [str(self.run_dir) if main else None]
            torch.distributed.broadcast_object_list(box, src=0)
            self.run_dir = Path(box[0])
        self.log = MetricsLog(self.run_dir, enabled=main, tensorboard=cfg.schedule.tensorboard)
        self._last_grid_step = self._last_eval_step = -1
        if main and self.step == 0:
            if len(self.model_schema):
                print(training_summary(self.archive.value_counts(), len(self.archive)), flush=True)
                if self.stream.weights is not None:
                    print(self.stream.drawn_shares(), flush=True)
            self._save_reals()
            self._save_grid()
        restore_signals = self.budget.install_signal_handlers()
        try:
            self._loop()
        finally:
            restore_signals()
            torch.set_num_threads(self._prev_threads)
        if self.stop_reason == "budget":
            if main and self._last_grid_step != self.step:
                self._save_grid()
            if cfg.schedule.eval_every > 0 and self._last_eval_step != self.step:
                self._evaluate()
        self.save()
        if main:
            self.log.write({"kind": "event", "event": "stopped", "reason": self.stop_reason, "step": self.step,
                            "kimg": self.step * cfg.optimiser.batch / 1000})
            if self.stop_reason == "interrupted":
                print(f"interrupted at step {self.step}: checkpoint saved; continue with --resume {self.run_dir}")
        self.log.close()
        dist_mod.barrier(self.dist)
        return self.run_dir

    def _loop(self) -> None:
        """Steps until the budget is spent, the run is interrupted or a guard stops it."""
        sched, batch, main = self.cfg.schedule, self.cfg.optimiser.batch, self.dist.is_main
        total = self.budget.total_steps
        self.guards.start(self.step)
        bar = progress_bar(total, batch, self.step, sched.minutes, self.elapsed_s) if sched.progress and main else None
        meter, t_loop = StatsMeter(), time.perf_counter()
        try:
            while True:
                stop, self.progress = self.budget.check(self.step, self.elapsed_s)
                if stop:
                    self.stop_reason = stop
                    break
                self._set_lr()
                step, prev_images = self.step, self.step * batch
                t0 = time.perf_counter()
                try:
                    stats = self.train_step(step)
                    for cb in self.callbacks:
                        cb(self, step)
                    self.guards.check_weights(step)
                except NonFiniteStep as e:
                    self._recover(step, str(e))
                    continue
                dt = time.perf_counter() - t0
                self.step = step + 1
                images = self.step * batch
                now = time.perf_counter()
                self.elapsed_s += now - t_loop
                t_loop = now
                meter.add(stats, dt)
                if bar is not None:
                    bar.update(batch if total else max(0, min(int(self.elapsed_s), bar.total) - bar.n))
                    bar.set_postfix_str(f"{meter.images_per_s(batch):.0f} img/s, {images / 1000:.2f} kimg",
                                        refresh=False)
                if self.step % sched.log_every == 0:
                    self._log_train(meter)
                healthy = self.guards.after_step(self.step, stats)
                if healthy is not None:
                    self._on_collapse(healthy)
                    if self.stop_reason:
                        break
                    continue
                if main and _crossed(prev_images, images, sched.grid_every):
                    self._save_grid()
                if _crossed(prev_images, images, sched.eval_every):
                    self._evaluate()
                if self.value_guard and _crossed(prev_images, images, self.cfg.guards.value_check_every):
                    with torch.random.fork_rng():  # the check draws images; the run's randomness stays its own
                        for record in self.value_guard.check(self.G_ema, self.step, images / 1000):
                            self.log.write(record)
                if _crossed(prev_images, images, sched.ckpt_every):
                    self.save()
        finally:
            if bar is not None:
                bar.close()

    def _log_train(self, meter: StatsMeter) -> None:
        batch = self.cfg.optimiser.batch
        self.log.write({"kind": "train", "step": self.step, "kimg": self.step * batch / 1000,
                        "time_s": round(self.elapsed_s, 3), **meter.means(), "img_s": meter.images_per_s(batch),
                        "lr_g": self.opt_g.param_groups[0]["lr"], "lr_d": self.opt_d.param_groups[0]["lr"],
                        **({"aug_p": float(self.augment.p)} if hasattr(self.augment, "p") else {})})
        meter.reset()

    # ------------------------------------------------------------------ the guards' actions
    def _recover(self, step: int, why: str) -> None:
        """After a non-finite step: back to the last good snapshot at a lower lr, or DivergenceError."""
        event, stopped = self.guards.diverged(step, why)
        self.log.write(event)
        msg = f"non-finite values at step {step} ({why})"
        if stopped is not None:
            self.log.close()
            last = ckpt_mod.latest_checkpoint(self.run_dir) if self.run_dir else None
            hint = f"; the last good checkpoint is {last}" if last else ""
            raise DivergenceError(f"training diverged: {msg}; {stopped}{hint}. "
                                  f"Try a lower learning rate (lr_g/lr_d), another loss or R1.")
        restored = self.guards.snapshot.step
        self.step = self.guards.go_back(self.guards.snapshot, self.cfg.guards.nan_lr_factor)
        self._set_lr()
        warnings.warn(f"{msg}: restored step {restored} and lowered the learning rate to x{self.guards.lr_scale:g}",
                      stacklevel=2)
        self.guards.mark_good(self.step)

    def _on_collapse(self, healthy: Snapshot) -> None:
        """Back to the last snapshot taken while the run looked healthy; then stop, or continue with half the
        learning rate and, under ADA, stronger augmentation (on_collapse)."""
        at = self.step
        self.step, stop, event = self.guards.collapsed(at, healthy, self.augment)
        if not stop:
            self._set_lr()
        if self.dist.is_main and self.run_dir is not None:
            ckpt_mod.set_aside_after(self.run_dir, self.step)
        self.log.write(event)
        if self.dist.is_main:
            print(f"\ncollapse at step {at}: {event['detail']}; restored step {self.step} ({event['action']})",
                  flush=True)
        if stop:
            self.stop_reason = "collapse"
        else:
            self.save()  # a crash from here resumes the healthy state with the new settings
        self.guards.start(self.step)

    # ------------------------------------------------------------------ outputs
    def state_json(self) -> dict:
        cfg, images = self.cfg, self.step * self.cfg.optimiser.batch
        seen = images * cfg.optimiser.d_steps
        return {
            "kimg": images / 1000, "images": images,
            "config": cfg.to_dict(), "model_schema": self.model_schema.to_json(),
            "archive_schema": self.archive.schema.to_json(), "label_rows": self.label_rows,
            "archive": {"path": str(Path(self.archive.path).resolve()), "content_hash": self.archive.content_hash,
                        "resolution": self.archive.resolution, "count": len(self.archive)},
            "sampler": {"seed": cfg.run.seed, "position": seen, "epoch": seen // len(self.archive)},
            "rng": rng_state(), "elapsed_s": self.elapsed_s, "world": self.dist.world,
            "guard": self.guards.state(), "best": self.best, "versions": package_versions(),
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
                                            keep_last=self.cfg.schedule.keep_last,
                                            best_step=self.best["step"] if self.best else None)
        except ckpt_mod.CheckpointError as e:
            warnings.warn(f"checkpoint at step {self.step} skipped: {e}", stacklevel=2)
            self.log.write({"kind": "event", "event": "checkpoint_skipped", "step": self.step, "detail": str(e)})
            return None

    def _save_grid(self) -> None:
        self._last_grid_step = self.step
        path = self.run_dir / "samples" / f"grid-{self.step * self.cfg.optimiser.batch / 1000:09.3f}kimg.png"
        save_sample_grid(self.G_ema, self.model_schema, path, seed=10_000 + self.cfg.run.seed,
                         label_rows=self.label_rows, tile=max(64, self.cfg.network.res))

    def _save_reals(self) -> None:
        from jewelgan.grid import save_grid

        x, _ = self.stream.get(0)
        save_grid(x[:64], self.run_dir / "samples" / "reals.png", ncol=8, tile=max(64, self.cfg.network.res))

    def _evaluate(self) -> None:
        if not self.dist.is_main:
            return
        from jewelgan.metrics.api import evaluate_generator

        sched = self.cfg.schedule
        self._last_eval_step = self.step
        t0 = time.perf_counter()
        results = evaluate_generator(self.G_ema, self.model_schema, self.cfg.run.data, n=sched.eval_n,
                                     metrics=tuple(sched.eval_metrics), device=str(self.device))
        self.G_ema.eval()
        record = {k: float(v) for k, v in results.items() if isinstance(v, (int, float))}
        self.log.write({"kind": "eval", "step": self.step, "kimg": self.step * self.cfg.optimiser.batch / 1000,
                        "eval_s": round(time.perf_counter() - t0, 2), **record})
        metric = next((m for m in ("fid", "kid") if m in record), None)
        if metric and (self.best is None or record[metric] < self.best["value"]):
            self.best = {"step": self.step, "metric": metric, "value": record[metric]}
            if self.save() is not None:
                (self.run_dir / "checkpoints" / "best.json").write_text(json.dumps(self.best) + "\n")


def train(config: TrainConfig | None = None, *, resume: str | Path | None = None, overrides: dict | None = None,
          augment: nn.Module | None = None) -> Path:
    """Train and return the run directory. `resume` continues a run exactly from its latest checkpoint."""
    trainer = Trainer(config, resume=resume, overrides=overrides, augment=augment)
    try:
        return trainer.run()
    finally:
        trainer.release()
        dist_mod.shutdown(trainer.dist)
