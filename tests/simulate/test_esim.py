"""Physics of the event simulator: known event counts and times, thresholds, refractory, noise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lase_e2v.errors import ConfigError, EventDataError
from lase_e2v.events.streams import Frames
from lase_e2v.simulate.esim import EventSimulator, SimulatorConfig, lin_log, to_luma
from lase_e2v.simulate.reference import simulate_naive

EXACT = SimulatorConfig(threshold_sigma=0.0)  # C+ = C- = 0.2 everywhere, no noise


def ramp_frames(start_dn: np.ndarray, log_change: np.ndarray, num_frames: int = 11) -> np.ndarray:
    """Frames whose log intensity moves linearly in time from log(start) by ``log_change``."""
    fractions = np.linspace(0, 1, num_frames)[:, None, None]
    return start_dn * np.exp(fractions * log_change) / 255.0


def events_of(stream, x, y):
    mask = (stream.x == x) & (stream.y == y)
    return stream.t[mask], stream.p[mask]


def test_lin_log_is_log_above_the_knee_and_linear_below():
    assert lin_log(np.array([255.0]))[0] == pytest.approx(math.log(255), abs=1e-6)
    assert lin_log(np.array([10.0]))[0] == pytest.approx(10 * math.log(20) / 20)
    assert lin_log(np.array([0.0]))[0] == 0.0
    below, above = lin_log(np.array([20 - 1e-9, 20 + 1e-9]))
    assert below == pytest.approx(above, abs=1e-6)  # continuous at the knee


def test_luma_uses_bt601_weights():
    assert to_luma(np.array([1.0, 0.0, 0.0])) == pytest.approx(0.299)
    assert to_luma(np.array([0.2, 0.4, 0.6])) == pytest.approx(0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6)


def test_linear_log_ramp_gives_floor_delta_over_c_events_at_the_crossing_times():
    # per pixel: log change (log segment: 100 DN -> 35..286 DN) -> floor(|change| / 0.2) events
    change = np.array([[1.05, -1.05, 0.45], [-0.65, 0.0, 0.1]])
    frames = ramp_frames(np.full((2, 3), 100.0), change)
    t_us = np.arange(11) * 1000  # 10 ms
    events = EventSimulator(EXACT, seed=0).simulate(frames, t_us)
    for (y, x), delta in np.ndenumerate(change):
        t, p = events_of(events, x, y)
        count = math.floor(abs(delta) / 0.2 + 1e-9)
        assert len(t) == count
        expected = [math.floor(k * 0.2 / abs(delta) * 10_000) for k in range(1, count + 1)]
        np.testing.assert_array_equal(t, expected)
        assert np.all(p == np.sign(delta))
    assert np.all(np.diff(events.t) >= 0)


def test_ramp_in_the_linear_segment_uses_the_linear_slope():
    # 5 -> 10 DN linearly in time: lin-log changes by 5 log(20)/20 = 0.749 -> 3 ON events
    frames = (np.linspace(5, 10, 21)[:, None, None] * np.ones((1, 1, 1))) / 255.0
    events = EventSimulator(EXACT, seed=0).simulate(frames, np.arange(21) * 500)
    delta = 5 * math.log(20) / 20
    expected = [math.floor(k * 0.2 / delta * 10_000) for k in (1, 2, 3)]
    np.testing.assert_array_equal(events.t, expected)
    assert np.all(events.p == 1)


def test_no_change_and_no_noise_gives_no_events():
    image = np.random.default_rng(0).random((16, 20))
    events = EventSimulator(SimulatorConfig(), seed=3).simulate(np.stack([image] * 5), np.arange(5) * 1000)
    assert len(events) == 0


def test_thresholds_follow_the_configured_distribution():
    simulator = EventSimulator(SimulatorConfig(threshold_on=0.25, threshold_off=0.15, threshold_sigma=0.03), seed=1)
    simulator.step(np.zeros((200, 200)), 0)
    for thresholds, mean in ((simulator.thresholds_on, 0.25), (simulator.thresholds_off, 0.15)):
        assert thresholds.shape == (200, 200)
        assert thresholds.mean() == pytest.approx(mean, abs=0.001)
        assert thresholds.std() == pytest.approx(0.03, rel=0.03)


def test_thresholds_are_clipped_at_the_minimum():
    config = SimulatorConfig(threshold_on=0.02, threshold_off=0.02, threshold_sigma=0.03, threshold_min=0.01)
    simulator = EventSimulator(config, seed=2)
    simulator.step(np.zeros((200, 200)), 0)
    assert simulator.thresholds_on.min() == 0.01
    # P(N(0.02, 0.03) < 0.01) = Phi(-1/3) = 0.3694
    assert np.mean(simulator.thresholds_on == 0.01) == pytest.approx(0.3694, abs=0.01)


def test_matches_the_per_pixel_reference_loop_event_for_event():
    rng = np.random.default_rng(4)
    frames = np.clip(rng.random((1, 6, 7)) * np.exp(rng.normal(0, 0.6, (8, 6, 7))), 0, 1.5)
    t_us = np.cumsum(rng.integers(200, 2000, 8))
    for refractory in (0.0, 700.0):
        simulator = EventSimulator(SimulatorConfig(threshold_sigma=0.05, refractory_us=refractory), seed=5)
        events = simulator.simulate(frames, t_us)
        naive = simulate_naive(frames, t_us, simulator.thresholds_on, simulator.thresholds_off, refractory)
        assert len(events) > 20
        for name in ("x", "y", "t", "p"):
            np.testing.assert_array_equal(getattr(events, name), getattr(naive, name))


def test_refractory_period_is_respected_and_blocked_events_are_lost():
    change = np.full((3, 3), 3.1)  # 15 crossings in 10 ms: one every 645 us
    frames = ramp_frames(np.full((3, 3), 30.0), change)
    t_us = np.arange(11) * 1000
    free = EventSimulator(EXACT, seed=0).simulate(frames, t_us)
    limited = EventSimulator(SimulatorConfig(threshold_sigma=0.0, refractory_us=1000), seed=0).simulate(frames, t_us)
    for x, y in ((0, 0), (2, 1)):
        t, _ = events_of(limited, x, y)
        assert np.all(np.diff(t) >= 1000)
        # the kept events are the greedy choice among the unrestricted crossings
        kept, last = [], -np.inf
        for time in events_of(free, x, y)[0]:
            if time - last >= 1000:
                kept.append(time)
                last = time
        np.testing.assert_array_equal(t, kept)
    assert len(free) == 9 * 15 and len(limited) < len(free)


def test_same_seed_same_events_and_another_seed_differs():
    rng = np.random.default_rng(0)
    frames = rng.random((1, 20, 20)) * np.exp(rng.normal(0, 0.5, (6, 20, 20)))
    t_us = np.arange(6) * 2000
    config = SimulatorConfig(shot_noise_rate_hz=50, hot_pixel_fraction=0.01, leak_rate_hz=5, refractory_us=50)
    first, second = (EventSimulator(config, seed=7).simulate(frames, t_us) for _ in range(2))
    other = EventSimulator(config, seed=8).simulate(frames, t_us)
    for name in ("x", "y", "t", "p"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    assert len(first) != len(other) or not np.array_equal(first.t, other.t)


def test_streaming_in_pieces_equals_one_call():
    rng = np.random.default_rng(1)
    frames = rng.random((1, 12, 12)) * np.exp(rng.normal(0, 0.5, (9, 12, 12)))
    t_us = np.arange(9) * 1000
    whole = EventSimulator(SimulatorConfig(), seed=2).simulate(frames, t_us)
    simulator = EventSimulator(SimulatorConfig(), seed=2)
    parts = [simulator.simulate(frames[:4], t_us[:4]), simulator.simulate(Frames(frames[4:], t_us[4:]))]
    np.testing.assert_array_equal(np.concatenate([p.t for p in parts]), whole.t)
    np.testing.assert_array_equal(np.concatenate([p.x for p in parts]), whole.x)


def test_noise_is_added_on_top_of_unchanged_signal_events():
    rng = np.random.default_rng(2)
    frames = rng.random((1, 16, 16)) * np.exp(rng.normal(0, 0.4, (5, 16, 16)))
    t_us = np.arange(5) * 10_000
    clean = EventSimulator(SimulatorConfig(), seed=3).simulate(frames, t_us)
    noisy = EventSimulator(SimulatorConfig(shot_noise_rate_hz=20, hot_pixel_fraction=0.02), seed=3).simulate(frames, t_us)
    as_set = lambda s: set(zip(s.t.tolist(), s.x.tolist(), s.y.tolist(), s.p.tolist()))
    assert as_set(clean) < as_set(noisy)


def test_shot_noise_rate_falls_from_dark_to_white():
    config = SimulatorConfig(shot_noise_rate_hz=10.0)
    frames = np.zeros((2, 100, 200))
    frames[:, :, 100:] = 1.0  # left half black, right half white
    events = EventSimulator(config, seed=4).simulate(frames, [0, 1_000_000])
    dark, white = np.sum(events.x < 100), np.sum(events.x >= 100)
    # expected 10 Hz * 1 s * 10000 px in the dark, a quarter of that at white (Poisson std ~1%)
    assert dark == pytest.approx(100_000, rel=0.02)
    assert white == pytest.approx(25_000, rel=0.03)
    assert np.mean(events.p == 1) == pytest.approx(0.5, abs=0.01)


def test_hot_pixels_fire_on_events_at_their_rate():
    config = SimulatorConfig(hot_pixel_fraction=0.01, hot_pixel_rate_hz=1000.0)
    events = EventSimulator(config, seed=5).simulate(np.full((3, 50, 50), 0.5), [0, 500_000, 1_000_000])
    pixels = np.unique(events.y.astype(int) * 50 + events.x)
    assert len(pixels) == 25
    assert np.all(events.p == 1)
    assert len(events) == pytest.approx(25 * 1000, rel=0.03)


def test_leak_gives_on_events_at_the_leak_rate():
    config = SimulatorConfig(threshold_sigma=0.0, leak_rate_hz=2.0, leak_jitter=0.0)
    t_us = np.arange(0, 11) * 200_000  # 2 s
    events = EventSimulator(config, seed=6).simulate(np.full((11, 20, 20), 0.5), t_us)
    assert np.all(events.p == 1)
    # the reference falls by 2 thresholds per second: 4 events per pixel in 2 s (+-1 by phase)
    per_pixel = np.bincount(events.y.astype(int) * 20 + events.x, minlength=400)
    assert per_pixel.mean() == pytest.approx(4.0, abs=0.1)
    assert set(per_pixel.tolist()) <= {3, 4}


def test_low_pass_delays_dark_pixels_more_than_bright_ones():
    config = SimulatorConfig(threshold_sigma=0.0, cutoff_hz=50.0)
    base = np.array([[10.0, 200.0]]) / 255
    frames = np.concatenate([base[None], np.repeat(base[None] * 2.0, 40, axis=0)])  # a step up at t = 1 ms
    events = EventSimulator(config, seed=0).simulate(frames, np.arange(41) * 1000)
    first_dark = events_of(events, 0, 0)[0][0]
    first_bright = events_of(events, 1, 0)[0][0]
    assert first_bright < first_dark


def test_bad_input_raises():
    simulator = EventSimulator(SimulatorConfig(), seed=0)
    simulator.step(np.zeros((4, 4)), 100)
    with pytest.raises(EventDataError, match="increase"):
        simulator.step(np.zeros((4, 4)), 100)
    with pytest.raises(EventDataError, match="size"):
        simulator.step(np.zeros((5, 4)), 200)
    with pytest.raises(EventDataError, match=">= 0"):
        simulator.step(np.full((4, 4), -0.1), 200)
    with pytest.raises(EventDataError, match="uint8, uint16 or float"):
        simulator.step(np.zeros((4, 4), dtype=np.int32), 200)
    with pytest.raises(EventDataError, match="timestamps"):
        simulator.simulate(np.zeros((3, 4, 4)), np.arange(2))
    with pytest.raises(ConfigError, match="threshold_sigma"):
        SimulatorConfig(threshold_sigma=-1)
    with pytest.raises(ConfigError, match="threshold_on"):
        SimulatorConfig(threshold_on=0.001)


def test_uint8_and_rgb_frames():
    gray = np.array([[[10, 200]], [[40, 100]]], dtype=np.uint8)
    as_float = EventSimulator(EXACT, seed=0).simulate(gray / 255.0, [0, 1000])
    as_uint8 = EventSimulator(EXACT, seed=0).simulate(gray, [0, 1000])
    as_rgb = EventSimulator(EXACT, seed=0).simulate(np.repeat(gray[..., None], 3, axis=-1), [0, 1000])
    for other in (as_uint8, as_rgb):
        np.testing.assert_array_equal(other.t, as_float.t)
        np.testing.assert_array_equal(other.p, as_float.p)
