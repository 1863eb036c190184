"""Flicker in event-free pixels and the flow-free temporal error, on hand-built frames and events."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lase_e2v.evaluation.temporal import TemporalMetrics, event_free_mask, flicker, temporal_error
from lase_e2v.events.streams import EventStream


def events_at(pixels: list[tuple[int, int]], sensor_size=(2, 3)) -> EventStream:
    """One ON event per (row, column)."""
    ys, xs = zip(*pixels) if pixels else ((), ())
    return EventStream(np.array(xs), np.array(ys), np.arange(len(xs)), np.ones(len(xs)), sensor_size)


def test_event_free_mask_marks_silent_pixels():
    mask = event_free_mask(events_at([(0, 0), (1, 2), (1, 2)]))
    np.testing.assert_array_equal(mask, [[False, True, True], [True, True, False]])


def test_flicker_averages_only_silent_pixels():
    previous = np.zeros((2, 3))
    current = np.array([[0.9, 0.1, 0.2], [0.3, 0.0, 0.8]])
    quiet = event_free_mask(events_at([(0, 0), (1, 2)]))
    # silent pixels: 0.1, 0.2, 0.3, 0.0 -> mean 0.15; the event pixels (0.9, 0.8) do not count
    assert flicker(previous, current, quiet) == pytest.approx(0.15)
    assert math.isnan(flicker(previous, current, np.zeros((2, 3), bool)))


def test_temporal_error_is_zero_when_changes_follow_the_reference():
    reference_previous = np.array([[0.2, 0.4], [0.6, 0.8]])
    reference_current = reference_previous + np.array([[0.1, 0.0], [-0.2, 0.0]])
    offset = 0.05  # a constant brightness offset does not change the temporal error
    assert temporal_error(
        reference_previous + offset, reference_current + offset, reference_previous, reference_current
    ) == pytest.approx(0.0)
    static = np.full((2, 2), 0.5)
    # a frozen prediction misses every change: error = mean |reference change| = (0.1 + 0.2) / 4
    assert temporal_error(static, static, reference_previous, reference_current) == pytest.approx(0.075)


def test_sequence_accumulator_pairs_consecutive_frames_and_restarts_after_skip():
    references = [np.full((2, 3), v) for v in (0.2, 0.2, 0.4, 0.4)]
    predictions = [np.full((2, 3), v) for v in (0.0, 0.3, 0.3, 0.5)]
    windows = [events_at([]), events_at([(0, 0)]), events_at([(0, 0), (0, 1), (0, 2)]), events_at([])]
    tracker = TemporalMetrics()
    assert tracker.update(predictions[0], references[0], windows[0]) == {}
    second = tracker.update(predictions[1], references[1], windows[1])
    assert second["flicker"] == pytest.approx(0.3)
    assert second["reference_flicker"] == pytest.approx(0.0)
    assert second["temporal_error"] == pytest.approx(0.3)
    tracker.skip()  # frame 2 left out: frame 3 has no predecessor
    tracker.update(predictions[2], references[2], windows[2])
    fourth = tracker.update(predictions[3], references[3], windows[3])
    assert fourth["flicker"] == pytest.approx(0.2)
    assert tracker.values["flicker"] == pytest.approx([0.3, 0.2])
    assert tracker.means() == pytest.approx(
        {"flicker": 0.25, "reference_flicker": 0.0, "temporal_error": 0.25}
    )
    tracker.reset()
    assert all(math.isnan(v) for v in tracker.means().values())
