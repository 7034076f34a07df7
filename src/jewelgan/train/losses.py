"""GAN objectives on logits, and the gradient penalties.

All losses take raw D outputs (logits); the non-saturating loss uses BCE-with-logits, which is the
seed's log(sigmoid) objective written so that it cannot overflow to -inf.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def d_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    real, fake = real.float(), fake.float()
    if kind == "ns":
        return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if kind == "wgan-gp":
        # the small drift term (Karras et al. 2018) keeps critic outputs from wandering off
        return fake.mean() - real.mean() + 1e-3 * real.square().mean()
    raise ValueError(f"unknown loss {kind!r}; known: ns, hinge, wgan-gp")


def g_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    fake = fake.float()
    if kind == "ns":
        # non-saturating: maximise log D(G(z)) instead of minimising log(1 - D(G(z)))
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    if kind in ("hinge", "wgan-gp"):
        return -fake.mean()
    raise ValueError(f"unknown loss {kind!r}; known: ns, hinge, wgan-gp")


def attribute_loss(class_logits: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """Sum over attributes of the cross-entropy of D's attribute predictions; -1 (missing) is skipped.

    On reals it trains D's classifier; on fakes with the requested labels it rewards G for drawing
    what was asked (AC-GAN). An attribute with no known value in the batch adds nothing.
    """
    total = class_logits[0].new_zeros((), dtype=torch.float32)
    for j, logits in enumerate(class_logits):
        known = labels[:, j] >= 0
        if bool(known.any()):
            total = total + F.cross_entropy(logits.float()[known], labels[known, j].long())
    return total


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """Mean squared gradient norm of D on reals (Mescheder et al. 2018); multiply by gamma/2.

    real_images must have requires_grad set before D (and any augmentation) ran on them.
    """
    (grad,) = torch.autograd.grad(real_logits.float().sum(), real_images, create_graph=True)
    return grad.float().square().sum(dim=(1, 2, 3)).mean()


def gradient_penalty(D: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): (||grad D(x_hat)|| - 1)^2 on random interpolates; multiply by lambda.

    D is a callable of images only (labels and augmentation bound by the caller).
    """
    eps = torch.rand(real.shape[0], 1, 1, 1, generator=generator).to(real.device, real.dtype)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    out = D(x_hat)
    (grad,) = torch.autograd.grad(out.float().sum(), x_hat, create_graph=True)
    norm = grad.float().flatten(1).norm(dim=1)
    return (norm - 1).square().mean()
