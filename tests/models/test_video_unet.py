"""Video U-Net with ESA: shapes, the conditioning paths, ablation switches, save/load."""

from __future__ import annotations

import pytest
import torch

from lase_e2v.errors import ConfigError
from lase_e2v.models.video_unet import Conditioning, SpatialTransformer, VideoUNet

B, N, C, CE, D, H, W = 2, 3, 32, 16, 24, 6, 5


def make_inputs(seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {
        "noisy_latents": torch.randn(B, N, C, H, W, generator=generator),
        "timesteps": torch.tensor([10, 700]),
        "event_features": torch.randn(B, N, CE, H, W, generator=generator),
        "previous_latent": torch.randn(B, C, H, W, generator=generator),
        "text_states": torch.randn(B, 4, D, generator=generator),
        "text_mask": torch.tensor([[True, True, False, False], [True, True, True, True]]),
    }


def build(**overrides) -> VideoUNet:
    torch.manual_seed(0)
    return VideoUNet.from_preset("tiny", text_dim=D, **overrides).eval()


@pytest.fixture(scope="module")
def unet() -> VideoUNet:
    return build()


def run(model: VideoUNet, **changes) -> torch.Tensor:
    with torch.no_grad():
        return model(**{**make_inputs(), **changes})


def test_output_shape_and_size(unet):
    assert run(unet).shape == (B, N, C, H, W)
    assert sum(p.numel() for p in unet.parameters()) < 3_000_000


def test_every_condition_reaches_the_output(unet):
    reference = run(unet)
    inputs = make_inputs(seed=1)
    for name in ("event_features", "previous_latent", "text_states", "timesteps"):
        changed = run(unet, **{name: inputs[name] if name != "timesteps" else torch.tensor([500, 20])})
        assert not torch.allclose(changed, reference), name


def test_padded_text_tokens_are_ignored(unet):
    states = make_inputs()["text_states"].clone()
    states[0, 2:] = 100.0  # masked positions of the first prompt
    assert torch.allclose(run(unet, text_states=states), run(unet), atol=1e-5)


def test_temporal_blocks_mix_frames_and_clips_stay_independent(unet):
    latents = make_inputs()["noisy_latents"].clone()
    latents[0, 0] += 1.0
    before, after = run(unet), run(unet, noisy_latents=latents)
    assert not torch.allclose(before[0, 2], after[0, 2])
    assert torch.allclose(before[1], after[1], atol=1e-6)


def test_missing_previous_latent_means_zeros(unet):
    zeros = torch.zeros(B, C, H, W)
    assert torch.equal(run(unet, previous_latent=None), run(unet, previous_latent=zeros))


def _zero_out(model: VideoUNet, attribute: str) -> None:
    with torch.no_grad():
        for module in model.modules():
            branch = getattr(module, attribute, None)
            if branch is not None:
                for parameter in branch.attention.to_out.parameters():
                    parameter.zero_()


@pytest.mark.parametrize(
    "switch, attribute, cleared",
    [
        ("use_esa", "event_attention", {}),
        ("use_text", "text_attention", {"text_states": None, "text_mask": None}),
    ],
)
def test_ablation_switch_removes_exactly_its_branch(switch, attribute, cleared):
    full, ablated = build(), build(**{switch: False})
    missing, unexpected = ablated.load_state_dict(full.state_dict(), strict=False)
    assert not missing and unexpected and all(f".{attribute}." in key for key in unexpected)
    assert not torch.allclose(run(ablated, **cleared), run(full))  # the branch matters...
    _zero_out(full, attribute)
    assert torch.allclose(run(ablated, **cleared), run(full), atol=1e-5)  # ...and is all that differs


def test_without_previous_frame_input_channels_shrink():
    assert build(use_previous_frame=False).conv_in.in_channels == C + CE
    assert build().conv_in.in_channels == 2 * C + CE


def test_bad_inputs_raise(unet):
    with pytest.raises(ConfigError, match="event_features must be"):
        run(unet, event_features=torch.randn(B, N, CE, H + 1, W))
    with pytest.raises(ConfigError, match="text_states missing"):
        run(unet, text_states=None)
    with pytest.raises(ConfigError, match="text_states given"):
        run(build(use_text=False))
    with pytest.raises(ConfigError, match="use_previous_frame=False"):
        run(build(use_previous_frame=False))
    with pytest.raises(ConfigError, match="prediction_type"):
        build(prediction_type="sample")


def test_save_load_round_trip_keeps_config_and_output(unet, tmp_path):
    model = build(prediction_type="v_prediction", use_esa=False)
    model.save_pretrained(tmp_path)
    loaded = VideoUNet.from_pretrained(tmp_path)
    assert loaded.config.prediction_type == "v_prediction" and loaded.config.use_esa is False
    assert torch.equal(run(loaded.eval()), run(model))


def test_gradient_checkpointing_gives_the_same_gradients():
    def gradient(model):
        model.train()
        model(**make_inputs()).square().mean().backward()
        return model.conv_in.weight.grad.clone()

    plain, checkpointed = build(), build()
    checkpointed.enable_gradient_checkpointing()
    assert torch.allclose(gradient(plain), gradient(checkpointed), atol=1e-6)


def test_a_window_as_large_as_the_frame_changes_nothing(unet):
    assert torch.equal(run(unet, attention_window=max(H, W)), run(unet))
    assert not torch.allclose(run(unet, attention_window=2), run(unet))


def test_tiled_spatial_attention_sees_only_its_tile():
    torch.manual_seed(0)
    block = SpatialTransformer(8, heads=2, groups=2, event_channels=4, text_dim=None).eval()
    block.norm = torch.nn.Identity()  # GroupNorm mixes the whole frame by design; attention is under test
    hidden = torch.randn(1, 8, 4, 6)
    changed = hidden.clone()
    changed[..., 2:, :] += 1.0  # the bottom tile of a 2-tile split (window 2 rows)
    events = torch.randn(1, 4, 4, 6)

    def top_rows(maps: torch.Tensor, window) -> torch.Tensor:
        with torch.no_grad():
            return block(maps, Conditioning(1, events, attention_window=window))[..., :2, :]

    assert torch.allclose(top_rows(hidden, 3), top_rows(changed, 3), atol=1e-6)  # tiles of 2x3
    assert not torch.allclose(top_rows(hidden, None), top_rows(changed, None), atol=1e-3)


def test_short_sequence_attention_matches_the_fused_kernel_in_every_precision():
    """The temporal blocks' processor: fused in float32 (bit-identical), plain matmuls under CPU autocast."""
    from diffusers.models.attention_processor import Attention, AttnProcessor2_0

    from lase_e2v.models.video_unet import ShortSequenceAttnProcessor

    torch.manual_seed(0)
    attention = Attention(32, heads=2, dim_head=16, bias=False, upcast_softmax=True).eval()
    tokens = torch.randn(500, 4, 32)
    with torch.no_grad():
        reference = AttnProcessor2_0()(attention, tokens)
        assert torch.equal(ShortSequenceAttnProcessor()(attention, tokens), reference)
        with torch.autocast("cpu", torch.bfloat16):
            fused = AttnProcessor2_0()(attention, tokens).float()
            short = ShortSequenceAttnProcessor()(attention, tokens).float()
    fused_error = (fused - reference).abs().mean()
    assert not torch.equal(short, fused)  # the plain path ran
    assert (short - reference).abs().mean() <= 1.5 * fused_error  # and is as accurate as the fused one
