"""EVREAL numpy folders: memory-mapped reader, appending writer."""

from __future__ import annotations

import json

import numpy as np

from lase_e2v.events.formats import open_events
from lase_e2v.events.formats.evreal import EvrealReader, write_evreal
from lase_e2v.events.streams import EventStream, Frames


def _events(n=3000):
    rng = np.random.default_rng(1)
    return EventStream(
        rng.integers(0, 346, n),
        rng.integers(0, 260, n),
        np.sort(rng.integers(0, 10**6, n)),
        rng.choice([-1, 1], n),
        (260, 346),
    )


def test_roundtrip_in_chunks_with_frames(tmp_path):
    events = _events()
    frames = Frames(
        np.arange(3 * 260 * 346, dtype=np.uint32).reshape(3, 260, 346).astype(np.uint8),
        [0, 400_000, 900_000],
        event_indices=[0, 5, 9],
    )
    write_evreal(tmp_path / "seq", (events[i : i + 1000] for i in range(0, 3000, 1000)), frames)
    assert json.loads((tmp_path / "seq" / "metadata.json").read_text())["sensor_resolution"] == [260, 346]
    assert np.load(tmp_path / "seq" / "events_xy.npy").shape == (3000, 2)
    assert np.load(tmp_path / "seq" / "events_ts.npy").dtype == np.float64
    reader = open_events(tmp_path / "seq")
    assert isinstance(reader, EvrealReader) and reader.num_events == 3000
    back = reader.read()
    for name in "xytp":
        np.testing.assert_array_equal(getattr(back, name), getattr(events, name))
    read_frames = reader.read_frames()
    np.testing.assert_array_equal(read_frames.images, frames.images)
    np.testing.assert_array_equal(read_frames.t_us, frames.t_us)
    np.testing.assert_array_equal(read_frames.event_indices, [0, 5, 9])


def test_reads_evreal_column_shapes(tmp_path):
    folder = tmp_path / "seq"
    folder.mkdir()
    np.save(folder / "events_ts.npy", np.array([[0.5], [0.75]]))
    np.save(folder / "events_xy.npy", np.array([[1, 2], [3, 4]], np.int16))
    np.save(folder / "events_p.npy", np.array([[1], [0]], np.uint8))
    (folder / "metadata.json").write_text('{"sensor_resolution": [180, 240]}')
    events = open_events(folder).read()
    assert events.t.tolist() == [500_000, 750_000] and events.x.tolist() == [1, 3]
    assert events.y.tolist() == [2, 4] and events.p.tolist() == [1, -1] and events.sensor_size == (180, 240)


def test_chunks_are_read_in_any_layout(tmp_path):
    """Chunks (from the reader's own memory maps, their pages given back after each) of C- and
    Fortran-order arrays with (N,) and (N, 1) columns give the events; without metadata the sensor
    size comes from them too."""
    events = _events(1000)
    folder = tmp_path / "seq"
    folder.mkdir()
    np.save(folder / "events_ts.npy", (events.t / 1e6)[:, None])
    np.save(folder / "events_xy.npy", np.asfortranarray(np.stack([events.x, events.y], axis=1).astype(np.int16)))
    np.save(folder / "events_p.npy", (events.p > 0).astype(np.uint8))
    reader = open_events(folder)
    assert reader.sensor_size == (260, 346)
    chunks = list(reader.iter_chunks(chunk_events=97))
    assert [len(c) for c in chunks] == [97] * 10 + [30]
    for name in "xytp":
        np.testing.assert_array_equal(np.concatenate([getattr(c, name) for c in chunks]), getattr(events, name))
