"""Event file formats: one registry to open, read, write and convert any supported recording.

==========  ==========================================  =========================  ======
name        layout                                      extensions                 writer
==========  ==========================================  =========================  ======
text        rpg/ECD ``t x y p`` lines (+ ECD frames)    ``.txt``, ``.zip``         yes
hdf5        event_utils/HQF or flat ``events/x,y,t,p``  ``.h5``, ``.hdf5``         yes
evreal      EVREAL numpy folder (memory-mapped)         folder                     yes
aedat4      iniVation AEDAT 4 (events + APS frames)     ``.aedat4``                no
evt2/evt3   Prophesee RAW EVT 2.0 / EVT 3.0             ``.raw``                   no
rosbag      ROS1/ROS2 bag: ``dvs_msgs/EventArray``      ``.bag``, ``.mcap``,       no
            events + ``sensor_msgs/Image`` frames       ``.db3``, folder
==========  ==========================================  =========================  ======

The format is found from the file's content (``sniff``), preferring the formats its extension
names; ``format=`` forces one by name. A folder is read as EVREAL if it has ``events_ts.npy``, as
an ECD folder if it has ``events.txt`` and as a ROS2 bag if it has ``metadata.yaml``. ``topic=``
chooses a bag's event topic (the readers of single-stream formats take no topic).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from lase_e2v.errors import ConfigError, EventFormatError, quoted
from lase_e2v.events.color import check_pattern
from lase_e2v.events.formats.aedat4 import Aedat4Reader
from lase_e2v.events.formats.base import EventReader
from lase_e2v.events.formats.evreal import EvrealReader, write_evreal
from lase_e2v.events.formats.hdf5 import Hdf5Reader, write_hdf5
from lase_e2v.events.formats.prophesee import Evt2Reader, Evt3Reader
from lase_e2v.events.formats.rosbag import RosbagReader
from lase_e2v.events.formats.text import TextReader, write_text
from lase_e2v.events.streams import EventStream, Frames

READERS: dict[str, type[EventReader]] = {
    reader.format_name: reader
    for reader in (TextReader, Hdf5Reader, EvrealReader, Aedat4Reader, Evt2Reader, Evt3Reader, RosbagReader)
}
WRITERS: dict[str, Callable[..., None]] = {"text": write_text, "hdf5": write_hdf5, "evreal": write_evreal}
_SNIFF_BYTES = 4096

__all__ = [
    "READERS",
    "WRITERS",
    "EventReader",
    "convert",
    "describe",
    "detect_format",
    "open_events",
    "output_format",
    "read_events",
    "write_events",
    "write_evreal",
    "write_hdf5",
    "write_text",
]


def _check_name(format: str, known: Iterable[str], path: Path) -> str:
    if format not in known:
        raise EventFormatError(
            f"{path}: unknown format {quoted(format)}; known formats: {', '.join(sorted(known))}"
        )
    return format


def detect_format(path: str | Path) -> tuple[str, Path]:
    """``(format name, path to open)`` for a file or folder, from its content and extension."""
    path = Path(path)
    if not path.exists():
        raise EventFormatError(f"{path}: no such file or folder")
    if path.is_dir():
        if (path / "events_ts.npy").is_file():
            return "evreal", path
        if (path / "events.txt").is_file():
            return "text", path / "events.txt"
        if RosbagReader.sniff(path, b""):
            return "rosbag", path
        raise EventFormatError(
            f"{path}: folder holds neither events_ts.npy (EVREAL), events.txt (ECD) "
            "nor metadata.yaml (ROS2 bag)"
        )
    with open(path, "rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if not head:
        raise EventFormatError(f"{path}: file is empty")
    by_extension = [name for name, reader in READERS.items() if path.suffix.lower() in reader.extensions]
    others = [name for name in READERS if name not in by_extension]
    for name in by_extension + others:
        if READERS[name].sniff(path, head):
            return name, path
    if len(by_extension) == 1:  # let the reader report what is wrong with the file
        return by_extension[0], path
    raise EventFormatError(
        f"{path}: unknown event file format; known formats: {', '.join(sorted(READERS))} (or pass format=)"
    )


def open_events(
    path: str | Path,
    format: str | None = None,
    sensor_size: tuple[int, int] | None = None,
    topic: str | None = None,
) -> EventReader:
    """Open a recording lazily; iterate it with ``reader.iter_chunks()`` or load it with ``reader.read()``.

    Args:
        path: file or folder.
        format: force a format by name (see the module table); ``None`` detects it.
        sensor_size: ``(height, width)``, overriding what the file says or what would be inferred.
        topic: the event topic of a ROS bag (default: found in the bag); an error for other formats.
    """
    path = Path(path)
    if format is None:
        format, path = detect_format(path)
    else:
        _check_name(format, READERS, path)
        if format == "text" and path.is_dir():
            path = path / "events.txt"
    if topic is None:
        return READERS[format](path, sensor_size=sensor_size)
    if format != RosbagReader.format_name:
        raise ConfigError(f"{path}: a topic applies to ROS bags only, not to {format} files")
    return RosbagReader(path, sensor_size=sensor_size, topic=topic)


def read_events(
    path: str | Path,
    format: str | None = None,
    sensor_size: tuple[int, int] | None = None,
    topic: str | None = None,
) -> EventStream:
    """All events of a recording in memory, validated (sorted, non-negative, inside the sensor)."""
    return open_events(path, format, sensor_size, topic).read()


def _writer_format(path: Path) -> str:
    suffix = path.suffix.lower()
    for name in WRITERS:
        if suffix and suffix in READERS[name].extensions and suffix != ".zip":
            return name
    if not suffix:
        return "evreal"
    raise EventFormatError(
        f"{path}: cannot tell the output format from {quoted(suffix)}; use .txt, .h5/.hdf5, "
        "a folder name without extension (EVREAL) or pass format="
    )


def output_format(path: str | Path, format: str | None = None) -> str:
    """The writer :func:`write_events` uses for ``path``: ``format`` if given, else from the suffix.

    An unknown format or suffix raises :class:`EventFormatError`, so a command can refuse its output
    before reading any input."""
    path = Path(path)
    return _check_name(format, WRITERS, path) if format is not None else _writer_format(path)


def write_events(
    path: str | Path,
    events: EventStream | Iterable[EventStream],
    frames: Frames | None = None,
    format: str | None = None,
    color_filter: str | None = None,
) -> None:
    """Write events (one stream or an iterable of chunks) and optional APS frames, atomically.

    The format comes from ``format`` or the extension: ``.txt`` text, ``.h5``/``.hdf5`` HDF5, no
    extension an EVREAL folder. The output appears only once complete. ``color_filter`` (the Bayer
    pattern of a colour camera) is kept by HDF5 (root attribute) and EVREAL (``metadata.json``);
    text has no place for it (read such a file back with ``--color``).
    """
    name = output_format(path, format)
    options = {}
    if color_filter is not None:
        options = {"hdf5": {"attrs": {"color_filter": check_pattern(color_filter)}},
                   "evreal": {"color_filter": color_filter}}.get(name, {})
    WRITERS[name](Path(path), events, frames, **options)


def _progress(reader: EventReader, progress: bool, what: str) -> Iterator[EventStream]:
    """``reader.iter_chunks()`` with a tqdm bar of events (stderr) when ``progress``."""
    from tqdm import tqdm

    with tqdm(
        total=reader.num_events, unit="ev", unit_scale=True, desc=what, disable=not progress, leave=False
    ) as bar:
        for chunk in reader.iter_chunks():
            yield chunk
            bar.update(len(chunk))


def convert(
    source: str | Path,
    destination: str | Path,
    format: str | None = None,
    source_format: str | None = None,
    progress: bool = True,
    topic: str | None = None,
) -> int:
    """Copy a recording into another format, chunk by chunk, events and APS frames losslessly.

    Args:
        source, destination: paths; ``format``/``source_format`` force the formats by name.
        progress: show a tqdm bar of events converted (on stderr).
        topic: the event topic of a ROS bag source (see :func:`open_events`).

    Returns the number of events written.
    """
    reader = open_events(source, source_format, topic=topic)
    count = 0

    def counted() -> Iterator[EventStream]:
        nonlocal count
        for chunk in _progress(reader, progress, f"converting {Path(source).name}"):
            count += len(chunk)
            yield chunk

    write_events(destination, counted(), reader.read_frames(), format, reader.color_filter)
    return count


def describe(
    path: str | Path, format: str | None = None, progress: bool = True, topic: str | None = None
) -> dict[str, str]:
    """What ``lase-e2v info`` prints: format, chosen streams, sensor, event count, time span, rate,
    ON share, frames.

    Reads the whole recording once, chunk by chunk (validating it on the way).
    """
    reader = open_events(path, format, topic=topic)
    count = num_on = 0
    t_first = t_last = None
    for chunk in _progress(reader, progress, f"reading {Path(path).name}"):
        if t_first is None:
            t_first = int(chunk.t[0])
        t_last = int(chunk.t[-1])
        count += len(chunk)
        num_on += int((chunk.p > 0).sum())
    frames = reader.read_frames()
    height, width = reader.sensor_size
    info = {
        "path": str(reader.path),
        "format": reader.format_name,
        **reader.streams,
        "sensor": f"{width}x{height}",
        "events": f"{count:,}",
    }
    if reader.color_filter is not None:
        info["color_filter"] = f"{reader.color_filter} (colour camera)"
    if count:
        duration_s = (t_last - t_first) / 1e6
        info["time_us"] = f"{t_first}..{t_last}"
        info["duration_s"] = f"{duration_s:.6f}"
        info["rate"] = f"{count / duration_s / 1e6:.3f} M events/s" if duration_s > 0 else "n/a"
        info["on_fraction"] = f"{num_on / count:.3f}"
    if frames is None:
        info["aps_frames"] = "none"
    else:
        frame_height, frame_width = frames.images.shape[1:3]
        kind = "RGB " if frames.is_color else ""
        info["aps_frames"] = f"{len(frames)} ({frame_width}x{frame_height} {kind}{frames.images.dtype})"
    return info
