"""One adversarial training step, shared by every model (mixed into the Trainer, train/loop.py).

D sees a real batch and G's fakes for the same labels (d_steps times), then G is updated through D;
the fakes of the last D step are reused for the G step, so G runs forward once per step. Optional
terms ride along: R1 or a gradient penalty for D, an auxiliary attribute classifier (cls_weight),
the frozen-network guidance of train/guidance.py for G, and its feature critic's own update.
Everything random in step k is seeded from (seed, k), so a resumed run repeats it exactly.
"""

from __future__ import annotations

import contextlib

import torch

from jewelgan.train import distributed as dist_mod
from jewelgan.train.collapse import batch_signals
from jewelgan.train.ema import ema_beta, update_ema
from jewelgan.train.losses import attribute_loss, d_loss, g_loss, gradient_penalty, r1_penalty
from jewelgan.train.state import seed_step


class NonFiniteStep(Exception):
    """A loss or the weights went NaN/inf; raised before any update would take it (the loop recovers)."""


class AdversarialStep:
    """The update itself; the Trainer provides cfg, G, D, G_ema, the optimisers, augment, guide,
    real_features (train/real_features.py, or None), stream, dist and device."""

    def _autocast(self):
        if self.cfg.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _prep(self, x: torch.Tensor, y: torch.Tensor):
        x = x.to(self.device, non_blocking=True)
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y[:, : self.n_label_cols].to(self.device)

    def _latents(self, k: int, n: int) -> torch.Tensor:
        """This rank's n latents of global batch k: the whole global batch's latents are drawn from one
        generator seeded by (seed, k) and each rank takes its slice, so N ranks see the very latents one
        process would (tests/test_distributed.py compares the two)."""
        g = torch.Generator().manual_seed((self.cfg.seed * 1_000_003 + k * 7_919 + 99_991) % (2**63))
        z = torch.randn(n * self.dist.world, self.G.z_dim, generator=g)
        return z[self.dist.rank * n:(self.dist.rank + 1) * n].to(self.device)

    def _aug(self, x: torch.Tensor) -> torch.Tensor:
        return self.augment(x) if self.augment is not None else x

    def train_step(self, step: int) -> dict[str, float]:
        """One G update (and d_steps D updates). Raises NonFiniteStep before any update that would take NaN."""
        cfg, G, D = self.cfg, self.G, self.D
        seed_step(cfg.seed, step, self.dist.rank)
        stats: dict[str, torch.Tensor] = {}
        D.requires_grad_(True)
        for i in range(cfg.d_steps):
            x, y = self._prep(*self.stream.get(step * cfg.d_steps + i))
            z = self._latents(step * cfg.d_steps + i, x.shape[0])
            last = i == cfg.d_steps - 1
            do_r1 = cfg.r1 > 0 and step % cfg.r1_every == 0
            with self._autocast():
                with torch.no_grad() if not last else contextlib.nullcontext():
                    fake = G(z, y)  # labels of the real batch: fakes follow the training label distribution
                real_in = x.detach().requires_grad_(do_r1)
                if cfg.cls_weight > 0:
                    d_real, classes_real = D(self._aug(real_in), y, with_classes=True)
                else:
                    d_real = D(self._aug(real_in), y)
                d_fake = D(self._aug(fake.detach()), y)
            loss = d_loss(cfg.loss, d_real, d_fake)
            stats["loss_d"] = loss.detach()
            if cfg.cls_weight > 0:  # D's classifier learns the attributes from reals only
                cls = attribute_loss(classes_real, y)
                loss = loss + cfg.cls_weight * cls
                stats["cls_real"] = cls.detach()
            if do_r1:
                r1 = r1_penalty(d_real, real_in)
                loss = loss + r1 * (cfg.r1 / 2 * cfg.r1_every)
                stats["r1"] = r1.detach()
            if cfg.loss == "wgan-gp":
                with self._autocast():
                    gp = gradient_penalty(lambda im: D(self._aug(im), y), x, fake)
                loss = loss + cfg.gp * gp
                stats["gp"] = gp.detach()
            self.opt_d.zero_grad(set_to_none=True)
            loss.backward()
            dist_mod.average_gradients(D, self.dist)
            self._check(loss, "D loss")
            self.opt_d.step()
            if self.augment is not None and hasattr(self.augment, "update"):
                self.augment.update(d_real.detach())
        stats["d_real"], stats["d_fake"] = d_real.detach().float().mean(), d_fake.detach().float().mean()
        # D judges alpha too; everything built on RGB (the collapse signals, the frozen ImageNet network)
        # sees the image as it looks on the backdrop: the first three channels
        if cfg.on_collapse != "off":
            stats.update(batch_signals(x[:, :3], fake[:, :3]))
        if self.guide is not None:
            feats = None
            if self.real_features is not None:
                fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
                feats = self.real_features(self.stream.keys(step * cfg.d_steps + cfg.d_steps - 1), fmt)
            real_feats, guide_cls = self.guide.real_step(x[:, :3], y, feats)
            if guide_cls is not None:  # the guidance classifiers learn from reals only
                self.opt_guide.zero_grad(set_to_none=True)
                guide_cls.backward()
                dist_mod.average_gradients(self.guide.heads, self.dist)
                self.opt_guide.step()
                stats["guide_cls_real"] = guide_cls.detach()

        D.requires_grad_(False)  # G's backward need not compute D's parameter gradients
        with self._autocast():
            if cfg.cls_weight > 0:
                d_out, classes_fake = D(self._aug(fake), y, with_classes=True)
                cls = attribute_loss(classes_fake, y)  # G is rewarded for drawing the requested attributes
                stats["cls_fake"] = cls.detach()
                lg = g_loss(cfg.loss, d_out) + cfg.cls_weight * cls
            else:
                lg = g_loss(cfg.loss, D(self._aug(fake), y))
            if self.guide is not None:
                guide = self.guide.g_losses(fake[:, :3], real_feats, y)
                lg = self.guide.add_weighted(lg, guide)
                for term in self.guide.weights:
                    stats["guide_cls_fake" if term == "cls" else f"guide_{term}"] = guide[term].detach()
        self.opt_g.zero_grad(set_to_none=True)
        lg.backward()
        dist_mod.average_gradients(G, self.dist)
        self._check(lg, "G loss")
        self.opt_g.step()
        stats["loss_g"] = lg.detach()
        if self.opt_critic is not None:  # the feature discriminator's step, on the fakes G just saw
            lc = self.guide.critic_loss(real_feats, guide["feats"], y)
            self.opt_critic.zero_grad(set_to_none=True)
            self._check(lc, "feature critic loss")
            lc.backward()
            dist_mod.average_gradients(self.guide.critic, self.dist)
            dist_mod.average_gradients(self.guide.critic_head, self.dist)
            self.opt_critic.step()
            stats["loss_critic"] = lc.detach()

        images = (step + 1) * cfg.batch
        update_ema(self.G_ema, G, ema_beta(cfg.batch, images, cfg.ema_kimg, cfg.ema_rampup))
        keys = sorted(stats)
        values = dist_mod.reduce_scalars(torch.stack([stats[k].float() for k in keys]), self.dist)
        return dict(zip(keys, values.tolist()))

    def _check(self, loss: torch.Tensor, what: str) -> None:
        bad = (~torch.isfinite(loss.detach())).float().reshape(1)
        if dist_mod.reduce_scalars(bad, self.dist, "max").item() > 0:
            raise NonFiniteStep(f"{what} is {loss.item()}")
