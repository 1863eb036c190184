"""Event encoder: shapes at the latent grid, frame mixing, batch independence, save/load."""

from __future__ import annotations

import pytest
import torch

from lase_e2v.errors import ConfigError
from lase_e2v.models.event_encoder import EventEncoder


@pytest.fixture(scope="module")
def encoder() -> EventEncoder:
    torch.manual_seed(0)
    return EventEncoder.from_preset("tiny").eval()


@pytest.mark.parametrize("size, latent", [((48, 64), (6, 8)), ((45, 61), (6, 8)), ((180, 240), (23, 30))])
def test_features_sit_on_the_latent_grid(encoder, size, latent):
    with torch.no_grad():
        features = encoder(torch.randn(2, 3, 5, *size))
    assert features.shape == (2, 3, 16, *latent)


def test_3d_block_mixes_neighbouring_frames_but_not_the_batch(encoder):
    voxels = torch.randn(2, 3, 5, 32, 32)
    changed = voxels.clone()
    changed[0, 0] += 1.0
    with torch.no_grad():
        before, after = encoder(voxels), encoder(changed)
    assert not torch.allclose(before[0, 1], after[0, 1])  # frame 1 sees frame 0's events
    assert torch.equal(before[1], after[1])  # other clips of the batch do not


def test_channels_last_gives_the_plain_nchw_result(encoder):
    voxels = torch.randn(1, 3, 5, 45, 61, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        fast = encoder(voxels)
        hook = encoder.conv_in.register_forward_pre_hook(lambda module, args: (args[0].contiguous(),))
        try:
            plain = encoder(voxels)
        finally:
            hook.remove()
    assert torch.allclose(fast, plain, atol=1e-5) and fast.abs().max() > 0.1


def test_wrong_bins_raise(encoder):
    with pytest.raises(ConfigError, match=r"\(B, N, 5, H, W\)"):
        encoder(torch.randn(1, 2, 3, 32, 32))
    with pytest.raises(ConfigError, match="unknown"):
        EventEncoder.from_preset("huge")
    with pytest.raises(ConfigError, match="3 stages"):
        EventEncoder(block_out_channels=(16, 32))


def test_save_load_round_trip(encoder, tmp_path):
    encoder.save_pretrained(tmp_path)
    loaded = EventEncoder.from_pretrained(tmp_path)
    voxels = torch.randn(1, 2, 5, 24, 40)
    with torch.no_grad():
        assert torch.equal(loaded(voxels), encoder(voxels))
    assert list(loaded.config.block_out_channels) == [16, 32, 32]
