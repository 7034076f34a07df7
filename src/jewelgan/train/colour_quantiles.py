"""The quantile function of an image's pixel colours along fixed colour axes (conditional colour matching in
train/guidance.py): a mean colour cannot tell a thin, strongly tinted outline from a broad, faintly tinted
surface; the quantiles can (how much of the image has how much tint)."""

from __future__ import annotations

import torch

# luminance, red-blue and green-magenta opponent axes (an orthonormal colour basis), then R, G, B
COLOUR_AXES = torch.tensor([[3 ** -0.5] * 3, [2 ** -0.5, 0.0, -(2 ** -0.5)], [-(6 ** -0.5), 2 * 6 ** -0.5, -(6 ** -0.5)],
                            [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
COLOUR_LEVELS = 32  # quantile levels per axis


def colour_quantiles(x: torch.Tensor, levels: int = COLOUR_LEVELS) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 6 * levels): per image, its pixels' values along each colour axis at the
    midpoints of `levels` equal-probability bins (a sampled quantile function; differentiable through
    the sort). Two such functions' mean squared difference is the 1-D Wasserstein-2 distance."""
    axes = COLOUR_AXES.to(x.device, torch.float32)
    proj = torch.einsum("kc,bcn->bkn", axes, x.float().flatten(2))
    n = proj.shape[-1]
    at = ((torch.arange(levels, device=x.device) + 0.5) * n / levels).long()
    return proj.sort(-1).values[..., at].flatten(1)
