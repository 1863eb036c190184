"""iniVation AEDAT 4 recordings (DAVIS / DVXplorer): events and APS frames.

Decoded with the ``aedat`` package (MIT, Rust; ``aedat.Decoder``), which yields one packet at a
time, so events stream in bounded memory. Chosen over evlib, which decodes AEDAT 4 events as well
(same 111,954 / 323,963 events on the shared recordings) but returns the whole file at once and
no frames; over dv-processing, which is not installed and needs the same packets.

Timestamps stay as the file has them: absolute microseconds (Unix time). The first ``events``
stream is read; its ``width``/``height`` give the sensor size (else the first frame stream's).
Frames: gray 8-bit (``L``) and 16-bit (``I;16``) pixels are kept as they are (uint8/uint16); colour
frames become gray with ITU-R 601 luma weights, as PIL's ``convert("L")`` does. Frames of a format
``aedat`` cannot decode are skipped with its warning. Frame time is the packet's ``t``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lase_e2v.errors import EventFormatError
from lase_e2v.events.formats.base import EventReader, group_packets, to_gray
from lase_e2v.events.streams import EventStream, Frames

AEDAT4_SIGNATURE = b"#!AER-DAT4.0"


def _decoder(path: Path):
    import aedat

    try:
        return aedat.Decoder(str(path))
    except (RuntimeError, OSError, ValueError) as error:
        raise EventFormatError(f"{path}: not a readable AEDAT 4 file ({error})") from None


class Aedat4Reader(EventReader):
    """Reader of ``.aedat4`` files: chunks of whole packets, plus the APS frames."""

    format_name = "aedat4"
    extensions = (".aedat4",)

    def __init__(self, path: str | Path, sensor_size: tuple[int, int] | None = None) -> None:
        super().__init__(path, sensor_size)
        streams = _decoder(self.path).id_to_stream()
        self._event_stream = next((i for i, s in sorted(streams.items()) if s["type"] == "events"), None)
        sized = [s for _, s in sorted(streams.items()) if s["type"] in ("events", "frame")]
        self._stated_size = (int(sized[0]["height"]), int(sized[0]["width"])) if sized else None

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        return head.startswith(AEDAT4_SIGNATURE)

    @property
    def sensor_size(self) -> tuple[int, int]:
        if self._sensor_size_override is not None:
            return self._sensor_size_override
        if self._stated_size is None:
            raise EventFormatError(f"{self.path}: no event or frame stream states a size; pass sensor_size")
        return self._stated_size

    def _packets(self) -> Iterator[dict]:
        try:
            yield from _decoder(self.path)
        except (RuntimeError, OSError, ValueError) as error:
            raise EventFormatError(f"{self.path}: corrupt AEDAT 4 packet ({error})") from None

    def _iter_raw(self, chunk_events: int) -> Iterator[EventStream]:
        if self._event_stream is None:
            return
        size = self.sensor_size
        packets = (p["events"] for p in self._packets() if p["stream_id"] == self._event_stream and "events" in p)
        for group in group_packets(packets, chunk_events):
            yield self._to_stream(group, size)

    @staticmethod
    def _to_stream(packets: list[np.ndarray], sensor_size: tuple[int, int]) -> EventStream:
        events = np.concatenate(packets)
        t = events["t"]
        if len(t) and t.max() > np.iinfo(np.int64).max:
            raise EventFormatError("AEDAT 4 timestamp does not fit int64 microseconds")
        return EventStream(events["x"], events["y"], t.astype(np.int64), events["on"], sensor_size)

    def read_frames(self) -> Frames | None:
        images, stamps = [], []
        for packet in self._packets():
            frame = packet.get("frame")
            if frame is not None:
                images.append(to_gray(np.asarray(frame["pixels"])))
                stamps.append(int(frame["t"]))
        if not images:
            return None
        if len({image.shape for image in images}) > 1:
            raise EventFormatError(f"{self.path}: APS frames differ in size")
        return Frames(np.stack(images), np.array(stamps, dtype=np.int64))

    def read_frame_times(self) -> np.ndarray | None:
        """The frame packets' ``t`` alone: each frame is decoded (the file interleaves them with the
        events) but none is kept."""
        stamps = [int(packet["frame"]["t"]) for packet in self._packets() if packet.get("frame") is not None]
        return np.array(stamps, dtype=np.int64) if stamps else None
