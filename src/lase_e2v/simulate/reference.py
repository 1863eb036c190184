"""A plain per-pixel Python loop of the same DVS model, for tests and benchmarks only.

It follows :mod:`lase_e2v.simulate.esim` step by step with scalar arithmetic (no noise, leak or
low-pass), so the vectorized simulator can be checked against it event for event, and the
speed-up measured. Far too slow for real use (about a microsecond per pixel per frame).
"""

from __future__ import annotations

import math

import numpy as np

from lase_e2v.events.streams import EventStream
from lase_e2v.simulate.esim import frame_to_dn, lin_log


def simulate_naive(
    frames: np.ndarray,
    t_us: np.ndarray,
    thresholds_on: np.ndarray,
    thresholds_off: np.ndarray,
    refractory_us: float = 0.0,
    linear_threshold_dn: float = 20.0,
) -> EventStream:
    """Events of ``frames`` (N, H, W) at ``t_us`` (N,) with the given per-pixel thresholds (H, W)."""
    height, width = thresholds_on.shape
    logs = [lin_log(frame_to_dn(frame), linear_threshold_dn) for frame in frames]
    reference = logs[0].copy()
    last_event = np.full((height, width), -math.inf)
    events: list[tuple[int, int, int, int, int]] = []  # (t, pixel, x, y, p)
    for i in range(1, len(frames)):
        t0, t1 = float(t_us[i - 1]), float(t_us[i])
        interval = []
        for y in range(height):
            for x in range(width):
                d0 = logs[i - 1][y, x] - reference[y, x]
                d1 = logs[i][y, x] - reference[y, x]
                if d1 >= thresholds_on[y, x]:
                    step, polarity = thresholds_on[y, x], 1
                elif d1 <= -thresholds_off[y, x]:
                    step, polarity = -thresholds_off[y, x], -1
                else:
                    continue
                count = math.floor(d1 / step)
                # crossing k at t0 + dt (k step - d0) / (d1 - d0), in the simulator's operation order
                spacing = (t1 - t0) * step / (d1 - d0)
                offset = t0 - (t1 - t0) * d0 / (d1 - d0)
                for k in range(1, count + 1):
                    t = math.floor(min(max(offset + k * spacing, t0), t0 + (t1 - t0)))
                    if t - last_event[y, x] >= refractory_us:
                        last_event[y, x] = t
                        interval.append((t, y * width + x, x, y, polarity))
                reference[y, x] += count * step
        interval.sort(key=lambda event: event[0])  # stable: ties keep pixel order
        events.extend(interval)
    if not events:
        return EventStream.empty((height, width))
    t, _, x, y, p = (np.array(column) for column in zip(*events))
    return EventStream(x, y, t, p, (height, width))
