"""What the small step-based trainers share (the upsampling stage, the matte): a run directory opened for a new
run or for exact resume, a budget in kimg or minutes, a cosine rate over a kimg budget, and one loop that trains,
evaluates, logs, checkpoints and always releases the run's lock.

A subclass sets `cfg` (with batch, kimg, minutes, lr_final, threads, eval_every_kimg, ckpt_minutes), `run`,
`step`, `images`, `elapsed_s`, and implements train_step, evaluate, save and progress_line.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path

import torch

from jewelgan.runs import checkpoint as ckpt
from jewelgan.runs.rundir import MetricsLog, lock_run_dir


class SteppedTrainer:
    _lock = None

    def open_resume(self, resume: str | Path, config_cls, error: type[Exception], overrides: dict | None):
        """Lock a run directory and open its latest checkpoint -> (its state, its config with a new budget)."""
        self.run = Path(resume)
        self._lock = lock_run_dir(self.run)
        try:
            self._ckpt = ckpt.open_checkpoint(self.run)
        except ckpt.CheckpointError as e:
            self.release()
            raise error(f"--resume: {e}") from None
        state = self._ckpt.state
        budget = {k: v for k, v in (overrides or {}).items() if k in ("kimg", "minutes")}
        return state, replace(config_cls.from_dict(state["config"]), **budget)

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def lr_share(self) -> float:
        """Cosine from 1 to lr_final over the kimg budget (a function of images seen, so resume is exact)."""
        if self.cfg.lr_final >= 1 or self.cfg.kimg is None:
            return 1.0
        done = min(1.0, self.images / (self.cfg.kimg * 1000))
        return self.cfg.lr_final + (1 - self.cfg.lr_final) * 0.5 * (1 + math.cos(math.pi * done))

    def done(self) -> bool:
        if self.cfg.kimg is not None and self.images >= self.cfg.kimg * 1000:
            return True
        return self.cfg.minutes is not None and self.elapsed_s >= self.cfg.minutes * 60

    def progress_line(self, logs: dict, rate: float) -> str:
        raise NotImplementedError

    def run_loop(self, progress: bool = True, stop_after_steps: int | None = None) -> Path:
        """Train until the budget is spent (or stop_after_steps more steps, for tests); returns the run dir."""
        if self.cfg.threads:
            torch.set_num_threads(self.cfg.threads)
        log = MetricsLog(self.run)
        last_ckpt, start, steps, started = time.time(), self.step, 0, time.time()
        every = int(self.cfg.eval_every_kimg * 1000 / self.cfg.batch) or 1
        try:
            while not self.done() and (stop_after_steps is None or steps < stop_after_steps):
                t0 = time.time()
                logs = self.train_step()
                self.elapsed_s += time.time() - t0
                steps += 1
                if self.step % every == 0:
                    logs.update(self.evaluate())
                if self.step % 20 == 0 or self.step % every == 0:
                    log.write({"step": self.step, "kimg": self.images / 1000, "elapsed_s": self.elapsed_s, **logs})
                if progress and self.step % 50 == 0:
                    rate = (self.step - start) * self.cfg.batch / max(time.time() - started, 1e-9)
                    print(self.progress_line(logs, rate), flush=True)
                if time.time() - last_ckpt >= self.cfg.ckpt_minutes * 60:
                    self.save()
                    last_ckpt = time.time()
            self.save()
            log.write({"step": self.step, "kimg": self.images / 1000, "elapsed_s": self.elapsed_s, "final": True,
                       **self.evaluate()})
        finally:
            log.close()
            self.release()
        return self.run
