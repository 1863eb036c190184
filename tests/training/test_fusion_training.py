"""Training the learned fusion: the SSIM loss is EVREAL's SSIM, collected frames are the pipeline's and
the peer's on the same windows, training moves the fusion toward the truth, and the command writes a
loadable pipeline that samples with its fusion (errors before any work)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lase_e2v.errors import ConfigError
from lase_e2v.evaluation.metrics import ssim
from lase_e2v.events.formats import open_events
from lase_e2v.events.windows import FrameWindows
from lase_e2v.pipelines.baselines import load_reconstructor
from lase_e2v.pipelines.lase import LaSeE2VPipeline, load_lase_pipeline, with_sampling
from lase_e2v.models.fusion import EstimateFusion
from lase_e2v.training.fusion import (CACHED, SECOND, FusionConfig, collect_sequence, fused_pipeline,
                                      fusion_sequences, save_fused_pipeline, ssim_loss, train_fusion)


def test_ssim_loss_is_one_minus_the_benchmarks_ssim():
    generator = torch.Generator().manual_seed(0)
    a = torch.rand(2, 1, 24, 30, generator=generator)
    b = (a + 0.2 * torch.rand(2, 1, 24, 30, generator=generator)).clamp(0, 1)
    expected = np.mean([ssim(a[i, 0].numpy(), b[i, 0].numpy()) for i in range(2)])
    assert 1 - ssim_loss(a, b).item() == pytest.approx(expected, abs=1e-5)
    assert ssim_loss(a, a).item() == pytest.approx(0, abs=1e-6)


def test_collected_frames_are_the_pipelines_and_the_peers_on_the_same_windows(base_checkpoint, data_dir):
    path = fusion_sequences([data_dir])[0]
    pipeline = load_lase_pipeline(base_checkpoint)
    arrays = collect_sequence(pipeline, path)
    reader = open_events(path)
    frames = reader.read_frames()
    windowing = FrameWindows(tuple(int(t) for t in frames.t_us))
    count = len(frames.t_us) - 1
    assert {name: arrays[name].shape for name in CACHED} == {name: (count, 32, 32) for name in CACHED}
    np.testing.assert_allclose(arrays["truth"], frames.as_float()[1:], atol=1e-3)
    estimates = load_reconstructor("integrate")(open_events(path), windowing).frames
    np.testing.assert_allclose(arrays["estimates"], estimates, atol=1e-3)
    # the pipeline with the peer as its own EI source (fusion and mix off) makes the same frames
    sampler = with_sampling(pipeline, estimate="integrate", estimate_mix=0.0)
    decoded = sampler(open_events(path), windowing).frames
    np.testing.assert_allclose(arrays["frames"], decoded, atol=2e-3)
    assert np.abs(arrays["frames"] - arrays["estimates"]).max() > 0.02
    assert arrays["magnitudes"].max() > 0


def test_collected_second_estimates_are_the_second_peers_on_the_same_windows(base_checkpoint, data_dir):
    path = fusion_sequences([data_dir])[0]
    arrays = collect_sequence(load_lase_pipeline(base_checkpoint, fusion_estimate="firenet"), path)
    windowing = FrameWindows(tuple(int(t) for t in open_events(path).read_frames().t_us))
    seconds = load_reconstructor("firenet")(open_events(path), windowing).frames
    np.testing.assert_allclose(arrays[SECOND], seconds, atol=1e-3)
    assert np.abs(arrays[SECOND] - arrays["estimates"]).max() > 0.02
    assert SECOND not in collect_sequence(load_lase_pipeline(base_checkpoint), path)


def test_training_with_a_second_estimate_learns_to_take_it(tmp_path):
    """Truth = the second estimate: the trained fusion is much nearer to it than the untrained blend."""
    generator = np.random.default_rng(1)
    frames, estimates, seconds = (generator.random((6, 32, 32)).astype(np.float16) for _ in range(3))
    file = tmp_path / "cache.npz"
    np.savez(file, frames=frames, estimates=estimates, magnitudes=np.zeros_like(frames), truth=seconds,
             seconds=seconds)
    config = FusionConfig(max_steps=40, crop_size=24, batch_size=4, learning_rate=1e-2, lpips_weight=0,
                          channels=8, second_estimate="firenet")
    fusion = train_fusion([file], config, progress=False)
    assert fusion.config.second_estimate
    inputs = [torch.from_numpy(a.astype(np.float32))[:, None] for a in (frames, estimates, np.zeros_like(frames))]
    with torch.no_grad():
        fused = fusion(*inputs, second=torch.from_numpy(seconds.astype(np.float32))[:, None])[:, 0].numpy()
    untrained = 0.74 * frames.astype(np.float32) + 0.25 * estimates + 0.01 * seconds
    assert np.abs(fused - seconds).mean() < 0.5 * np.abs(untrained - seconds).mean()
    without = tmp_path / "without.npz"
    np.savez(without, frames=frames, estimates=estimates, magnitudes=np.zeros_like(frames), truth=seconds)
    with pytest.raises(ConfigError, match="without a second estimate"):
        train_fusion([without], config, progress=False)


@pytest.mark.parametrize("sharpness_input", [False, True])
def test_training_moves_the_fusion_toward_the_truth(tmp_path, sharpness_input):
    """Truth = estimate: a trained fusion takes more of the estimate than the untrained blend."""
    generator = np.random.default_rng(0)
    estimates = generator.random((6, 32, 32)).astype(np.float16)
    frames = generator.random((6, 32, 32)).astype(np.float16)
    file = tmp_path / "cache.npz"
    np.savez(file, frames=frames, estimates=estimates, magnitudes=np.zeros_like(frames), truth=estimates)
    config = FusionConfig(max_steps=40, crop_size=24, batch_size=4, learning_rate=1e-2, lpips_weight=0,
                          channels=8, sharpness_input=sharpness_input)
    fusion = train_fusion([file], config, progress=False)
    assert fusion.config.sharpness_input == sharpness_input
    inputs = [torch.from_numpy(a.astype(np.float32))[:, None]
              for a in (frames, estimates, np.zeros_like(frames))]
    with torch.no_grad():
        error = (fusion(*inputs)[:, 0].numpy() - estimates).__abs__().mean()
    blend_error = np.abs(0.75 * (frames.astype(np.float32) - estimates)).mean()
    assert error < 0.5 * blend_error


def test_train_fusion_command_writes_a_pipeline_that_samples_with_its_fusion(run_cli, base_checkpoint,
                                                                            data_dir, tmp_path):
    output = tmp_path / "fused"
    code, stdout, _ = run_cli("train-fusion", data_dir, "-o", output, "--checkpoint", base_checkpoint,
                              "--steps", "3", "--channels", "8", "--ssim-weight", "2",
                              "--sharpness-input")
    assert code == 0 and f"wrote {output}" in stdout
    sampling = json.loads((output / "sampling.json").read_text())
    assert sampling == {"estimate": "integrate", "estimate_mix": 0.0, "fusion": True}
    assert not (tmp_path / "fused.cache").exists()
    loaded = load_lase_pipeline(output)
    assert loaded.fusion is not None and loaded.options.fusion and loaded.options.estimate_mix == 0
    assert loaded.fusion.config.channels == 8 and loaded.fusion.config.sharpness_input
    base = LaSeE2VPipeline.from_pretrained(base_checkpoint)
    for name, tensor in base.unet.state_dict().items():
        assert torch.equal(loaded.unet.state_dict()[name], tensor)


def test_train_fusion_command_saves_the_second_estimate_it_trained_with(run_cli, base_checkpoint, data_dir,
                                                                       tmp_path):
    output = tmp_path / "fused"
    code, stdout, _ = run_cli("train-fusion", data_dir, "-o", output, "--checkpoint", base_checkpoint,
                              "--steps", "3", "--channels", "8", "--second-estimate", "firenet")
    assert code == 0 and f"wrote {output}" in stdout
    sampling = json.loads((output / "sampling.json").read_text())
    assert sampling == {"estimate": "integrate", "estimate_mix": 0.0, "fusion": True, "fusion_estimate": "firenet"}
    loaded = load_lase_pipeline(output)
    assert loaded.fusion.config.second_estimate and loaded.options.fusion_estimate.name == "firenet"
    path = fusion_sequences([data_dir])[0]
    t_us = open_events(path).read_frames().t_us
    frames = loaded(open_events(path), FrameWindows(tuple(int(t) for t in t_us))).frames
    assert len(frames) == len(t_us) - 1 and np.isfinite(frames).all()
    # a fusion retrained on that checkpoint without one drops it from the sampling
    code, _, _ = run_cli("train-fusion", data_dir, "-o", tmp_path / "again", "--checkpoint", output,
                         "--steps", "3", "--channels", "8")
    assert code == 0 and "fusion_estimate" not in json.loads((tmp_path / "again" / "sampling.json").read_text())


@pytest.mark.parametrize("second", [None, "firenet"])
def test_a_fusion_added_in_memory_samples_as_the_saved_fused_pipeline(base_checkpoint, data_dir, tmp_path,
                                                                       second):
    """The ablations' fused rows (in memory, with and without a second peer) are what ``train-fusion``
    saves; the fusion changes the frames."""
    torch.manual_seed(1)
    fusion = EstimateFusion(channels=8, second_estimate=second is not None).eval()
    base = load_lase_pipeline(base_checkpoint, fusion=False, estimate_mix=0.0, fusion_estimate=second)
    save_fused_pipeline(base, fusion, base_checkpoint, tmp_path / "fused", second)
    path = fusion_sequences([data_dir])[0]
    windowing = FrameWindows(tuple(int(t) for t in open_events(path).read_frames().t_us))
    in_memory = fused_pipeline(base, fusion)(open_events(path), windowing).frames
    saved = load_lase_pipeline(tmp_path / "fused")(open_events(path), windowing).frames
    unfused = base(open_events(path), windowing).frames
    np.testing.assert_allclose(in_memory, saved, atol=1e-5)
    assert np.abs(in_memory - unfused).max() > 0.01


def test_train_fusion_refuses_bad_input_before_any_work(cli_error, data_dir, tmp_path, base_checkpoint):
    existing = tmp_path / "exists"
    existing.mkdir()
    assert "exists" in cli_error("train-fusion", data_dir, "-o", existing)
    assert "manifest" in cli_error("train-fusion", tmp_path, "-o", tmp_path / "out")
    assert "not a saved LaSe-E2V pipeline" in cli_error("train-fusion", data_dir, "-o", tmp_path / "out",
                                                        "--checkpoint", tmp_path)
    assert "unknown method 'nope'" in cli_error("train-fusion", data_dir, "-o", tmp_path / "out",
                                                "--second-estimate", "nope")
    for option, value in (("--channels", "0"), ("--steps", "0"), ("--ssim-weight", "-1")):
        message = cli_error("train-fusion", data_dir, "-o", tmp_path / "out", option, value)
        assert "must be" in message and not (tmp_path / "out.cache").exists()
