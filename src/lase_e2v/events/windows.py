"""Windowing: cut an event stream into the slices a reconstructor consumes.

Three windowings, frozen dataclasses on one protocol (after tonic's slicers): each computes
``(t_start_us, t_end_us)`` boundaries and :func:`iter_windows` applies them lazily to a chunked
reader, so a recording larger than memory is windowed with bounded memory (one window plus one
chunk held at a time).

* :class:`TimeWindows` — fixed duration;
* :class:`CountWindows` — fixed number of events;
* :class:`FrameWindows` — between consecutive APS frame timestamps (the EVREAL protocol: the
  reconstruction made from window ``i`` is compared with the frame at its end).

Windows are half-open, ``t_start_us <= t < t_end_us``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, NamedTuple, Protocol

import numpy as np

from lase_e2v.errors import ConfigError, EventDataError, quoted
from lase_e2v.events.streams import EventStream, concatenate


class Window(NamedTuple):
    """One window: its events and its time span (``t_end_us`` is where its reconstruction lives)."""

    index: int
    t_start_us: int
    t_end_us: int
    events: EventStream


class Windowing(Protocol):
    def iter_windows(self, chunks: Iterable[EventStream]) -> Iterator[Window]: ...


def _buffered(chunks: Iterable[EventStream]) -> Iterator[EventStream]:
    """Skip empty chunks (readers may yield them) so the windowers need not check."""
    for chunk in chunks:
        if len(chunk):
            yield chunk


@dataclass(frozen=True)
class TimeWindows:
    """Windows of ``window_us`` microseconds starting at ``t_start_us`` (default: first event)."""

    window_us: int
    t_start_us: int | None = None
    skip_empty: bool = False

    def __post_init__(self) -> None:
        if self.window_us <= 0:
            raise ConfigError(f"window duration must be > 0 us, got {self.window_us}")

    def iter_windows(self, chunks: Iterable[EventStream]) -> Iterator[Window]:
        buffer: EventStream | None = None
        start = self.t_start_us
        index = 0
        for chunk in _buffered(chunks):
            buffer = chunk if buffer is None else concatenate([buffer, chunk])
            if start is None:
                start = int(buffer.t[0])
            last_t = int(buffer.t[-1])
            # emit every window that ends at or before the newest timestamp seen
            while start + self.window_us <= last_t:
                end = start + self.window_us
                cut = int(np.searchsorted(buffer.t, end, side="left"))
                window_events = buffer[:cut]
                if len(window_events) or not self.skip_empty:
                    yield Window(index, start, end, window_events)
                    index += 1
                buffer = buffer[cut:]
                start = end
        if buffer is not None and len(buffer):
            yield Window(index, start, start + self.window_us, buffer)


@dataclass(frozen=True)
class CountWindows:
    """Windows of ``num_events`` events each; the last, shorter window is kept if ``keep_last``."""

    num_events: int
    keep_last: bool = True

    def __post_init__(self) -> None:
        if self.num_events <= 0:
            raise ConfigError(f"events per window must be > 0, got {self.num_events}")

    def iter_windows(self, chunks: Iterable[EventStream]) -> Iterator[Window]:
        buffer: EventStream | None = None
        index = 0
        for chunk in _buffered(chunks):
            buffer = chunk if buffer is None else concatenate([buffer, chunk])
            while len(buffer) >= self.num_events:
                window_events = buffer[: self.num_events]
                buffer = buffer[self.num_events :]
                end = int(buffer.t[0]) if len(buffer) else int(window_events.t[-1]) + 1
                yield Window(index, int(window_events.t[0]), end, window_events)
                index += 1
        if self.keep_last and buffer is not None and len(buffer):
            yield Window(index, int(buffer.t[0]), int(buffer.t[-1]) + 1, buffer)


@dataclass(frozen=True)
class FrameWindows:
    """Windows between consecutive frame timestamps ``frame_t_us`` (N frames give N-1 windows).

    Window ``i`` spans ``[frame_t_us[i], frame_t_us[i+1])`` and is paired with frame ``i+1``.
    """

    frame_t_us: tuple[int, ...]

    def __post_init__(self) -> None:
        ts = np.asarray(self.frame_t_us, dtype=np.int64)
        if len(ts) < 2:
            raise EventDataError(f"frame windows need at least 2 frame timestamps, got {len(ts)}")
        if np.any(np.diff(ts) <= 0):
            raise EventDataError("frame windows: frame timestamps must be strictly increasing")
        object.__setattr__(self, "frame_t_us", tuple(int(v) for v in ts))

    def iter_windows(self, chunks: Iterable[EventStream]) -> Iterator[Window]:
        bounds = self.frame_t_us
        buffer: EventStream | None = None
        index = 0  # window index; window i ends at bounds[i + 1]
        for chunk in _buffered(chunks):
            buffer = chunk if buffer is None else concatenate([buffer, chunk])
            # drop events before the first frame
            if index == 0:
                buffer = buffer[int(np.searchsorted(buffer.t, bounds[0], side="left")) :]
            while index < len(bounds) - 1 and len(buffer) and bounds[index + 1] <= int(buffer.t[-1]):
                cut = int(np.searchsorted(buffer.t, bounds[index + 1], side="left"))
                yield Window(index, bounds[index], bounds[index + 1], buffer[:cut])
                buffer = buffer[cut:]
                index += 1
            if index >= len(bounds) - 1:
                return
        # the stream ended: the remaining windows get whatever events are left (possibly none)
        while index < len(bounds) - 1:
            rest = buffer if buffer is not None else None
            if rest is not None:
                cut = int(np.searchsorted(rest.t, bounds[index + 1], side="left"))
                window_events, buffer = rest[:cut], rest[cut:]
            else:
                raise EventDataError("frame windows: the event stream is empty")
            yield Window(index, bounds[index], bounds[index + 1], window_events)
            index += 1


def parse_window_spec(spec: str, frame_t_us: np.ndarray | None = None) -> Windowing:
    """Parse the CLI's ``--window``: ``frames``, ``events:N`` or ``ms:T``."""
    kind, _, value = spec.partition(":")
    try:
        if kind == "frames" and not value:
            if frame_t_us is None or len(frame_t_us) < 2:
                raise ConfigError("--window frames needs a recording with at least 2 APS frames")
            return FrameWindows(tuple(frame_t_us))
        if kind == "events":
            return CountWindows(int(value))
        if kind == "ms":
            return TimeWindows(int(round(float(value) * 1000)))
    except ValueError:
        pass
    raise ConfigError(f"window spec {quoted(spec)} not understood; use frames, events:N or ms:T")
