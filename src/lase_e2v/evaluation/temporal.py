"""Temporal consistency of a reconstructed video, without optical flow or learned models.

Two per-pair scores, each computed for consecutive predictions ``P_{t-1}, P_t`` (both in [0, 1]):

* **flicker** — ``mean |P_t - P_{t-1}|`` over the pixels where *no event fired* in the window
  between the two frames (mask: :func:`~lase_e2v.events.representations.to_event_mask` of that
  window's events). An event camera reports every brightness change larger than its contrast
  threshold, so where it stayed silent the true image hardly changed and any change in the
  reconstruction is flicker. Pairs whose whole image fired have no score. The same score of the
  reference frames (``reference_flicker``) is the floor set by APS sensor noise.
* **temporal error** — ``mean |(P_t - P_{t-1}) - (R_t - R_{t-1})|`` over all pixels, with ``R``
  the reference frames. It is the warping error of Lai et al. (ECCV 2018,
  "Learning Blind Video Temporal Consistency") with the flow-warped previous output replaced by
  the reference's own change: offline there is no flow network, but the references tell how much
  each pixel should change. It is 0 when the video changes exactly as the reference does and
  grows with flicker, lag and ghosting; on a static scene it equals the plain frame difference.

Both are lower-is-better, kept per pair (EVREAL-style metric objects) and averaged over pairs.
"""

from __future__ import annotations

import math

import numpy as np

from lase_e2v.events.representations import to_count_image, to_event_mask
from lase_e2v.events.streams import EventStream


def event_free_mask(events: EventStream) -> np.ndarray:
    """Boolean ``(H, W)``: True where no event of ``events`` fired."""
    counts = to_count_image(events.x, events.y, events.p, events.sensor_size)
    return to_event_mask(counts) == 0


def flicker(previous: np.ndarray, current: np.ndarray, quiet: np.ndarray) -> float:
    """``mean |current - previous|`` over the ``quiet`` (event-free) pixels; NaN if there are none."""
    if not quiet.any():
        return math.nan
    difference = np.abs(current.astype(np.float64) - previous.astype(np.float64))
    return float(difference[quiet].mean())


def temporal_error(
    previous: np.ndarray, current: np.ndarray, reference_previous: np.ndarray, reference_current: np.ndarray
) -> float:
    """``mean |(current - previous) - (reference_current - reference_previous)|`` over all pixels."""
    change = current.astype(np.float64) - previous.astype(np.float64)
    reference_change = reference_current.astype(np.float64) - reference_previous.astype(np.float64)
    return float(np.abs(change - reference_change).mean())


class TemporalMetrics:
    """Accumulates flicker, reference flicker and temporal error over consecutive frames of a sequence.

    Call :meth:`update` once per frame, in order, with the events of the window that ends at it;
    the first frame (and the first after :meth:`skip`) only primes the state.
    """

    names = ("flicker", "reference_flicker", "temporal_error")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.values: dict[str, list[float]] = {name: [] for name in self.names}
        self._previous: tuple[np.ndarray, np.ndarray] | None = None

    def skip(self) -> None:
        """A frame was left out: the next frame has no predecessor to compare with."""
        self._previous = None

    def update(
        self, prediction: np.ndarray, reference: np.ndarray, window_events: EventStream
    ) -> dict[str, float]:
        """Score the pair (previous frame, this frame); returns its scores (NaN: none), ``{}`` if first."""
        scores: dict[str, float] = {}
        if self._previous is not None:
            previous_prediction, previous_reference = self._previous
            quiet = event_free_mask(window_events)
            scores = {
                "flicker": flicker(previous_prediction, prediction, quiet),
                "reference_flicker": flicker(previous_reference, reference, quiet),
                "temporal_error": temporal_error(
                    previous_prediction, prediction, previous_reference, reference
                ),
            }
            for name, value in scores.items():
                if math.isfinite(value):
                    self.values[name].append(value)
        self._previous = (prediction, reference)
        return scores

    def means(self) -> dict[str, float]:
        """Mean of each score over the scored pairs (NaN when none)."""
        return {name: float(np.mean(v)) if v else math.nan for name, v in self.values.items()}
