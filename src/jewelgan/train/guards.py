"""The divergence and collapse guards' own state and decisions; the Trainer (train/loop.py) acts on them.

Divergence: a non-finite loss (checked before the update that would take it) or non-finite weights
(checked every guard_every steps) send the run back to the last good in-memory snapshot at a lower
learning rate. Collapse (train/collapse.py): the run goes back to a snapshot taken while it still looked
healthy, at half the learning rate and, under ADA, with stronger augmentation. Either stops the run when
told to or when it has fired more than max_recoveries times.
"""

from __future__ import annotations

import torch
from torch import nn

from jewelgan.train import distributed as dist_mod
from jewelgan.train.collapse import CollapseMonitor, keep_for_lookback
from jewelgan.train.state import Snapshot, all_finite


class NonFiniteStep(Exception):
    """A loss or the weights went NaN/inf; raised before any update would take it (the loop recovers)."""


class DivergenceError(RuntimeError):
    """Training produced NaN/inf and the guard was told to stop (or ran out of recoveries)."""


def check_finite(loss: torch.Tensor, what: str, dist: dist_mod.DistInfo) -> None:
    """NonFiniteStep on every rank when the loss is NaN/inf on any (the ranks must take the same branch)."""
    bad = (~torch.isfinite(loss.detach())).float().reshape(1)
    if dist_mod.reduce_scalars(bad, dist, "max").item() > 0:
        raise NonFiniteStep(f"{what} is {loss.item()}")


class Guards:
    """The learning-rate scale the guards leave, how often each fired, the last good snapshot and the healthy
    ones a collapse may go back to. `guards`: a TrainConfig's guards section; `modules` and `optimizers`: what
    a snapshot holds; `watched`: the modules whose weights are checked (the frozen guidance network cannot go
    bad)."""

    def __init__(self, guards, modules: dict[str, nn.Module | None], optimizers: dict[str, torch.optim.Optimizer],
                 watched: tuple[nn.Module | None, ...]):
        self.settings, self.modules, self.optimizers, self.watched = guards, modules, optimizers, watched
        self.lr_scale, self.recoveries, self.collapse_recoveries = 1.0, 0, 0
        self.collapse = CollapseMonitor(guards.collapse_patience) if guards.on_collapse != "off" else None
        self.snapshot: Snapshot | None = None
        self.healthy: list[Snapshot] = []

    def state(self) -> dict:
        return {"lr_scale": self.lr_scale, "recoveries": self.recoveries,
                "collapse_recoveries": self.collapse_recoveries}

    def load(self, state: dict) -> None:
        self.lr_scale = float(state.get("lr_scale", 1.0))
        self.recoveries = int(state.get("recoveries", 0))
        self.collapse_recoveries = int(state.get("collapse_recoveries", 0))

    def start(self, step: int) -> None:
        """The state at `step` is good and healthy, the only one to go back to (a run's start, or after a
        collapse)."""
        self.mark_good(step)
        self.healthy = [self.snapshot]

    def check_weights(self, step: int) -> None:
        """After step `step`, every guard_every steps: NonFiniteStep when a weight or an Adam moment went bad."""
        if (step + 1) % self.settings.guard_every == 0 and not all_finite(*self.watched,
                                                                   optimizers=self.optimizers.values()):
            raise NonFiniteStep("weights hold NaN or inf")

    def after_step(self, step: int, stats: dict[str, float]) -> Snapshot | None:
        """Snapshot every guard_every steps; returns the healthy snapshot to go back to once the run has collapsed."""
        if step % self.settings.guard_every == 0:
            self.snapshot = Snapshot(step, self.modules, self.optimizers)
            if self.collapse is not None and self.collapse.healthy:
                self.healthy = keep_for_lookback([*self.healthy, self.snapshot], step, self.collapse.lookback)
        if self.collapse is None:
            return None
        self.collapse.observe(step, stats)
        if not self.collapse.collapsed:
            return None
        safe = [h for h in self.healthy if h.step <= self.collapse.safe_step()]
        return safe[-1] if safe else self.healthy[0]

    def diverged(self, step: int, why: str) -> tuple[dict, str | None]:
        """Count a non-finite step. Returns its event record and, when the guard stops the run, how it says so."""
        self.recoveries += 1
        event = {"kind": "event", "event": "divergence", "step": step, "detail": why,
                 "restored_step": self.snapshot.step, "recoveries": self.recoveries}
        if self.settings.on_nan == "stop":
            return event, "stopped"
        if self.recoveries > self.settings.max_recoveries:
            return event, f"stopped after {self.settings.max_recoveries} recoveries"
        return event, None

    def mark_good(self, step: int) -> None:
        """The state at `step` is the last good one (after a recovery has set the lr it continues with)."""
        self.snapshot = Snapshot(step, self.modules, self.optimizers)

    def go_back(self, snapshot: Snapshot, lr_factor: float) -> int:
        """Restore `snapshot` and scale the learning rate by lr_factor; returns its step."""
        step = snapshot.restore(self.modules, self.optimizers)
        self.lr_scale *= lr_factor
        return step

    def collapsed(self, at: int, healthy: Snapshot, augment: nn.Module | None) -> tuple[int, bool, dict]:
        """Go back to `healthy` and, unless the guard stops the run, halve the lr and raise ADA's p. Returns the
        restored step, whether to stop, and the event record."""
        why = self.collapse.describe()
        self.collapse_recoveries += 1
        stop = self.settings.on_collapse == "stop" or self.collapse_recoveries > self.settings.max_recoveries
        step = self.go_back(healthy, 1.0 if stop else 0.5)
        action = "stopped"
        if not stop:
            action = f"learning rate x{self.lr_scale:g}"
            if hasattr(augment, "prob"):
                with torch.no_grad():
                    augment.prob.copy_((augment.prob + 0.2).clamp(max=augment.p_max))
                action += f", ADA p {augment.p:.2f}"
        self.collapse.reset()
        event = {"kind": "event", "event": "collapse", "step": at, "detail": why, "restored_step": step,
                 "action": action, "collapse_recoveries": self.collapse_recoveries}
        return step, stop, event
