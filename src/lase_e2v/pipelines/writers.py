"""Write reconstructed frames: mp4 video, a PNG folder, or HDF5 — chosen by the output path.

* ``*.mp4`` (or ``.avi``/``.mkv``): H.264 through imageio-ffmpeg at ``fps`` frames per second;
* ``*.h5`` / ``*.hdf5``: ``images/image%09d`` datasets with a ``timestamp`` attribute (seconds)
  and ``t_us``, the HQF layout the readers understand;
* anything else: a folder of ``frame_%06d.png`` plus ``timestamps.txt`` (``index t_us``).

``metadata`` (``{key: text}``, e.g. the method and the caption the frames were made with) goes where
each format keeps it: the mp4 container's ``comment`` tag (as one JSON object), root attributes of the
HDF5 file, ``metadata.json`` in the PNG folder; :func:`read_frames_metadata` reads it back.

Every writer takes frames as they come (any iterable, e.g. a generator reconstructing them) and
writes each before asking for the next (ffmpeg's stdin, one PNG file, one HDF5 dataset), so memory
does not grow with the number of frames; :func:`write_frame_stream` is the path ``reconstruct`` and
``live`` share. Every writer goes through :func:`lase_e2v.atomic.atomic_path`, so an interrupted
run leaves nothing behind.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

import numpy as np

from lase_e2v.atomic import atomic_path
from lase_e2v.errors import ConfigError, quoted
from lase_e2v.heap import malloc_trim

if TYPE_CHECKING:
    import h5py

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov")
HDF5_SUFFIXES = (".h5", ".hdf5")
#: the metadata file of a PNG folder
METADATA_FILE = "metadata.json"
#: the video container tag holding the metadata (as JSON)
VIDEO_METADATA_TAG = "comment"
#: HDF5 root attributes the frame writer sets itself (not metadata)
_HDF5_OWN_ATTRIBUTES = ("num_imgs",)


def real_time_fps(timestamps_us: np.ndarray) -> float:
    """Playback rate that shows frames at these timestamps in real time (25 for fewer than two)."""
    if len(timestamps_us) < 2:
        return 25.0
    return float(1e6 / max(np.median(np.diff(timestamps_us)), 1))


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] -> uint8 (clipped, rounded)."""
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def even_size(image: np.ndarray) -> np.ndarray:
    """Pad by edge replication to even height/width, which H.264 (yuv420p) requires."""
    h, w = image.shape[:2]
    pad = ((0, h % 2), (0, w % 2)) + ((0, 0),) * (image.ndim - 2)
    return np.pad(image, pad, mode="edge") if (h % 2 or w % 2) else image


def check_fps(fps: float | None) -> None:
    """Refuse a video frame rate that is not > 0 (``None`` = the default), before any work."""
    if fps is not None and not fps > 0:
        raise ConfigError(f"fps must be > 0, got {fps}")


def write_video(
    path: str | Path, frames: Iterable[np.ndarray], fps: float, metadata: dict[str, str] | None = None
) -> int:
    """Write float [0,1] gray ``(H,W)`` or RGB ``(H,W,3)`` frames to a video file; returns the frame count."""
    import imageio.v2 as imageio

    check_fps(fps)
    tags = ["-metadata", f"{VIDEO_METADATA_TAG}={json.dumps(metadata, sort_keys=True)}"] if metadata else []
    count = 0
    with atomic_path(path) as temporary:
        writer = imageio.get_writer(temporary, fps=fps, codec="libx264", quality=8, macro_block_size=1,
                                    ffmpeg_log_level="error", pixelformat="yuv420p", output_params=tags)
        try:
            for frame in frames:
                writer.append_data(even_size(to_uint8(frame)))
                count += 1
        finally:
            writer.close()
    return count


def write_png_folder(
    path: str | Path, items: Iterable[tuple[np.ndarray, int]], metadata: dict[str, str] | None = None
) -> int:
    """Write ``(image, t_us)`` pairs as ``frame_%06d.png`` plus ``timestamps.txt``, each as it comes."""
    from PIL import Image

    count = 0
    with atomic_path(path) as temporary:
        temporary.mkdir(parents=True)
        with open(temporary / "timestamps.txt", "w") as timestamps:
            for count, (frame, t_us) in enumerate(items, start=1):
                Image.fromarray(to_uint8(frame)).save(temporary / f"frame_{count - 1:06d}.png")
                timestamps.write(f"{count - 1} {int(t_us)}\n")
        if metadata:
            (temporary / METADATA_FILE).write_text(json.dumps(metadata, indent=1, sort_keys=True))
    return count


def write_hdf5_frames(
    path: str | Path, items: Iterable[tuple[np.ndarray, int]], metadata: dict[str, str] | None = None
) -> int:
    """Write ``(image, t_us)`` pairs as HQF ``images/image%09d`` datasets, one per frame as it comes."""
    import h5py

    count = 0
    with atomic_path(path) as temporary:
        with h5py.File(temporary, "w") as f:
            limit_metadata_cache(f)
            group = f.create_group("images")
            trim_heap = HeapTrimmer()
            for count, (frame, t_us) in enumerate(items, start=1):
                ds = group.create_dataset(f"image{count - 1:09d}", data=to_uint8(frame), compression="gzip")
                ds.attrs["timestamp"] = int(t_us) / 1e6
                ds.attrs["t_us"] = int(t_us)
                trim_heap()
            f.attrs["num_imgs"] = count
            for key, value in (metadata or {}).items():
                f.attrs[key] = value
    return count


class HeapTrimmer:
    """Called after each frame: at most every ``interval_s`` seconds, gives the free pages of the C
    heap back to the system (glibc's ``malloc_trim``; does nothing where there is none).

    ``trim``: the function called with 0 (default: :func:`lase_e2v.heap.malloc_trim`).

    Why: the HDF5 objects made for each frame (a dataset and its attributes, the HQF layout), made
    between a network's frames, fragment glibc's heap: the small blocks HDF5 frees stay in glibc's
    per-thread cache in the middle of the network's freed buffers, which then no longer fit the next
    frame's, and the heap grows with every frame although what is in use does not (``lase-e2v
    reconstruct --method firenet`` on slider_depth repeated 10 times, to HDF5: 1.46 GB peak without,
    0.58 GB with; with that cache off, ``GLIBC_TUNABLES=glibc.malloc.tcache_count=0``, it does not
    grow either). A trim costs about 30 ms of system time (the pages given back are faulted in again):
    about 5% of FireNet's time once a second; after every frame it cost 24 ms a frame.
    """

    def __init__(self, interval_s: float = 1.0, trim: Callable[[int], int] | None = None) -> None:
        self.interval_s = interval_s
        self._trim = trim or malloc_trim()
        self._last = time.monotonic()

    def __call__(self) -> None:
        if self._trim is not None and time.monotonic() - self._last >= self.interval_s:
            self._trim(0)
            self._last = time.monotonic()


#: the HDF5 metadata cache of a frames file being written (bytes): HDF5's default grows to 32 MiB
#: with the datasets' headers, one per frame, which are written once and never read back
METADATA_CACHE_BYTES = 1 << 20


def limit_metadata_cache(file: h5py.File, size: int = METADATA_CACHE_BYTES) -> None:
    """Hold ``file``'s metadata cache at ``size``, so a file of many datasets written one after the
    other does not grow the process by the default cache's 32 MiB."""
    config = file.id.get_mdc_config()
    config.set_initial_size, config.initial_size, config.min_size, config.max_size = True, size, size, size
    file.id.set_mdc_config(config)


def frames_output_kind(path: str | Path) -> str:
    """``"video"``, ``"hdf5"`` or ``"png"`` (a folder) for an output path, from its suffix; a
    :class:`ConfigError` for any other suffix, so a command can refuse it before reconstructing."""
    suffix = Path(path).suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in HDF5_SUFFIXES:
        return "hdf5"
    if suffix:
        raise ConfigError(
            f"{path}: unknown output type {quoted(suffix)}; use {', '.join(VIDEO_SUFFIXES + HDF5_SUFFIXES)} "
            "or a folder name"
        )
    return "png"


def write_frame_stream(
    path: str | Path, items: Iterable[tuple[np.ndarray, int]], fps: float = 25.0,
    metadata: dict[str, str] | None = None,
) -> int:
    """Write ``(image, t_us)`` pairs (float ``(H, W)`` in [0, 1], window end) to ``path`` as they come:
    each frame is written before the next is asked for, so a generator that makes them holds one at a
    time and memory does not grow with the recording. The format follows the suffix (see module doc);
    returns the frame count."""
    kind = frames_output_kind(path)
    if kind == "video":
        return write_video(path, (image for image, _ in items), fps, metadata)
    if kind == "hdf5":
        return write_hdf5_frames(path, items, metadata)
    return write_png_folder(path, items, metadata)


def write_frames(
    path: str | Path, frames: Iterable[np.ndarray], timestamps_us: Iterable[int], fps: float = 25.0,
    metadata: dict[str, str] | None = None,
) -> int:
    """Write ``frames`` ``(N,H,W)`` in [0,1] with their ``timestamps_us`` to ``path`` (see :func:`write_frame_stream`)."""
    return write_frame_stream(path, zip(frames, timestamps_us), fps, metadata)


def read_frames_metadata(path: str | Path) -> dict[str, str]:
    """The ``metadata`` :func:`write_frames` stored with the frames at ``path`` (``{}`` if none)."""
    kind = frames_output_kind(path)
    if kind == "hdf5":
        import h5py

        with h5py.File(path, "r") as f:
            return {key: str(value) for key, value in f.attrs.items() if key not in _HDF5_OWN_ATTRIBUTES}
    if kind == "png":
        file = Path(path) / METADATA_FILE
        return json.loads(file.read_text()) if file.is_file() else {}
    import subprocess

    import imageio_ffmpeg

    listing = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "ffmetadata", "-"],
        capture_output=True, text=True, check=True,
    ).stdout
    for line in listing.splitlines():
        if line.startswith(f"{VIDEO_METADATA_TAG}="):
            value = line.split("=", 1)[1]
            return json.loads(_ffmetadata_unescape(value))
    return {}


def _ffmetadata_unescape(value: str) -> str:
    """Undo ffmpeg's FFMETADATA escaping: a backslash before ``=``, ``;``, ``#``, a backslash or a newline."""
    return re.sub(r"\\(.)", r"\1", value, flags=re.DOTALL)
