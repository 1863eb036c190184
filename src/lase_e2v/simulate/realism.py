"""Whether a synthetic sequence's events look like a real camera's: the range of real recordings.

Random scenes and random sensors (:func:`~lase_e2v.simulate.dataset.random_simulator_config`) are
realistic one by one, but some combinations are not: a slow camera over a flat or dark photo,
seen with a high threshold, gives a few edge events drowned in shot noise. Of the 256 sequences of
``make-dataset -n 256 --duration 3 --seed 0``, 116 lie outside the range below, 108 of them with
a larger noise share than any real recording in ../shared (up to 0.96;
``benchmarks/event_statistics.py``). Peers reconstruct little from them: on the 26 val sequences
of that run, PIE-Net-Lite scores SSIM 0.353 on the 16 out of range against 0.477 on the 10 in range
(FireNet+ 0.302 against 0.461). A model trained to repair such estimates learns to distrust its
estimate, which is wrong on a real camera, where the estimate is good.

:data:`REAL_RANGE` is the envelope of the five real recordings of ``benchmarks/event_statistics.py``
(ECD slider_depth DAVIS240C, two DVXplorer recordings, Prophesee Gen3 and Gen4.1) on the two
statistics that separate those sequences: the isolated (noise) share at most that of the noisiest
real recording (DVXplorer a, 0.354) and at least as many events per pixel and second as the least
active one (DVXplorer a, 2.47). Statistics only, never reconstruction scores. ``make-dataset
--realistic`` redraws a sequence until its statistics fall in the range.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class StatisticsRange:
    """Bounds on :mod:`lase_e2v.events.statistics` results that a realistic sequence meets."""

    max_isolated_share: float
    min_events_per_pixel_per_s: float

    def contains(self, statistics: Mapping[str, float]) -> bool:
        """Whether the statistics of one sequence (``measure_events`` output) lie in the range."""
        return (statistics["isolated_share"] <= self.max_isolated_share
                and statistics["events_per_pixel_per_s"] >= self.min_events_per_pixel_per_s)


#: the envelope of the real recordings (module docstring)
REAL_RANGE = StatisticsRange(max_isolated_share=0.354, min_events_per_pixel_per_s=2.47)
