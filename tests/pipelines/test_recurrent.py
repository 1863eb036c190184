"""Recurrent pipeline: padding/cropping, state carried across windows, normalisation, real-data SSIM."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from lase_e2v.errors import ConfigError, EventDataError
from lase_e2v.events.representations import to_voxel_grid
from lase_e2v.events.streams import EventStream
from lase_e2v.events.windows import FrameWindows, TimeWindows
from lase_e2v.models.baselines import E2VID, FireNet
from lase_e2v.pipelines.baselines import load_reconstructor
from lase_e2v.pipelines.display import robust_normalize, unsharp_mask
from lase_e2v.pipelines.recurrent import RecurrentReconstructionPipeline, centered_padding


def random_events(n: int, sensor_size: tuple[int, int], t0_us: int = 0, seed: int = 0) -> EventStream:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(t0_us, t0_us + 10_000, n))
    return EventStream(
        rng.integers(0, sensor_size[1], n),
        rng.integers(0, sensor_size[0], n),
        t,
        rng.choice([-1, 1], n),
        sensor_size,
    )


def tiny_e2vid() -> E2VID:
    torch.manual_seed(0)
    return E2VID(base_num_channels=4, num_encoders=2, num_residual_blocks=1, final_activation="none")


def test_centered_padding_values():
    assert centered_padding(13, 4) == (1, 2)
    assert centered_padding(180, 8) == (2, 2)
    assert centered_padding(16, 8) == (0, 0)
    assert centered_padding(7, 1) == (0, 0)


def test_voxel_is_padded_centred_with_zeros():
    pipeline = RecurrentReconstructionPipeline(tiny_e2vid(), normalize=False)
    events = random_events(300, (13, 21))
    padded = pipeline.prepare_voxel(events)[0]
    assert padded.shape == (5, 16, 24)  # multiple of 2**2
    expected = to_voxel_grid(events.x, events.y, events.t, events.p, 5, (13, 21))
    assert np.array_equal(padded[:, 1:14, 1:22].numpy(), expected)
    assert float(padded.abs().sum()) == pytest.approx(float(np.abs(expected).sum()), rel=1e-6)


@pytest.mark.parametrize("sensor_size", [(13, 21), (7, 9), (16, 16)])
def test_odd_sizes_are_cropped_back(sensor_size):
    pipeline = RecurrentReconstructionPipeline(tiny_e2vid())
    image = pipeline.reconstruct(random_events(200, sensor_size))
    assert image.shape == sensor_size and image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0


def test_crop_matches_the_unpadded_run_for_a_fully_convolutional_net():
    """FireNet needs no padding: the pipeline output is the network output, clipped."""
    torch.manual_seed(0)
    model = FireNet().eval()
    events = random_events(500, (11, 17))
    pipeline = RecurrentReconstructionPipeline(model)
    voxel = torch.from_numpy(
        to_voxel_grid(events.x, events.y, events.t, events.p, 5, (11, 17), normalize=True)
    ).float()
    with torch.no_grad():
        direct = model(voxel[None])[0][0, 0].clamp(0, 1).numpy()
    assert np.allclose(pipeline.reconstruct(events), direct, atol=1e-6)


def test_firenet_runs_channels_last_with_the_nchw_result(monkeypatch):
    pipeline = load_reconstructor("firenet")  # trained weights: random ones clip to a black frame
    windows = [random_events(500, (11, 17), t0_us=10_000 * k, seed=k) for k in range(3)]
    assert pipeline.prepare_voxel(windows[0]).is_contiguous(memory_format=torch.channels_last)
    fast = [pipeline.reconstruct(events) for events in windows]
    monkeypatch.setattr(pipeline.model, "memory_format", torch.contiguous_format)
    pipeline.reset()
    assert pipeline.prepare_voxel(windows[0]).is_contiguous()
    plain = [pipeline.reconstruct(events) for events in windows]
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(fast, plain)) and np.std(fast[-1]) > 0


def test_read_only_event_arrays_need_no_copy_warning():
    events = random_events(300, (12, 20))
    for array in (events.x, events.y, events.t, events.p):
        array.flags.writeable = False  # as memory-mapped readers hand them out
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RecurrentReconstructionPipeline(tiny_e2vid()).reconstruct(events)


def test_state_is_carried_across_windows_and_reset():
    pipeline = RecurrentReconstructionPipeline(tiny_e2vid())
    first, second = random_events(400, (12, 20), seed=1), random_events(400, (12, 20), t0_us=10_000, seed=2)
    fresh = pipeline.reconstruct(second)
    pipeline.reset()
    pipeline.reconstruct(first)
    carried = pipeline.reconstruct(second)
    assert np.abs(carried - fresh).max() > 1e-4  # the second output depends on the first window
    pipeline.reset()
    assert np.array_equal(pipeline.reconstruct(second), fresh)


def test_call_resets_and_matches_iterating(tmp_path):
    pipeline = RecurrentReconstructionPipeline(tiny_e2vid())
    events = random_events(2000, (12, 20))
    out_a = pipeline(events, TimeWindows(2500))
    out_b = pipeline(events, TimeWindows(2500))
    assert out_a.frames.shape[0] == 4 and np.array_equal(out_a.frames, out_b.frames)
    assert list(out_a.timestamps_us) == [int(events.t[0]) + 2500 * k for k in range(1, 5)]


def test_normalization_follows_the_weights_and_bad_options_raise():
    assert RecurrentReconstructionPipeline(FireNet()).normalize is True
    assert RecurrentReconstructionPipeline(FireNet(voxel_normalization="none")).normalize is False
    assert RecurrentReconstructionPipeline(FireNet(), normalize=False).normalize is False
    with pytest.raises(ConfigError, match="num_bins 3"):
        RecurrentReconstructionPipeline(FireNet(), num_bins=3)
    pipeline = RecurrentReconstructionPipeline(FireNet())
    pipeline.reconstruct(random_events(10, (8, 8)))
    with pytest.raises(EventDataError, match="sensor size changed"):
        pipeline.reconstruct(random_events(10, (9, 8)))


def test_display_postprocess_known_answers():
    ramp = torch.arange(101, dtype=torch.float32)  # percentiles 1 and 99 are 1 and 99
    assert torch.allclose(robust_normalize(ramp), ((ramp - 1) / 98).clamp(0, 1))
    assert torch.equal(robust_normalize(torch.ones(4, 4)), torch.full((4, 4), 0.5))
    flat = torch.full((9, 9), 0.3)
    assert torch.allclose(unsharp_mask(flat), flat)
    pipeline = RecurrentReconstructionPipeline(tiny_e2vid(), postprocess=True)
    image = pipeline.reconstruct(random_events(400, (16, 24)))
    assert image.min() == 0.0 and image.max() == 1.0


# measured on the first 10 frame windows of slider_depth (0.4139; 0.4465 over all 86 windows)
FIRENET_SSIM_FIRST_10 = 0.4139


def test_firenet_ssim_on_slider_depth(slider_depth_dir):
    from lase_e2v.evaluation.metrics import ssim
    from lase_e2v.events.formats import open_events
    from lase_e2v.pipelines.baselines import load_reconstructor

    reader = open_events(slider_depth_dir)
    frames = reader.read_frames()
    windows = FrameWindows(tuple(int(t) for t in frames.t_us[:11]))
    pipeline = load_reconstructor("firenet")
    # small chunks: only the first 0.4 s of the file is parsed
    reconstructed = pipeline.iter_frames(windows.iter_windows(reader.iter_chunks(50_000)))
    scores = [ssim(item.image, frames.as_float()[item.window.index + 1]) for item in reconstructed]
    assert len(scores) == 10
    assert np.mean(scores) == pytest.approx(FIRENET_SSIM_FIRST_10, abs=0.005)
