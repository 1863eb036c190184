"""Text (rpg/ECD ``t x y p``) reader and writer: slider_depth known values, zip, header, frames."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import numpy as np
import pytest

from lase_e2v.errors import EventFormatError
from lase_e2v.events.formats import open_events, read_events
from lase_e2v.events.formats.text import TextReader, write_text
from lase_e2v.events.streams import EventStream, Frames


@pytest.fixture(scope="module")
def slider_reader(slider_depth_dir):
    return open_events(slider_depth_dir / "events.txt")


@pytest.fixture(scope="module")
def slider_events(slider_reader):
    return slider_reader.read()


def test_slider_depth_counts_and_ends(slider_reader, slider_events):
    events = slider_events
    assert isinstance(slider_reader, TextReader)
    assert len(events) == 1_078_541
    assert events.sensor_size == (180, 240)  # from the APS frames: the file has no "W H" line
    assert int(np.count_nonzero(events.p == 1)) == 447_783
    assert int(np.count_nonzero(events.p == -1)) == 630_758
    # README: first line "0.003811000 96 133 0", last t 3.404080001 s
    assert (events.t[0], events.x[0], events.y[0], events.p[0]) == (3811, 96, 133, -1)
    assert (events.t[1], events.x[1], events.y[1]) == (3820, 127, 171)  # 0.003820001 s rounds to 3820 us
    assert events.t[-1] == 3_404_080
    assert events.x.max() == 239 and events.y.max() == 179
    assert events.t.dtype == np.int64 and events.x.dtype == np.uint16 and events.p.dtype == np.int8


def test_caption_txt_beside_the_events_is_the_caption(slider_reader, tmp_path):
    assert slider_reader.caption.startswith("a table with a model arch, a toy box, two balls")
    bare = tmp_path / "events.txt"
    bare.write_text("0.001 1 1 1\n")
    assert open_events(bare).caption is None


def test_slider_depth_frames(slider_reader):
    frames = slider_reader.read_frames()
    assert frames.images.shape == (87, 180, 240) and frames.images.dtype == np.uint8
    assert frames.t_us[0] == 0 and frames.t_us[1] == 38_766 and frames.t_us[-1] == 3_333_822


def test_chunks_are_bounded_and_join_to_the_whole(slider_reader, slider_events):
    chunks = list(slider_reader.iter_chunks(chunk_events=300_000))
    assert len(chunks) >= 3
    assert all(len(c) < 600_000 for c in chunks)
    joined = np.concatenate([c.t for c in chunks])
    np.testing.assert_array_equal(joined, slider_events.t)


def _events_slice(slider_events, n=2000):
    return slider_events[:n]


def test_header_line_gives_sensor_size_and_write_read_roundtrip(tmp_path, slider_events):
    events = _events_slice(slider_events)
    write_text(tmp_path / "events.txt", events.with_sensor_size((200, 300)))
    first_line = (tmp_path / "events.txt").read_text().splitlines()[0]
    assert first_line == "300 200"
    back = read_events(tmp_path / "events.txt")
    assert back.sensor_size == (200, 300)
    for name in "xytp":
        np.testing.assert_array_equal(getattr(back, name), getattr(events, name))


def test_sensor_size_inferred_without_header_or_frames(tmp_path):
    (tmp_path / "e.txt").write_text("0.000001 10 5 1\n0.000002 300 200 0\n")
    assert open_events(tmp_path / "e.txt").sensor_size == (260, 346)  # smallest common sensor that fits


def test_sensor_size_override(tmp_path):
    (tmp_path / "e.txt").write_text("0.000001 10 5 1\n")
    assert read_events(tmp_path / "e.txt", sensor_size=(64, 32)).sensor_size == (64, 32)


def test_zip_with_frames(tmp_path, slider_events):
    events = _events_slice(slider_events, 500)
    frames = Frames(np.arange(2 * 4 * 6, dtype=np.uint8).reshape(2, 4, 6), [0, 5000])
    folder = tmp_path / "seq"
    write_text(folder / "events.txt", events, frames)
    archive = tmp_path / "seq.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(folder.rglob("*")):
            zipped.write(path, f"seq/{path.relative_to(folder)}")
    reader = open_events(archive)
    assert isinstance(reader, TextReader)
    np.testing.assert_array_equal(reader.read().t, events.t)
    read_frames = reader.read_frames()
    np.testing.assert_array_equal(read_frames.images, frames.images)
    np.testing.assert_array_equal(read_frames.t_us, [0, 5000])


def test_polarity_minus_one_accepted(tmp_path):
    (tmp_path / "e.txt").write_text("4 3\n0.5 1 2 -1\n0.6 0 0 1\n")
    events = read_events(tmp_path / "e.txt")
    assert events.p.tolist() == [-1, 1] and events.t.tolist() == [500_000, 600_000]


def test_writer_accepts_chunk_iterators(tmp_path, slider_events):
    events = _events_slice(slider_events, 3000)
    write_text(tmp_path / "e.txt", (events[i : i + 1000] for i in range(0, 3000, 1000)))
    np.testing.assert_array_equal(read_events(tmp_path / "e.txt").x, events.x)


def test_empty_stream_writes_header_only(tmp_path):
    write_text(tmp_path / "e.txt", EventStream.empty((10, 20)))
    assert (tmp_path / "e.txt").read_text() == "20 10\n"
    assert len(read_events(tmp_path / "e.txt")) == 0


@pytest.mark.parametrize(
    "line", ["0.2 3  1", "0.2 3 4 ", "0.2 3 x 1", "0.2 3 4", "0.2 -3 4 1", "0.2 70000 4 1"]
)
def test_malformed_lines_raise_one_format_error(tmp_path, line):
    (tmp_path / "e.txt").write_text(f"4 3\n0.1 1 2 1\n{line}\n")
    with pytest.raises(EventFormatError, match=r"e.txt: expected lines 't x y p' \(.*Row #3"):
        read_events(tmp_path / "e.txt")


def test_a_parse_error_leaves_a_process_that_exits_cleanly(tmp_path):
    """Arrow's read-ahead of a Python file handle could abort the interpreter at exit after an error."""
    (tmp_path / "e.txt").write_text("0.1 1 2 1\n0.2 3  1\n")
    script = (
        "import sys, torch\n"
        "from lase_e2v.errors import EventFormatError\n"
        "from lase_e2v.events.formats import read_events\n"
        "try:\n"
        f"    read_events({str(tmp_path / 'e.txt')!r})\n"
        "except EventFormatError:\n"
        "    sys.exit(2)\n"
    )
    codes = [subprocess.run([sys.executable, "-c", script], capture_output=True).returncode for _ in range(3)]
    assert codes == [2, 2, 2]  # 134 (SIGABRT) in most runs before the fix
