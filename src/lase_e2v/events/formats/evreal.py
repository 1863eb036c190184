"""EVREAL numpy folders: the memory-mapped layout EVREAL's ``MemMapDataset`` reads.

::

    events_ts.npy            (N,) or (N, 1) float64 seconds
    events_xy.npy            (N, 2) int16 columns x, y
    events_p.npy             (N,) or (N, 1) {0, 1} (or {-1, +1})
    images.npy               (M, H, W) uint8 APS frames (optional; (M, H, W, 1) accepted; RGB (M, H, W, 3))
    images_ts.npy            (M,) or (M, 1) float64 seconds
    image_event_indices.npy  (M,) or (M, 1) int64 event index per frame
    metadata.json            {"sensor_resolution": [H, W], ...}

Event arrays are memory-mapped, so a chunk read touches only its own pages, and the pages read are
given back to the system after each chunk (they would otherwise stay in the process's resident
memory while the file is mapped: one pass over a folder of 10 M events grew a reconstruction's peak
by 135 MB). The writer
appends chunk by chunk to ``.npy`` files whose fixed-size header is rewritten with the final
length at the end, so converting a large recording needs no more memory than one chunk.
"""

from __future__ import annotations

import json
import mmap
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO

import numpy as np

from lase_e2v.atomic import atomic_path
from lase_e2v.errors import EventDataError, EventFormatError
from lase_e2v.events.color import check_pattern, stated_pattern
from lase_e2v.events.formats.base import EventReader, as_microseconds, infer_sensor_size, iter_event_chunks
from lase_e2v.events.streams import EventStream, Frames

_EVENT_FILES = ("events_ts.npy", "events_xy.npy", "events_p.npy")
_NPY_HEADER_BYTES = 128  # magic (6) + version (2) + length (2) + padded dict; room for any shape


def _load(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise EventFormatError(f"{path}: not a readable .npy array ({str(error).splitlines()[0]})") from None


def _map(path: Path) -> tuple[np.ndarray, mmap.mmap]:
    """The array of a ``.npy`` file on a read-only memory map of its own (whose pages can be given
    back, :func:`_release`), and that map; numpy reads the header."""
    header = _load(path)
    with open(path, "rb") as file:
        mapping = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    order = "F" if header.flags.f_contiguous and not header.flags.c_contiguous else "C"
    return np.ndarray(header.shape, header.dtype, buffer=mapping, offset=header.offset, order=order), mapping


def _release(mapping: mmap.mmap) -> None:
    """Drop the pages of ``mapping`` from this process's resident memory (they stay in the page cache
    and are read again if touched); nothing where ``madvise`` is missing (Windows)."""
    if hasattr(mapping, "madvise"):
        mapping.madvise(mmap.MADV_DONTNEED)


def _column(array: np.ndarray, path: Path) -> np.ndarray:
    """(N,) or (N, 1) -> (N,) view."""
    if array.ndim == 2 and array.shape[1] == 1:
        return array[:, 0]
    if array.ndim != 1:
        raise EventFormatError(f"{path}: expected shape (N,) or (N, 1), got {array.shape}")
    return array


class EvrealReader(EventReader):
    """Reader of an EVREAL folder; events and frames are memory-mapped."""

    format_name = "evreal"
    extensions = ()

    def __init__(self, path: str | Path, sensor_size: tuple[int, int] | None = None) -> None:
        super().__init__(path, sensor_size)
        missing = [name for name in _EVENT_FILES if not (self.path / name).is_file()]
        if missing:
            raise EventFormatError(f"{self.path}: EVREAL folder lacks {', '.join(missing)}")
        (t, t_map), (self._xy, xy_map), (p, p_map) = (_map(self.path / name) for name in _EVENT_FILES)
        self._maps = (t_map, xy_map, p_map)
        self._t = _column(t, self.path / "events_ts.npy")
        self._p = _column(p, self.path / "events_p.npy")
        if self._xy.ndim != 2 or self._xy.shape[1] != 2:
            raise EventFormatError(
                f"{self.path / 'events_xy.npy'}: expected shape (N, 2), got {self._xy.shape}"
            )
        lengths = {len(self._t), len(self._xy), len(self._p)}
        if len(lengths) > 1:
            raise EventFormatError(f"{self.path}: event arrays differ in length {sorted(lengths)}")
        self.num_events = len(self._t)
        self.metadata = self._read_metadata()
        self._inferred_size: tuple[int, int] | None = None

    def _read_metadata(self) -> dict:
        path = self.path / "metadata.json"
        if not path.is_file():
            return {}
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise EventFormatError(f"{path}: invalid JSON ({error})") from None

    @property
    def sensor_size(self) -> tuple[int, int]:
        if self._sensor_size_override is not None:
            return self._sensor_size_override
        if "sensor_resolution" in self.metadata:
            height, width = self.metadata["sensor_resolution"][:2]
            return int(height), int(width)
        if self._inferred_size is None:
            maxima = self._xy.max(axis=0) if self.num_events else (0, 0)
            _release(self._maps[1])
            self._inferred_size = infer_sensor_size(int(maxima[0]), int(maxima[1]))
        return self._inferred_size

    @property
    def color_filter(self) -> str | None:
        """``color_filter`` of ``metadata.json`` (written by :func:`write_evreal` for colour recordings)."""
        return stated_pattern(self.metadata.get("color_filter"), self.path / "metadata.json")

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        return path.is_dir() and (path / "events_ts.npy").is_file()

    def _iter_raw(self, chunk_events: int) -> Iterator[EventStream]:
        size = self.sensor_size
        seconds = np.issubdtype(self._t.dtype, np.floating)
        for start in range(0, self.num_events, chunk_events):
            stop = start + chunk_events
            t = self._t[start:stop]
            xy = np.asarray(self._xy[start:stop])
            t_us = as_microseconds(t) if seconds else np.asarray(t, dtype=np.int64)
            chunk = EventStream(xy[:, 0], xy[:, 1], t_us, self._p[start:stop], size)
            for mapping in self._maps:
                _release(mapping)
            yield chunk

    def read_frames(self) -> Frames | None:
        t_us = self.read_frame_times()
        if t_us is None:
            return None
        images = np.asarray(_load(self.path / "images.npy"))
        if images.ndim == 4 and images.shape[-1] == 1:
            images = images[..., 0]
        indices = None
        if (self.path / "image_event_indices.npy").is_file():
            indices = np.asarray(_load(self.path / "image_event_indices.npy")).reshape(len(t_us), -1)[:, 0]
        return Frames(images, t_us, indices)

    def read_frame_times(self) -> np.ndarray | None:
        """``images_ts.npy`` alone: ``images.npy`` is not read."""
        if not (self.path / "images.npy").is_file():
            return None
        if not (self.path / "images_ts.npy").is_file():
            raise EventFormatError(f"{self.path}: images.npy without images_ts.npy")
        stamps = _column(np.asarray(_load(self.path / "images_ts.npy")), self.path / "images_ts.npy")
        return as_microseconds(stamps) if np.issubdtype(stamps.dtype, np.floating) else np.asarray(stamps, np.int64)


class _NpyAppender:
    """Append rows to an open ``.npy`` file of unknown final length; ``finish`` writes the real header."""

    def __init__(self, handle: BinaryIO, dtype: np.dtype, row_shape: tuple[int, ...] = ()) -> None:
        self.dtype, self.row_shape, self.rows = np.dtype(dtype), row_shape, 0
        self.handle = handle
        self.handle.write(self._header())

    def _header(self) -> bytes:
        header = {
            "descr": np.lib.format.dtype_to_descr(self.dtype),
            "fortran_order": False,
            "shape": (self.rows, *self.row_shape),
        }
        text = repr(header).encode("latin1")
        padding = _NPY_HEADER_BYTES - 10 - len(text) - 1
        return (
            b"\x93NUMPY\x01\x00" + np.uint16(_NPY_HEADER_BYTES - 10).tobytes() + text + b" " * padding + b"\n"
        )

    def append(self, rows: np.ndarray) -> None:
        self.handle.write(np.ascontiguousarray(rows, dtype=self.dtype).tobytes())
        self.rows += len(rows)

    def finish(self) -> None:
        self.handle.seek(0)
        self.handle.write(self._header())


def write_evreal(
    path: str | Path,
    events: EventStream | Iterable[EventStream],
    frames: Frames | None = None,
    color_filter: str | None = None,
) -> None:
    """Write an EVREAL folder (timestamps float64 seconds, xy int16, p uint8 {0, 1}), atomically.

    ``image_event_indices`` is ``frames.event_indices`` if set, else the index of the first event
    at or after each frame. ``color_filter``: the Bayer pattern of a colour camera, kept in
    ``metadata.json`` (an addition of lase-e2v; EVREAL's own folders are grey).
    """
    frame_t = frames.t_us if frames is not None else np.zeros(0, np.int64)
    frame_event_idx = np.zeros(len(frame_t), dtype=np.int64)
    with atomic_path(path) as folder, ExitStack() as files:
        folder.mkdir()
        columns = {
            key: _NpyAppender(files.enter_context(open(folder / name, "wb")), dtype, row_shape)
            for key, name, dtype, row_shape in (
                ("ts", "events_ts.npy", np.float64, ()),
                ("xy", "events_xy.npy", np.int16, (2,)),
                ("p", "events_p.npy", np.uint8, ()),
            )
        }
        for chunk in iter_event_chunks(events):
            sensor_size = chunk.sensor_size
            if max(sensor_size) > np.iinfo(np.int16).max:
                raise EventDataError(f"{path}: sensor {sensor_size} too large for EVREAL's int16 coordinates")
            columns["ts"].append(chunk.t / 1e6)
            columns["xy"].append(np.stack([chunk.x, chunk.y], axis=1))
            columns["p"].append(chunk.p > 0)
            frame_event_idx += np.searchsorted(chunk.t, frame_t, side="left")
        for column in columns.values():
            column.finish()
        if frames is not None and len(frames):
            indices = frames.event_indices if frames.event_indices is not None else frame_event_idx
            np.save(folder / "images.npy", frames.images)
            np.save(folder / "images_ts.npy", (frames.t_us / 1e6).reshape(-1, 1))
            np.save(folder / "image_event_indices.npy", np.asarray(indices, dtype=np.int64).reshape(-1, 1))
        metadata = {
            "sensor_resolution": list(sensor_size),
            "num_events": columns["ts"].rows,
            "timestamp_unit": "s",
        }
        if color_filter is not None:
            metadata["color_filter"] = check_pattern(color_filter)
        (folder / "metadata.json").write_text(json.dumps(metadata, sort_keys=True))
