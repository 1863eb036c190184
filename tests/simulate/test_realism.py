"""REAL_RANGE is the envelope of the real recordings' statistics (benchmarks/event_statistics.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lase_e2v.simulate.realism import REAL_RANGE, StatisticsRange


def test_real_range_is_the_envelope_of_the_real_recordings():
    repo = Path(__file__).resolve().parents[2]
    real = json.loads((repo / "benchmarks" / "results" / "event_statistics.json").read_text())["real"]
    assert len(real) == 5
    noisiest = max(r["isolated_share"] for r in real.values())
    assert REAL_RANGE.max_isolated_share == pytest.approx(noisiest, abs=5e-4)
    assert REAL_RANGE.min_events_per_pixel_per_s == pytest.approx(
        min(r["events_per_pixel_per_s"] for r in real.values()), abs=5e-3)
    assert all(REAL_RANGE.contains(r) for r in real.values())  # every real recording is realistic


def test_contains_checks_both_bounds():
    bounds = StatisticsRange(max_isolated_share=0.3, min_events_per_pixel_per_s=2.0)
    assert bounds.contains({"isolated_share": 0.3, "events_per_pixel_per_s": 2.0})
    assert not bounds.contains({"isolated_share": 0.31, "events_per_pixel_per_s": 5.0})
    assert not bounds.contains({"isolated_share": 0.1, "events_per_pixel_per_s": 1.99})
