"""Training losses: the latent diffusion loss and the event-aware mask loss.

Diffusion (Ho et al. 2020; v-prediction: Salimans & Ho 2022): the clip latents ``x0`` are noised to
``x_t = sqrt(a_t) x0 + sqrt(1 - a_t) eps`` and the U-Net predicts ``eps`` or
``v = sqrt(a_t) eps - sqrt(1 - a_t) x0``; the loss is the mean squared error to that target.

Event-aware mask loss (LaSe-E2V, Sec. 3.4). The paper states the idea -- where no event fired
between two frames the intensity did not change, where events fired the frame must follow the
events -- but not the exact formula. We use, on decoded frames in [0, 1]::

    L_mask = mean((1 - M_t) * |I^_t - I^_{t-1}|) + mean(M_t * |I^_t - I_t|)

``I^_t`` is the frame decoded (by the frozen autoencoder; gradients flow through it) from the
predicted clean latent ``x0^`` of frame ``t``; ``I^_{t-1}`` is the previous predicted frame of the
clip, and for the clip's first frame the real previous frame; ``I_t`` is the ground truth;
``M_t`` (0/1) marks pixels with at least one event in the window between frames ``t-1`` and ``t``.
Both means run over all pixels of all frames. The first term asks for temporal stability where
nothing happened, the second for fidelity where something did. ``x0^`` is only reliable at low
noise, so training applies the loss only to clips noised at ``t < mask_loss_max_timestep``.
"""

from __future__ import annotations

import torch


def _broadcast(values: torch.Tensor, timesteps: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``values[timesteps]`` shaped ``(B, 1, 1, ...)`` to broadcast against ``like``."""
    picked = values.to(like.device)[timesteps].to(like.dtype)
    return picked.view(-1, *([1] * (like.ndim - 1)))


def predicted_clean_latents(
    alphas_cumprod: torch.Tensor,
    noisy_latents: torch.Tensor,
    prediction: torch.Tensor,
    timesteps: torch.Tensor,
    prediction_type: str,
) -> torch.Tensor:
    """``x0^`` from ``x_t`` and the U-Net's prediction (epsilon: ``(x_t - s eps)/a``; v: ``a x_t - s v``)."""
    alpha = _broadcast(alphas_cumprod, timesteps, noisy_latents).sqrt()
    sigma = (1 - _broadcast(alphas_cumprod, timesteps, noisy_latents)).sqrt()
    if prediction_type == "epsilon":
        return (noisy_latents - sigma * prediction) / alpha
    return alpha * noisy_latents - sigma * prediction


def event_mask_loss(
    predicted_frames: torch.Tensor,
    target_frames: torch.Tensor,
    previous_frame: torch.Tensor,
    event_mask: torch.Tensor,
) -> torch.Tensor:
    """Event-aware mask loss (formula in the module docstring).

    Args:
        predicted_frames (`torch.Tensor`): ``(B, N, 1, H, W)`` decoded predictions in [0, 1].
        target_frames (`torch.Tensor`): ``(B, N, 1, H, W)`` ground-truth frames.
        previous_frame (`torch.Tensor`): ``(B, 1, H, W)`` the real frame before the clip.
        event_mask (`torch.Tensor`): ``(B, N, 1, H, W)``, 1 where events fired in the window ending at frame t.

    Returns:
        A scalar tensor.
    """
    mask = (event_mask > 0).to(predicted_frames.dtype)
    before = torch.cat([previous_frame.unsqueeze(1).to(predicted_frames.dtype), predicted_frames[:, :-1]], dim=1)
    stability = ((1 - mask) * (predicted_frames - before).abs()).mean()
    fidelity = (mask * (predicted_frames - target_frames).abs()).mean()
    return stability + fidelity
