"""AEDAT 4 reader on the shared recordings (README counts and first/last events)."""

from __future__ import annotations

import numpy as np
import pytest

from lase_e2v.events.formats import open_events
from lase_e2v.events.formats.aedat4 import Aedat4Reader


@pytest.mark.parametrize(
    "name, count, first, last",
    [
        (
            "dvxplorer_320x240_a.aedat4",
            111_954,
            [
                (1605537493718345, 154, 204, -1),
                (1605537493718348, 149, 206, -1),
                (1605537493718349, 148, 199, 1),
            ],
            (1605537494308262, 88, 237, 1),
        ),
        (
            "dvxplorer_320x240_b.aedat4",
            323_963,
            [
                (1605116853975736, 152, 126, 1),
                (1605116853975738, 148, 79, -1),
                (1605116853975740, 146, 77, -1),
            ],
            (1605116855435698, 41, 216, -1),
        ),
    ],
)
def test_recordings(shared_dir, name, count, first, last):
    reader = open_events(shared_dir / "data" / "aedat4" / name)
    assert isinstance(reader, Aedat4Reader) and reader.sensor_size == (240, 320)
    events = reader.read()
    assert len(events) == count
    as_tuples = lambda i: (int(events.t[i]), int(events.x[i]), int(events.y[i]), int(events.p[i]))
    assert [as_tuples(i) for i in range(3)] == first
    assert as_tuples(-1) == last
    assert reader.read_frames() is None and reader.read_frame_times() is None
    chunks = list(reader.iter_chunks(chunk_events=50_000))
    assert len(chunks) > 1 and sum(len(c) for c in chunks) == count


@pytest.mark.parametrize("name", ["test_data_gray16.aedat4", "test_data_unknown_then_gray16.aedat4"])
def test_synthetic_frame_files(shared_dir, name):
    reader = open_events(shared_dir / "data" / "aedat4" / name)
    with pytest.warns(UserWarning) if "unknown" in name else _no_warning():
        frames = reader.read_frames()
    assert frames.images.dtype == np.uint16
    np.testing.assert_array_equal(frames.images, [[[1, 2], [3, 1023]]])
    assert frames.t_us.tolist() == [1000]
    with pytest.warns(UserWarning) if "unknown" in name else _no_warning():
        assert reader.read_frame_times().tolist() == [1000]
    assert len(reader.read()) == 0 and reader.sensor_size == (2, 2)


def _no_warning():
    import contextlib

    return contextlib.nullcontext()
