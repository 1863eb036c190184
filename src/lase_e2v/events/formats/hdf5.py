"""HDF5 events: the event_utils / HQF layout and the flat ``events/x, y, t, p`` layout.

HQF / event_utils (what E2VID-family training code and EVREAL's converters read)::

    events/xs, events/ys        pixel column / row
    events/ts                   timestamps, float64 seconds
    events/ps                   polarity, bool or {0, 1} (or {-1, +1})
    images/image%09d            APS frames (H, W), attrs ``timestamp`` (s) and ``event_idx``
    attrs: sensor_resolution (H, W), num_events, num_pos, num_neg, t0, tk, duration, num_imgs

Flat layout (recent datasets and tools, e.g. DSEC): ``events/x, y, t, p`` with ``t`` integer
microseconds, an optional root ``t_offset`` (us) added to it, and optional ``width``/``height``
attributes on the file or the ``events`` group.

Timestamps: a floating-point ``ts``/``t`` is read as seconds, an integer one as microseconds (both
layouts). :func:`write_hdf5` writes the HQF layout with float64 seconds, like event_utils, so its
files open in HQF tools; float64 seconds round-trip integer microseconds exactly for any
``t < 2**31`` s (Unix time included): the two roundings stay below 0.25 us each.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from lase_e2v.atomic import atomic_path
from lase_e2v.errors import EventFormatError, quoted
from lase_e2v.events.color import stated_pattern
from lase_e2v.events.formats.base import EventReader, as_microseconds, infer_sensor_size, iter_event_chunks
from lase_e2v.events.streams import EventStream, Frames

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_LAYOUTS = {"hqf": ("xs", "ys", "ts", "ps"), "flat": ("x", "y", "t", "p")}


def _open_hdf5(path: Path, **options: Any) -> h5py.File:
    try:
        return h5py.File(path, "r", **options)
    except OSError as error:
        raise EventFormatError(f"{path}: not a readable HDF5 file ({str(error).splitlines()[0]})") from None


def _plain(value: Any) -> Any:
    """HDF5 attribute -> Python value (bytes to str, numpy scalars to Python, JSON strings kept)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


class Hdf5Reader(EventReader):
    """Reader of both HDF5 layouts, in chunks by h5py slicing (never the whole file at once).

    ``attrs`` holds the file's root attributes (free-form metadata written by :func:`write_hdf5`).
    """

    format_name = "hdf5"
    extensions = (".h5", ".hdf5")

    def __init__(self, path: str | Path, sensor_size: tuple[int, int] | None = None) -> None:
        super().__init__(path, sensor_size)
        with _open_hdf5(self.path) as file:
            group = file.get("events")
            if not isinstance(group, h5py.Group):
                raise EventFormatError(
                    f"{self.path}: no 'events' group; expected events/xs,ys,ts,ps or events/x,y,t,p"
                )
            layout = next((name for name, keys in _LAYOUTS.items() if all(k in group for k in keys)), None)
            if layout is None:
                raise EventFormatError(
                    f"{self.path}: events group has {sorted(group)}; expected xs,ys,ts,ps or x,y,t,p"
                )
            self._keys = _LAYOUTS[layout]
            lengths = {len(group[k]) for k in self._keys}
            if len(lengths) > 1:
                raise EventFormatError(f"{self.path}: event datasets differ in length {sorted(lengths)}")
            self.num_events = lengths.pop()
            self._time_in_seconds = np.issubdtype(group[self._keys[2]].dtype, np.floating)
            self._t_offset_us = int(file["t_offset"][()]) if "t_offset" in file else 0
            self.attrs = {key: _plain(value) for key, value in file.attrs.items()}
            self._stated_size = self._size_from_attrs(file, group)
        self._inferred_size: tuple[int, int] | None = None

    @property
    def caption(self) -> str | None:
        """The root ``caption`` attribute (make-dataset's synthetic sequences, the demo clip)."""
        caption = self.attrs.get("caption")
        return str(caption) if caption else None

    @property
    def color_filter(self) -> str | None:
        """The root ``color_filter`` attribute (make-dataset's colour sequences, :func:`write_hdf5`)."""
        return stated_pattern(self.attrs.get("color_filter"), self.path)

    @staticmethod
    def _size_from_attrs(file: h5py.File, group: h5py.Group) -> tuple[int, int] | None:
        if "sensor_resolution" in file.attrs:
            height, width = np.asarray(file.attrs["sensor_resolution"]).ravel()[:2]
            return int(height), int(width)
        for holder in (file, group):
            if "width" in holder.attrs and "height" in holder.attrs:
                return int(holder.attrs["height"]), int(holder.attrs["width"])
        return None

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        return head.startswith(HDF5_SIGNATURE)

    @property
    def sensor_size(self) -> tuple[int, int]:
        if self._sensor_size_override is not None:
            return self._sensor_size_override
        if self._stated_size is not None:
            return self._stated_size
        if self._inferred_size is None:
            with _open_hdf5(self.path) as file:
                x, y = file["events"][self._keys[0]], file["events"][self._keys[1]]
                step = 4_000_000
                x_max = max((int(x[i : i + step].max()) for i in range(0, len(x), step)), default=0)
                y_max = max((int(y[i : i + step].max()) for i in range(0, len(y), step)), default=0)
            self._inferred_size = infer_sensor_size(x_max, y_max)
        return self._inferred_size

    def _iter_raw(self, chunk_events: int) -> Iterator[EventStream]:
        size = self.sensor_size
        # no chunk cache: one pass in order reads each chunk once, and HDF5 2.0's default cache
        # (8 MiB per dataset) would fill with 32 MiB of the four columns' chunks as the file is read
        with _open_hdf5(self.path, rdcc_nbytes=0) as file:
            x, y, t, p = (file["events"][key] for key in self._keys)
            for start in range(0, self.num_events, chunk_events):
                yield self._read_chunk((x, y, t, p), start, min(start + chunk_events, self.num_events), size)

    def _read_chunk(self, datasets: tuple[h5py.Dataset, ...], start: int, stop: int,
                    size: tuple[int, int]) -> EventStream:
        """Events ``start:stop`` (a function, so that no column read, e.g. float seconds, outlives it
        while the generator waits with its chunk)."""
        try:
            x, y, t, p = (dataset[start:stop] for dataset in datasets)
        except OSError as error:
            raise EventFormatError(
                f"{self.path}: cannot read events {start}..{stop} ({str(error).splitlines()[0]})"
            ) from None
        t_us = as_microseconds(t) if self._time_in_seconds else t.astype(np.int64)
        return EventStream(x, y, t_us + self._t_offset_us, p, size)

    def read_frames(self) -> Frames | None:
        """Datasets of the ``images`` group in name order, with their ``timestamp`` (s) and ``event_idx``."""
        with _open_hdf5(self.path) as file:
            names = self._image_names(file)
            if names is None:
                return None
            group = file["images"]
            images = np.stack([group[n][()] for n in names])
            t_us = self._image_times(group, names)
            indices = None
            if all("event_idx" in group[n].attrs for n in names):
                indices = np.array([int(group[n].attrs["event_idx"]) for n in names], dtype=np.int64)
        if images.ndim == 4 and images.shape[-1] == 1:
            images = images[..., 0]
        return Frames(images, t_us, indices)

    def read_frame_times(self) -> np.ndarray | None:
        """The ``timestamp`` attributes alone: no image is read."""
        with _open_hdf5(self.path) as file:
            names = self._image_names(file)
            return None if names is None else self._image_times(file["images"], names)

    def _image_names(self, file: h5py.File) -> list[str] | None:
        """The ``images`` datasets in name order (``None`` if there are none), each with a ``timestamp``."""
        group = file.get("images")
        if not isinstance(group, h5py.Group) or not len(group):
            return None
        names = sorted(group)
        missing = [n for n in names if "timestamp" not in group[n].attrs]
        if missing:
            raise EventFormatError(f"{self.path}: image {quoted(missing[0])} has no 'timestamp' attribute")
        return names

    def _image_times(self, group: h5py.Group, names: list[str]) -> np.ndarray:
        stamps = np.array([group[n].attrs["timestamp"] for n in names])
        t_us = as_microseconds(stamps) if np.issubdtype(stamps.dtype, np.floating) else stamps
        return np.asarray(t_us, dtype=np.int64) + self._t_offset_us


def _attribute_value(value: Any) -> Any:
    """Free-form metadata -> something HDF5 stores: dicts and lists of mixed types as JSON text."""
    if isinstance(value, (dict, list, tuple)) and not _is_numeric_sequence(value):
        return json.dumps(value, sort_keys=True)
    return value


def _is_numeric_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) for v in value)


def write_hdf5(
    path: str | Path,
    events: EventStream | Iterable[EventStream],
    frames: Frames | None = None,
    attrs: dict | None = None,
) -> None:
    """Write the HQF layout (ts float64 seconds, ps bool, xs/ys uint16) plus free-form ``attrs``.

    Args:
        path: output ``.h5`` file, written to a temporary path and renamed when complete.
        events: one stream or an iterable of chunks (written as they come, bounded memory).
        frames: APS frames -> ``images/image%09d`` with ``timestamp`` (s) and ``event_idx`` (index of
            the first event at or after the frame unless ``frames.event_indices`` says otherwise).
        attrs: extra root attributes (numbers, strings, numeric lists; dicts/mixed lists as JSON).
    """
    frame_t = frames.t_us if frames is not None else np.zeros(0, np.int64)
    frame_event_idx = np.zeros(len(frame_t), dtype=np.int64)
    with atomic_path(path) as temporary, h5py.File(temporary, "w") as file:
        group = file.create_group("events")
        datasets = {
            key: group.create_dataset(key, (0,), dtype=dtype, maxshape=(None,), chunks=(1 << 16,))
            for key, dtype in (("xs", np.uint16), ("ys", np.uint16), ("ts", np.float64), ("ps", np.bool_))
        }
        count = num_pos = 0
        t_first = t_last = 0
        sensor_size = (0, 0)
        for chunk in iter_event_chunks(events):
            sensor_size = chunk.sensor_size
            if not len(chunk):
                continue
            if count == 0:
                t_first = int(chunk.t[0])
            for key, values in (("xs", chunk.x), ("ys", chunk.y), ("ts", chunk.t / 1e6), ("ps", chunk.p > 0)):
                datasets[key].resize((count + len(chunk),))
                datasets[key][count:] = values
            frame_event_idx += np.searchsorted(chunk.t, frame_t, side="left")
            count += len(chunk)
            num_pos += int(np.count_nonzero(chunk.p > 0))
            t_last = int(chunk.t[-1])
        if frames is not None and len(frames):
            indices = frames.event_indices if frames.event_indices is not None else frame_event_idx
            images = file.create_group("images")
            images.attrs["num_images"] = len(frames)
            for i, (image, t_us, event_idx) in enumerate(zip(frames.images, frames.t_us, indices)):
                dataset = images.create_dataset(f"image{i:09d}", data=image)
                dataset.attrs.update(
                    {
                        "timestamp": t_us / 1e6,
                        "event_idx": int(event_idx),
                        "size": image.shape,
                        "type": "color" if image.ndim == 3 else "greyscale",
                    }
                )
        file.attrs.update(
            {
                "sensor_resolution": np.array(sensor_size, dtype=np.int64),
                "num_events": count,
                "num_pos": num_pos,
                "num_neg": count - num_pos,
                "t0": t_first / 1e6,
                "tk": t_last / 1e6,
                "duration": (t_last - t_first) / 1e6,
                "num_imgs": 0 if frames is None else len(frames),
                "timestamp_unit": "s",
            }
        )
        for key, value in (attrs or {}).items():
            file.attrs[key] = _attribute_value(value)
