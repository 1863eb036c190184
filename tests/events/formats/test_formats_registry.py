"""The registry: detection, forcing, lossless conversion chains, atomic writes, bad input."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from lase_e2v.errors import EventDataError, EventFormatError
from lase_e2v.events.formats import convert, describe, detect_format, open_events, read_events, write_events
from lase_e2v.events.streams import EventStream, Frames


@pytest.fixture(scope="module")
def small_sequence(slider_depth_dir, tmp_path_factory):
    """First 20,000 slider_depth events and 3 frames as an ECD folder."""
    source = open_events(slider_depth_dir)
    events = next(source.iter_chunks(chunk_events=20_000))[:20_000]
    frames = source.read_frames()
    frames = Frames(frames.images[:3], frames.t_us[:3])
    folder = tmp_path_factory.mktemp("ecd")
    write_events(folder / "events.txt", events, frames)
    return folder, events, frames


def _assert_same(reader, events, frames):
    back = reader.read()
    assert back.sensor_size == events.sensor_size
    for name in "xytp":
        np.testing.assert_array_equal(getattr(back, name), getattr(events, name))
    read_frames = reader.read_frames()
    np.testing.assert_array_equal(read_frames.images, frames.images)
    np.testing.assert_array_equal(read_frames.t_us, frames.t_us)
    np.testing.assert_array_equal(reader.read_frame_times(), frames.t_us)


def test_text_hdf5_npy_text_roundtrip_is_lossless(small_sequence, tmp_path):
    folder, events, frames = small_sequence
    assert convert(folder, tmp_path / "a.h5", progress=False) == 20_000
    convert(tmp_path / "a.h5", tmp_path / "b")
    convert(tmp_path / "b", tmp_path / "c" / "events.txt")
    for path, name in ((tmp_path / "a.h5", "hdf5"), (tmp_path / "b", "evreal"), (tmp_path / "c", "text")):
        reader = open_events(path)
        assert reader.format_name == name
        _assert_same(reader, events, frames)
    assert (tmp_path / "c" / "events.txt").read_bytes() == (folder / "events.txt").read_bytes()


@pytest.mark.parametrize(
    "relative, expected",
    [
        ("ecd_slider_depth", "text"),
        ("ecd_slider_depth/events.txt", "text"),
        ("aedat4/dvxplorer_320x240_a.aedat4", "aedat4"),
        ("prophesee/evt2_sample.raw", "evt2"),
        ("prophesee/evt3_sample.raw", "evt3"),
    ],
)
def test_detection(shared_dir, relative, expected):
    assert detect_format(shared_dir / "data" / relative)[0] == expected


def test_detection_by_content_ignores_a_wrong_extension(small_sequence, tmp_path):
    folder, events, _ = small_sequence
    shutil.copy(folder / "events.txt", tmp_path / "events.dat")
    write_events(tmp_path / "x.h5", events)
    shutil.copy(tmp_path / "x.h5", tmp_path / "x.txt")
    assert detect_format(tmp_path / "events.dat")[0] == "text"
    assert detect_format(tmp_path / "x.txt")[0] == "hdf5"


def test_forced_format(tmp_path):
    (tmp_path / "e.csv").write_text("4 3\n0.000001 1 2 1\n")
    assert open_events(tmp_path / "e.csv", format="text").read().t.tolist() == [1]


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


# -- bad input: each raises its own error type with a one-line message naming the file ------------
def test_missing_file(tmp_path):
    with pytest.raises(EventFormatError) as error:
        open_events(tmp_path / "nope.txt")
    assert "nope.txt: no such file" in _one_line(error)


def test_unknown_format_name(tmp_path):
    (tmp_path / "e.txt").write_text("0.1 1 1 1\n")
    with pytest.raises(EventFormatError) as error:
        open_events(tmp_path / "e.txt", format="bogus")
    assert "unknown format 'bogus'" in _one_line(error)


def test_unknown_content(tmp_path):
    (tmp_path / "e.bin").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(EventFormatError) as error:
        open_events(tmp_path / "e.bin")
    assert "e.bin: unknown event file format" in _one_line(error)


def test_text_line_with_three_fields(tmp_path):
    (tmp_path / "e.txt").write_text("0.1 1 1 1\n0.2 1 1\n0.3 1 1 0\n")
    with pytest.raises(EventFormatError) as error:
        read_events(tmp_path / "e.txt")
    assert "Expected 4 columns, got 3" in _one_line(error)


def test_text_garbage_bytes(tmp_path):
    (tmp_path / "e.txt").write_bytes(b"0.1 1 1 1\n" + bytes(range(128, 256)) + b"\n")
    with pytest.raises(EventFormatError) as error:
        read_events(tmp_path / "e.txt")
    assert "e.txt" in _one_line(error)


def test_truncated_hdf5(tmp_path):
    write_events(tmp_path / "a.h5", EventStream([1, 2], [1, 2], [1, 2], [1, -1], (4, 4)))
    data = (tmp_path / "a.h5").read_bytes()
    (tmp_path / "t.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(EventFormatError) as error:
        read_events(tmp_path / "t.h5")
    assert "t.h5: not a readable HDF5 file" in _one_line(error)


def test_unsorted_timestamps(tmp_path):
    (tmp_path / "e.txt").write_text("8 8\n0.000003 1 1 1\n0.000005 1 1 1\n0.000004 1 1 1\n")
    with pytest.raises(EventDataError) as error:
        read_events(tmp_path / "e.txt")
    assert "timestamps decrease at event 2 (5 -> 4 us)" in _one_line(error)


def test_unsorted_across_chunks(tmp_path):
    with h5py.File(tmp_path / "u.h5", "w") as file:
        for key, values in (("x", [0] * 4), ("y", [0] * 4), ("t", [1, 2, 3, 1]), ("p", [1] * 4)):
            file[f"events/{key}"] = np.array(values)
        file.attrs["sensor_resolution"] = [4, 4]
    with pytest.raises(EventDataError, match="timestamps decrease at event 3"):
        list(open_events(tmp_path / "u.h5").iter_chunks(chunk_events=3))


def test_negative_timestamp(tmp_path):
    (tmp_path / "e.txt").write_text("8 8\n-0.000001 1 1 1\n")
    with pytest.raises(EventDataError) as error:
        read_events(tmp_path / "e.txt")
    assert "negative timestamp -1 us at event 0" in _one_line(error)


def test_coordinates_outside_the_sensor(tmp_path):
    (tmp_path / "e.txt").write_text("8 4\n0.000001 1 1 1\n0.000002 8 1 1\n")
    with pytest.raises(EventDataError) as error:
        read_events(tmp_path / "e.txt")
    assert "x=8 at event 1 is outside the 8x4 sensor" in _one_line(error)


def test_empty_file(tmp_path):
    (tmp_path / "e.txt").write_bytes(b"")
    with pytest.raises(EventFormatError) as error:
        open_events(tmp_path / "e.txt")
    assert "is empty" in _one_line(error)


# -- outputs appear only when complete ------------------------------------------------------------
@pytest.mark.parametrize("name", ["out.txt", "out.h5", "out"])
def test_failed_write_leaves_nothing(tmp_path, name):
    def chunks():
        yield EventStream([1], [1], [1], [1], (4, 4))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_events(tmp_path / name, chunks(), Frames(np.zeros((1, 4, 4), np.uint8), [0]))
    assert list(tmp_path.iterdir()) == []


def test_unknown_output_extension(tmp_path):
    with pytest.raises(EventFormatError, match="cannot tell the output format"):
        write_events(tmp_path / "out.xyz", EventStream.empty((4, 4)))


def test_describe(small_sequence):
    folder, events, _ = small_sequence
    info = describe(folder, progress=False)
    assert info["format"] == "text" and info["sensor"] == "240x180" and info["events"] == "20,000"
    assert info["time_us"] == f"{events.t[0]}..{events.t[-1]}"
    assert info["on_fraction"] == f"{np.mean(events.p > 0):.3f}"
    assert info["aps_frames"] == "3 (240x180 uint8)"
