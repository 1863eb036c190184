"""Known answers of the event-aware mask loss and the x0 inversion."""

from __future__ import annotations

import torch
from diffusers import DDPMScheduler

from lase_e2v.training.losses import event_mask_loss, predicted_clean_latents


def _clip() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B=1, N=2) frames 2x2: pixel (0, 0) brightens 0.2 -> 0.6 -> 1.0, the rest stays 0.5."""
    previous = torch.full((1, 1, 2, 2), 0.5)
    previous[0, 0, 0, 0] = 0.2
    frames = torch.full((1, 2, 1, 2, 2), 0.5)
    frames[0, 0, 0, 0, 0], frames[0, 1, 0, 0, 0] = 0.6, 1.0
    mask = torch.zeros(1, 2, 1, 2, 2)
    mask[0, :, 0, 0, 0] = 1
    return previous, frames, mask


def test_mask_loss_is_zero_for_the_ground_truth():
    previous, frames, mask = _clip()
    assert event_mask_loss(frames, frames, previous, mask).item() == 0.0


def test_mask_loss_known_answer():
    previous, frames, mask = _clip()
    predicted = frames.clone()
    predicted[0, 0, 0, 0, 0] = 0.4  # wrong by 0.2 where events fired
    predicted[0, 1, 0, 1, 1] = 0.7  # changes by 0.2 where no event fired
    # fidelity: |0.4 - 0.6| = 0.2 over 8 pixels; stability: |0.7 - 0.5| = 0.2 over 8 pixels
    loss = event_mask_loss(predicted, frames, previous, mask)
    assert torch.isclose(loss, torch.tensor(0.2 / 8 + 0.2 / 8))


def test_mask_loss_ignores_changes_where_events_fired_and_errors_where_none_did():
    previous, frames, mask = _clip()
    # a prediction that copies the previous frame everywhere: stable (no penalty off-events),
    # but wrong on the event pixel by |0.2 - 0.6| and |0.2 - 1.0|
    predicted = previous.unsqueeze(1).expand(-1, 2, -1, -1, -1)
    loss = event_mask_loss(predicted, frames, previous, mask)
    assert torch.isclose(loss, torch.tensor((0.4 + 0.8) / 8))


def test_mask_loss_gradient_reaches_the_prediction():
    previous, frames, mask = _clip()
    predicted = (frames + 0.1).requires_grad_(True)
    event_mask_loss(predicted, frames, previous, mask).backward()
    assert predicted.grad is not None and predicted.grad.abs().sum() > 0


def test_clean_latents_invert_the_forward_process():
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear")
    torch.manual_seed(0)
    clean, noise = torch.randn(3, 2, 4, 2, 2), torch.randn(3, 2, 4, 2, 2)
    timesteps = torch.tensor([0, 500, 999])
    noisy = scheduler.add_noise(clean, noise, timesteps)
    from_epsilon = predicted_clean_latents(scheduler.alphas_cumprod, noisy, noise, timesteps, "epsilon")
    velocity = scheduler.get_velocity(clean, noise, timesteps)
    from_v = predicted_clean_latents(scheduler.alphas_cumprod, noisy, velocity, timesteps, "v_prediction")
    torch.testing.assert_close(from_epsilon, clean, atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(from_v, clean, atol=1e-5, rtol=1e-5)
