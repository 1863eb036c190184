"""High-pass integrator: known answers on a step input, exactness against a per-event reference."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lase_e2v.errors import ConfigError, EventDataError
from lase_e2v.events.streams import EventStream
from lase_e2v.events.windows import TimeWindows
from lase_e2v.pipelines.integrator import HighPassIntegrator, IntegratorPipeline

SECOND_US = 1_000_000


def events_at(
    pixels: list[tuple[int, int]], t_us: list[int], p: list[int], sensor_size=(4, 5)
) -> EventStream:
    xs, ys = zip(*pixels) if pixels else ((), ())
    return EventStream(np.array(xs), np.array(ys), np.array(t_us), np.array(p), sensor_size)


def test_step_input_decays_with_half_life():
    """3 ON events at t=0 in pixel (x=2, y=1), alpha = ln 2 rad/s: L halves every second."""
    integrator = HighPassIntegrator((4, 5), contrast_threshold=0.1, cutoff_rad_s=math.log(2))
    step = events_at([(2, 1)] * 3, [0, 0, 0], [1, 1, 1])
    state = integrator.update(step, SECOND_US).copy()
    assert state[1, 2] == pytest.approx(0.15)
    assert np.count_nonzero(state) == 1
    assert integrator.update(events_at([], [], []), 2 * SECOND_US)[1, 2] == pytest.approx(0.075)


def test_pure_integration_and_fixed_display_mapping():
    """alpha = 0: L is C times the signed event count; 'fixed' maps exp(L) from [1/e, e] onto [0, 1]."""
    pipeline = IntegratorPipeline(contrast_threshold=0.25, cutoff_rad_s=0.0, display="fixed", log_range=1.0)
    events = events_at([(0, 0), (0, 0), (1, 0), (3, 3)], [10, 20, 30, 40], [1, 1, -1, 1])
    image = pipeline.reconstruct(events, t_end_us=100)

    def to_display(log_i: float) -> float:
        return (math.exp(log_i) - math.exp(-1)) / (math.exp(1) - math.exp(-1))

    assert image[0, 0] == pytest.approx(to_display(0.5))
    assert image[0, 1] == pytest.approx(to_display(-0.25))
    assert image[3, 3] == pytest.approx(to_display(0.25))
    assert image[2, 2] == pytest.approx(to_display(0.0))


def naive_filter(events: EventStream, t_end_us: int, contrast: float, alpha: float) -> np.ndarray:
    """Reference: the ODE event by event, with per-pixel last-update times."""
    state = np.zeros(events.sensor_size)
    last = np.full(events.sensor_size, int(events.t[0]))
    for x, y, t, p in zip(events.x, events.y, events.t, events.p):
        state[y, x] = state[y, x] * math.exp(-alpha * (t - last[y, x]) * 1e-6) + p * contrast
        last[y, x] = t
    return state * np.exp(-alpha * (t_end_us - last) * 1e-6)


def test_matches_per_event_reference_and_window_split():
    rng = np.random.default_rng(0)
    n, size = 3000, (6, 7)
    t = np.sort(rng.integers(0, 300_000, n))
    events = EventStream(rng.integers(0, 7, n), rng.integers(0, 6, n), t, rng.choice([-1, 1], n), size)
    expected = naive_filter(events, 300_000, contrast=0.15, alpha=5.0)
    one_window = HighPassIntegrator(size, 0.15, 5.0)
    one_window.update(events, 300_000)
    # the same events cut into 3 windows give the same state
    split = HighPassIntegrator(size, 0.15, 5.0)
    split.t_us = int(t[0])  # the reference starts its clocks at the first event
    for end in (100_000, 200_000, 300_000):
        split.update(events.time_slice(end - 100_000, end), end)
    assert np.allclose(one_window.log_intensity, expected, atol=1e-12)
    assert np.allclose(split.log_intensity, expected, atol=1e-12)


def test_pipeline_streams_frames_in_unit_range():
    rng = np.random.default_rng(1)
    n = 5000
    events = EventStream(
        rng.integers(0, 20, n),
        rng.integers(0, 10, n),
        np.sort(rng.integers(0, 50_000, n)),
        rng.choice([-1, 1], n),
        (10, 20),
    )
    for display in ("fixed", "robust"):
        output = IntegratorPipeline(display=display)(events, TimeWindows(10_000))
        assert output.frames.shape == (5, 10, 20) and output.frames.dtype == np.float32
        assert output.frames.min() >= 0.0 and output.frames.max() <= 1.0
    assert output.frames.min() == 0.0 and output.frames.max() == 1.0  # robust: percentiles hit 0 and 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"contrast_threshold": 0.0}, "contrast threshold must be > 0"),
        ({"cutoff_rad_s": -1.0}, "cutoff must be >= 0"),
        ({"display": "log"}, "display mapping must be one of"),
        ({"log_range": 0.0}, "log_range must be > 0"),
    ],
)
def test_bad_parameters_raise(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        IntegratorPipeline(**kwargs)


def test_events_after_the_window_end_raise():
    integrator = HighPassIntegrator((4, 5), 0.1, 1.0)
    with pytest.raises(EventDataError, match="after the window end"):
        integrator.update(events_at([(0, 0)], [500], [1]), t_end_us=400)
