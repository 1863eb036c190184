"""Display post-processing of reconstructions (rpg_e2vid style), for viewing — not for evaluation.

Metrics compare raw network outputs (EVREAL's FireNet/E2VID+ protocol), so pipelines apply this only
on request. Two steps, in rpg_e2vid's order:

1. unsharp mask: ``(1 + amount)·x - amount·gauss_sigma(x)`` (rpg defaults amount 0.3, sigma 1);
2. robust normalisation: map the ``low``/``high`` percentiles (1 % / 99 %) of the frame to 0 / 1 and clip.

rpg_e2vid also smooths the percentiles over time with a median filter; we normalise each frame on its
own, so the result does not depend on earlier frames.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def robust_normalize(
    image: torch.Tensor, low_percent: float = 1.0, high_percent: float = 99.0
) -> torch.Tensor:
    """Map the ``low``/``high`` percentiles of ``image`` (any shape) to 0 / 1, clipped; flat images give 0.5."""
    values = image.detach().flatten().float()
    low, high = torch.quantile(
        values, torch.tensor([low_percent / 100, high_percent / 100], device=values.device)
    )
    if float(high - low) <= 1e-12:
        return torch.full_like(image, 0.5)
    return ((image - low) / (high - low)).clamp(0.0, 1.0)


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(..., H, W)`` with a ``2·ceil(3σ)+1`` kernel and replicated borders."""
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    shape = image.shape
    x = image.reshape(-1, 1, *shape[-2:])
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))
    return x.reshape(shape)


def unsharp_mask(image: torch.Tensor, amount: float = 0.3, sigma: float = 1.0) -> torch.Tensor:
    """``(1 + amount)·image - amount·blur(image)`` on ``(..., H, W)``."""
    return (1 + amount) * image - amount * gaussian_blur(image, sigma)


def display_postprocess(
    image: torch.Tensor,
    unsharp_amount: float = 0.3,
    unsharp_sigma: float = 1.0,
    low_percent: float = 1.0,
    high_percent: float = 99.0,
) -> torch.Tensor:
    """Unsharp mask, then robust normalisation to [0, 1] (see the module docstring)."""
    return robust_normalize(unsharp_mask(image, unsharp_amount, unsharp_sigma), low_percent, high_percent)
