"""What every reconstruction pipeline returns, and the streaming contract they share.

A pipeline is a callable: ``pipeline(events, windowing) -> ReconstructionOutput``. For long
recordings use :meth:`ReconstructionPipeline.iter_frames`, which yields one frame per window and
holds only the model state, so memory does not grow with the recording.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from lase_e2v.errors import EventDataError
from lase_e2v.events.formats.base import EventReader
from lase_e2v.events.streams import EventStream
from lase_e2v.events.windows import Window, Windowing
from lase_e2v.pipelines.writers import real_time_fps


@dataclass
class ReconstructionOutput:
    """``frames``: ``(N, H, W)`` float32 in [0, 1]; ``timestamps_us``: ``(N,)`` int64, each frame's window end;
    ``caption``: the caption the pipeline was given (the recording's own, or a caption source's, see
    :mod:`lase_e2v.pipelines.captions`); text-conditioned pipelines read it unless their prompt is set."""

    frames: np.ndarray
    timestamps_us: np.ndarray
    caption: str | None = None

    @property
    def frames_per_second(self) -> float:
        """Playback rate that shows the recording in real time (25 for a single frame)."""
        return real_time_fps(self.timestamps_us)


@dataclass
class ReconstructedFrame:
    """One frame from :meth:`ReconstructionPipeline.iter_frames`: ``image`` ``(H, W)`` float32 in [0, 1]."""

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

    def __call__(
        self,
        events: EventStream | EventReader,
        windowing: Windowing,
        progress: bool = False,
    ) -> ReconstructionOutput:
        """Reconstruct every window of ``events`` (a stream in memory or a chunked reader, whose
        caption is passed on)."""
        is_reader = isinstance(events, EventReader)
        chunks = events.iter_chunks() if is_reader else [events]
        caption = events.caption if is_reader else None
        self.reset()
        frames, stamps = [], []
        for item in self.iter_frames(windowing.iter_windows(chunks), caption=caption, progress=progress):
            frames.append(item.image)
            stamps.append(item.window.t_end_us)
        if not frames:
            raise EventDataError("no windows to reconstruct: the event stream is empty")
        return ReconstructionOutput(np.stack(frames).astype(np.float32), np.asarray(stamps, dtype=np.int64), caption)
