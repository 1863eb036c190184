"""Validation on whole recordings: the benchmark's scores of the same weights and sampling, in the log."""

from __future__ import annotations

import numpy as np
import pytest

from lase_e2v.errors import ConfigError
from lase_e2v.evaluation.datasets import synthetic_split
from lase_e2v.evaluation.protocol import evaluate_method
from lase_e2v.events.formats import open_events
from lase_e2v.events.windows import FrameWindows
from lase_e2v.pipelines.lase import LaSeE2VPipeline, load_lase_pipeline
from lase_e2v.pipelines.output import ReconstructionPipeline
from lase_e2v.pipelines.registry import load_method
from lase_e2v.training import load_config, train
from lase_e2v.training.fusion import collect_sequence, fusion_sequences
from lase_e2v.training.validation import score_sequences, validate_sequences, validation_sequences


def _config(data_dir, run_dir, **overrides):
    values = {"run_dir": str(run_dir), "data_dir": str(data_dir), "crop": [32, 32], "clip_frames": 2,
              "batch_size": 2, "max_steps": 2, "warmup_steps": 1, "checkpoint_every": 2, "log_every": 1,
              "validate_every": 0, "val_clips": 1, "val_inference_steps": 2, "ema_decay": 0.9}
    return load_config(values, **overrides)


@pytest.fixture(scope="module")
def sequence_run(data_dir, tmp_path_factory):
    """A short run validated on its val sequences with EI from the integrator, two samples averaged."""
    run_dir = tmp_path_factory.mktemp("runs") / "sequences"
    train(_config(data_dir, run_dir, val_sequences=1, ei_strength=0.5,
                  val_sampling={"estimate": "integrate", "num_samples": 2}))
    return run_dir


def test_run_logs_the_benchmark_scores_of_its_weights(sequence_run, data_dir):
    """... and its exported pipeline, loaded with no options, samples as its validation did."""
    config = load_config(sequence_run / "config.json")
    [spec] = synthetic_split(data_dir, "val")[:1]
    pipeline = load_lase_pipeline(sequence_run / "pipeline")
    assert isinstance(pipeline.options.estimate, ReconstructionPipeline)
    assert (pipeline.options.num_samples, pipeline.options.ei_strength) == (2, 0.5)
    expected = evaluate_method(pipeline, spec.path, cut=spec.cut_s, metrics=("mse", "ssim", "lpips"))
    rows = (sequence_run / "val.csv").read_text().splitlines()
    assert rows[0] == "step,split,mse,ssim,lpips,flicker"
    [logged] = [row.split(",") for row in rows[1:] if row.split(",")[1] == "synthetic_sequences"]
    assert logged[0] == "2"
    got = dict(zip(("mse", "ssim", "lpips", "flicker"), map(float, logged[2:])))
    for name in ("mse", "ssim", "lpips", "flicker"):
        assert got[name] == pytest.approx(expected.means[name], rel=1e-4, abs=1e-6)
    assert config.sequence_sampling["estimate"] == "integrate"


def test_train_fusion_collects_from_a_runs_pipeline_with_the_peer_it_validated_on(sequence_run, data_dir):
    path = fusion_sequences([data_dir])[0]
    arrays = collect_sequence(load_lase_pipeline(sequence_run / "pipeline"), path)
    times = tuple(int(t) for t in open_events(path).read_frames().t_us)
    integrated = load_method("integrate")(open_events(path), FrameWindows(times)).frames
    np.testing.assert_allclose(arrays["estimates"], integrated, atol=1e-3)


def test_sampling_settings_change_the_scores(sequence_run, data_dir):
    """The options reach the sampler: EI strength 0 is the estimate through the autoencoder, 1 pure noise."""
    pipeline = LaSeE2VPipeline.from_pretrained(sequence_run / "pipeline")
    specs = synthetic_split(data_dir, "val")[:1]
    scores = {strength: validate_sequences(pipeline, specs, _config(data_dir, "unused", ei_strength=strength,
                                                                     val_sampling={"estimate": "integrate"}))
              for strength in (0.0, 1.0)}
    assert scores[0.0]["mse"] < scores[1.0]["mse"]  # the integrator's frames beat 2 steps from pure noise
    assert all(np.isfinite(v) for s in scores.values() for v in s.values())


def test_a_peer_gets_the_benchmarks_scores_frame_weighted_over_recordings(data_dir):
    """The ablations' "estimate alone" row: any reconstructor, several recordings weighted by frames."""
    specs = synthetic_split(data_dir, "val")[:1] + synthetic_split(data_dir, "train")[:1]
    results = [evaluate_method(load_method("integrate"), spec.path, cut=spec.cut_s,
                               metrics=("mse", "ssim", "lpips")) for spec in specs]
    got = score_sequences(load_method("integrate"), specs, num_bins=5)
    for name in ("mse", "ssim", "lpips"):
        counts = [sum(record[name] is not None for record in result.records) for result in results]
        expected = np.average([result.means[name] for result in results], weights=counts)
        assert got[name] == pytest.approx(expected, rel=1e-5)
    assert 0 < got["ssim"] < 1 and got["mse"] > 0


def test_which_recordings_are_validated(data_dir, tmp_path):
    assert validation_sequences(_config(data_dir, tmp_path)) == {}
    splits = validation_sequences(_config(data_dir, tmp_path, val_sequences=5, slider_depth_dir=str(tmp_path),
                                          slider_depth_cut_s=[0.5, 1.5]))
    val_names = [spec.name for spec in synthetic_split(data_dir, "val")]
    assert [spec.name for spec in splits["synthetic_sequences"]] == val_names
    [slider] = splits["slider_depth"]
    assert slider.path == tmp_path and slider.cut_s == (0.5, 1.5)


@pytest.mark.parametrize("sampling, message", [
    ({"num_sample": 4}, "unexpected keyword argument 'num_sample'"),
    ({"estimate": "pienet_light"}, "estimate 'pienet_light' unknown"),
    ({"ei_strength": 2}, "ei_strength must be in"),
    ([4], "must be an object"),
])
def test_bad_sampling_is_refused_at_load(data_dir, tmp_path, sampling, message):
    with pytest.raises(ConfigError, match=message):
        _config(data_dir, tmp_path, val_sampling=sampling)
    with pytest.raises(ConfigError, match="val_sequences"):
        _config(data_dir, tmp_path, val_sequences=-1)
