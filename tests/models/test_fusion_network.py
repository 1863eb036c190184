"""The learned fusion network: untrained it is the fixed blend; padding to odd sizes; save/load; its input."""

from __future__ import annotations

import pytest
import torch

from lase_e2v.errors import ConfigError
from lase_e2v.models.fusion import EstimateFusion, event_magnitude


def test_untrained_fusion_is_the_fixed_blend_at_any_frame_size():
    torch.manual_seed(0)
    frames, estimate = torch.rand(2, 1, 37, 53), torch.rand(2, 1, 37, 53)
    magnitude = torch.rand(2, 1, 37, 53)
    fused = EstimateFusion(channels=8, initial_mix=0.3)(frames, estimate, magnitude)
    assert fused.shape == frames.shape
    torch.testing.assert_close(fused, frames + 0.3 * (estimate - frames), atol=1e-6, rtol=0)


def test_fusion_output_depends_on_its_inputs_once_the_head_is_not_zero():
    torch.manual_seed(0)
    fusion = EstimateFusion(channels=8)
    torch.nn.init.normal_(fusion.head.weight, std=0.5)
    frames, estimate = torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16)
    quiet = fusion(frames, estimate, torch.zeros(1, 1, 16, 16))
    busy = fusion(frames, estimate, torch.ones(1, 1, 16, 16))
    assert (quiet - busy).abs().max() > 1e-3
    assert quiet.min() >= 0 and quiet.max() <= 1


def test_fusion_round_trip_is_exact(tmp_path):
    torch.manual_seed(1)
    fusion = EstimateFusion(channels=8)
    torch.nn.init.normal_(fusion.head.weight, std=0.1)
    fusion.save_pretrained(tmp_path / "fusion")
    loaded = EstimateFusion.from_pretrained(tmp_path / "fusion")
    inputs = [torch.rand(1, 1, 20, 24) for _ in range(3)]
    assert loaded.config.channels == 8
    assert torch.equal(loaded(*inputs), fusion(*inputs))


def test_event_magnitude_sums_the_bins_absolute_values():
    voxels = torch.zeros(2, 5, 4, 4)
    voxels[0, :, 1, 2] = torch.tensor([1.0, -2.0, 0.0, 0.5, -0.5])
    magnitude = event_magnitude(voxels)
    assert magnitude.shape == (2, 1, 4, 4)
    assert magnitude[0, 0, 1, 2].item() == pytest.approx(torch.log1p(torch.tensor(4.0)).item() / 3)
    assert magnitude.sum().item() == pytest.approx(magnitude[0, 0, 1, 2].item())


@pytest.mark.parametrize("mix", [0.0, 1.0, 1.5])
def test_initial_mix_must_be_a_share(mix):
    with pytest.raises(ConfigError, match="initial_mix"):
        EstimateFusion(initial_mix=mix)
