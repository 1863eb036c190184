"""Event statistics: known answers on hand-built events, chunking invariance, a threshold the simulator set."""

from __future__ import annotations

import numpy as np
import pytest

from lase_e2v.errors import EventDataError
from lase_e2v.events.color import mosaic
from lase_e2v.events.statistics import (
    EventStatistics,
    StatisticsOptions,
    effective_contrast_threshold,
    measure_events,
)
from lase_e2v.events.streams import EventStream, Frames
from lase_e2v.simulate.esim import EventSimulator, SimulatorConfig

SIZE = (4, 5)


def stream(rows: list[tuple[int, int, int, int]]) -> EventStream:
    """Events from ``(t_us, x, y, p)`` rows."""
    t, x, y, p = (np.array(column) for column in zip(*rows))
    return EventStream(x, y, t, p, SIZE)


def test_known_answers():
    events = stream([
        (0, 0, 0, 1),        # nothing before: isolated
        (500, 1, 1, 1),      # neighbour (0, 0) fired 500 us ago: supported
        (1_000, 0, 0, -1),   # neighbour (1, 1) 500 us ago: supported; pixel interval 1000 us
        (30_000, 4, 3, 1),   # far away: isolated
        (30_100, 4, 3, 1),   # only its own pixel fired: isolated; interval 100 us
    ])
    frames_t = np.array([0, 20_000, 40_000])
    result = EventStatistics(SIZE, frames_t, StatisticsOptions(isolation_window_us=10_000))
    result.update(events)
    out = result.result()
    assert out["events"] == 5 and out["on_share"] == pytest.approx(4 / 5)
    assert out["isolated_share"] == pytest.approx(3 / 5)
    assert out["events_per_pixel_per_s"] == pytest.approx(5 / 20 / 0.0301)
    # windows [0, 20 ms): 3 events on 2 pixels; [20, 40 ms): 2 events on 1 pixel
    assert out["num_windows"] == 2
    assert out["events_per_pixel_per_window"] == pytest.approx(2.5 / 20)
    assert out["active_pixel_share"] == pytest.approx(1.5 / 20)
    assert out["events_per_active_pixel"] == pytest.approx(5 / 3)
    shares = np.array(out["interval_histogram"]["shares"])
    edges = np.array(out["interval_histogram"]["log10_us_edges"])
    assert shares.sum() == pytest.approx(1.0) and np.count_nonzero(shares) == 2  # 100 us and 1000 us
    assert shares[np.searchsorted(edges, 2.0, side="right")] == 0.5
    assert shares[np.searchsorted(edges, 3.0, side="right")] == 0.5


def test_chunking_does_not_change_anything():
    rng = np.random.default_rng(0)
    n = 5_000
    t = np.sort(rng.integers(0, 2_000_000, n))
    events = EventStream(rng.integers(0, 5, n), rng.integers(0, 4, n), t, rng.choice([-1, 1], n), SIZE)
    whole = measure_events([events], SIZE)
    pieces = [events[i : i + 333] for i in range(0, n, 333)]
    assert measure_events(pieces, SIZE) == whole
    assert whole["windows"] == "40000 us" and whole["num_windows"] == 50


def test_effective_threshold_recovers_the_simulators():
    """A textured scene brightening steadily (2 log units) under a noise-free simulator with C = 0.15:
    the estimate is within 10% (the last partial crossing of each pixel biases it a little high)."""
    height, width = 40, 60
    ys, xs = np.mgrid[0:height, 0:width]
    base = 0.1 + 0.02 * np.sin(xs / 3.0) * np.cos(ys / 4.0)
    times_us = np.arange(0, 1_000_001, 2_000)
    images = [base * np.exp(2.0 * t / 1e6) for t in times_us]
    simulator = EventSimulator(SimulatorConfig(threshold_on=0.15, threshold_off=0.15, threshold_sigma=0.0), seed=0)
    chunks = [simulator.step(image, float(t)) for image, t in zip(images, times_us)]
    events = EventStream(np.concatenate([c.x for c in chunks]), np.concatenate([c.y for c in chunks]),
                         np.concatenate([c.t for c in chunks]), np.concatenate([c.p for c in chunks]),
                         (height, width))
    frame_index = np.arange(0, len(times_us), 50)
    frames = Frames((np.stack(images)[frame_index] * 255 + 0.5).astype(np.uint8), times_us[frame_index])
    assert effective_contrast_threshold(events, frames) == pytest.approx(0.15, rel=0.1)
    assert measure_events([events], (height, width), frames)["contrast_threshold"] == pytest.approx(
        effective_contrast_threshold(events, frames))


def test_color_frames_are_measured_through_the_bayer_filter():
    """A colour camera's RGB frames: each pixel's events are compared with its own filter's channel
    (the threshold equals that of the mosaic given as gray frames); without the pattern, one clear error."""
    height, width = 40, 60
    ys, xs = np.mgrid[0:height, 0:width]
    rgb = np.stack([0.1 + 0.02 * np.sin(xs / 3.0), 0.2 + 0.02 * np.cos(ys / 4.0), 0.15 + 0 * xs], axis=-1)
    gains = np.array([2.0, 1.0, 0.5])  # channels brighten at different rates: red 2x, blue half the log rate
    times_us = np.arange(0, 1_000_001, 2_000)
    images = [rgb * np.exp(gains * t / 1e6) for t in times_us]
    seen = [mosaic(image, "RGGB") for image in images]
    simulator = EventSimulator(SimulatorConfig(threshold_on=0.15, threshold_off=0.15, threshold_sigma=0.0), seed=0)
    chunks = [simulator.step(image, float(t)) for image, t in zip(seen, times_us)]
    index = np.arange(0, len(times_us), 50)
    as_uint8 = lambda stack: (np.stack(stack)[index] * 255 + 0.5).astype(np.uint8)  # noqa: E731
    color_frames = Frames(as_uint8(images), times_us[index])
    gray_frames = Frames(as_uint8(seen), times_us[index])
    measured = measure_events(chunks, (height, width), color_frames, color_filter="RGGB")
    assert measured["contrast_threshold"] == pytest.approx(0.15, rel=0.1)
    assert measured == measure_events(chunks, (height, width), gray_frames)
    with pytest.raises(EventDataError, match="color_filter"):
        measure_events(chunks, (height, width), color_frames)
