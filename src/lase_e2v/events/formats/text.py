"""rpg / ECD text events: one event per line ``t x y p`` (``.txt``, or a ``.zip`` holding one).

Layout (Event Camera Dataset, rpg_e2vid): ``t`` in float seconds, ``x`` column, ``y`` row, ``p`` in
{0, 1} (1 = ON; -1 is accepted for OFF too), single-space separated. An optional first line
``W H`` gives the sensor size, as rpg_e2vid writes it. ECD folders also hold APS frames:
``images.txt`` (``t path`` per line) next to the events file, with 8-bit PNGs; they are read as
:class:`~lase_e2v.events.streams.Frames`.

Parsing uses pyarrow's streaming CSV reader on one thread, without quoting or null markers (event
files have neither): measured fastest of the correct options on slider_depth (12.5 M events/s of
CPU time on one core, against 1.6 M/s for ``np.loadtxt``, 12.0 M/s for pandas' C parser and 4.9 M/s
for evlib, see ``benchmarks/events.py``), and it reads fixed-size byte blocks split at line ends, so
memory stays bounded. Timestamps are parsed as float64 seconds (correctly rounded) and rounded to
the nearest microsecond. A malformed line is one :class:`EventFormatError` naming its line number.

Sensor size, in order: the ``W H`` line, the size of the APS frames, else the smallest common
sensor that fits the largest coordinates (one extra pass over the file).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from lase_e2v.atomic import atomic_path
from lase_e2v.errors import EventDataError, EventFormatError, quoted
from lase_e2v.events.formats.base import (
    EventReader,
    as_microseconds,
    infer_sensor_size,
    iter_event_chunks,
)
from lase_e2v.events.streams import EventStream, Frames

_COLUMNS = ["t", "x", "y", "p"]
#: coordinates parse straight to EventStream's uint16 (a negative one is a parse error naming its line)
_COLUMN_TYPES = {"t": pa.float64(), "x": pa.uint16(), "y": pa.uint16(), "p": pa.int8()}
#: bytes pyarrow parses at a time (chunks join blocks). pyarrow reads about 35 blocks ahead of the
#: parser, whatever the file's size: 4 MiB blocks held 150 MB of a long file (slider_depth x10) in
#: memory, 1 MiB blocks 35 MB, and parse as fast (11-12 M events/s on slider_depth either way)
_BLOCK_BYTES = 1 << 20


def _parse_header(line: bytes) -> tuple[int, int] | None:
    """``(height, width)`` if ``line`` is the rpg ``W H`` header, else ``None``."""
    fields = line.split()
    if len(fields) == 2 and all(f.isdigit() for f in fields):
        return int(fields[1]), int(fields[0])
    return None


def _describe(error: pa.ArrowInvalid) -> str:
    """pyarrow's parse error with the offending input quoted (escaped, shortened): a row can be
    binary garbage, megabytes long or hold newlines and terminal escapes."""
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    problem, separator, value = message.partition(": invalid value '")  # a field that is no number
    if separator:
        return f"{problem}: invalid value {quoted(value.removesuffix(chr(39)))}"
    problem, separator, rest = message.partition(" columns, got ")  # a row with too few/many fields
    if separator and ": " in rest:
        count, row = rest.split(": ", 1)
        return f"{problem}{separator}{count}: {quoted(row)}"
    return quoted(message, limit=120)


class _Source:
    """The events file and its sibling ``images.txt``/``images/``, in a folder or inside a zip."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip_member: str | None = None
        if path.suffix.lower() == ".zip":
            try:
                with zipfile.ZipFile(path) as archive:
                    names = [n for n in archive.namelist() if n.endswith(".txt")]
            except zipfile.BadZipFile as error:
                raise EventFormatError(f"{path}: not a readable zip file ({error})") from None
            events = [n for n in names if PurePosixPath(n).name == "events.txt"] or names
            if not events:
                raise EventFormatError(f"{path}: zip holds no .txt events file")
            self.zip_member = events[0]

    @contextmanager
    def open(self, name: str | None = None) -> Iterator[IO[bytes]]:
        """Open the events file (``name=None``) or a file relative to its folder."""
        if self.zip_member is None:
            target = self.path if name is None else self.path.parent / name
            with open(target, "rb") as handle:
                yield handle
            return
        member = self.zip_member if name is None else str(PurePosixPath(self.zip_member).parent / name)
        member = member.removeprefix("./")
        with zipfile.ZipFile(self.path) as archive, archive.open(member) as handle:
            yield handle

    @contextmanager
    def open_for_csv(self) -> Iterator[IO[bytes] | pa.NativeFile]:
        """The events file for pyarrow's CSV reader: opened by pyarrow itself when it is a plain file.

        Why: the reader reads ahead on a background thread; when that thread reads a Python file
        object, a parse error can leave it calling into Python while the interpreter exits, which
        aborts the process ("terminate called without an active exception", seen with torch loaded).
        """
        if self.zip_member is not None:
            with self.open() as handle:
                yield handle
            return
        with pa.OSFile(str(self.path)) as handle:
            yield handle

    def exists(self, name: str) -> bool:
        if self.zip_member is None:
            return (self.path.parent / name).is_file()
        member = str(PurePosixPath(self.zip_member).parent / name).removeprefix("./")
        with zipfile.ZipFile(self.path) as archive:
            return member in archive.namelist()


class TextReader(EventReader):
    """Reader of ``t x y p`` text files (plain or zipped), with ECD APS frames when present."""

    format_name = "text"
    extensions = (".txt", ".zip")

    def __init__(self, path: str | Path, sensor_size: tuple[int, int] | None = None) -> None:
        super().__init__(path, sensor_size)
        self._source = _Source(self.path)
        with self._source.open() as handle:
            first_line = handle.readline(256)
        if not first_line.strip():
            raise EventFormatError(f"{self.path}: file is empty; expected lines 't x y p'")
        self._header_size = _parse_header(first_line)
        self._inferred_size: tuple[int, int] | None = None

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        lines = head.splitlines()
        if lines and _parse_header(lines[0]) is not None:
            lines = lines[1:]
        if not lines:
            return False
        fields = lines[0].split()
        try:
            [float(f) for f in fields]
        except ValueError:
            return False
        return len(fields) == 4

    @property
    def sensor_size(self) -> tuple[int, int]:
        if self._sensor_size_override is not None:
            return self._sensor_size_override
        if self._header_size is not None:
            return self._header_size
        if self._inferred_size is None:
            lines = self._frame_lines()
            self._inferred_size = self._frame_image(lines[0][1]).shape if lines else self._size_from_events()
        return self._inferred_size

    def _size_from_events(self) -> tuple[int, int]:
        """The smallest common sensor that holds every event (one pass over the file)."""
        x_max = y_max = 0
        for chunk in self._iter_raw(4_000_000, sensor_size=(1, 1)):
            if len(chunk):
                x_max, y_max = max(x_max, int(chunk.x.max())), max(y_max, int(chunk.y.max()))
        return infer_sensor_size(x_max, y_max)

    def _iter_raw(
        self, chunk_events: int, sensor_size: tuple[int, int] | None = None
    ) -> Iterator[EventStream]:
        size = sensor_size or self.sensor_size
        read_options = pa_csv.ReadOptions(
            use_threads=False,
            column_names=_COLUMNS,
            skip_rows=1 if self._header_size is not None else 0,
            block_size=_BLOCK_BYTES,
        )
        # no quoting and no null markers in event files: arrow then skips quote handling and the
        # per-field comparison with its null strings ("", "NA", "NaN"...), about 13% of the time
        parse_options = pa_csv.ParseOptions(
            delimiter=" ", quote_char=False, double_quote=False, escape_char=False
        )
        convert_options = pa_csv.ConvertOptions(column_types=_COLUMN_TYPES, null_values=[])
        pending: list[pa.RecordBatch] = []
        with self._source.open_for_csv() as handle:
            try:
                for batch in pa_csv.open_csv(handle, read_options, parse_options, convert_options):
                    pending.append(batch)
                    if sum(b.num_rows for b in pending) >= chunk_events:
                        yield self._to_stream(pending, size)
                        pending = []
            except pa.ArrowInvalid as error:
                if "Empty CSV file" not in str(error):
                    raise EventFormatError(f"{self.path}: expected lines 't x y p' ({_describe(error)})") from None
        if pending:
            yield self._to_stream(pending, size)

    def _to_stream(self, batches: list[pa.RecordBatch], sensor_size: tuple[int, int]) -> EventStream:
        table = pa.Table.from_batches(batches)  # no nulls: an empty field fails to parse
        x, y, t, p = (table.column(k).to_numpy() for k in ("x", "y", "t", "p"))
        if len(p) and (p.min() < -1 or p.max() > 1):
            raise EventDataError(f"{self.path}: polarity must be 0 or 1 (or -1), found {p.min()}..{p.max()}")
        return EventStream(x, y, as_microseconds(t), p, sensor_size)

    @property
    def caption(self) -> str | None:
        """``caption.txt`` next to the events file, as in lase-e2v's ECD folders."""
        if not self._source.exists("caption.txt"):
            return None
        with self._source.open("caption.txt") as handle:
            return " ".join(handle.read().decode("utf-8", errors="replace").split()) or None

    def read_frames(self) -> Frames | None:
        """ECD APS frames from ``images.txt`` + PNGs next to the events file, as uint8 ``(N, H, W)``."""
        lines = self._frame_lines()
        if lines is None:
            return None
        images = [self._frame_image(name) for _, name in lines]
        if len({image.shape for image in images}) > 1:
            raise EventFormatError(f"{self.path}: APS frames differ in size")
        return Frames(np.stack(images), self._frame_times(lines))

    def read_frame_times(self) -> np.ndarray | None:
        """``images.txt`` alone: no image is read."""
        lines = self._frame_lines()
        return None if lines is None else self._frame_times(lines)

    def _frame_lines(self) -> list[list[str]] | None:
        """The ``[time, image path]`` lines of ``images.txt``, ``None`` without it (or with none)."""
        if not self._source.exists("images.txt"):
            return None
        with self._source.open("images.txt") as handle:
            lines = [line.split() for line in handle.read().decode().splitlines() if line.strip()]
        if any(len(fields) != 2 for fields in lines):
            raise EventFormatError(f"{self.path}: images.txt must have lines 't path'")
        return lines or None

    @staticmethod
    def _frame_times(lines: list[list[str]]) -> np.ndarray:
        return as_microseconds(np.array([float(t) for t, _ in lines]))

    def _frame_image(self, name: str) -> np.ndarray:
        """One APS frame listed in ``images.txt``, gray."""
        from PIL import Image

        if not self._source.exists(name):
            raise EventFormatError(f"{self.path}: frame image {quoted(name)} listed in images.txt is missing")
        with self._source.open(name) as handle:
            image = Image.open(io.BytesIO(handle.read()))
            return np.asarray(image.convert("L") if image.mode != "L" else image)


def _format_lines(events: EventStream) -> pa.Buffer:
    """``t x y p`` lines for a chunk (t with 6 decimals, so microseconds survive exactly)."""
    seconds = pc.cast(pa.array(events.t // 1_000_000), pa.string())
    micros = pc.utf8_lpad(pc.cast(pa.array(events.t % 1_000_000), pa.string()), 6, "0")
    columns = [
        pc.binary_join_element_wise(seconds, micros, "."),
        pc.cast(pa.array(events.x), pa.string()),
        pc.cast(pa.array(events.y), pa.string()),
        pc.cast(pa.array((events.p > 0).astype(np.uint8)), pa.string()),
    ]
    lines = pc.binary_join_element_wise(pc.binary_join_element_wise(*columns, " "), "", "\n")
    offsets = lines.buffers()[1]
    start, end = np.frombuffer(offsets, np.int32)[[lines.offset, lines.offset + len(lines)]]
    return lines.buffers()[2][start:end]


def write_text(
    path: str | Path,
    events: EventStream | Iterable[EventStream],
    frames: Frames | None = None,
) -> None:
    """Write ``W H`` then ``t x y p`` lines (t in seconds, 6 decimals; p in {0, 1}).

    Frames, if given, go next to the events file as ECD does: ``images.txt`` and
    ``images/frame_%08d.png`` (8-bit; 16-bit and float frames are scaled to 0..255, the one lossy
    case). Each output is written to a temporary path and renamed when complete; the events file
    is renamed last, after the frames, so a complete-looking events file means complete frames.
    """
    path = Path(path)
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            for index, chunk in enumerate(iter_event_chunks(events)):
                if index == 0:
                    handle.write(f"{chunk.width} {chunk.height}\n".encode())
                if len(chunk):
                    handle.write(_format_lines(chunk))
        if frames is not None:
            _write_ecd_frames(path.parent, frames)


def _write_ecd_frames(folder: Path, frames: Frames) -> None:
    from PIL import Image

    images = frames.images
    if images.dtype != np.uint8:
        images = np.clip(np.rint(frames.as_float() * 255), 0, 255).astype(np.uint8)
    with atomic_path(folder / "images") as image_folder:
        image_folder.mkdir()
        for index, image in enumerate(images):
            Image.fromarray(image).save(image_folder / f"frame_{index:08d}.png")
    seconds = [
        f"{t // 1_000_000}.{t % 1_000_000:06d} images/frame_{i:08d}.png" for i, t in enumerate(frames.t_us)
    ]
    with atomic_path(folder / "images.txt") as temporary:
        temporary.write_text("\n".join(seconds) + "\n")
