"""One adversarial training step, shared by every model: an object given everything it updates and how
(the spirit of StyleGAN2-ADA's loss object), called by the Trainer (train/loop.py) with the step's inputs
(train/inputs.py).

D sees a real batch and G's fakes for the same labels (d_steps times), then G is updated through D;
the fakes of the last D step are reused for the G step, so G runs forward once per step. Optional
terms ride along: R1 or a gradient penalty for D, an auxiliary attribute classifier (cls_weight),
the frozen-network guidance of train/guidance.py for G, and its own updates (its heads on the reals, its
feature critic on the fakes). The caller seeds the global RNGs from (seed, step) first, so augmentation
and everything else random repeats exactly on resume.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from jewelgan.train import distributed as dist_mod
from jewelgan.train.collapse import batch_signals
from jewelgan.train.guards import check_finite
from jewelgan.train.guidance import FeatureGuidance
from jewelgan.train.inputs import Batch
from jewelgan.train.losses import attribute_loss, d_loss, g_loss, gradient_penalty, r1_penalty
from jewelgan.train.precision import Precision


@dataclass(frozen=True)
class Objective:
    """What the step optimises: TrainConfig's objective section and the D updates per G update."""

    loss: str = "ns"
    r1: float = 0.0
    r1_every: int = 1
    gp: float = 10.0
    cls_weight: float = 0.0
    d_steps: int = 1

    @classmethod
    def from_config(cls, cfg) -> "Objective":
        o = cfg.objective
        return cls(o.loss, o.r1, o.r1_every, o.gp, o.cls_weight, cfg.optimiser.d_steps)


class AdversarialStep:
    """Updates G and D (and the guidance's own networks) in place; __call__ returns the step's stats as 0-d
    tensors, this rank's (reduce_stats averages them over ranks)."""

    def __init__(self, G: nn.Module, D: nn.Module, *, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                 objective: Objective, precision: Precision, augment: nn.Module | None = None,
                 guidance: FeatureGuidance | None = None, collapse_signals: bool = True,
                 dist: dist_mod.DistInfo | None = None):
        """collapse_signals: add the collapse guard's batch statistics (train/collapse.py) to the stats."""
        self.G, self.D, self.opt_g, self.opt_d, self.augment = G, D, opt_g, opt_d, augment
        self.objective, self.precision, self.guidance = objective, precision, guidance
        self.collapse_signals, self.dist = collapse_signals, dist or dist_mod.DistInfo()

    def _aug(self, x: torch.Tensor) -> torch.Tensor:
        return self.augment(x) if self.augment is not None else x

    def __call__(self, step: int, batches: list[Batch], real_feats: list[torch.Tensor] | None = None
                 ) -> dict[str, torch.Tensor]:
        """One G update after len(batches) D updates (one per batch; the last one's fakes are G's). real_feats:
        the guidance's features of the last batch's reals, where a table has them. Raises NonFiniteStep before
        any update that would take NaN."""
        stats: dict[str, torch.Tensor] = {}
        self.D.requires_grad_(True)
        for i, batch in enumerate(batches):
            fake = self._d_update(step, batch, last=i == len(batches) - 1, stats=stats)
        x, y = batches[-1].x, batches[-1].y
        # D judges alpha too; everything built on RGB (the collapse signals, the frozen ImageNet network)
        # sees the image as it looks on the backdrop: the first three channels
        if self.collapse_signals:
            stats.update(batch_signals(x[:, :3], fake[:, :3]))
        if self.guidance is not None:
            real_feats, guide_stats = self.guidance.learn_reals(x[:, :3], y, real_feats)
            stats.update(guide_stats)
        fake_feats = self._g_update(fake, y, real_feats, stats)
        if self.guidance is not None and self.guidance.critic is not None:
            stats.update(self.guidance.learn_critic(real_feats, fake_feats, y))
        return stats

    def _d_update(self, step: int, batch: Batch, *, last: bool, stats: dict[str, torch.Tensor]) -> torch.Tensor:
        """One D update on a real batch and G's fakes for its labels; returns the fakes (with G's graph only for
        the last update, whose fakes G's update reuses)."""
        obj, D, x, y = self.objective, self.D, batch.x, batch.y
        do_r1 = obj.r1 > 0 and step % obj.r1_every == 0
        with self.precision.autocast():
            with torch.no_grad() if not last else contextlib.nullcontext():
                fake = self.G(batch.z, y)
            real_in = x.detach().requires_grad_(do_r1)
            if obj.cls_weight > 0:
                d_real, classes_real = D(self._aug(real_in), y, with_classes=True)
            else:
                d_real = D(self._aug(real_in), y)
            d_fake = D(self._aug(fake.detach()), y)
        loss = d_loss(obj.loss, d_real, d_fake)
        stats["loss_d"] = loss.detach()
        if obj.cls_weight > 0:  # D's classifier learns the attributes from reals only
            cls = attribute_loss(classes_real, y)
            loss = loss + obj.cls_weight * cls
            stats["cls_real"] = cls.detach()
        if do_r1:
            r1 = r1_penalty(d_real, real_in)
            loss = loss + r1 * (obj.r1 / 2 * obj.r1_every)
            stats["r1"] = r1.detach()
        if obj.loss == "wgan-gp":
            with self.precision.autocast():
                gp = gradient_penalty(lambda im: D(self._aug(im), y), x, fake)
            loss = loss + obj.gp * gp
            stats["gp"] = gp.detach()
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        dist_mod.average_gradients(D, self.dist)
        check_finite(loss, "D loss", self.dist)
        self.opt_d.step()
        if self.augment is not None and hasattr(self.augment, "update"):
            self.augment.update(d_real.detach())
        stats["d_real"], stats["d_fake"] = d_real.detach().float().mean(), d_fake.detach().float().mean()
        return fake

    def _g_update(self, fake: torch.Tensor, y: torch.Tensor, real_feats: list[torch.Tensor] | None,
                  stats: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """G's update through D (and the guidance); returns the fakes' pooled features for the feature critic."""
        obj, D, fake_feats = self.objective, self.D, None
        D.requires_grad_(False)  # G's backward need not compute D's parameter gradients
        with self.precision.autocast():
            if obj.cls_weight > 0:
                d_out, classes_fake = D(self._aug(fake), y, with_classes=True)
                cls = attribute_loss(classes_fake, y)  # G is rewarded for drawing the requested attributes
                stats["cls_fake"] = cls.detach()
                loss = g_loss(obj.loss, d_out) + obj.cls_weight * cls
            else:
                loss = g_loss(obj.loss, D(self._aug(fake), y))
            if self.guidance is not None:
                loss, guide_stats, fake_feats = self.guidance.generator_loss(loss, fake[:, :3], real_feats, y)
                stats.update(guide_stats)
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        dist_mod.average_gradients(self.G, self.dist)
        check_finite(loss, "G loss", self.dist)
        self.opt_g.step()
        stats["loss_g"] = loss.detach()
        return fake_feats


def reduce_stats(stats: dict[str, torch.Tensor], dist: dist_mod.DistInfo) -> dict[str, float]:
    """The stats as floats, averaged over ranks."""
    keys = sorted(stats)
    values = dist_mod.reduce_scalars(torch.stack([stats[k].float() for k in keys]), dist)
    return dict(zip(keys, values.tolist()))
