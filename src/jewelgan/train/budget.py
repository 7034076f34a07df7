"""When a run stops: at its budget (kimg, counted in steps, or minutes of training time), or after Ctrl-C or
SIGTERM, which let the current step finish and a checkpoint be written first. Under torchrun every rank
takes the same decision at the same step.
"""

from __future__ import annotations

import math
import signal
import threading
from typing import Callable

import torch

from jewelgan.train import distributed as dist_mod


class Budget:
    def __init__(self, schedule, batch: int, dist: dist_mod.DistInfo):
        """schedule: a TrainConfig's schedule section (kimg, minutes)."""
        self.minutes, self.dist = schedule.minutes, dist
        self.total_steps = math.ceil(schedule.kimg * 1000 / batch) if schedule.kimg else None
        self.interrupted = False

    def check(self, step: int, elapsed_s: float) -> tuple[str | None, float]:
        """Why the run stops now ("budget", "interrupted" or None), and the share of the budget used (what
        lr_rampdown follows); both the same on every rank."""
        total, minutes = self.total_steps, self.minutes
        progress = step / total if total else 0.0
        if minutes is not None:
            progress = max(progress, elapsed_s / (minutes * 60))
        flags = torch.tensor([
            float(total is not None and step >= total),
            float(minutes is not None and elapsed_s >= minutes * 60),
            float(self.interrupted),
            progress,
        ])
        flags = dist_mod.reduce_scalars(flags, self.dist, "max")
        if flags[2] > 0:
            return "interrupted", float(flags[3])
        if flags[0] > 0 or flags[1] > 0:
            return "budget", float(flags[3])
        return None, float(flags[3])

    def install_signal_handlers(self) -> Callable[[], None]:
        """Ctrl-C (or SIGTERM) sets `interrupted`; a second Ctrl-C aborts. Returns what puts the old handlers back."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum, frame):
            if self.interrupted:
                raise KeyboardInterrupt
            self.interrupted = True
            if self.dist.is_main:
                print("\nstopping after this step and saving a checkpoint (Ctrl-C again to abort)", flush=True)

        for s in old:
            signal.signal(s, handler)
        return lambda: [signal.signal(s, h) for s, h in old.items()]
