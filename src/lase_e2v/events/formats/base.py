"""What every reader is: an :class:`EventReader` that streams validated chunks.

A reader opens a file lazily and yields :class:`~lase_e2v.events.streams.EventStream` chunks of
bounded size, so any recording can be processed in bounded memory. The base class checks each
chunk (sortedness across chunk borders too, bounds, negative time) with the global event index in
the message, so every format reports bad data the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import ClassVar, TypeVar

import numpy as np

from lase_e2v.errors import EventDataError, EventFormatError
from lase_e2v.events.streams import EventStream, Frames, concatenate

#: events per chunk a reader yields, about 3.3 MB (13 bytes an event): a windowing holds a chunk and
#: the rest of the one before, so this bounds what reading adds to a run's memory. With 1 M events the
#: peak of ``reconstruct --method integrate`` grew from 453 MB on slider_depth (1.08 M events) to 501 MB
#: on it repeated 10 times, as whole chunks came to be held two at a time; with 250 k, 442 -> 454 MB.
#: Reading slider_depth's text took the same 0.1 s with either.
DEFAULT_CHUNK_EVENTS = 250_000
#: events per chunk of :meth:`EventReader.read`, which keeps every event
READ_CHUNK_EVENTS = 4_000_000
T = TypeVar("T")


class EventReader(ABC):
    """Base of all readers. Subclasses set ``format_name``/``extensions`` and implement ``_iter_raw``.

    Attributes:
        path: the file or folder read.
        sensor_size: ``(height, width)``.
        num_events: total event count if the format tells it cheaply, else ``None``.
    """

    format_name: ClassVar[str]
    extensions: ClassVar[tuple[str, ...]] = ()

    def __init__(self, path: str | Path, sensor_size: tuple[int, int] | None = None) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise EventFormatError(f"{self.path}: no such file or folder")
        self._sensor_size_override = sensor_size
        self.num_events: int | None = None

    # -- to implement -------------------------------------------------------------------------
    @property
    @abstractmethod
    def sensor_size(self) -> tuple[int, int]:
        """``(height, width)`` of the sensor."""

    @abstractmethod
    def _iter_raw(self, chunk_events: int) -> Iterator[EventStream]:
        """Yield unvalidated chunks of at most about ``chunk_events`` events, in file order."""

    def read_frames(self) -> Frames | None:
        """APS frames with timestamps, or ``None`` if the format/file has none."""
        return None

    def read_frame_times(self) -> np.ndarray | None:
        """Timestamps (int64 us) of the APS frames, or ``None``: what frame windows need. Formats that
        store the times apart from the images override this, so that windowing an hour-long recording
        does not read its frames into memory."""
        frames = self.read_frames()
        return None if frames is None else frames.t_us

    @property
    def caption(self) -> str | None:
        """A plain-words description of the scene stored with the recording (LaSe-E2V's default
        prompt), or ``None``."""
        return None

    @property
    def color_filter(self) -> str | None:
        """The Bayer pattern of a colour event camera (``"RGGB"``..., :mod:`lase_e2v.events.color`) when
        the file says it is one, else ``None`` (grey, or not stated)."""
        return None

    @property
    def streams(self) -> dict[str, str]:
        """Which streams of a multi-stream file were chosen (e.g. ROS topics), for ``info``."""
        return {}

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        """True if the first bytes (or folder layout) look like this format."""
        return False

    # -- shared behaviour ---------------------------------------------------------------------
    def iter_chunks(self, chunk_events: int = DEFAULT_CHUNK_EVENTS) -> Iterator[EventStream]:
        """Validated chunks; raises :class:`EventDataError` on the first bad event."""
        return validated_chunks(self._iter_raw(chunk_events), str(self.path))

    def read(self) -> EventStream:
        """All events in memory (use :meth:`iter_chunks` for files larger than memory), read in chunks
        of :data:`READ_CHUNK_EVENTS`: all of them are kept anyway, and fewer chunks are fewer to join."""
        chunks = list(self.iter_chunks(READ_CHUNK_EVENTS))
        if not chunks:
            return EventStream.empty(self.sensor_size)
        return concatenate(chunks)

    def __repr__(self) -> str:
        return f"{type(self).__name__}('{self.path}', sensor {self.sensor_size})"


def group_packets(
    packets: Iterable[T], chunk_events: int, length: Callable[[T], int] = len
) -> Iterator[list[T]]:
    """Consecutive packets (of ``length(packet)`` events each) in groups of at least ``chunk_events``
    events, the last group maybe fewer: how packet-based formats make their chunks."""
    group: list[T] = []
    count = 0
    for packet in packets:
        group.append(packet)
        count += length(packet)
        if count >= chunk_events:
            yield group
            group, count = [], 0
    if group:
        yield group


class ChunkValidator:
    """Checks consecutive chunks of one stream: bounds, negative time, and time decreasing within a
    chunk or across chunk borders, with the global event index and ``source`` in the error."""

    def __init__(self, source: str) -> None:
        self.source, self.seen, self.last_t = source, 0, None

    def __call__(self, chunk: EventStream) -> EventStream:
        chunk.validate(self.source, index_offset=self.seen)
        if len(chunk):
            if self.last_t is not None and chunk.t[0] < self.last_t:
                raise EventDataError(f"{self.source}: timestamps decrease at event {self.seen} "
                                     f"({self.last_t} -> {chunk.t[0]} us)")
            self.last_t = int(chunk.t[-1])
            self.seen += len(chunk)
        return chunk


def validated_chunks(chunks: Iterable[EventStream], source: str) -> Iterator[EventStream]:
    """``chunks`` without empty ones, each checked by one :class:`ChunkValidator`."""
    check = ChunkValidator(source)
    return (check(chunk) for chunk in chunks if len(chunk))


def check_sensor_size(size: tuple[int, int] | None, source: Path) -> tuple[int, int]:
    if size is None:
        raise EventFormatError(f"{source}: sensor size unknown; pass sensor_size=(height, width)")
    h, w = int(size[0]), int(size[1])
    if h <= 0 or w <= 0:
        raise EventFormatError(f"{source}: invalid sensor size {h}x{w}")
    return h, w


def infer_sensor_size(x_max: int, y_max: int) -> tuple[int, int]:
    """Fallback when a file states no resolution: the smallest common sensor that fits, else max+1."""
    for h, w in ((180, 240), (260, 346), (240, 320), (480, 640), (720, 1280)):
        if x_max < w and y_max < h:
            return h, w
    return int(y_max) + 1, int(x_max) + 1


_LUMA = np.array([0.299, 0.587, 0.114])


def to_gray(pixels: np.ndarray) -> np.ndarray:
    """``(H, W)``, ``(H, W, 1)`` or colour ``(H, W, 3|4)`` pixels -> ``(H, W)`` of the same dtype.

    Colour becomes ITU-R 601 luma (rounded), as PIL's ``convert("L")`` does; alpha is ignored.
    """
    if pixels.ndim == 2:
        return pixels
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        return pixels[..., 0]
    luma = np.rint(pixels[..., :3].astype(np.float64) @ _LUMA)
    return luma.astype(pixels.dtype)


def as_microseconds(seconds: np.ndarray) -> np.ndarray:
    """Float seconds -> int64 microseconds, rounded to nearest (text files store 1e-9 s digits)."""
    return np.rint(np.asarray(seconds, dtype=np.float64) * 1e6).astype(np.int64)


def iter_event_chunks(events: EventStream | Iterable[EventStream]) -> Iterator[EventStream]:
    """What writers take: one :class:`EventStream` or an iterable of chunks (e.g. ``reader.iter_chunks()``).

    Yields at least one chunk (maybe empty), so a writer always learns the sensor size.
    """
    if isinstance(events, EventStream):
        yield events
        return
    any_chunk = False
    for chunk in events:
        any_chunk = True
        yield chunk
    if not any_chunk:
        raise EventDataError("nothing to write: the event chunk iterator is empty")
