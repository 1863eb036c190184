"""What every reconstruction pipeline returns, and the streaming contract they share.

A pipeline is a callable: ``pipeline(events, windowing) -> ReconstructionOutput``, every frame in
memory (``N x H x W`` float32: 4.3 MB per second of 240x180 at 25 frames/s), for clips. For long
recordings use :meth:`ReconstructionPipeline.iter_recording` (or :meth:`~ReconstructionPipeline.iter_frames`
over windows), which yields one frame per window as it is made and holds only the model state, so
memory does not grow with the recording; the writers (:mod:`lase_e2v.pipelines.writers`) take such
a stream, and ``lase_e2v.reconstruct(..., output=path)`` joins the two.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from lase_e2v.errors import EventDataError
from lase_e2v.events.formats.base import EventReader
from lase_e2v.events.streams import EventStream
from lase_e2v.events.windows import FrameWindows, TimeWindows, Window, Windowing
from lase_e2v.pipelines.writers import real_time_fps


@dataclass
class ReconstructionOutput:
    """``frames``: ``(N, H, W)`` float32 in [0, 1] (``(N, H, W, 3)`` RGB in colour); ``timestamps_us``:
    ``(N,)`` int64, each frame's window end; ``caption``: the caption the pipeline was given (the
    recording's own, or a caption source's, see :mod:`lase_e2v.pipelines.captions`); text-conditioned
    pipelines read it unless their prompt is set."""

    frames: np.ndarray
    timestamps_us: np.ndarray
    caption: str | None = None

    @property
    def frames_per_second(self) -> float:
        """Playback rate that shows the recording in real time (25 for a single frame)."""
        return real_time_fps(self.timestamps_us)


@dataclass
class WrittenReconstruction:
    """What a reconstruction streamed to a file wrote: ``num_frames`` frames to ``path`` at ``fps``
    (video playback rate), RGB if ``color``, made with ``caption`` (as :attr:`ReconstructionOutput.caption`)."""

    path: Path
    num_frames: int
    caption: str | None
    fps: float
    color: bool = False


#: frames whose times give the playback rate of windows of N events, which have no fixed rate
RATE_SAMPLE_FRAMES = 25


def frames_for_playback_fps(windowing: Windowing) -> int:
    """How many first frames :func:`playback_fps` needs: none when ``windowing`` fixes the rate."""
    return 0 if isinstance(windowing, (TimeWindows, FrameWindows)) else RATE_SAMPLE_FRAMES


def playback_fps(windowing: Windowing, first_t_us: Sequence[int] = ()) -> float:
    """The video rate that shows the frames of ``windowing`` in real time, known before the video is
    opened (a video writer needs it up front): ``1 / window`` for time windows, the median APS frame
    interval for frame windows; windows of N events have no fixed rate, so the median interval of the
    first frames' times ``first_t_us`` (:data:`RATE_SAMPLE_FRAMES` of them; 25 without)."""
    if isinstance(windowing, TimeWindows):
        return 1e6 / windowing.window_us
    if isinstance(windowing, FrameWindows):
        return real_time_fps(np.asarray(windowing.frame_t_us[1:]))  # each frame's time: its window's end
    return real_time_fps(np.asarray(first_t_us))


@dataclass
class ReconstructedFrame:
    """One frame from :meth:`ReconstructionPipeline.iter_frames`: ``image`` ``(H, W)`` (``(H, W, 3)`` RGB
    in colour) float32 in [0, 1]."""

    window: Window
    image: np.ndarray


class ReconstructionPipeline(ABC):
    """Base of all reconstructors (classical, recurrent CNNs, LaSe-E2V): the contract the CLI, the API
    and the evaluation rely on, and nothing else.

    * :attr:`num_bins`: the voxel-grid bins the pipeline reads, or ``None`` if it reads raw events;
      the evaluation checks it against its protocol.
    * :meth:`reset`: forget everything about the previous recording, so that the object then behaves
      exactly like a freshly built one (recurrent state, previous frame, noise generator, estimate
      source).
    * :meth:`iter_frames`: one frame per window, in order; the recording's ``caption`` is an argument,
      never state, so nothing of one recording reaches the next.
    * ``pipeline(events, windowing)``: reset, then every window of the recording.
    """

    #: short name used by the CLI and in benchmark tables
    name: str = "base"

    @property
    @abstractmethod
    def num_bins(self) -> int | None:
        """Voxel-grid bins per window this pipeline reads; ``None`` if it does not use voxel grids."""

    @abstractmethod
    def reset(self) -> None:
        """Forget everything about the previous recording (call between recordings)."""

    @abstractmethod
    def iter_frames(
        self, windows: Iterable[Window], caption: str | None = None, progress: bool = False
    ) -> Iterator[ReconstructedFrame]:
        """Yield one reconstructed frame per window, in order, carrying state across windows.

        ``caption``: the recording's own description (:attr:`EventReader.caption`); text-conditioned
        pipelines use it when the user gave no prompt, the others ignore it.
        """

    def iter_recording(
        self, events: EventStream | EventReader, windowing: Windowing, progress: bool = False
    ) -> Iterator[ReconstructedFrame]:
        """Reset, then yield the frame of every window of ``events`` (a stream in memory or a chunked
        reader, whose caption is passed on) as it is made: memory does not grow with the recording.
        Raises :class:`EventDataError` if there is no window."""
        is_reader = isinstance(events, EventReader)
        windows = windowing.iter_windows(events.iter_chunks() if is_reader else [events])
        self.reset()
        made = 0
        for item in self.iter_frames(windows, caption=events.caption if is_reader else None, progress=progress):
            made += 1
            yield item
        if not made:
            raise EventDataError("no windows to reconstruct: the event stream is empty")

    def __call__(
        self,
        events: EventStream | EventReader,
        windowing: Windowing,
        progress: bool = False,
    ) -> ReconstructionOutput:
        """Every frame of ``events`` in memory (see :meth:`iter_recording`, which this collects)."""
        frames, stamps = [], []
        for item in self.iter_recording(events, windowing, progress):
            frames.append(item.image)
            stamps.append(item.window.t_end_us)
        caption = events.caption if isinstance(events, EventReader) else None
        return ReconstructionOutput(np.stack(frames, dtype=np.float32), np.asarray(stamps, dtype=np.int64), caption)
