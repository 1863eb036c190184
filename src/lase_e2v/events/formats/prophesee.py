"""Prophesee RAW recordings, EVT 2.0 and EVT 3.0 (Metavision cameras).

A RAW file is an ASCII header of ``% key value`` lines followed by little-endian event words.
Decoding is done by evlib's Rust decoder (MIT): on the shared samples it gives exactly the
reference decodings (EVT 2.0: 539,481 events, all of t/x/y/p; EVT 3.0: 219,596 events with the
OpenEB timestamp rules, ``t = (time_high << 12) | time_low``), at several million events per second.
evlib decodes a whole file at once (no partial decoding API), so this reader holds the file's
events in memory and then hands them out in chunks: memory is bounded by the recording, not by
``chunk_events``. Timestamps are the camera's microseconds, not shifted.

Sensor size: the header's ``% geometry WxH`` or ``% format EVTx;height=H;width=W`` line, else the
smallest common sensor that fits the events (640x480 for Gen3 EVT 2.0, 1280x720 for Gen4 EVT 3.0
on the samples, which have no geometry line).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from lase_e2v.errors import EventFormatError
from lase_e2v.events.formats.base import EventReader, infer_sensor_size
from lase_e2v.events.streams import EventStream

_MAX_HEADER_BYTES = 1 << 16


def read_raw_header(head: bytes) -> dict[str, str]:
    """The ``% key value`` lines at the start of a RAW file as a dict (empty if none)."""
    header: dict[str, str] = {}
    for line in head[:_MAX_HEADER_BYTES].split(b"\n"):
        if not line.startswith(b"% "):
            break
        key, _, value = line[2:].decode("ascii", errors="replace").strip().partition(" ")
        if key == "end":
            break
        header[key] = value.strip()
    return header


def _raw_version(header: dict[str, str]) -> str | None:
    """``"2.0"``/``"3.0"`` from ``% evt 3.0`` or ``% format EVT3;...``."""
    if "evt" in header:
        return header["evt"]
    match = re.match(r"EVT(\d)", header.get("format", ""))
    return f"{match.group(1)}.0" if match else None


def _geometry(header: dict[str, str]) -> tuple[int, int] | None:
    """``(height, width)`` from the header, if it says."""
    match = re.fullmatch(r"(\d+)x(\d+)", header.get("geometry", ""))
    if match:
        return int(match.group(2)), int(match.group(1))
    fields = dict(f.split("=", 1) for f in header.get("format", "").split(";") if "=" in f)
    if "width" in fields and "height" in fields:
        return int(fields["height"]), int(fields["width"])
    return None


class _PropheseeRawReader(EventReader):
    """Shared reader; subclasses fix the EVT version they accept."""

    evt_version: ClassVar[str]
    extensions = (".raw",)

    def __init__(self, path: str | Path, sensor_size: tuple[int, int] | None = None) -> None:
        super().__init__(path, sensor_size)
        with open(self.path, "rb") as handle:
            self.header = read_raw_header(handle.read(_MAX_HEADER_BYTES))
        version = _raw_version(self.header)
        if version != self.evt_version:
            found = f"EVT {version}" if version else "no '% evt' line"
            raise EventFormatError(f"{self.path}: header says {found}; expected EVT {self.evt_version}")
        self._events: EventStream | None = None

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        return _raw_version(read_raw_header(head)) == cls.evt_version

    def _decoded(self) -> EventStream:
        if self._events is None:
            from evlib import formats

            try:
                frame = formats.load_events(str(self.path)).collect()
            except (OSError, RuntimeError, ValueError) as error:
                raise EventFormatError(
                    f"{self.path}: cannot decode EVT {self.evt_version} ({error})"
                ) from None
            x, y = frame["x"].to_numpy(), frame["y"].to_numpy()
            t = frame["t"].dt.total_microseconds().to_numpy()
            size = self._sensor_size_override or _geometry(self.header)
            if size is None:
                size = infer_sensor_size(int(x.max(initial=0)), int(y.max(initial=0)))
            self._events = EventStream(x, y, t, frame["polarity"].to_numpy(), size)
            self.num_events = len(self._events)
        return self._events

    @property
    def sensor_size(self) -> tuple[int, int]:
        return self._sensor_size_override or _geometry(self.header) or self._decoded().sensor_size

    def _iter_raw(self, chunk_events: int) -> Iterator[EventStream]:
        events = self._decoded()
        for start in range(0, len(events), chunk_events):
            yield events[start : start + chunk_events]


class Evt2Reader(_PropheseeRawReader):
    """Prophesee RAW, EVT 2.0 (32-bit words; Gen3 sensors)."""

    format_name = "evt2"
    evt_version = "2.0"


class Evt3Reader(_PropheseeRawReader):
    """Prophesee RAW, EVT 3.0 (16-bit vectorized words; Gen4 / IMX636 sensors)."""

    format_name = "evt3"
    evt_version = "3.0"
