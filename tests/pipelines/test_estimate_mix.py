"""Estimate mix: the mix itself (all scales or a fine band), the real-range gate, the pipeline applying both;
the learned fusion in the pipeline (behind the same gate, saved with the checkpoint)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lase_e2v.errors import CheckpointError, ConfigError
from lase_e2v.events.streams import EventStream
from lase_e2v.events.windows import Window
from lase_e2v.models.autoencoder import load_autoencoder
from lase_e2v.models.fusion import EstimateFusion, event_magnitude, sharpness_ratio
from lase_e2v.models.text_encoder import load_text_encoder
from lase_e2v.pipelines.display import gaussian_blur
from lase_e2v.pipelines.estimate_mix import RangeGate, mix_estimate
from lase_e2v.pipelines.lase import LaSeE2VPipeline, with_sampling
from lase_e2v.pipelines.sampling_options import SamplingOptions

HEIGHT, WIDTH = 48, 64


def smooth_and_fine(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A coarse image and a fine texture, both small enough that nothing is clamped."""
    generator = torch.Generator().manual_seed(seed)
    coarse = 0.5 + 0.1 * gaussian_blur(torch.randn(HEIGHT, WIDTH, generator=generator), 6.0)
    fine = 0.05 * torch.randn(HEIGHT, WIDTH, generator=generator)
    return coarse, fine


def test_band_mix_takes_the_estimates_fine_band_and_keeps_the_frames_coarse_content():
    frame_coarse, frame_fine = smooth_and_fine(0)
    estimate_coarse, estimate_fine = smooth_and_fine(1)
    frame, estimate = frame_coarse + frame_fine, estimate_coarse + estimate_fine
    high = lambda x: x - gaussian_blur(x, 2.0)  # noqa: E731
    assert torch.equal(mix_estimate(frame, estimate, 0.0, 2.0), frame.clamp(0, 1))
    full = mix_estimate(frame, estimate, 1.0, 2.0)
    assert torch.allclose(full, gaussian_blur(frame, 2.0) + high(estimate), atol=1e-6)  # frame's coarse + estimate's fine
    half = mix_estimate(frame, estimate, 0.5, 2.0)
    assert torch.allclose(half, (frame + full) / 2, atol=1e-6)
    assert not torch.allclose(full, frame, atol=1e-2)


def test_plain_mix_is_a_blend_clamped_to_the_unit_range():
    frame = torch.tensor([[0.2, 0.9], [0.5, 0.0]])
    estimate = torch.tensor([[0.6, 0.1], [0.5, 1.0]])
    assert torch.allclose(mix_estimate(frame, estimate, 0.25, None), 0.75 * frame + 0.25 * estimate)
    assert torch.allclose(mix_estimate(frame, estimate, 1.0, None), estimate, atol=1e-7)
    assert mix_estimate(frame, torch.full_like(frame, 2.0), 1.0, None).max() == 1.0


def events(t, x, y) -> EventStream:
    t, x, y = (np.asarray(v, dtype=np.int64) for v in (t, x, y))
    return EventStream(x, y, t, np.ones(len(t), dtype=np.int8), (HEIGHT, WIDTH))


def noise_windows(count: int, per_window: int = 30) -> list[Window]:
    """Few events scattered at random: almost all isolated (a noise share no real camera shows)."""
    rng = np.random.default_rng(0)
    return [Window(i, i * 40_000, (i + 1) * 40_000,
                   events(np.sort(rng.integers(i * 40_000, (i + 1) * 40_000, per_window)),
                          rng.integers(0, WIDTH, per_window), rng.integers(0, HEIGHT, per_window)))
            for i in range(count)]


def edge_windows(count: int) -> list[Window]:
    """A vertical edge sweeping one column per ms: every event has neighbours just before it."""
    windows = []
    for i in range(count):
        t0 = i * 40_000
        columns = np.arange(40) % WIDTH
        t = np.repeat(t0 + columns * 1_000, HEIGHT)
        x = np.repeat(columns, HEIGHT)
        y = np.tile(np.arange(HEIGHT), len(columns))
        windows.append(Window(i, t0, t0 + 40_000, events(t, x, y)))
    return windows


def test_range_gate_follows_the_recordings_statistics():
    assert not RangeGate().update(noise_windows(3))
    assert RangeGate().update(edge_windows(3))
    assert not RangeGate().update([])  # nothing seen yet: no evidence of a real camera


@pytest.fixture(scope="module")
def pipeline() -> LaSeE2VPipeline:
    torch.manual_seed(0)
    pipeline = LaSeE2VPipeline.from_preset("tiny", load_autoencoder("tae"), load_text_encoder("minilm"))
    estimate_image = (0.5 + 0.2 * np.sin(np.arange(WIDTH) / 1.5))[None].repeat(HEIGHT, 0).astype(np.float32)
    return with_sampling(pipeline, num_inference_steps=2, clip_length=3, ei_strength=0.5,
                         estimate=lambda window: estimate_image)


def reconstruct(pipeline, windows, **options) -> np.ndarray:
    view = with_sampling(pipeline, **options)
    return np.stack([frame.image for frame in view.iter_frames(windows)])


@pytest.mark.parametrize("sigma", [None, 2.0])
@pytest.mark.parametrize("make_windows", [edge_windows, noise_windows])
def test_pipeline_mixes_the_estimate_only_in_the_real_range(pipeline, make_windows, sigma):
    windows = make_windows(3)
    plain = reconstruct(pipeline, windows)
    mix = {"estimate_mix": 0.5, "estimate_mix_sigma": sigma}
    gated = reconstruct(pipeline, windows, **mix)
    always = reconstruct(pipeline, windows, **mix, estimate_mix_gate=False)
    estimate = torch.from_numpy(np.stack([pipeline.options.estimate(w) for w in windows]))
    expected = mix_estimate(torch.from_numpy(plain), estimate, 0.5, sigma).numpy()
    np.testing.assert_allclose(always, expected, atol=1e-5)
    np.testing.assert_allclose(gated, expected if make_windows is edge_windows else plain, atol=1e-5)
    assert np.abs(expected - plain).max() > 0.02


@pytest.mark.parametrize("bad", [{"estimate_mix": -0.1}, {"estimate_mix": 1.5}, {"estimate_mix_sigma": 0}])
def test_estimate_mix_options_are_checked(bad):
    with pytest.raises(ConfigError, match="estimate_mix"):
        SamplingOptions(**bad)


def with_fusion(pipeline: LaSeE2VPipeline, fusion: EstimateFusion | None) -> LaSeE2VPipeline:
    """The pipeline's modules with ``fusion``, sampling as ``pipeline`` does."""
    return LaSeE2VPipeline(pipeline.autoencoder, pipeline.text_encoder, pipeline.event_encoder, pipeline.unet,
                           pipeline.scheduler, pipeline.options, fusion=fusion)


def estimate_taker() -> EstimateFusion:
    """A fusion whose share of the estimate is 1 everywhere (head weights 0, a large bias)."""
    fusion = EstimateFusion(channels=8)
    with torch.no_grad():
        fusion.head.bias.copy_(torch.tensor([30.0, 0.0]))
    return fusion


@pytest.mark.parametrize("make_windows", [edge_windows, noise_windows])
def test_pipeline_fuses_only_in_the_real_range(pipeline, make_windows):
    windows = make_windows(3)
    fused_pipeline = with_fusion(pipeline, estimate_taker())
    plain = reconstruct(fused_pipeline, windows)
    fused = reconstruct(fused_pipeline, windows, fusion=True)
    always = reconstruct(fused_pipeline, windows, fusion=True, estimate_mix_gate=False)
    estimate = np.stack([pipeline.options.estimate(w) for w in windows])
    np.testing.assert_allclose(always, estimate, atol=1e-5)
    np.testing.assert_allclose(fused, estimate if make_windows is edge_windows else plain, atol=1e-5)
    assert np.abs(estimate - plain).max() > 0.02


def test_fusion_needs_a_checkpoint_with_a_fusion_network(pipeline):
    with pytest.raises(CheckpointError, match="no fusion network"):
        with_sampling(pipeline, fusion=True)


@pytest.mark.parametrize("has_fusion", [True, False])
def test_saved_pipeline_keeps_its_fusion_network(pipeline, tmp_path, has_fusion):
    fusion = estimate_taker() if has_fusion else None
    with_fusion(pipeline, fusion).save_pretrained(tmp_path / "saved")
    loaded = LaSeE2VPipeline.from_pretrained(tmp_path / "saved")
    assert (loaded.fusion is not None) == has_fusion
    assert (tmp_path / "saved" / "fusion").is_dir() == has_fusion
    if has_fusion:
        for name, tensor in fusion.state_dict().items():
            assert torch.equal(loaded.fusion.state_dict()[name], tensor)


def test_a_clip_asked_to_fuse_without_a_fusion_network_is_refused(pipeline):
    voxels = torch.zeros(1, 2, 5, HEIGHT, WIDTH)
    with pytest.raises(CheckpointError, match="no fusion network"):
        pipeline.generate_clip(voxels, estimate=torch.full((1, 2, 1, HEIGHT, WIDTH), 0.5), fusion=True)


def test_a_sharpness_fusion_sees_each_whole_frames_ratio(pipeline):
    """``fuse`` gives each frame its own whole-frame ratio (not a clip's, not a tile's)."""
    torch.manual_seed(4)
    fusion = EstimateFusion(channels=8, sharpness_input=True)
    torch.nn.init.normal_(fusion.head.weight, std=0.5)
    frames, estimate = torch.rand(1, 2, 1, HEIGHT, WIDTH), torch.rand(1, 2, 1, HEIGHT, WIDTH)
    estimate[0, 1] = frames[0, 1]  # the second frame's ratio is 0, the first's is not
    voxels = torch.rand(1, 2, 5, HEIGHT, WIDTH)
    fused = with_fusion(pipeline, fusion).fuse(frames, estimate, voxels)
    for i in range(2):
        alone = fusion(frames[:, i], estimate[:, i], event_magnitude(voxels[:, i]),
                       sharpness_ratio(frames[:, i], estimate[:, i]))
        torch.testing.assert_close(fused[:, i], alone)


def second_taker() -> EstimateFusion:
    """A fusion with a second estimate whose share of that estimate is 1 everywhere."""
    fusion = EstimateFusion(channels=8, second_estimate=True)
    with torch.no_grad():
        fusion.head.bias.copy_(torch.tensor([0.0, 0.0, 30.0, 0.0]))
    return fusion


def test_pipeline_fuses_the_second_estimate_it_is_given(pipeline):
    windows = edge_windows(4)
    second_image = np.linspace(0.1, 0.9, WIDTH, dtype=np.float32)[None].repeat(HEIGHT, 0)
    seen = []

    def second(window: Window) -> np.ndarray:
        seen.append(window.index)
        return second_image + 0.01 * window.index

    fused = reconstruct(with_fusion(pipeline, second_taker()), windows, fusion=True, fusion_estimate=second)
    np.testing.assert_allclose(fused, np.stack([second_image + 0.01 * i for i in range(4)]), atol=1e-5)
    assert seen == [0, 1, 2, 3]  # one call per window, in order, across the clips of 3


def test_a_fusion_with_a_second_estimate_needs_its_source(pipeline):
    with pytest.raises(ConfigError, match="fusion_estimate"):
        with_sampling(with_fusion(pipeline, second_taker()), fusion=True)
    with pytest.raises(ConfigError, match="fusion_estimate 'cista_tc'"):
        SamplingOptions(fusion_estimate="cista_tc")


def test_with_sampling_builds_a_named_second_estimate_peer(pipeline):
    view = with_sampling(with_fusion(pipeline, second_taker()), fusion=True, fusion_estimate="firenet")
    assert view.options.fusion_estimate.name == "firenet"
    assert "fusion_estimate" not in view.options.to_json_dict()
    assert with_sampling(pipeline).options.fusion_estimate is None
