"""The learned fusion network: untrained it is the fixed blend; padding to odd sizes; save/load; its input."""

from __future__ import annotations

import math

import pytest
import torch

from lase_e2v.errors import ConfigError
from lase_e2v.models.fusion import EstimateFusion, event_magnitude, sharpness_ratio


@pytest.mark.parametrize("sharpness_input", [False, True])
def test_untrained_fusion_is_the_fixed_blend_at_any_frame_size(sharpness_input):
    torch.manual_seed(0)
    frames, estimate = torch.rand(2, 1, 37, 53), torch.rand(2, 1, 37, 53)
    magnitude = torch.rand(2, 1, 37, 53)
    fusion = EstimateFusion(channels=8, initial_mix=0.3, sharpness_input=sharpness_input)
    fused = fusion(frames, estimate, magnitude)
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


@pytest.mark.parametrize(("sharpness_input", "second_estimate"), [(False, False), (True, False), (False, True)])
def test_fusion_round_trip_is_exact(tmp_path, sharpness_input, second_estimate):
    torch.manual_seed(1)
    fusion = EstimateFusion(channels=8, sharpness_input=sharpness_input, second_estimate=second_estimate)
    torch.nn.init.normal_(fusion.head.weight, std=0.1)
    fusion.save_pretrained(tmp_path / "fusion")
    loaded = EstimateFusion.from_pretrained(tmp_path / "fusion")
    inputs = [torch.rand(1, 1, 20, 24) for _ in range(3)]
    second = torch.rand(1, 1, 20, 24) if second_estimate else None
    assert loaded.config.channels == 8 and loaded.config.sharpness_input == sharpness_input
    assert loaded.config.second_estimate == second_estimate
    assert torch.equal(loaded(*inputs, second=second), fusion(*inputs, second=second))


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
    with pytest.raises(ConfigError, match=r"initial_mix must be in \(0, 0.99\)"):
        EstimateFusion(initial_mix=0.995, second_estimate=True)  # leaves the second peer's start no room


def test_sharpness_ratio_compares_the_horizontal_gradients_of_whole_frames():
    torch.manual_seed(2)
    frames = torch.rand(3, 1, 12, 16)
    estimate = 0.5 + 2 * (frames - 0.5)  # twice the contrast: twice every horizontal gradient
    ratio = sharpness_ratio(frames, estimate)
    assert ratio.shape == (3,)
    torch.testing.assert_close(ratio, torch.full((3,), math.log(2.0)), atol=1e-3, rtol=0)
    torch.testing.assert_close(sharpness_ratio(frames.flip(-1), estimate.flip(-1)), ratio)
    assert sharpness_ratio(frames, frames).abs().max() < 1e-6


def test_sharpness_input_is_the_whole_frames_ratio_unless_given():
    torch.manual_seed(3)
    fusion = EstimateFusion(channels=8, sharpness_input=True)
    torch.nn.init.normal_(fusion.head.weight, std=0.5)
    frames, estimate, magnitude = torch.rand(2, 1, 16, 20), torch.rand(2, 1, 16, 20), torch.rand(2, 1, 16, 20)
    default = fusion(frames, estimate, magnitude)
    assert torch.equal(default, fusion(frames, estimate, magnitude, sharpness_ratio(frames, estimate)))
    other = fusion(frames, estimate, magnitude, sharpness_ratio(frames, estimate) + 1.0)
    assert (other - default).abs().max() > 1e-3


def test_untrained_second_estimate_fusion_is_the_three_way_fixed_blend():
    torch.manual_seed(5)
    frames, estimate, second = (torch.rand(2, 1, 37, 53) for _ in range(3))
    fusion = EstimateFusion(channels=8, initial_mix=0.3, second_estimate=True)
    fused = fusion(frames, estimate, torch.rand(2, 1, 37, 53), second=second)
    torch.testing.assert_close(fused, 0.69 * frames + 0.3 * estimate + 0.01 * second, atol=1e-6, rtol=0)


def test_second_estimate_fusion_takes_the_second_peer_where_its_share_dominates():
    fusion = EstimateFusion(channels=8, second_estimate=True)
    with torch.no_grad():
        fusion.head.bias.copy_(torch.tensor([0.0, 0.0, 30.0, 0.0]))
    frames, estimate, second = (torch.rand(1, 1, 16, 20) for _ in range(3))
    torch.testing.assert_close(fusion(frames, estimate, torch.zeros(1, 1, 16, 20), second=second), second)
    with pytest.raises(ConfigError, match="second estimate"):
        fusion(frames, estimate, torch.zeros(1, 1, 16, 20))

