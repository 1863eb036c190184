"""Windowing: known answers, and the same windows from a chunked reader as from the whole stream."""

from __future__ import annotations

import numpy as np
import pytest

from lase_e2v.errors import ConfigError, EventDataError
from lase_e2v.events.formats import open_events, write_events
from lase_e2v.events.streams import EventStream
from lase_e2v.events.windows import CountWindows, FrameWindows, TimeWindows, parse_window_spec


def _stream(t):
    n = len(t)
    return EventStream(np.zeros(n), np.zeros(n), t, np.ones(n), (4, 4))


def _summary(windows):
    return [(w.index, w.t_start_us, w.t_end_us, w.events.t.tolist()) for w in windows]


def test_time_windows_known_answer():
    stream = _stream([0, 1, 3, 4, 9, 10])
    assert _summary(TimeWindows(4).iter_windows([stream])) == [
        (0, 0, 4, [0, 1, 3]),
        (1, 4, 8, [4]),
        (2, 8, 12, [9, 10]),
    ]
    assert _summary(TimeWindows(4, skip_empty=True).iter_windows([_stream([0, 1, 9])])) == [
        (0, 0, 4, [0, 1]),
        (1, 8, 12, [9]),
    ]


def test_count_windows_known_answer():
    windows = _summary(CountWindows(2).iter_windows([_stream([0, 1, 3, 4, 9])]))
    assert windows == [(0, 0, 3, [0, 1]), (1, 3, 9, [3, 4]), (2, 9, 10, [9])]
    assert len(list(CountWindows(2, keep_last=False).iter_windows([_stream([0, 1, 3, 4, 9])]))) == 2


def test_frame_windows_known_answer():
    windows = _summary(FrameWindows((2, 5, 9)).iter_windows([_stream([0, 1, 2, 4, 5, 8, 9, 12])]))
    assert windows == [(0, 2, 5, [2, 4]), (1, 5, 9, [5, 8])]


def test_bad_window_parameters():
    with pytest.raises(ConfigError):
        TimeWindows(0)
    with pytest.raises(ConfigError):
        CountWindows(-1)
    with pytest.raises(EventDataError):
        FrameWindows((5,))
    with pytest.raises(EventDataError):
        FrameWindows((5, 5))


def test_parse_window_spec():
    assert parse_window_spec("ms:2.5") == TimeWindows(2500)
    assert parse_window_spec("events:1000") == CountWindows(1000)
    assert parse_window_spec("frames", np.array([1, 2, 3])) == FrameWindows((1, 2, 3))
    for bad in ("ms:x", "frames:3", "seconds:1"):
        with pytest.raises(ConfigError):
            parse_window_spec(bad)


@pytest.mark.parametrize(
    "windowing",
    [
        TimeWindows(7_000),
        TimeWindows(5_000, skip_empty=True),
        CountWindows(1234),
        CountWindows(999, keep_last=False),
        FrameWindows((5_000, 20_000, 20_500, 61_000, 95_000)),
    ],
)
@pytest.mark.parametrize("chunk_events", [97, 1000, 5000])
def test_chunked_reader_gives_the_same_windows(tmp_path, windowing, chunk_events):
    rng = np.random.default_rng(3)
    t = np.sort(np.concatenate([rng.integers(0, 40_000, 2000), rng.integers(60_000, 100_000, 2000)]))
    stream = EventStream(
        rng.integers(0, 4, 4000), rng.integers(0, 4, 4000), t, rng.choice([-1, 1], 4000), (4, 4)
    )
    write_events(tmp_path / "e.h5", stream)
    chunks = open_events(tmp_path / "e.h5").iter_chunks(chunk_events=chunk_events)
    assert _summary(windowing.iter_windows(chunks)) == _summary(windowing.iter_windows([stream]))
