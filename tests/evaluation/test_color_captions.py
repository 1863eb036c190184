"""Colour and caption sources together: the caption wrapper stays outside the colour one, so a
colour recording gets one text (one automatic caption) for its four Bayer sites, in the benchmark
and in the API."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

import lase_e2v
from lase_e2v.evaluation.benchmark import run_benchmark
from lase_e2v.evaluation.datasets import EvalConfig, SequenceSpec
from lase_e2v.events.formats import open_events
from lase_e2v.events.windows import parse_window_spec
from lase_e2v.models.captioner import load_captioner
from lase_e2v.pipelines.captions import CaptionedPipeline, first_windows
from lase_e2v.pipelines.output import ReconstructedFrame, ReconstructionPipeline
from lase_e2v.pipelines.registry import load_method

FAST_LASE = {"num_inference_steps": 1, "num_samples": 1}


class TextRecorder(ReconstructionPipeline):
    """Gray frames of 0.5; records the caption and the sensor size of the windows it is given."""

    name = "recorder"
    num_bins = None

    def __init__(self) -> None:
        self.seen: list[tuple[str | None, tuple[int, int]]] = []

    def reset(self) -> None:
        pass

    def iter_frames(self, windows, caption=None, progress=False):
        for window in windows:
            self.seen.append((caption, window.events.sensor_size))
            yield ReconstructedFrame(window, np.full(window.events.sensor_size, 0.5, np.float32))


class CountingCaption:
    """A caption source that numbers the recordings it captions and records the sensor it saw."""

    lookahead_s = 0.1

    def __init__(self) -> None:
        self.sensors: list[tuple[int, int]] = []

    def __call__(self, stored, first):
        self.sensors.append(first[0].events.sensor_size)
        return f"caption {len(self.sensors)}"


def test_a_colour_row_gets_one_caption_for_its_four_sites(color_dataset, tmp_path):
    specs = [SequenceSpec(path.stem, path, "colour") for path in sorted(color_dataset.glob("seq_*.h5"))[:2]]
    recorders: list[TextRecorder] = []
    source, given = CountingCaption(), []

    def factory() -> CaptionedPipeline:
        recorders.append(TextRecorder())
        return CaptionedPipeline(recorders[-1], source, on_caption=lambda stored, text: given.append(text))

    result = run_benchmark({"recorder [counted]": factory}, specs, tmp_path / "out", EvalConfig(metrics=("mse",)),
                           videos=False, progress=False)
    assert given == ["caption 1", "caption 2"]  # once per recording, not once per site
    assert source.sensors == [(90, 120), (90, 120)]  # the caption source sees the full sensor
    assert len(recorders) == 4  # the four sites, built once for both recordings
    for recorder in recorders:
        assert {size for _, size in recorder.seen} == {(45, 60)}  # a Bayer site's sub-sensor
        assert [text for text, _ in recorder.seen] == sorted(text for text, _ in recorder.seen)
        assert {text for text, _ in recorder.seen} == {"caption 1", "caption 2"}
    assert result.summary["scores"]["recorder [counted]"]["colour"]["num_frames"] > 0


def test_colour_lase_gets_the_automatic_caption(color_dataset, tiny_blip):
    path = color_dataset / "seq_00003.h5"
    stored = lase_e2v.reconstruct(path, method="firenet", window="ms:300")
    assert stored.frames.shape[1:] == (90, 120, 3) and stored.caption == open_events(path).caption

    auto = lase_e2v.reconstruct(path, method="lase", window="ms:300", caption="auto", captioner=tiny_blip, **FAST_LASE)
    reader = open_events(path)
    windows = parse_window_spec("ms:300").iter_windows(reader.iter_chunks())
    peer = load_method("firenet_plus", postprocess=True)  # gray, on all events at full resolution
    last = deque(peer.iter_frames(first_windows(windows, 1.0)), maxlen=1)[0].image
    expected = load_captioner(tiny_blip)([last])[0]
    assert last.shape == (90, 120) and auto.caption == expected and expected != reader.caption
    assert auto.frames.shape == (5, 90, 120, 3)
    prompted = lase_e2v.reconstruct(path, method="lase", window="ms:300", prompt=expected, **FAST_LASE)
    assert np.array_equal(auto.frames, prompted.frames)  # the text reached every site


@pytest.mark.slow
def test_colour_lase_frames_change_with_the_text(color_dataset):
    path = color_dataset / "seq_00003.h5"
    given = lase_e2v.reconstruct(path, method="lase", window="ms:300", caption="empty", **FAST_LASE)
    stored = lase_e2v.reconstruct(path, method="lase", window="ms:300", **FAST_LASE)
    assert given.caption == "" and stored.caption == open_events(path).caption
    assert not np.array_equal(given.frames, stored.frames)
