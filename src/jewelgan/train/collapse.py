"""The collapse guard: notice a run whose generator has stopped drawing anything, and act on it.

A collapsed GAN does not produce NaN, so the divergence guard never fires: D wins outright and G draws
one flat saturated field, or the same image for every latent, for the rest of the budget. Three signals,
each computed on the batch the step already has (train/step.py) and averaged over a window of steps:

- D pinned: D's loss below D_LOSS_FLOOR, i.e. it separates reals from fakes almost perfectly.
- saturated: the share of fake pixels whose three channels all sit at the range's ends with mixed signs
  (pure red, green, blue, cyan, magenta or yellow), minus the same share among the reals. Product photos
  hold almost none (a white or black backdrop has all channels at one end); a generator whose output ran
  away into saturation fills whole images with them (0.2-0.8 of all pixels, against <= 0.01 for
  healthy runs, in the probes of docs/experiments.md, 2026-12-02).
- diversity: the spread across the batch of the fakes, seen at 8x8 (the layout and colour of a piece,
  not its texture), divided by that of the reals: near 0 when every latent gives the same image.

Collapse is declared when D is pinned and the fakes are saturated or alike for `patience` steps in a row.
The trainer then goes back to a snapshot taken before the signals turned: it keeps the snapshots taken
while the run looked healthy over the last `lookback` steps, and the newest one before them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ACTIONS = ("restore", "stop", "off")
D_LOSS_FLOOR = 0.05      # D's loss (ns or hinge) below this: reals and fakes separated almost perfectly
SATURATION_GAP = 0.10    # share of purely saturated colour pixels in fakes beyond the reals'
DIVERSITY_RATIO = 0.25   # fakes' spread across the batch at 8x8 over the reals'
WINDOW = 25              # steps averaged before a signal counts (single batches are noisy)


@torch.no_grad()
def batch_signals(real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-step statistics of a real and a fake batch (B, 3, H, W) in [-1, 1]; both 0-d tensors."""
    def pure_colour_share(x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        at_end = (x.abs() > 0.98).all(1)
        one_sign = (x > 0).all(1) | (x < 0).all(1)
        return (at_end & ~one_sign).float().mean()

    def spread(x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x.float(), 8).flatten(1).std(0).mean()

    return {"collapse_saturation": pure_colour_share(fake) - pure_colour_share(real),
            "collapse_diversity": spread(fake) / spread(real).clamp(min=1e-6)}


def keep_for_lookback(snapshots: list, now: int, lookback: int) -> list:
    """The snapshots (oldest first, each with .step) a restore could need: those within `lookback` steps of
    `now` and the newest one before them."""
    older = [s for s in snapshots if s.step < now - lookback]
    return older[-1:] + [s for s in snapshots if s.step >= now - lookback]


class CollapseMonitor:
    """Counts consecutive steps whose windowed signals say "collapsed"; `healthy` when none is bad."""

    def __init__(self, patience: int, window: int = WINDOW):
        self.patience, self.window = patience, window
        self.history: list[tuple[float, float, float]] = []
        self.bad_steps = 0
        self.first_bad_step: int | None = None

    def reset(self) -> None:
        self.history.clear()
        self.bad_steps = 0
        self.first_bad_step = None

    def means(self) -> tuple[float, float, float] | None:
        if len(self.history) < self.window:
            return None
        recent = self.history[-self.window:]
        return tuple(sum(v[i] for v in recent) / len(recent) for i in range(3))  # type: ignore[return-value]

    def observe(self, step: int, stats: dict[str, float]) -> None:
        self.history.append((stats["loss_d"], stats["collapse_saturation"], stats["collapse_diversity"]))
        del self.history[:-self.window]
        self.bad_steps = self.bad_steps + 1 if self._bad() else 0
        self.first_bad_step = (self.first_bad_step or step) if self.bad_steps else None

    @property
    def lookback(self) -> int:
        """How far back a restore may have to go: the patience plus twice the window (see safe_step)."""
        return self.patience + 2 * self.window

    def safe_step(self) -> int:
        """The latest step that surely came before the collapse: the windowed signals lag its onset by up
        to a window, and the onset itself (D pulling away) takes about as long again."""
        return (self.first_bad_step or 0) - 2 * self.window

    def _bad(self) -> bool:
        m = self.means()
        if m is None:
            return False
        d_loss, saturation, diversity = m
        return d_loss < D_LOSS_FLOOR and (saturation > SATURATION_GAP or diversity < DIVERSITY_RATIO)

    @property
    def healthy(self) -> bool:
        return self.bad_steps == 0

    @property
    def collapsed(self) -> bool:
        return self.bad_steps >= self.patience

    def describe(self) -> str:
        d_loss, saturation, diversity = self.means() or (float("nan"),) * 3
        what = []
        if saturation > SATURATION_GAP:
            what.append(f"{saturation:.0%} of fake pixels are pure saturated colours")
        if diversity < DIVERSITY_RATIO:
            what.append(f"the fakes vary {diversity:.2f}x as much as the reals")
        return (f"D's loss has stayed at {d_loss:.3f} (< {D_LOSS_FLOOR}) for {self.bad_steps} steps and "
                + " and ".join(what))
