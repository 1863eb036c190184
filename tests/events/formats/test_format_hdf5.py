"""HDF5 reader (HQF and flat layouts) and the HQF writer."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from lase_e2v.events.formats import open_events, read_events
from lase_e2v.events.formats.hdf5 import Hdf5Reader, write_hdf5
from lase_e2v.events.streams import EventStream, Frames


def _events(n=1000, seed=0, t0=0):
    rng = np.random.default_rng(seed)
    t = t0 + np.sort(rng.integers(0, 100_000, n))
    return EventStream(
        rng.integers(0, 240, n), rng.integers(0, 180, n), t, rng.choice([-1, 1], n), (180, 240)
    )


def test_hqf_roundtrip_with_frames_and_attrs(tmp_path):
    events = _events()
    frames = Frames(np.full((2, 180, 240), 7, np.uint8), [10_000, 50_000])
    write_hdf5(
        tmp_path / "a.h5",
        events,
        frames,
        attrs={"source": "unit test", "contrast": [0.2, 0.3], "config": {"ct": 0.2}},
    )
    reader = open_events(tmp_path / "a.h5")
    assert isinstance(reader, Hdf5Reader) and reader.num_events == 1000
    back = reader.read()
    for name in "xytp":
        np.testing.assert_array_equal(getattr(back, name), getattr(events, name))
    assert back.sensor_size == (180, 240)
    read_frames = reader.read_frames()
    np.testing.assert_array_equal(read_frames.images, frames.images)
    np.testing.assert_array_equal(read_frames.t_us, [10_000, 50_000])
    np.testing.assert_array_equal(read_frames.event_indices, np.searchsorted(events.t, [10_000, 50_000]))
    assert reader.attrs["source"] == "unit test"
    assert reader.attrs["config"] == '{"ct": 0.2}'
    np.testing.assert_allclose(reader.attrs["contrast"], [0.2, 0.3])
    with h5py.File(tmp_path / "a.h5") as file:  # the event_utils conventions
        assert file["events/ts"].dtype == np.float64
        assert file["events/ts"][0] == events.t[0] / 1e6
        assert file.attrs["num_pos"] + file.attrs["num_neg"] == 1000
        assert list(file.attrs["sensor_resolution"]) == [180, 240]
        assert file["images/image000000001"].attrs["timestamp"] == 0.05


def test_caption_attribute(tmp_path):
    write_hdf5(tmp_path / "c.h5", _events(10), attrs={"caption": "a dog on a sofa"})
    assert open_events(tmp_path / "c.h5").caption == "a dog on a sofa"
    write_hdf5(tmp_path / "n.h5", _events(10))
    assert open_events(tmp_path / "n.h5").caption is None


def test_absolute_unix_microseconds_survive_float_seconds(tmp_path):
    events = _events(t0=1_605_537_493_718_345)  # AEDAT4-style absolute time
    write_hdf5(tmp_path / "a.h5", events)
    np.testing.assert_array_equal(read_events(tmp_path / "a.h5").t, events.t)


def test_flat_layout_integer_microseconds_with_offset_and_size_attrs(tmp_path):
    with h5py.File(tmp_path / "flat.h5", "w") as file:
        group = file.create_group("events")
        group["x"] = np.array([1, 2, 3], np.uint16)
        group["y"] = np.array([4, 5, 6], np.uint16)
        group["t"] = np.array([10, 20, 30], np.int64)
        group["p"] = np.array([0, 1, 1], np.uint8)
        group.attrs["width"], group.attrs["height"] = 640, 480
        file["t_offset"] = np.int64(1000)
    events = read_events(tmp_path / "flat.h5")
    assert events.t.tolist() == [1010, 1020, 1030]
    assert events.p.tolist() == [-1, 1, 1] and events.sensor_size == (480, 640)


def test_chunked_reading_matches_whole(tmp_path):
    events = _events(5000)
    write_hdf5(tmp_path / "a.h5", (events[i : i + 1500] for i in range(0, 5000, 1500)))
    chunks = list(open_events(tmp_path / "a.h5").iter_chunks(chunk_events=1024))
    assert [len(c) for c in chunks] == [1024] * 4 + [904]
    np.testing.assert_array_equal(np.concatenate([c.t for c in chunks]), events.t)


def test_missing_event_datasets_is_a_format_error(tmp_path):
    from lase_e2v.errors import EventFormatError

    with h5py.File(tmp_path / "bad.h5", "w") as file:
        file.create_group("events")["xs"] = np.zeros(3)
    with pytest.raises(EventFormatError, match="expected xs,ys,ts,ps or x,y,t,p"):
        open_events(tmp_path / "bad.h5")
