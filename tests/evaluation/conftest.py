"""Fakes for the evaluation tests: reconstructors that need no model."""

from __future__ import annotations

import numpy as np
import pytest

from lase_e2v.events.streams import Frames
from lase_e2v.pipelines.output import ReconstructedFrame, ReconstructionPipeline


class ApsPipeline(ReconstructionPipeline):
    """'Reconstructs' each window as the APS frame at its end: a perfect method."""

    name = "aps"
    num_bins = None

    def __init__(self, frames: Frames) -> None:
        self.frames = frames
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    def iter_frames(self, windows, caption=None, progress=False):
        by_time = {int(t): i for i, t in enumerate(self.frames.t_us)}
        for window in windows:
            image = self.frames.images[by_time[window.t_end_us]].astype(np.float32) / 255.0
            yield ReconstructedFrame(window, image)


class ConstantPipeline(ReconstructionPipeline):
    """Every frame is one gray ``value`` (may lie outside [0, 1] to exercise clipping)."""

    name = "constant"

    def __init__(self, shape: tuple[int, int], value: float = 0.5, num_bins: int | None = None) -> None:
        self.shape, self.value, self.bins = shape, value, num_bins

    @property
    def num_bins(self) -> int | None:
        return self.bins

    def reset(self) -> None:
        pass

    def iter_frames(self, windows, caption=None, progress=False):
        for window in windows:
            yield ReconstructedFrame(window, np.full(self.shape, self.value, np.float32))


@pytest.fixture(scope="session")
def fakes():
    return {"aps": ApsPipeline, "constant": ConstantPipeline}
