"""Fakes for the evaluation tests: reconstructors that need no model, and a tiny synthetic recording."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lase_e2v.events.formats import write_events
from lase_e2v.events.streams import EventStream, Frames
from lase_e2v.pipelines.output import ReconstructedFrame, ReconstructionPipeline


class ApsPipeline(ReconstructionPipeline):
    """'Reconstructs' each window as the APS frame at its end: a perfect method."""

    name = "aps"

    def __init__(self, frames: Frames) -> None:
        self.frames = frames
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    def iter_frames(self, windows, progress=False):
        by_time = {int(t): i for i, t in enumerate(self.frames.t_us)}
        for window in windows:
            image = self.frames.images[by_time[window.t_end_us]].astype(np.float32) / 255.0
            yield ReconstructedFrame(window, image)


class ConstantPipeline(ReconstructionPipeline):
    """Every frame is one gray ``value`` (may lie outside [0, 1] to exercise clipping)."""

    name = "constant"

    def __init__(self, shape: tuple[int, int], value: float = 0.5, num_bins: int | None = None) -> None:
        self.shape, self.value = shape, value
        if num_bins is not None:
            self.num_bins = num_bins

    def reset(self) -> None:
        pass

    def iter_frames(self, windows, progress=False):
        for window in windows:
            yield ReconstructedFrame(window, np.full(self.shape, self.value, np.float32))


@pytest.fixture(scope="session")
def fakes():
    return {"aps": ApsPipeline, "constant": ConstantPipeline}


SYNTHETIC_FRAME_T_US = np.array([0, 10_000, 20_000, 30_000, 40_000, 50_000])


def synthetic_recording() -> tuple[EventStream, Frames]:
    """32x32 sensor, 6 frames 10 ms apart, a bright square moving 2 px per frame.

    Events fire only in columns 0..15; in the window ending at frame 3 (30 ms) the last event is at
    27 ms, 3 ms before the frame, so the 1 ms timestamp tolerance leaves that frame unscored.
    """
    rng = np.random.default_rng(0)
    images = np.full((6, 32, 32), 40, np.uint8)
    for k in range(6):
        images[k, 8:20, 2 + 2 * k : 14 + 2 * k] = 200
    ts, xs, ys = [], [], []
    for k in range(5):
        start = k * 10_000
        end = start + (7_000 if k == 2 else 9_950)
        n = 50
        ts.append(np.sort(rng.integers(start, end, n)))
        xs.append(rng.integers(0, 16, n))
        ys.append(rng.integers(0, 32, n))
    t = np.concatenate(ts)
    events = EventStream(
        np.concatenate(xs), np.concatenate(ys), t, np.where(np.arange(len(t)) % 2, 1, -1), (32, 32)
    )
    return events, Frames(images, SYNTHETIC_FRAME_T_US.copy())


@pytest.fixture(scope="session")
def synthetic_sequence(tmp_path_factory) -> Path:
    """The synthetic recording written as an HQF-layout HDF5 file."""
    events, frames = synthetic_recording()
    path = tmp_path_factory.mktemp("synthetic") / "moving_square.h5"
    write_events(path, events, frames)
    return path


@pytest.fixture(scope="session")
def synthetic_frames() -> Frames:
    return synthetic_recording()[1]
