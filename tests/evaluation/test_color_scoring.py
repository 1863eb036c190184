"""Colour recordings in the evaluation: reconstructed in colour, scored on luma (EVREAL scores gray) or in
RGB (std_rgb), shown in colour in the videos."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from lase_e2v.errors import EventDataError
from lase_e2v.evaluation import benchmark, evaluate_method, load_eval_config
from lase_e2v.evaluation.metrics import LpipsMetric, mse, ssim
from lase_e2v.evaluation.protocol import scored_pair
from lase_e2v.events.color import to_luma
from lase_e2v.events.formats import open_events
from lase_e2v.pipelines.output import ReconstructedFrame


def rgb_pair():
    rng = np.random.default_rng(0)
    reference = rng.random((64, 64, 3)).astype(np.float32)
    prediction = np.clip(reference * np.float32([1.0, 0.6, 0.9]) + 0.05, 0, 1).astype(np.float32)
    return prediction, reference


def test_rgb_metrics_average_over_the_channels():
    prediction, reference = rgb_pair()
    assert mse(prediction, reference) == pytest.approx(np.mean((prediction - reference) ** 2))
    per_channel = [ssim(prediction[..., c], reference[..., c]) for c in range(3)]
    assert ssim(prediction, reference) == pytest.approx(np.mean(per_channel))
    lpips = LpipsMetric()
    colour = lpips.calculate(prediction, reference)
    gray = lpips.calculate(to_luma(prediction), to_luma(reference))
    assert 0 < colour and colour != pytest.approx(gray)
    with pytest.raises(EventDataError, match=r"\(H, W\) or \(H, W, 3\) images of one shape"):
        mse(prediction, reference[..., 0])


def test_a_colour_recording_is_scored_on_luma_unless_rgb_is_asked(color_dataset, fakes):
    """A 'reconstruction' that is the reference with red and blue swapped: on luma it is off by the
    luma of that swap only, in RGB by the whole swap."""
    sequence = color_dataset / "seq_00003.h5"
    frames = open_events(sequence).read_frames()

    class Swapped(fakes["aps"]):
        def iter_frames(self, windows, caption=None, progress=False):
            for item in super().iter_frames(windows, caption, progress):
                yield ReconstructedFrame(item.window, item.image[..., ::-1])

    luma = evaluate_method(Swapped(frames), sequence, cut=(0.5, 1.5), metrics=("mse",), keep_frames=3)
    rgb = evaluate_method(Swapped(frames), sequence, cut=(0.5, 1.5), metrics=("mse",), color_scoring="rgb")
    scored = [record["index"] for record in luma.records]
    assert luma.num_frames == rgb.num_frames == len(scored) == 30
    reference = frames.as_float()[scored]
    swapped = reference[..., ::-1]
    assert luma.means["mse"] == pytest.approx(np.mean((to_luma(swapped) - to_luma(reference)) ** 2), rel=1e-5)
    assert rgb.means["mse"] == pytest.approx(np.mean((swapped - reference) ** 2), rel=1e-5)
    assert rgb.means["mse"] > 3 * luma.means["mse"]
    assert luma.kept.predictions[0].shape == (90, 120, 3)  # the videos keep the colour


def test_the_benchmark_reconstructs_colour_sequences_in_colour(color_dataset, tmp_path):
    out = tmp_path / "bench"
    benchmark(["integrate", "firenet"], color_dataset, out, dataset="synthetic", progress=False)
    summary = json.loads((out / "aggregate.json").read_text())
    assert summary["eval_config"]["color_scoring"] == "luma"
    assert summary["scores"]["FireNet"]["synthetic"]["num_frames"] == 30
    still = np.asarray(Image.open(out / "videos" / "synthetic_seq_00003.png").convert("RGB")).astype(int)
    firenet = still[18:, 240:360]  # events | Integrator | FireNet | reference, below the caption strip
    assert np.abs(firenet[..., 0] - firenet[..., 1]).mean() > 5  # coloured (gray: 0; measured 11)
    out_rgb = tmp_path / "bench_rgb"
    benchmark(["firenet"], color_dataset, out_rgb, dataset="synthetic", eval_config="std_rgb", videos=False,
              progress=False)
    rgb = json.loads((out_rgb / "aggregate.json").read_text())
    assert rgb["eval_config"]["color_scoring"] == "rgb" and load_eval_config("std_rgb").color_scoring == "rgb"
    assert rgb["scores"]["FireNet"]["synthetic"]["mse"] != pytest.approx(
        summary["scores"]["FireNet"]["synthetic"]["mse"], rel=1e-3)


def test_in_rgb_a_gray_prediction_counts_as_gray_on_every_channel():
    gray, reference = np.full((4, 5), 0.5, np.float32), np.zeros((4, 5, 3), np.float32)
    prediction, scored_reference = scored_pair(gray, reference, "rgb")
    assert prediction.shape == (4, 5, 3) and np.all(prediction == 0.5) and scored_reference is reference
    luma_prediction, luma_reference = scored_pair(reference + 0.2, gray, "rgb")  # gray reference: luma
    assert luma_prediction.shape == luma_reference.shape == (4, 5)
