"""The EVREAL protocol with fake reconstructors, on a synthetic recording and on real slider_depth frames."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image

from lase_e2v.errors import ConfigError, EventDataError
from lase_e2v.evaluation.benchmark import aggregate
from lase_e2v.evaluation.tables import to_markdown
from lase_e2v.evaluation.protocol import evaluate_method
from lase_e2v.events.formats import open_events

# skimage 0.26 structural_similarity (EVREAL settings) of gray 0.5 vs slider_depth frames 26..33, averaged
SKIMAGE_SSIM_GRAY_FRAMES_26_33 = 0.3499342721446951
SLIDER_CUT = (1.0, 1.3)  # frames 26..33 (1.008 s .. 1.279 s)


@pytest.fixture(scope="module")
def slider_frames(slider_depth_dir):
    return open_events(slider_depth_dir).read_frames()


def png_frames(slider_depth_dir, indices) -> list[np.ndarray]:
    return [
        np.asarray(Image.open(slider_depth_dir / "images" / f"frame_{i:08d}.png"), np.float64) / 255
        for i in indices
    ]


def test_perfect_method_on_slider_depth(slider_depth_dir, slider_frames, fakes):
    pipeline = fakes["aps"](slider_frames)
    result = evaluate_method(
        pipeline, slider_depth_dir, cut=SLIDER_CUT, warmup_s=0.0, metrics=("mse", "ssim", "lpips")
    )
    assert pipeline.resets == 1
    assert (result.sequence, result.dataset) == ("ecd_slider_depth", "custom")
    assert [r["index"] for r in result.records] == list(range(26, 34))
    assert result.records[0]["t_us"] == 1_007_900
    assert result.num_windows == 8  # warm-up 0: the first window is the one ending at frame 26
    assert result.means["mse"] == 0.0
    assert result.means["ssim"] == pytest.approx(1.0)
    assert result.means["lpips"] == 0.0
    assert result.means["temporal_error"] == 0.0
    assert result.means["flicker"] == pytest.approx(result.means["reference_flicker"])
    assert result.records[0]["flicker"] is None  # the first frame has no predecessor
    assert result.frames_per_second > 0


def test_constant_gray_on_slider_depth(slider_depth_dir, fakes):
    result = evaluate_method(
        fakes["constant"]((180, 240), 0.5),
        slider_depth_dir,
        cut=SLIDER_CUT,
        warmup_s=0.0,
        metrics=("mse", "ssim"),
    )
    frames = png_frames(slider_depth_dir, range(26, 34))
    assert result.means["mse"] == pytest.approx(np.mean([np.mean((f - 0.5) ** 2) for f in frames]), abs=1e-8)
    assert result.means["ssim"] == pytest.approx(SKIMAGE_SSIM_GRAY_FRAMES_26_33, abs=1e-6)
    assert result.means["flicker"] == 0.0
    # a frozen output misses every change of the reference
    expected = np.mean([np.mean(np.abs(b - a)) for a, b in itertools.pairwise(frames)])
    assert result.means["temporal_error"] == pytest.approx(expected, abs=1e-6)


def test_warmup_reconstructs_before_the_cut_without_scoring(slider_depth_dir, fakes):
    result = evaluate_method(
        fakes["constant"]((180, 240)), slider_depth_dir, cut=SLIDER_CUT, warmup_s=0.5, metrics=("mse",)
    )
    # frames at >= 0.5 s start at index 13; its window starts at frame 12
    assert result.num_windows == 33 - 13 + 1
    assert len(result.records) == 8


def test_timestamp_tolerance_and_temporal_pairs(synthetic_sequence, synthetic_frames, fakes):
    result = evaluate_method(fakes["aps"](synthetic_frames), synthetic_sequence, metrics=("mse", "ssim"))
    # frame 3's window ends 3 ms after its last event: outside the 1 ms tolerance
    assert [r["index"] for r in result.records] == [1, 2, 4, 5]
    assert [r["flicker"] is not None for r in result.records] == [False, True, False, True]
    relaxed = evaluate_method(
        fakes["aps"](synthetic_frames), synthetic_sequence, ts_tol_ms=5.0, metrics=("mse",)
    )
    assert [r["index"] for r in relaxed.records] == [1, 2, 3, 4, 5]


def test_clipping_before_scoring(synthetic_sequence, fakes):
    bright = evaluate_method(fakes["constant"]((32, 32), 3.0), synthetic_sequence, metrics=("mse",))
    white = evaluate_method(fakes["constant"]((32, 32), 1.0), synthetic_sequence, metrics=("mse",))
    assert bright.means["mse"] == white.means["mse"]


def test_bad_inputs(synthetic_sequence, fakes, tmp_path):
    with pytest.raises(ConfigError, match="3 voxel bins"):
        evaluate_method(fakes["constant"]((32, 32), num_bins=3), synthetic_sequence, metrics=("mse",))
    with pytest.raises(EventDataError, match="fewer than 2 APS frames"):
        evaluate_method(
            fakes["constant"]((32, 32)), synthetic_sequence, cut=(5.0, 6.0), warmup_s=0, metrics=("mse",)
        )
    with pytest.raises(EventDataError, match="no prediction was scored inside the cut 5.0-6.0 s"):
        evaluate_method(fakes["constant"]((32, 32)), synthetic_sequence, cut=(5.0, 6.0), metrics=("mse",))
    with pytest.raises(EventDataError, match="one shape"):
        evaluate_method(fakes["constant"]((16, 16)), synthetic_sequence, metrics=("mse",))


def test_dataset_score_is_the_mean_over_all_frames(synthetic_sequence, synthetic_frames, fakes):
    short = evaluate_method(
        fakes["constant"]((32, 32), 0.2),
        synthetic_sequence,
        cut=(0.0, 0.025),
        metrics=("mse",),
        dataset="D",
        sequence_name="short",
    )
    full = evaluate_method(
        fakes["constant"]((32, 32), 0.2),
        synthetic_sequence,
        metrics=("mse",),
        dataset="D",
        sequence_name="full",
    )
    summary = aggregate([short, full])
    values = [r["mse"] for r in short.records + full.records]
    assert summary["scores"]["constant"]["D"]["mse"] == pytest.approx(np.mean(values))
    assert summary["scores"]["constant"]["D"]["num_frames"] == len(values) == 2 + 4
    assert summary["sequences"]["constant"]["D"]["short"]["mse"] == pytest.approx(short.means["mse"])
    assert "groups" not in summary


def test_groups_are_means_over_their_own_frames(synthetic_sequence, fakes):
    def run(name, cut, value):
        return evaluate_method(fakes["constant"]((32, 32), value), synthetic_sequence, cut=cut,
                               metrics=("mse",), dataset="D", sequence_name=name)

    short, full, other = run("short", (0.0, 0.025), 0.2), run("full", None, 0.2), run("other", None, 0.9)
    summary = aggregate([short, full, other], {("D", "short"): "dark", ("D", "full"): "dark"})
    dark = summary["groups"]["constant"]["D"]["dark"]
    assert dark["mse"] == pytest.approx(np.mean([r["mse"] for r in short.records + full.records]))
    assert dark["num_frames"] == 2 + 4
    assert list(summary["groups"]["constant"]["D"]) == ["dark"]  # ungrouped sequences are in no group
    assert summary["scores"]["constant"]["D"]["num_frames"] == 2 + 4 + 4
    markdown = to_markdown(summary)
    row = f"| D / dark / constant | {dark['mse']:.4f} | {dark['flicker']:.3f} | 6 |"
    assert "Per group" in markdown and row in markdown
