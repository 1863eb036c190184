"""The event container every reader returns and every consumer takes.

Events are stored as four parallel numpy arrays (structure of arrays) because voxelization,
slicing and writing all work column-wise; :data:`EVENT_DTYPE` is the one structured dtype used
when a single array is wanted (``to_structured`` / ``from_structured``).

Units and conventions, the same everywhere in lase-e2v:

* ``t``: ``int64`` microseconds, non-decreasing;
* ``x``, ``y``: ``uint16`` pixel column and row, origin top-left;
* ``p``: ``int8`` polarity, ``+1`` = ON (brighter), ``-1`` = OFF (darker);
* ``sensor_size``: ``(height, width)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from lase_e2v.errors import EventDataError

EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "i1")])


def polarity_to_signed(p: np.ndarray) -> np.ndarray:
    """Map any polarity encoding ({0,1}, bool, {-1,+1}) to ``int8`` +1/-1 without touching the input."""
    p = np.asarray(p)
    if p.dtype == np.int8 and np.all((p == 1) | (p == -1)):
        return p
    signed = (p > 0).view(np.int8) * np.int8(2)  # int8 throughout: 60x faster than np.where's int64
    signed -= np.int8(1)
    return signed


@dataclass(frozen=True, eq=False)
class EventStream:
    """A time-sorted batch of events on a sensor of ``sensor_size = (height, width)``.

    Construction does not copy arrays that already have the right dtype; slicing returns views.
    Call :meth:`validate` (readers do) to check sortedness, non-negative time and bounds.
    """

    x: np.ndarray
    y: np.ndarray
    t: np.ndarray
    p: np.ndarray
    sensor_size: tuple[int, int]

    def __post_init__(self) -> None:
        object.__setattr__(self, "x", np.asarray(self.x, dtype=np.uint16))
        object.__setattr__(self, "y", np.asarray(self.y, dtype=np.uint16))
        object.__setattr__(self, "t", np.asarray(self.t, dtype=np.int64))
        object.__setattr__(self, "p", polarity_to_signed(self.p))
        object.__setattr__(self, "sensor_size", (int(self.sensor_size[0]), int(self.sensor_size[1])))
        n = len(self.t)
        if not (len(self.x) == len(self.y) == len(self.p) == n):
            raise EventDataError(
                f"event arrays differ in length: x {len(self.x)}, y {len(self.y)}, t {n}, p {len(self.p)}"
            )

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def empty(cls, sensor_size: tuple[int, int]) -> "EventStream":
        z = np.zeros(0)
        return cls(z, z, z, np.zeros(0, np.int8), sensor_size)

    @classmethod
    def from_structured(cls, events: np.ndarray, sensor_size: tuple[int, int]) -> "EventStream":
        """Build from any structured array with fields ``t, x, y, p`` (t in microseconds)."""
        names = events.dtype.names or ()
        missing = [k for k in ("t", "x", "y", "p") if k not in names]
        if missing:
            raise EventDataError(f"structured events lack field(s) {missing}; have {list(names)}")
        return cls(events["x"], events["y"], events["t"], events["p"], sensor_size)

    def to_structured(self) -> np.ndarray:
        out = np.empty(len(self), dtype=EVENT_DTYPE)
        out["t"], out["x"], out["y"], out["p"] = self.t, self.x, self.y, self.p
        return out

    # -- basic properties ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.t)

    @property
    def height(self) -> int:
        return self.sensor_size[0]

    @property
    def width(self) -> int:
        return self.sensor_size[1]

    @property
    def duration_us(self) -> int:
        return int(self.t[-1] - self.t[0]) if len(self) else 0

    def __repr__(self) -> str:
        span = f"{self.t[0]}..{self.t[-1]} us" if len(self) else "empty"
        return f"EventStream({len(self)} events, {span}, sensor {self.height}x{self.width})"

    # -- checks -------------------------------------------------------------------------------
    def validate(self, source: str = "events", index_offset: int = 0) -> "EventStream":
        """Raise :class:`EventDataError` on negative or decreasing timestamps or out-of-sensor pixels.

        ``index_offset`` makes the reported event index global when checking one chunk of a file.
        """
        if len(self) == 0:
            return self
        if self.t[0] < 0:
            raise EventDataError(f"{source}: negative timestamp {self.t[0]} us at event {index_offset}")
        decreasing = np.flatnonzero(np.diff(self.t) < 0)
        if decreasing.size:
            i = int(decreasing[0]) + 1
            raise EventDataError(
                f"{source}: timestamps decrease at event {index_offset + i} "
                f"({self.t[i - 1]} -> {self.t[i]} us)"
            )
        for name, coords, limit in (("x", self.x, self.width), ("y", self.y, self.height)):
            bad = np.flatnonzero(coords >= limit)
            if bad.size:
                i = int(bad[0])
                raise EventDataError(
                    f"{source}: {name}={coords[i]} at event {index_offset + i} is outside the "
                    f"{self.width}x{self.height} sensor"
                )
        return self

    # -- slicing ------------------------------------------------------------------------------
    def __getitem__(self, index: slice) -> "EventStream":
        """Index slicing (``stream[a:b]``) returns a view; only slices are supported."""
        if not isinstance(index, slice):
            raise TypeError("EventStream supports slice indexing only; use .time_slice for time")
        return EventStream(self.x[index], self.y[index], self.t[index], self.p[index], self.sensor_size)

    def time_slice(self, t_start_us: int, t_end_us: int) -> "EventStream":
        """Events with ``t_start_us <= t < t_end_us`` (a view, found by binary search)."""
        a, b = np.searchsorted(self.t, [t_start_us, t_end_us], side="left")
        return self[int(a) : int(b)]

    def with_sensor_size(self, sensor_size: tuple[int, int]) -> "EventStream":
        return EventStream(self.x, self.y, self.t, self.p, sensor_size)


def concatenate(streams: Sequence[EventStream] | Iterable[EventStream]) -> EventStream:
    """Join streams recorded on the same sensor, in order (copies, as concatenation must)."""
    streams = list(streams)
    if not streams:
        raise EventDataError("nothing to concatenate: no event streams given")
    sizes = {s.sensor_size for s in streams}
    if len(sizes) > 1:
        raise EventDataError(f"cannot concatenate streams of different sensor sizes {sorted(sizes)}")
    if len(streams) == 1:
        return streams[0]
    return EventStream(
        np.concatenate([s.x for s in streams]),
        np.concatenate([s.y for s in streams]),
        np.concatenate([s.t for s in streams]),
        np.concatenate([s.p for s in streams]),
        streams[0].sensor_size,
    )


@dataclass(frozen=True, eq=False)
class Frames:
    """Intensity (APS) frames: ``images`` of shape ``(N, H, W)``, or ``(N, H, W, 3)`` RGB from a colour
    camera, and their timestamps ``t_us`` (N,).

    ``images`` is ``uint8`` (0..255), ``uint16`` or float in [0, 1]; ``event_indices`` (optional, N)
    gives for each frame the index of the first event at or after it, as HQF/EVREAL store it.
    """

    images: np.ndarray
    t_us: np.ndarray
    event_indices: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "t_us", np.asarray(self.t_us, dtype=np.int64))
        rgb = self.images.ndim == 4 and self.images.shape[-1] == 3
        if not (self.images.ndim == 3 or rgb) or len(self.images) != len(self.t_us):
            raise EventDataError(
                f"frames: expected images (N, H, W) or (N, H, W, 3) with N timestamps, got {self.images.shape} "
                f"and {len(self.t_us)} timestamps"
            )
        if len(self.t_us) > 1 and np.any(np.diff(self.t_us) < 0):
            raise EventDataError("frames: timestamps decrease")

    def __len__(self) -> int:
        return len(self.t_us)

    @property
    def is_color(self) -> bool:
        """True for RGB frames ``(N, H, W, 3)``."""
        return self.images.ndim == 4

    def as_float(self) -> np.ndarray:
        """Images as float32 in [0, 1]."""
        if self.images.dtype == np.uint8:
            return self.images.astype(np.float32) / 255.0
        if self.images.dtype == np.uint16:
            return self.images.astype(np.float32) / 65535.0
        return self.images.astype(np.float32, copy=False)
